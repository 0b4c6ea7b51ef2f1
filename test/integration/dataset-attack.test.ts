// The new doors of issue 11 tried as a hostile tenant would, on a real
// Postgres and a real REST server on loopback: dataset uploads whose names,
// sizes or streams are built to break the server rather than to be data.
// Each refusal is a 4xx with a message naming the problem and no server
// path; nothing here may come back as a 500.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { zipSync } from 'fflate';
import { PNG } from 'pngjs';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { GrpcError, TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { createApiKey, getJob, listEvents, submitJob, type DatasetDto, type JobDto, type ServiceRuntime } from '../../src/service/index.js';
import { encodeNpy } from '../../src/engine/data/encode.js';
import { LocalBlobStore, sha256Hex } from '../../src/store/blobs.js';
import { startTestDb, until, type TestDb } from './fixtures/harness.js';

let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let grpcServer: GrpcServerHandle;
let key = '';
/** Each tenant's storage quota: above every honest upload here, below what the hostile archive unpacks to. */
const QUOTA = 600 * 1024;

/** A grey width x height PNG. */
function png(width: number, height: number, value: number): Uint8Array {
  const img = new PNG({ width, height });
  img.data.fill(value);
  for (let i = 3; i < img.data.length; i += 4) img.data[i] = 255;
  return new Uint8Array(PNG.sync.write(img));
}

/** Two classes of two 8x8 images: a valid image folder to add one hostile member to. */
const classes = (): Record<string, Uint8Array> => ({ 'cat/1.png': png(8, 8, 10), 'cat/2.png': png(8, 8, 20), 'dog/1.png': png(8, 8, 200), 'dog/2.png': png(8, 8, 220) });

async function postArchive(bytes: Uint8Array, type = 'application/zip', auth = key): Promise<Response> {
  return fetch(`${rest.url}/v1/datasets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${auth}`, 'content-type': type },
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

before(async () => {
  t = await startTestDb({ TICKETSMITH_MAX_UPLOAD_FILES: '64', TICKETSMITH_TENANT_MAX_STORAGE_BYTES: String(QUOTA) });
  rt = await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, progressIntervalMs: 200 } });
  rest = await startRestServer(rt, { host: '127.0.0.1', port: 0 });
  grpcServer = await startGrpcServer(rt, { host: '127.0.0.1', port: 0 });
  key = (await createApiKey(rt.ctx, 'acme')).key;
});

after(async () => {
  await rest?.stop(200);
  await grpcServer?.stop();
  await t?.stop();
});

describe('upload names that cannot be files', () => {
  test('a member that is both a file and a folder is a 400 naming it, not a 500', async () => {
    await refused(await postArchive(zipSync({ ...classes(), cat: png(8, 8, 1) })), 400, 'INVALID_ARGUMENT', /'cat' is both a file and a folder/);
  });

  test('a path part longer than a file name may be is a 400 naming it, not a 500', async () => {
    const long = `cat/${'a'.repeat(300)}.png`;
    await refused(await postArchive(zipSync({ ...classes(), [long]: png(8, 8, 1) })), 400, 'INVALID_ARGUMENT', /'cat\/a+\.png' has a path part longer than 255 bytes/);
  });

  test('a path too long to open (thousands of folders deep) is a 400, not a 500', async () => {
    const deep = `${Array(2100).fill('d').join('/')}/x.png`;
    await refused(await postArchive(zipSync({ ...classes(), [deep]: png(8, 8, 1) })), 400, 'INVALID_ARGUMENT', /is a path longer than 1024 bytes/);
  });

  test('the valid folder beside them is accepted', async () => {
    const res = await postArchive(zipSync(classes()));
    assert.equal(res.status, 201, await res.clone().text());
    assert.equal(((await res.json()) as { format: string }).format, 'images');
  });
});

describe('a job on an uploaded image folder', () => {
  const finished = (id: string): Promise<JobDto> =>
    until(async () => {
      const j = await getJob(rt.ctx, 'acme', id);
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
    }, 180_000, `job ${id}`);

  test('an image cut short (its header is fine) is refused at upload, naming the file', async () => {
    const whole = png(8, 8, 230);
    const res = await postArchive(zipSync({ ...classes(), 'dog/3.png': whole.subarray(0, 40) }));
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'INVALID_ARGUMENT');
    assert.match(body.error.message, /dog\/3\.png: cannot decode image/);
  });

  test('an image whose stored bytes went bad after the upload fails the job naming dataset:<id> and the file, not the worker\'s temp folder', async () => {
    const whole = png(8, 8, 230);
    const res = await postArchive(zipSync({ ...classes(), 'dog/3.png': whole }));
    const dataset = (await res.json()) as DatasetDto;
    assert.equal(res.status, 201, JSON.stringify(dataset));
    // The blob store is content-addressed and does not re-hash on read: cut the stored file short.
    await writeFile(new LocalBlobStore(rt.ctx.config.blobDir).pathOf(sha256Hex(whole)), whole.subarray(0, 40));
    const { job } = await submitJob(rt.ctx, 'acme', { model: 'lenet-300-100', dataset: `dataset:${dataset.id}`, rounds: 1, iterations: 2, evalEvery: 2, batchSize: 2, controls: 'none', seed: 1 });
    const done = await finished(job.id);
    assert.equal(done.status, 'failed');
    assert.equal(done.error?.code, 'INVALID_ARGUMENT', JSON.stringify(done.error));
    assert.match(done.error?.message ?? '', new RegExp(`dataset:${dataset.id}: dog/3\\.png: cannot decode image`));
    const text = JSON.stringify({ done, events: await listEvents(rt.ctx, 'acme', job.id) });
    assert.ok(!/ticketsmith-[0-9a-f]{8}-data-/.test(text), `the job's data folder shows: ${done.error?.message}`);
    assert.ok(!text.includes(`${tmpdir()}/`), 'a temp path shows');
  });
});

/** The blob store's keys, sorted. */
async function blobKeys(): Promise<string[]> {
  const keys: string[] = [];
  for await (const b of rt.ctx.blobs.list()) keys.push(b.key);
  return keys.sort();
}

describe('a job on data that sizes the model', () => {
  test('one label of 3,000,000 would size a zoo model\'s output layer at 300M weights: the upload is refused at the door, naming the file and the class cap', async () => {
    const x = (n: number) => encodeNpy('<f4', [n, 4, 4], Array.from({ length: n * 16 }, (_, i) => (i % 5) / 5));
    const y = (v: number[]) => encodeNpy('<i8', [v.length], v);
    const form = new FormData();
    const files = { 'x_train.npy': x(6), 'y_train.npy': y([0, 1, 0, 1, 0, 3_000_000]), 'x_test.npy': x(2), 'y_test.npy': y([0, 1]) };
    for (const [name, bytes] of Object.entries(files)) form.append('files', new Blob([new Uint8Array(bytes)]), name);
    const before = await blobKeys();
    const res = await fetch(`${rest.url}/v1/datasets`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
    const body = (await res.json()) as { error: { code: string; field?: string; message: string } };
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(body.error.code, 'INVALID_ARGUMENT');
    assert.equal(body.error.field, 'files');
    assert.match(body.error.message, /y_train\.npy: label 3000000 at index 5 is not below 10000/);
    assert.deepEqual(await blobKeys(), before, 'nothing of it is stored');
  });
});

describe('the storage quota', () => {
  test('two uploads racing for the last of the quota: one is stored, the other refused, and it leaves no blobs', async () => {
    const racer = (await createApiKey(rt.ctx, 'hooli')).key;
    const before = await blobKeys();
    // Each fits the quota alone (400 KiB unpacked), not both.
    const zips = [1, 2].map((i) => zipSync({ ...classes(), [`cat/notes-${i}.txt`]: new Uint8Array(400 * 1024).fill(i) }, { level: 9 }));
    const answers = await Promise.all(zips.map((z) => postArchive(z, 'application/zip', racer)));
    const statuses = answers.map((r) => r.status).sort();
    assert.deepEqual(statuses, [201, 429], JSON.stringify(await Promise.all(answers.map((r) => r.text()))));
    const rows = await rt.ctx.prisma.artifact.findMany({ where: { tenant: 'hooli' }, select: { storageKey: true } });
    assert.deepEqual(await blobKeys(), [...new Set([...before, ...rows.map((r) => r.storageKey)])].sort(), 'the refused upload left blobs behind');
  });

  test('an archive small on the wire that unpacks past the quota is refused before its files reach the blob store', async () => {
    const other = (await createApiKey(rt.ctx, 'initech')).key;
    const before = await blobKeys();
    // 900 KiB of zeros beside the images: a few KiB sent, under the ratio cap, over the 600 KiB quota unpacked.
    const zip = zipSync({ ...classes(), 'cat/notes.txt': new Uint8Array(900 * 1024) }, { level: 9 });
    assert.ok(zip.length < 16 * 1024);
    await refused(await postArchive(zip, 'application/zip', other), 429, 'QUOTA_EXCEEDED', /storage quota: this tenant stores 0 bytes and this upload adds 9\d\d,\d{3}; the quota is 614,400 bytes/);
    assert.deepEqual(await blobKeys(), before, 'a refused upload left blobs behind');
  });
});

describe('the REST multipart body', () => {
  test('file names count toward the byte cap: long-named empty parts and 400 KiB of data, sent without Content-Length, get 413', async () => {
    const boundary = 'attack-boundary';
    const enc = new TextEncoder();
    // 60 empty parts named with 12 KiB each (busboy takes part headers to 16 KiB; the upload may have 64 files):
    // no file bytes, 720 KiB of names, then the file bytes of the set bring it over the 1 MiB cap.
    const parts = Array.from({ length: 60 }, (_, i) => enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="cat/${i}-${'n'.repeat(12 * 1024)}"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n`));
    parts.push(enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="dog/data.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`));
    parts.push(new Uint8Array(400 * 1024), enc.encode(`\r\n--${boundary}--\r\n`));
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = parts.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const res = await fetch(`${rest.url}/v1/datasets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
      duplex: 'half',
      signal: AbortSignal.timeout(60_000),
    } as RequestInit);
    await refused(res, 413, 'PAYLOAD_TOO_LARGE', /upload exceeds 1048576 bytes/);
  });
});

describe('the gRPC upload stream', () => {
  test('file names count toward the byte cap: empty files with long names are cut off at it, not gathered past it', async () => {
    const client = new TicketsmithGrpcClient({ address: `127.0.0.1:${grpcServer.port}`, apiKey: key, chunkBytes: 64 * 1024 });
    try {
      // 24 empty files named with 60 KiB each (names may have 64 KiB): no data bytes, 1.4 MiB of names over a 1 MiB cap.
      const files = Array.from({ length: 24 }, (_, i) => ({ name: `cat/${i}-${'n'.repeat(60 * 1024)}`, bytes: new Uint8Array(0) }));
      await assert.rejects(client.uploadDataset({ files }), (e: GrpcError) => {
        assert.equal(e.code, 'PAYLOAD_TOO_LARGE', `${e.code}: ${e.message}`);
        assert.match(e.message, /upload exceeds 1048576 bytes/);
        return true;
      });
    } finally {
      client.close();
    }
  });
});
