// Image-folder datasets through the service on a real Postgres and the real
// engine: a file:// folder under an allowed root and a .zip on a loopback
// server are registered with their classes, a real IMP job runs on each and its
// result carries the class names, an uploaded model gets the images resized to
// its input, and each bad archive is refused at registration with a 400 whose
// message names the archive and the member; an archive that goes bad after
// registration fails the job with INVALID_ARGUMENT.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { PNG } from 'pngjs';
import { pack as tarPack } from 'tar-stream';
import * as tf from '@tensorflow/tfjs';
import { getJob, registerDataset, ServiceError, submitJob, uploadModel, type JobDto, type ServiceContext } from '../../src/service/index.js';
import { listenLoopback } from '../unit/fixtures/scratch.js';
import { startTestDb, until, uploadFiles, type TestDb } from './fixtures/harness.js';

let t: TestDb;
let ctx: ServiceContext;
let root: string;
let server: { base: string; close(): Promise<void> };
const served: Record<string, Uint8Array> = {};

const CLASSES = ['circle', 'square', 'triangle'];

/** An RGB PNG of one colour with a little noise, so classes are learnable and images differ. */
function png(size: number, rgb: [number, number, number], seed: number): Uint8Array {
  const image = new PNG({ width: size, height: size });
  for (let i = 0; i < size * size; i++) image.data.set([...rgb.map((v) => (v + ((seed * 31 + i * 7) % 13)) & 255), 255], i * 4);
  return new Uint8Array(PNG.sync.write(image));
}

/** `train/` and `test/` of three classes, 8x8 RGB. */
function imageFiles(perClass = 6): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  CLASSES.forEach((c, k) => {
    const rgb: [number, number, number] = [k === 0 ? 220 : 20, k === 1 ? 220 : 20, k === 2 ? 220 : 20];
    for (let i = 0; i < perClass; i++) out[`train/${c}/${i}.png`] = png(8, rgb, i);
    for (let i = 0; i < 2; i++) out[`test/${c}/${i}.png`] = png(8, rgb, 100 + i);
  });
  return out;
}

async function tarGz(files: Record<string, Uint8Array>): Promise<Uint8Array> {
  const p = tarPack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of p as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const [name, body] of Object.entries(files)) p.entry({ name, size: body.length }, Buffer.from(body));
  p.finalize();
  await done;
  return new Uint8Array(gzipSync(Buffer.concat(chunks)));
}

/** A zip whose members really hold `size` zeros but whose headers claim 100 bytes. */
function lyingZip(names: string[], size: number): Uint8Array {
  const zip = zipSync(Object.fromEntries(names.map((n) => [n, new Uint8Array(size)])), { level: 9 });
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  for (let i = 0; i + 4 <= zip.length; i++) {
    const sig = view.getUint32(i, true);
    if (sig === 0x04034b50) view.setUint32(i + 22, 100, true);
    if (sig === 0x02014b50) view.setUint32(i + 24, 100, true);
  }
  return zip;
}

/** A 400 INVALID_ARGUMENT on `field` whose message matches and names no server folder. */
function bad(field: string, message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ServiceError, `expected a ServiceError, got ${String(e)}`);
    assert.equal(e.httpStatus, 400, e.message);
    assert.equal(e.code, 'INVALID_ARGUMENT');
    assert.equal(e.field, field, e.message);
    assert.match(e.message, message);
    assert.ok(!e.message.includes(root), `server path in: ${e.message}`);
    return true;
  };
}

const finished = (id: string) =>
  until(async () => {
    const j = await getJob(ctx, 'acme', id);
    return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
  }, 180_000, 'the job to finish');

const JOB = { rounds: 1, iterations: 12, evalEvery: 6, batchSize: 8, controls: 'none', seed: 1 } as const;

function summaryOf(job: JobDto): Record<string, unknown> {
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  return (job.result as { summary: Record<string, unknown> }).summary;
}

before(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'ts-image-datasets-')));
  // File datasets under this root and the loopback server are what this file reads; 60 files at most per folder.
  t = await startTestDb({
    TICKETSMITH_ALLOW_FILE_DATASETS: '1',
    TICKETSMITH_FILE_ROOTS: root,
    TICKETSMITH_OUTBOUND_ALLOW: '127.0.0.1/32',
    TICKETSMITH_MAX_IMAGE_FILES: '60',
  });
  ctx = (await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, progressIntervalMs: 200 } })).ctx;
  server = await listenLoopback((req, res) => {
    const body = served[(req.url ?? '').slice(1)];
    if (body === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-length': body.length }).end(body);
  });
});

after(async () => {
  await server?.close();
  await t?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('good image folders', () => {
  test('a file:// folder is registered with its classes and an IMP job on it carries them', async () => {
    const dir = join(root, 'shapes');
    for (const [rel, body] of Object.entries(imageFiles())) {
      await mkdir(join(dir, rel, '..'), { recursive: true });
      await writeFile(join(dir, rel), body);
    }
    const d = await registerDataset(ctx, 'acme', pathToFileURL(dir).href);
    assert.equal(d.format, 'images');
    assert.deepEqual(d.shapes.classNames, CLASSES);
    assert.deepEqual(d.shapes.inputShape, [8, 8, 3]);
    assert.deepEqual(d.shapes.counts, { train: 18, test: 6 });
    assert.equal(d.shapes.numClasses, 3);
    const { job } = await submitJob(ctx, 'acme', { model: 'lenet-300-100', dataset: `dataset:${d.id}`, ...JOB });
    const summary = summaryOf(await finished(job.id));
    assert.deepEqual(summary.classNames, CLASSES);
  });

  test('a .zip over loopback http feeds an uploaded model, resized to its 4x4x1 input', async () => {
    served['shapes.zip'] = zipSync(imageFiles());
    const ref = `${server.base}/shapes.zip`;
    const d = await registerDataset(ctx, 'acme', ref);
    assert.equal(d.format, 'images');
    const net = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1], name: 'flat' }), tf.layers.dense({ units: 3, name: 'out' })] });
    const model = `model:${(await uploadModel(ctx, 'acme', { files: await uploadFiles(net) })).id}`;
    net.dispose();
    // Resizing on: any input size fits; off, the 8x8 images do not fit 4x4.
    const { job } = await submitJob(ctx, 'acme', { model, dataset: `dataset:${d.id}`, ...JOB });
    await assert.rejects(submitJob(ctx, 'acme', { model, dataset: `${ref}#resize=0`, ...JOB }), bad('dataset', /examples are 8x8x1 but model:[0-9a-f-]+ expects input 4x4x1/));
    const summary = summaryOf(await finished(job.id));
    assert.deepEqual(summary.classNames, CLASSES);
  });

  test('a .tar.gz over loopback http is registered', async () => {
    served['shapes.tar.gz'] = await tarGz(imageFiles());
    const d = await registerDataset(ctx, 'acme', `${server.base}/shapes.tar.gz`);
    assert.deepEqual(d.shapes.classNames, CLASSES);
  });
});

describe('bad archives', () => {
  const good = imageFiles(2);
  const cases: [string, () => Promise<Uint8Array> | Uint8Array, RegExp][] = [
    ['undecodable.zip', () => zipSync({ ...good, 'train/square/bad.png': new TextEncoder().encode('GIF89a') }), /^reference: undecodable\.zip: train\/square\/bad\.png: cannot decode image/],
    ['one-class.zip', () => zipSync({ 'cat/a.png': png(8, [1, 2, 3], 1), 'cat/b.png': png(8, [1, 2, 3], 2) }), /^reference: one-class\.zip: cat\/: only one class/],
    ['no-classes.zip', () => zipSync({ 'a.png': png(8, [1, 2, 3], 1), 'b.png': png(8, [1, 2, 3], 2) }), /^reference: no-classes\.zip: .*(not inside a class folder|no class folders)/],
    ['too-many.zip', () => zipSync(imageFiles(25)), /^reference: too-many\.zip: too many files: '[^']+' is past the cap of 60/],
    ['bomb.zip', () => lyingZip(['train/a/x.png', 'train/b/x.png'], 40 * 1024 * 1024), /^reference: bomb\.zip: member 'train\/a\/x\.png' inflates past the 100 bytes its header declares \(a decompression bomb\)$/],
    ['bomb.tar.gz', () => tarGz({ 'a/x.png': new Uint8Array(40 * 1024 * 1024), 'b/y.png': png(8, [1, 2, 3], 1) }), /^reference: bomb\.tar\.gz: expands more than 200-fold/],
    ['escape.zip', () => zipSync({ ...good, '../../escape.png': png(8, [1, 2, 3], 1) }), /^reference: escape\.zip: member '\.\.\/\.\.\/escape\.png' has an unsafe path/],
  ];
  for (const [name, make, message] of cases) {
    test(`${name} is refused with 400, naming the file`, async () => {
      served[name] = await make();
      await assert.rejects(registerDataset(ctx, 'acme', `${server.base}/${name}`), bad('reference', message));
    });
  }

  test('mixed sizes with resize=0 are refused; with resizing on they pass', async () => {
    served['mixed.zip'] = zipSync({ ...good, 'train/circle/big.png': png(16, [1, 2, 3], 1) });
    await assert.rejects(
      registerDataset(ctx, 'acme', `${server.base}/mixed.zip#resize=0`),
      bad('reference', /^reference: mixed\.zip: train\/circle\/big\.png: image is 16x16, not 8x8 like train\/circle\/0\.png, and resizing is off$/),
    );
    assert.deepEqual((await registerDataset(ctx, 'acme', `${server.base}/mixed.zip`)).shapes.images, { resize: true, sizes: ['8x8', '16x16'] });
  });

  test('an archive that goes bad after registration fails the job with INVALID_ARGUMENT naming the file', async () => {
    served['swap.zip'] = zipSync(good);
    const d = await registerDataset(ctx, 'acme', `${server.base}/swap.zip`);
    served['swap.zip'] = zipSync({ ...good, 'train/square/1.png': new TextEncoder().encode('not a png') });
    const { job } = await submitJob(ctx, 'acme', { model: 'lenet-300-100', dataset: `dataset:${d.id}`, ...JOB });
    const done = await finished(job.id);
    assert.equal(done.status, 'failed');
    assert.equal(done.error?.code, 'INVALID_ARGUMENT');
    assert.match(done.error?.message ?? '', /swap\.zip: train\/square\/1\.png: cannot decode image/);
  });
});
