// Service use cases against a real embedded Postgres, pg-boss and blob store
// (no worker here; see worker.test.ts): API keys, model uploads (files, zip,
// tar.gz, bad ones), datasets, job submission (row + queue entry in one
// transaction), idempotency, listing with cursors, cancel, tenant isolation,
// artifacts, and the error table.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import * as tf from '@tensorflow/tfjs';
import { keysCommand } from '../../src/cli/keys.js';
import { enqueueInTx } from '../../src/queue/boss.js';
import { JOB_ERROR_CODES } from '../../src/store/lifecycle.js';
import { recordArtifacts, storeBlobs } from '../../src/store/artifacts.js';
import { JOB_STATES } from '../../src/store/states.js';
import {
  ERRORS,
  ServiceError,
  authenticate,
  cancelJob,
  createApiKey,
  getArtifact,
  getDataset,
  getJob,
  getModel,
  listArtifacts,
  listEvents,
  listJobs,
  listRounds,
  registerDataset,
  revokeApiKey,
  submitJob,
  toServiceError,
  uploadModel,
  waitForEvents,
  type ServiceContext,
  type NamedFile,
} from '../../src/service/index.js';
import { startTestDb, type TestDb, uploadFiles } from './fixtures/harness.js';

let t: TestDb;
let ctx: ServiceContext;
let modelFiles: NamedFile[];

const tiny = { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 10 };

function code(c: string, field?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof ServiceError, `expected a ServiceError, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    if (field !== undefined) assert.equal(e.field, field, e.message);
    return true;
  };
}

/** A tiny USTAR writer: enough for the upload test. */
function tar(files: NamedFile[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const f of files) {
    const h = new Uint8Array(512);
    const put = (s: string, at: number) => h.set(new TextEncoder().encode(s), at);
    put(f.name, 0);
    put('0000644\0', 100);
    put('0000000\0', 108);
    put('0000000\0', 116);
    put(f.bytes.length.toString(8).padStart(11, '0') + '\0', 124);
    put('00000000000\0', 136);
    put('        ', 148);
    put('0', 156);
    put('ustar\x0000', 257);
    put((h.reduce((a, b) => a + b, 0).toString(8).padStart(6, '0')) + '\0 ', 148);
    blocks.push(h, f.bytes, new Uint8Array((512 - (f.bytes.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let o = 0;
  for (const b of blocks) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

before(async () => {
  t = await startTestDb();
  ctx = (await t.open()).ctx;
  // A real TF.js Layers model on disk, as a user would upload it.
  const model = tf.sequential({
    layers: [tf.layers.flatten({ inputShape: [4, 4, 1], name: 'flat' }), tf.layers.dense({ units: 8, activation: 'relu', name: 'fc1' }), tf.layers.dense({ units: 3, name: 'out' })],
  });
  modelFiles = await uploadFiles(model);
  model.dispose();
});

after(() => t?.stop());

describe('API keys', () => {
  test('a key is returned once, only its sha256 is stored, and it authenticates its tenant', async () => {
    const { key, id } = await createApiKey(ctx, 'acme');
    assert.match(key, /^tsk_[A-Za-z0-9_-]{43}$/);
    const row = await ctx.prisma.apiKey.findUniqueOrThrow({ where: { id } });
    assert.equal(row.hash, createHash('sha256').update(key).digest('hex'));
    const stored = JSON.stringify(await ctx.prisma.$queryRaw`SELECT * FROM api_key`);
    assert.ok(!stored.includes(key), 'the key itself is in no column');
    assert.deepEqual(await authenticate(ctx, key), { tenant: 'acme', keyId: id });
  });

  test('missing, malformed, unknown and revoked keys are UNAUTHENTICATED', async () => {
    await assert.rejects(authenticate(ctx, undefined), code('UNAUTHENTICATED'));
    await assert.rejects(authenticate(ctx, 'not-a-key'), code('UNAUTHENTICATED'));
    await assert.rejects(authenticate(ctx, `tsk_${'x'.repeat(43)}`), code('UNAUTHENTICATED'));
    const { key, id } = await createApiKey(ctx, 'acme');
    await revokeApiKey(ctx, 'acme', id);
    await assert.rejects(authenticate(ctx, key), code('UNAUTHENTICATED'));
  });

  test('`keys create --tenant` prints a working key once on stdout; bad usage exits 2', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = t.db.url;
    try {
      assert.equal(await keysCommand(['create', '--tenant', 'cli-tenant'], io), 0);
      assert.equal(out.length, 1);
      assert.equal((await authenticate(ctx, out[0])).tenant, 'cli-tenant');
      assert.match(err.join('\n'), /shown once/);
      assert.equal(await keysCommand(['list', '--tenant', 'cli-tenant'], io), 0);
      assert.ok(!out.slice(1).join('\n').includes(out[0]!), 'list never shows the key');
      assert.equal(await keysCommand(['create'], io), 2);
      assert.equal(await keysCommand(['create', '--tenant', 'x', '--bogus'], io), 2);
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
    }
  });

  test('tenant names are validated', async () => {
    await assert.rejects(createApiKey(ctx, ''), code('INVALID_ARGUMENT', 'tenant'));
    await assert.rejects(createApiKey(ctx, 'a b'), code('INVALID_ARGUMENT', 'tenant'));
  });
});

describe('models', () => {
  test('an upload of model.json + weights is validated, stored as blobs and summarised', async () => {
    const m = await uploadModel(ctx, 'acme', { files: modelFiles }, { name: 'tiny' });
    assert.equal(m.format, 'tfjs-layers');
    assert.equal(m.name, 'tiny');
    assert.deepEqual(m.architecture.inputShape, [4, 4, 1]);
    assert.equal(m.architecture.numClasses, 3);
    assert.equal(m.architecture.params, 16 * 8 + 8 + 8 * 3 + 3);
    assert.deepEqual(m.files.map((f) => f.name), ['model.json', 'weights.bin']);
    const weights = modelFiles.find((f) => f.name === 'weights.bin')!;
    assert.equal(m.files[1]!.sha256, createHash('sha256').update(weights.bytes).digest('hex'));
    assert.equal(m.size, modelFiles.reduce((n, f) => n + f.bytes.length, 0));
    const arts = await listArtifacts(ctx, 'acme', { modelId: m.id });
    assert.deepEqual(arts.map((a) => [a.kind, a.name]).sort(), [['model-file', 'model.json'], ['model-file', 'weights.bin']]);
    const dl = await getArtifact(ctx, 'acme', arts.find((a) => a.name === 'weights.bin')!.id);
    assert.deepEqual(await dl.bytes(), weights.bytes);
    assert.deepEqual(await getModel(ctx, 'acme', m.id), m);
  });

  test('zip and tar.gz archives (with a top-level folder) give the same model', async () => {
    const inFolder = Object.fromEntries(modelFiles.map((f) => [`tiny/${f.name}`, f.bytes]));
    const fromZip = await uploadModel(ctx, 'acme', { archive: zipSync(inFolder) });
    const fromTgz = await uploadModel(ctx, 'acme', { archive: new Uint8Array(gzipSync(tar(modelFiles.map((f) => ({ name: `tiny/${f.name}`, bytes: f.bytes }))))) });
    const direct = await uploadModel(ctx, 'acme', { files: modelFiles });
    assert.equal(fromZip.sha256, direct.sha256);
    assert.equal(fromTgz.sha256, direct.sha256);
  });

  test('bad uploads are INVALID_ARGUMENT naming the field, and store nothing', async () => {
    const before = await ctx.prisma.model.count();
    const modelJson = modelFiles.find((f) => f.name === 'model.json')!;
    const weights = modelFiles.find((f) => f.name === 'weights.bin')!;
    await assert.rejects(uploadModel(ctx, 'acme', { files: [weights] }), code('INVALID_ARGUMENT', 'files'));
    await assert.rejects(uploadModel(ctx, 'acme', { files: [{ name: 'model.json', bytes: new TextEncoder().encode('{oops') }] }), code('INVALID_ARGUMENT', 'model.json'));
    await assert.rejects(uploadModel(ctx, 'acme', { files: [modelJson] }), code('INVALID_ARGUMENT', 'model.json.weightsManifest[0].paths[0]'));
    await assert.rejects(
      uploadModel(ctx, 'acme', { files: [modelJson, { name: 'weights.bin', bytes: weights.bytes.slice(0, 20) }] }),
      // Named at the first weight the bytes do not cover (engine/models/budget.ts).
      (e: unknown) => code('INVALID_ARGUMENT', 'model.json.weightsManifest[0].weights[0]')(e) && /weights\.bin/.test((e as Error).message),
    );
    await assert.rejects(uploadModel(ctx, 'acme', { files: [{ name: '../model.json', bytes: modelJson.bytes }] }), code('INVALID_ARGUMENT', 'files[0]'));
    await assert.rejects(uploadModel(ctx, 'acme', { archive: new Uint8Array([1, 2, 3, 4]) }), code('INVALID_ARGUMENT', 'archive'));
    await assert.rejects(uploadModel(ctx, 'acme', { files: [modelJson, { name: 'weights.bin', bytes: new Uint8Array(2 * 1024 * 1024) }] }), code('PAYLOAD_TOO_LARGE'));
    // A zip whose entries inflate past the limit is refused before inflating.
    await assert.rejects(uploadModel(ctx, 'acme', { archive: zipSync({ 'model.json': modelJson.bytes, 'big.bin': new Uint8Array(3 * 1024 * 1024) }) }), code('PAYLOAD_TOO_LARGE'));
    assert.equal(await ctx.prisma.model.count(), before);
  });
});

describe('datasets', () => {
  test('register is idempotent per tenant and knows builtin shapes', async () => {
    const a = await registerDataset(ctx, 'acme', 'builtin:mnist');
    const b = await registerDataset(ctx, 'acme', 'builtin:mnist');
    assert.equal(a.id, b.id);
    assert.deepEqual({ inputShape: a.shapes.inputShape, numClasses: a.shapes.numClasses, counts: a.shapes.counts }, { inputShape: [28, 28, 1], numClasses: 10, counts: { train: 8004, test: 1996 } });
    assert.equal(a.format, 'builtin');
    await assert.rejects(getDataset(ctx, 'other', a.id), code('NOT_FOUND'));
  });

  test('bad references and file:// (disabled by default) are INVALID_ARGUMENT on reference', async () => {
    await assert.rejects(registerDataset(ctx, 'acme', 'builtin:nope'), code('INVALID_ARGUMENT', 'reference'));
    await assert.rejects(registerDataset(ctx, 'acme', 'ftp://x/y'), code('INVALID_ARGUMENT', 'reference'));
    await assert.rejects(registerDataset(ctx, 'acme', 'file:///etc'), code('INVALID_ARGUMENT', 'reference'));
    await assert.rejects(registerDataset(ctx, 'acme', 42), code('INVALID_ARGUMENT', 'reference'));
  });
});

describe('jobs', () => {
  test('submit creates the job row and its pg-boss entry together', async () => {
    const { job, created } = await submitJob(ctx, 'acme', tiny);
    assert.equal(created, true);
    assert.equal(job.status, 'queued');
    assert.equal(job.spec.rounds, 1);
    assert.equal(job.spec.learningRate, 1.2e-3, 'defaults are resolved and stored');
    assert.match(job.runName, /^imp_[0-9a-f]{12}$/);
    const row = await ctx.prisma.job.findUniqueOrThrow({ where: { id: job.id } });
    const queued = await ctx.prisma.$queryRaw<{ id: string; state: string; data: { jobId: string } }[]>`
      SELECT id::text AS id, state::text AS state, data FROM pgboss.job WHERE name = 'ticketsmith-jobs' AND data->>'jobId' = ${job.id}`;
    assert.equal(queued.length, 1);
    assert.equal(queued[0]!.id, row.queueJobId);
    assert.equal(queued[0]!.state, 'created');
    const events = await listEvents(ctx, 'acme', job.id);
    assert.deepEqual(events.map((e) => e.kind), ['queued']);
  });

  test('a rolled-back transaction leaves neither the job row nor the queue entry', async () => {
    let jobId = '';
    await assert.rejects(
      ctx.prisma.$transaction(async (tx) => {
        const job = await tx.job.create({ data: { tenant: 'acme', spec: {}, specHash: 'x', runName: 'x', requestHash: 'x' } });
        jobId = job.id;
        await enqueueInTx(ctx.boss, tx, job.id);
        throw new Error('boom after enqueue');
      }),
      /boom/,
    );
    assert.equal(await ctx.prisma.job.count({ where: { id: jobId } }), 0);
    const n = await ctx.prisma.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM pgboss.job WHERE data->>'jobId' = ${jobId}`;
    assert.equal(Number(n[0]!.n), 0);
  });

  test("submit's one-statement dispatch row equals the one pg-boss's own send() writes", async () => {
    const { job } = await submitJob(ctx, 'acme', { ...tiny, seed: 4242 });
    const row = await ctx.prisma.job.findUniqueOrThrow({ where: { id: job.id } });
    let viaBoss = '';
    await ctx.prisma.$transaction(async (tx) => {
      const other = await tx.job.create({ data: { tenant: 'acme', spec: {}, specHash: 'y', runName: 'y', requestHash: 'y' } });
      viaBoss = await enqueueInTx(ctx.boss, tx, other.id);
    });
    // Columns a send() fixes at insert time; times compared as spans from creation, to the minute.
    const cols = await ctx.prisma.$queryRawUnsafe<Array<Record<string, unknown>>>(
      `SELECT name, priority, singleton_key, singleton_on, dead_letter, expire_in::text AS expire_in, retry_limit, retry_delay,
              retry_backoff, policy, date_trunc('minute', keep_until - created_on)::text AS keep_span,
              date_trunc('minute', start_after - created_on)::text AS start_span
         FROM pgboss.job WHERE id = ANY($1::uuid[]) ORDER BY (id = $2::uuid) DESC`,
      [row.queueJobId, viaBoss],
      row.queueJobId,
    );
    assert.equal(cols.length, 2, `dispatch rows ${JSON.stringify(cols)}`);
    assert.deepEqual(cols[0], cols[1]);
  });

  test('invalid specs are refused before anything is queued, naming the field', async () => {
    const jobs = await ctx.prisma.job.count();
    await assert.rejects(submitJob(ctx, 'acme', { ...tiny, rounds: -1 }), code('INVALID_ARGUMENT', 'rounds'));
    await assert.rejects(submitJob(ctx, 'acme', { ...tiny, bogus: 1 }), code('INVALID_ARGUMENT', 'bogus'));
    await assert.rejects(submitJob(ctx, 'acme', { ...tiny, model: 'not-a-model' }), code('INVALID_ARGUMENT', 'model'));
    await assert.rejects(submitJob(ctx, 'acme', { ...tiny, model: '/etc/passwd' }), code('INVALID_ARGUMENT', 'model'));
    await assert.rejects(submitJob(ctx, 'acme', { ...tiny, dataset: 'builtin:cifar100' }), code('INVALID_ARGUMENT', 'dataset'));
    await assert.rejects(submitJob(ctx, 'acme', { ...tiny, model: 'model:6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11' }), code('NOT_FOUND', 'model'));
    await assert.rejects(submitJob(ctx, 'acme', tiny, 'bad key with spaces'), code('INVALID_ARGUMENT', 'idempotencyKey'));
    assert.equal(await ctx.prisma.job.count(), jobs);
  });

  test('uploaded models and registered datasets are referenced as model:<id> / dataset:<id>, per tenant', async () => {
    // The shared upload takes 4x4 inputs: this test needs one that fits Fashion-MNIST.
    const net = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [28, 28, 1], name: 'flat' }), tf.layers.dense({ units: 10, name: 'out' })] });
    const m = await uploadModel(ctx, 'acme', { files: await uploadFiles(net) });
    net.dispose();
    const d = await registerDataset(ctx, 'acme', 'builtin:fashion-mnist');
    const { job } = await submitJob(ctx, 'acme', { ...tiny, model: `model:${m.id}`, dataset: `dataset:${d.id}` });
    assert.equal(job.modelId, m.id);
    assert.equal(job.datasetId, d.id);
    await assert.rejects(submitJob(ctx, 'globex', { ...tiny, model: `model:${m.id}` }), code('NOT_FOUND', 'model'));
    await assert.rejects(submitJob(ctx, 'globex', { ...tiny, dataset: `dataset:${d.id}` }), code('NOT_FOUND', 'dataset'));
  });

  test('the same Idempotency-Key returns the same job; with another body it is refused', async () => {
    const first = await submitJob(ctx, 'acme', tiny, 'key-1');
    const again = await submitJob(ctx, 'acme', { ...tiny }, 'key-1');
    assert.equal(again.created, false);
    assert.equal(again.job.id, first.job.id);
    // Spelling out a default is the same request (the resolved spec is compared).
    const same = await submitJob(ctx, 'acme', { ...tiny, batchSize: 60 }, 'key-1');
    assert.equal(same.job.id, first.job.id);
    await assert.rejects(submitJob(ctx, 'acme', { ...tiny, rounds: 2 }, 'key-1'), code('IDEMPOTENCY_KEY_REUSED'));
    // Keys are per tenant.
    const other = await submitJob(ctx, 'globex', tiny, 'key-1');
    assert.notEqual(other.job.id, first.job.id);
    // Concurrent submissions with one key create one job.
    const racing = await Promise.all([1, 2, 3, 4].map(() => submitJob(ctx, 'acme', tiny, 'key-race')));
    assert.equal(new Set(racing.map((r) => r.job.id)).size, 1);
    assert.equal(racing.filter((r) => r.created).length, 1);
    const n = await ctx.prisma.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM pgboss.job WHERE data->>'jobId' = ${racing[0]!.job.id}`;
    assert.equal(Number(n[0]!.n), 1);
  });

  test('listJobs pages newest first with a cursor and filters by status', async () => {
    const tenant = 'pager';
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await submitJob(ctx, tenant, { ...tiny, seed: i })).job.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await listJobs(ctx, tenant, { limit: 2, cursor });
      seen.push(...page.items.map((j) => j.id));
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...ids].reverse());
    await cancelJob(ctx, tenant, ids[1]!);
    const cancelled = await listJobs(ctx, tenant, { status: 'cancelled' });
    assert.deepEqual(cancelled.items.map((j) => j.id), [ids[1]]);
    assert.equal((await listJobs(ctx, tenant, { status: 'queued' })).items.length, 4);
    await assert.rejects(listJobs(ctx, tenant, { status: 'done' }), code('INVALID_ARGUMENT', 'status'));
    await assert.rejects(listJobs(ctx, tenant, { limit: 0 }), code('INVALID_ARGUMENT', 'limit'));
    await assert.rejects(listJobs(ctx, tenant, { cursor: 'garbage' }), code('INVALID_ARGUMENT', 'cursor'));
  });

  test('cancelling a queued job ends it at once and drops its queue entry', async () => {
    const { job } = await submitJob(ctx, 'acme', { ...tiny, seed: 99 });
    const c = await cancelJob(ctx, 'acme', job.id);
    assert.equal(c.status, 'cancelled');
    assert.ok(c.finishedAt, "c.finishedAt");
    const state = await ctx.prisma.$queryRaw<{ state: string }[]>`SELECT state::text AS state FROM pgboss.job WHERE data->>'jobId' = ${job.id}`;
    assert.deepEqual(state, [{ state: 'cancelled' }]);
    assert.equal((await cancelJob(ctx, 'acme', job.id)).status, 'cancelled', 'cancelling twice is a no-op');
    const events = await listEvents(ctx, 'acme', job.id);
    assert.deepEqual(events.map((e) => e.kind), ['queued', 'finished']);
    assert.deepEqual(events[1]!.payload, { status: 'cancelled' });
  });

  test('cancelling a finished job is FAILED_PRECONDITION', async () => {
    const { job } = await submitJob(ctx, 'acme', { ...tiny, seed: 98 });
    await ctx.prisma.job.update({ where: { id: job.id }, data: { status: 'succeeded' } });
    await assert.rejects(cancelJob(ctx, 'acme', job.id), code('FAILED_PRECONDITION'));
  });

  test('waitForEvents returns at once when events exist and wakes on a new one', async () => {
    const { job } = await submitJob(ctx, 'acme', { ...tiny, seed: 97 });
    const [queued] = await waitForEvents(ctx, 'acme', job.id, 0, { timeoutMs: 1000 });
    assert.equal(queued!.kind, 'queued');
    const t0 = Date.now();
    const waiting = waitForEvents(ctx, 'acme', job.id, queued!.id, { timeoutMs: 10_000 });
    setTimeout(() => void cancelJob(ctx, 'acme', job.id), 200);
    const next = await waiting;
    assert.deepEqual(next.map((e) => e.kind), ['finished']);
    assert.ok(Date.now() - t0 < 3000, 'woken by NOTIFY, not by the timeout');
    assert.deepEqual(await waitForEvents(ctx, 'acme', job.id, next[0]!.id, { timeoutMs: 200 }), []);
  });
});

describe('tenant isolation', () => {
  test("another tenant's job, rounds, events, artifacts and model are NOT_FOUND", async () => {
    const { job } = await submitJob(ctx, 'acme', { ...tiny, seed: 7 });
    const pending = await storeBlobs(ctx.blobs, { 'ticket/model.json': new TextEncoder().encode('{}') }, 'ticket');
    await ctx.prisma.$transaction((tx) => recordArtifacts(tx, { tenant: 'acme', jobId: job.id }, pending));
    const [art] = await listArtifacts(ctx, 'acme', { jobId: job.id });
    assert.equal(art!.name, 'ticket/model.json');
    const m = await uploadModel(ctx, 'acme', { files: modelFiles });

    await assert.rejects(getJob(ctx, 'globex', job.id), code('NOT_FOUND'));
    await assert.rejects(listRounds(ctx, 'globex', job.id), code('NOT_FOUND'));
    await assert.rejects(listEvents(ctx, 'globex', job.id), code('NOT_FOUND'));
    await assert.rejects(cancelJob(ctx, 'globex', job.id), code('NOT_FOUND'));
    await assert.rejects(listArtifacts(ctx, 'globex', { jobId: job.id }), code('NOT_FOUND'));
    await assert.rejects(getArtifact(ctx, 'globex', art!.id), code('NOT_FOUND'));
    await assert.rejects(getModel(ctx, 'globex', m.id), code('NOT_FOUND'));
    assert.deepEqual(await listArtifacts(ctx, 'globex', { modelId: m.id }), []);
    assert.equal((await listJobs(ctx, 'globex')).items.some((j) => j.id === job.id), false);
    // Malformed ids are simply not found.
    await assert.rejects(getJob(ctx, 'acme', 'nope'), code('NOT_FOUND'));
    assert.equal((await getJob(ctx, 'acme', job.id)).id, job.id);
  });
});

describe('artifacts', () => {
  test('download gives sha256, size, ETag and byte ranges; bad ranges are RANGE_NOT_SATISFIABLE', async () => {
    const { job } = await submitJob(ctx, 'acme', { ...tiny, seed: 8 });
    const bytes = new TextEncoder().encode('0123456789');
    const pending = await storeBlobs(ctx.blobs, { 'ticket/weights.bin': bytes }, 'ticket');
    await ctx.prisma.$transaction((tx) => recordArtifacts(tx, { tenant: 'acme', jobId: job.id }, pending));
    const [a] = await listArtifacts(ctx, 'acme', { jobId: job.id });
    const dl = await getArtifact(ctx, 'acme', a!.id);
    const sha = createHash('sha256').update(bytes).digest('hex');
    assert.equal(dl.sha256, sha);
    assert.equal(dl.etag, `"${sha}"`);
    assert.equal(dl.size, 10);
    assert.equal(dl.mediaType, 'application/octet-stream');
    let s = '';
    for await (const c of dl.open({ start: 3, end: 6 })) s += c.toString();
    assert.equal(s, '3456');
    assert.throws(() => dl.open({ start: 5, end: 10 }), code('RANGE_NOT_SATISFIABLE'));
  });
});

describe('error table', () => {
  test('every code has an HTTP status and a gRPC code; job failure codes are in it', () => {
    for (const [name, def] of Object.entries(ERRORS)) {
      assert.ok(def.http >= 400 && def.http < 600, name);
      assert.ok(Number.isInteger(def.grpc) && def.grpc > 0 && def.grpc <= 16, name);
    }
    assert.deepEqual(
      [ERRORS.INVALID_ARGUMENT, ERRORS.NOT_FOUND, ERRORS.ALREADY_EXISTS, ERRORS.UNAUTHENTICATED, ERRORS.FAILED_PRECONDITION, ERRORS.PAYLOAD_TOO_LARGE, ERRORS.INTERNAL, ERRORS.UNAVAILABLE].map((d) => [d.http, d.grpc]),
      [[400, 3], [404, 5], [409, 6], [401, 16], [409, 9], [413, 8], [500, 13], [503, 14]],
    );
    for (const c of JOB_ERROR_CODES) assert.ok(c in ERRORS, c);
    assert.deepEqual([...JOB_STATES], ['queued', 'running', 'succeeded', 'failed', 'cancelled']);
  });

  test('unexpected errors become INTERNAL without leaking their message', () => {
    const e = toServiceError(new Error('password=hunter2 at db.internal'));
    assert.equal(e.code, 'INTERNAL');
    assert.ok(!e.message.includes('hunter2'), "!e.message.includes('hunter2')");
    assert.deepEqual(new ServiceError('INVALID_ARGUMENT', 'rounds: too big', 'rounds').toJSON(), { code: 'INVALID_ARGUMENT', message: 'rounds: too big', field: 'rounds' });
  });
});
