// Dataset uploads (issue 11) through every door, on a real Postgres, real
// REST and gRPC servers on loopback and the real engine: an IDX set made from
// MNIST digits is uploaded as multipart files, as a raw .tar.gz, as a gRPC
// stream and with `ticketsmith datasets upload`; the same files give the same
// dataset; a real job trains on `dataset:<id>` from the worker's temp folder
// and no server path shows in what the tenant reads back. Each refusal comes
// before anything is stored, with its status, code and a message naming the
// file: wrong magic, a label out of range, a count mismatch, a body over the
// cap (413 while it streams), too many archive members, a zip bomb, a path
// that climbs out. Deleting the dataset removes its files and their bytes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { PNG } from 'pngjs';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { datasetsCommand } from '../../src/cli/resources.js';
import type { VerbIo } from '../../src/cli/client-common.js';
import { GrpcError, TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { encodeCifarBatch, encodeIdx } from '../../src/engine/data/encode.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { tenantStorageBytes } from '../../src/store/artifacts.js';
import { sweepBlobs } from '../../src/store/blob-gc.js';
import { createApiKey, deleteDataset, getJob, listArtifacts, listEvents, submitJob, type DatasetDto, type JobDto, type ServiceRuntime } from '../../src/service/index.js';
import { tarOf, tgzOf, type NamedBytes } from '../corpus/files.js';
import { startTestDb, until, type TestDb } from './fixtures/harness.js';

const MAX_FILES = 12;
const CAP = 1024 * 1024;

let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let grpcServer: GrpcServerHandle;
let key = '';
let otherKey = '';
let mnist: NamedBytes[] = [];
const scratch: string[] = [];

/** The four IDX files of `train` + `test` real MNIST digits (ubyte pixels, as the originals). */
async function mnistSubset(train: number, test: number): Promise<NamedBytes[]> {
  const data = await loadDataset('builtin:mnist', { maxTrain: train, validationFraction: 0, seed: 0 });
  const pixels = (x: Float32Array, n: number) => Array.from(x.subarray(0, n * 784), (v) => Math.round(v * 255));
  return [
    { name: 'train-images-idx3-ubyte', bytes: encodeIdx('ubyte', [train, 28, 28], pixels(data.train.x, train)) },
    { name: 'train-labels-idx1-ubyte', bytes: encodeIdx('ubyte', [train], Array.from(data.train.y.subarray(0, train))) },
    { name: 't10k-images-idx3-ubyte', bytes: encodeIdx('ubyte', [test, 28, 28], pixels(data.test.x, test)) },
    { name: 't10k-labels-idx1-ubyte', bytes: encodeIdx('ubyte', [test], Array.from(data.test.y.subarray(0, test))) },
  ];
}

/** A grey width x height PNG. */
function png(width: number, height: number, value: number): Uint8Array {
  const img = new PNG({ width, height });
  img.data.fill(value);
  for (let i = 3; i < img.data.length; i += 4) img.data[i] = 255;
  return new Uint8Array(PNG.sync.write(img));
}

const replace = (set: NamedBytes[], name: string, bytes: Uint8Array) => set.map((f) => (f.name === name ? { name, bytes } : f));

/** POST /v1/datasets as multipart files. */
async function postFiles(files: NamedBytes[], auth = key): Promise<Response> {
  const form = new FormData();
  for (const f of files) form.append('files', new Blob([new Uint8Array(f.bytes)]), f.name);
  return fetch(`${rest.url}/v1/datasets`, { method: 'POST', headers: { authorization: `Bearer ${auth}` }, body: form, signal: AbortSignal.timeout(60_000) });
}

/** POST /v1/datasets as one raw archive body. */
async function postArchive(bytes: Uint8Array, type: string): Promise<Response> {
  return fetch(`${rest.url}/v1/datasets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': type },
    body: new Uint8Array(bytes),
    signal: AbortSignal.timeout(60_000),
  });
}

/** A refusal: the status, the code, and a message matching `message` that names no server folder. */
async function refused(res: Response, status: number, code: string, message: RegExp): Promise<void> {
  const body = (await res.json()) as { error?: { code?: string; message?: string } };
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(body.error?.code, code, JSON.stringify(body));
  assert.match(body.error?.message ?? '', message);
  assert.ok(!(body.error?.message ?? '').includes(tmpdir()), `a server path in: ${body.error?.message}`);
}

function io(): VerbIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (s) => stdout.push(s), err: (s) => stderr.push(s) };
}

before(async () => {
  t = await startTestDb({ TICKETSMITH_MAX_UPLOAD_FILES: String(MAX_FILES), TICKETSMITH_MAX_UPLOAD_BYTES: String(CAP) });
  rt = await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, progressIntervalMs: 200 } });
  rest = await startRestServer(rt, { host: '127.0.0.1', port: 0 });
  grpcServer = await startGrpcServer(rt, { host: '127.0.0.1', port: 0 });
  key = (await createApiKey(rt.ctx, 'acme')).key;
  otherKey = (await createApiKey(rt.ctx, 'globex')).key;
  mnist = await mnistSubset(300, 100);
});

after(async () => {
  await rest?.stop(200);
  await grpcServer?.stop();
  await t?.stop();
  for (const d of scratch) await rm(d, { recursive: true, force: true });
});

describe('an IDX set uploaded through each door', () => {
  let uploaded: DatasetDto;

  test('REST multipart files: stored as format idx with its probe summary and an upload: reference', async () => {
    const res = await postFiles(mnist);
    const body = (await res.json()) as DatasetDto;
    assert.equal(res.status, 201, JSON.stringify(body));
    assert.equal(res.headers.get('location'), `/v1/datasets/${body.id}`);
    assert.equal(body.format, 'idx');
    assert.match(body.reference, /^upload:[0-9a-f]{64}$/);
    const shapes = body.shapes as { inputShape: number[]; numClasses: number; counts: { train: number; test: number } };
    assert.deepEqual(shapes.inputShape, [28, 28, 1]);
    assert.equal(shapes.numClasses, 10);
    assert.deepEqual(shapes.counts, { train: 300, test: 100 });
    const files = await listArtifacts(rt.ctx, 'acme', { kind: 'dataset-file' });
    assert.deepEqual(files.map((a) => a.name).sort(), mnist.map((f) => f.name).sort());
    uploaded = body;
  });

  test('REST raw .tar.gz (one wrapping folder): the same files are the same dataset', async () => {
    const res = await postArchive(tgzOf(mnist.map((f) => ({ name: `mnist/${f.name}`, bytes: f.bytes }))), 'application/gzip');
    const body = (await res.json()) as DatasetDto;
    assert.equal(res.status, 201, JSON.stringify(body));
    assert.equal(body.id, uploaded.id);
  });

  test('gRPC UploadDataset stream, and another tenant gets a dataset of its own', async () => {
    const mine = new TicketsmithGrpcClient({ address: `127.0.0.1:${grpcServer.port}`, apiKey: key, chunkBytes: 64 * 1024 });
    const theirs = new TicketsmithGrpcClient({ address: `127.0.0.1:${grpcServer.port}`, apiKey: otherKey, chunkBytes: 64 * 1024 });
    try {
      const same = await mine.uploadDataset({ files: mnist });
      assert.equal(same.id, uploaded.id);
      assert.equal(same.format, 'idx');
      const other = await theirs.uploadDataset({ archive: zipSync(Object.fromEntries(mnist.map((f) => [f.name, f.bytes]))) });
      assert.notEqual(other.id, uploaded.id);
      assert.equal(other.reference, uploaded.reference);
    } finally {
      mine.close();
      theirs.close();
    }
  });

  test('the CLI uploads a folder and prints the id', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ts-dsupload-cli-'));
    scratch.push(dir);
    // A changed test set: another upload, so another dataset.
    for (const f of mnist.slice(0, 2)) await writeFile(join(dir, f.name), f.bytes);
    const smaller = await mnistSubset(300, 60);
    for (const f of smaller.slice(2)) await writeFile(join(dir, f.name), f.bytes);
    const out = io();
    const code = await datasetsCommand(['upload', dir, '--url', rest.url, '--key', key], out);
    assert.equal(code, 0, out.stderr.join(''));
    const id = out.stdout.join('').trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.notEqual(id, uploaded.id);
    assert.match(out.stderr.join(''), /\(idx\): inputs \[28, 28, 1\], 10 classes, 300 train \/ 60 test examples/);
  });

  test('a real job trains on dataset:<id> and shows no server path', async () => {
    const { job } = await submitJob(rt.ctx, 'acme', {
      model: 'lenet-300-100', dataset: `dataset:${uploaded.id}`, rounds: 1, iterations: 4, evalEvery: 2, batchSize: 30, maxTrainExamples: 120, controls: 'none',
    });
    const done: JobDto = await until(async () => {
      const j = await getJob(rt.ctx, 'acme', job.id);
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
    }, 180_000, 'the job');
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    const events = await listEvents(rt.ctx, 'acme', job.id);
    const text = JSON.stringify({ done, events });
    assert.ok(!text.includes(`${tmpdir()}/`), 'a temp path shows');
    assert.ok(!/ticketsmith-[0-9a-f]{8}-data-/.test(text), "the job's data folder shows");
    assert.ok(!text.includes(t.dir), 'the data folder shows');
  });

  test('deleting the dataset removes its files, and their bytes from the storage count', async () => {
    const before = await tenantStorageBytes(rt.ctx.prisma, 'globex');
    assert.ok(before > 0);
    const theirs = (await listArtifacts(rt.ctx, 'globex', { kind: 'dataset-file' }))[0]!;
    const { datasetId } = (await rt.ctx.prisma.artifact.findUniqueOrThrow({ where: { id: theirs.id }, select: { datasetId: true } }));
    await deleteDataset(rt.ctx, 'globex', datasetId!);
    assert.deepEqual(await listArtifacts(rt.ctx, 'globex', { kind: 'dataset-file' }), []);
    assert.equal(await tenantStorageBytes(rt.ctx.prisma, 'globex'), 0);
    // The blobs stay: acme's uploads hold the same bytes, and the collector sees their rows.
    const rows = await rt.ctx.prisma.artifact.findMany({ where: { tenant: 'acme', kind: 'dataset-file' }, select: { storageKey: true, datasetId: true } });
    assert.equal(rows.length, 8);
    const swept = await sweepBlobs(rt.ctx.prisma, rt.ctx.blobs);
    for (const r of rows) {
      assert.ok(!swept.removed.includes(r.storageKey));
      assert.notEqual(await rt.ctx.blobs.size(r.storageKey), null);
    }
    // Once acme's go too (their job finished), so do the bytes.
    for (const id of new Set(rows.map((r) => r.datasetId!))) await deleteDataset(rt.ctx, 'acme', id);
    for (const r of rows) assert.equal(await rt.ctx.blobs.size(r.storageKey), null, `blob ${r.storageKey} outlived its dataset`);
  });
});

describe('an image-folder archive', () => {
  test('class folders of PNGs are stored as format images with their classes', async () => {
    const files = { 'pets/cat/1.png': png(8, 8, 10), 'pets/cat/2.png': png(8, 8, 20), 'pets/dog/1.png': png(8, 8, 200), 'pets/dog/2.png': png(8, 8, 220), 'pets/dog/3.png': png(8, 8, 240) };
    const res = await postArchive(zipSync(files), 'application/zip');
    const body = (await res.json()) as DatasetDto;
    assert.equal(res.status, 201, JSON.stringify(body));
    assert.equal(body.format, 'images');
    const shapes = body.shapes as { inputShape: number[]; numClasses: number; classNames: string[] };
    assert.deepEqual(shapes.inputShape, [8, 8, 3]);
    assert.equal(shapes.numClasses, 2);
    assert.deepEqual(shapes.classNames, ['cat', 'dog']);
  });

  test('a broken image is refused, naming the file', async () => {
    const files = { 'cat/1.png': png(8, 8, 10), 'cat/2.png': png(8, 8, 20), 'dog/1.png': new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]), 'dog/2.png': png(8, 8, 220) };
    await refused(await postArchive(zipSync(files), 'application/zip'), 400, 'INVALID_ARGUMENT', /dog\/1\.png/);
  });
});

describe('refusals, before anything is stored', () => {
  let storedBefore = 0;
  before(async () => {
    storedBefore = (await listArtifacts(rt.ctx, 'acme', { kind: 'dataset-file' })).length;
  });
  after(async () => {
    assert.equal((await listArtifacts(rt.ctx, 'acme', { kind: 'dataset-file' })).length, storedBefore, 'a refused upload stored files');
  });

  test('wrong magic names the file', async () => {
    const bad = replace(mnist, 'train-labels-idx1-ubyte', new Uint8Array([0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1, 0]));
    await refused(await postFiles(bad), 400, 'INVALID_ARGUMENT', /^files: train-labels-idx1-ubyte: not an IDX file \(magic 0x12345678/);
  });

  test('a label out of range names the file', async () => {
    const batch = encodeCifarBatch(Array.from({ length: 4 }, (_, i) => ({ label: i === 2 ? 12 : i, pixels: new Uint8Array(3072) })));
    const test = encodeCifarBatch(Array.from({ length: 2 }, (_, i) => ({ label: i, pixels: new Uint8Array(3072) })));
    const res = await postFiles([{ name: 'data_batch_1.bin', bytes: batch }, { name: 'test_batch.bin', bytes: test }]);
    await refused(res, 400, 'INVALID_ARGUMENT', /^files: data_batch_1\.bin: label 12 of record 2 is outside the 10 CIFAR-10 classes/);
  });

  test('training labels of one class are refused whatever the label, naming the file (REST and gRPC)', async () => {
    const five = encodeIdx('ubyte', [300], new Array(300).fill(5));
    await refused(await postFiles(replace(mnist, 'train-labels-idx1-ubyte', five)), 400, 'INVALID_ARGUMENT', /^files: train-labels-idx1-ubyte: the dataset has a single class \(every label is 5\)/);
    const client = new TicketsmithGrpcClient({ address: `127.0.0.1:${grpcServer.port}`, apiKey: key });
    try {
      const twoHundred = encodeIdx('ubyte', [300], new Array(300).fill(200));
      await assert.rejects(client.uploadDataset({ files: replace(mnist, 'train-labels-idx1-ubyte', twoHundred) }), (e: GrpcError) => {
        assert.equal(e.code, 'INVALID_ARGUMENT');
        assert.match(e.message, /train-labels-idx1-ubyte: the dataset has a single class \(every label is 200\)/);
        return true;
      });
    } finally {
      client.close();
    }
  });

  test('images and labels that do not agree in count name the files', async () => {
    const labels = encodeIdx('ubyte', [299], Array.from({ length: 299 }, (_, i) => i % 10));
    await refused(await postFiles(replace(mnist, 'train-labels-idx1-ubyte', labels)), 400, 'INVALID_ARGUMENT', /^files: train-labels-idx1-ubyte: 299 labels but train-images-idx3-ubyte has 300 images/);
  });

  test('a body over the cap gets 413 while it streams: the server answers before the client is done', async () => {
    const chunk = new Uint8Array(64 * 1024).fill(7);
    const limit = 64 * CAP;
    let sent = 0;
    const req = request(`${rest.url}/v1/datasets`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/gzip' } });
    req.on('error', () => undefined);
    const answered = once(req, 'response') as Promise<[import('node:http').IncomingMessage]>;
    let response: import('node:http').IncomingMessage | null = null;
    void answered.then(([r]) => (response = r));
    while (response === null && sent < limit) {
      sent += chunk.length;
      if (!req.write(chunk)) await Promise.race([once(req, 'drain'), answered]);
    }
    const [res] = await answered;
    let text = '';
    for await (const c of res) text += String(c);
    req.destroy();
    assert.equal(res.statusCode, 413, text);
    assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'PAYLOAD_TOO_LARGE');
    assert.ok(sent < 8 * CAP, `the client sent ${sent} bytes before the answer (cap ${CAP})`);
  });

  test('over gRPC: a bad file names it, and a stream over the cap is cut off', async () => {
    const client = new TicketsmithGrpcClient({ address: `127.0.0.1:${grpcServer.port}`, apiKey: key, chunkBytes: 64 * 1024 });
    try {
      const bad = replace(mnist, 'train-labels-idx1-ubyte', new Uint8Array([0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1, 0]));
      await assert.rejects(client.uploadDataset({ files: bad }), (e: GrpcError) => {
        assert.equal(e.code, 'INVALID_ARGUMENT');
        assert.match(e.message, /train-labels-idx1-ubyte: not an IDX file/);
        return true;
      });
      await assert.rejects(client.uploadDataset({ archive: new Uint8Array(2 * CAP) }), (e: GrpcError) => {
        assert.equal(e.code, 'PAYLOAD_TOO_LARGE');
        return true;
      });
    } finally {
      client.close();
    }
  });

  test('too many archive members', async () => {
    const many = Array.from({ length: MAX_FILES + 1 }, (_, i) => ({ name: `extra/${i}.txt`, bytes: new Uint8Array([i]) }));
    await refused(await postArchive(tgzOf([...mnist, ...many]), 'application/gzip'), 400, 'INVALID_ARGUMENT', new RegExp(`archive: more than ${MAX_FILES} files`));
  });

  test('a zip bomb is refused from its declared sizes, naming the member', async () => {
    const bomb = zipSync({ 'train-images-idx3-ubyte': new Uint8Array(16 * 1024 * 1024) }, { level: 9 });
    assert.ok(bomb.length < 64 * 1024);
    await refused(await postArchive(bomb, 'application/zip'), 400, 'INVALID_ARGUMENT', /'train-images-idx3-ubyte' expands more than \d+-fold/);
  });

  test('a path that climbs out of the upload', async () => {
    const tar = tarOf([...mnist, { name: '../evil', bytes: new Uint8Array([1]) }]);
    await refused(await postArchive(tar, 'application/x-tar'), 400, 'INVALID_ARGUMENT', /unsafe file name '\.\.\/evil'/);
  });
});
