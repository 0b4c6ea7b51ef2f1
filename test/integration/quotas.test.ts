// Per-tenant limits and the job deadline on a real embedded Postgres and
// pg-boss, with the small test engine standing in for training: a job must
// name its model and dataset and fit the per-job example budget; a tenant's
// queue is capped (also when two API processes submit at once); a worker
// never runs more of one tenant's jobs than the running cap (the rest wait
// and run later); a tenant's stored bytes are capped at upload; and a job
// past the timeout fails as DEADLINE_EXCEEDED keeping its finished rounds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { specFromProto } from '../../src/api/grpc/mapping.js';
import type { Config } from '../../src/runtime/config.js';
import type { WorkerOptions } from '../../src/queue/worker.js';
import { cancelJob, getJob, listEvents, listRounds, submitJob, uploadModel, ServiceError, type ServiceContext } from '../../src/service/index.js';
import { makeTestEngine } from './fixtures/test-engine.js';
import { startTestDb, until, uploadFiles, type TestDb } from './fixtures/harness.js';

const FAST: WorkerOptions = { heartbeatSeconds: 0.3, staleSeconds: 5, reapSeconds: 0.5, pollSeconds: 0.3, progressIntervalMs: 100, maxAttempts: 3 };

let t: TestDb;

before(async () => {
  t = await startTestDb();
});
after(() => t?.stop());

const withLimits = (limits: Partial<Config['limits']>): Config => ({ ...t.config, limits: { ...t.config.limits, ...limits } });

const spec = (rounds: number, iterations: number, seed = 0) => ({ model: 'lenet-300-100', dataset: 'builtin:mnist', rounds, iterations, seed });

function code(c: string, field?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof ServiceError, `expected a ServiceError, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    if (field !== undefined) assert.equal(e.field, field);
    return true;
  };
}

async function finished(ctx: ServiceContext, tenant: string, jobId: string, timeoutMs = 30_000) {
  return until(async () => {
    const j = await getJob(ctx, tenant, jobId);
    return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
  }, timeoutMs, `job ${jobId} to finish`);
}

describe('submit', () => {
  let ctx: ServiceContext;
  before(async () => {
    ctx = (await t.open({ config: withLimits({ tenantMaxQueued: 3 }) })).ctx;
  });
  // The workers below must only see their own jobs.
  after(async () => {
    for (const j of await ctx.prisma.job.findMany({ where: { status: 'queued' } })) await cancelJob(ctx, j.tenant, j.id);
  });

  test('an empty request (REST {} or an empty gRPC RunSpec) is INVALID_ARGUMENT naming model, then dataset', async () => {
    await assert.rejects(submitJob(ctx, 'empty', {}), code('INVALID_ARGUMENT', 'model'));
    await assert.rejects(submitJob(ctx, 'empty', specFromProto({})), code('INVALID_ARGUMENT', 'model'));
    await assert.rejects(submitJob(ctx, 'empty', specFromProto(null)), code('INVALID_ARGUMENT', 'model'));
    await assert.rejects(submitJob(ctx, 'empty', { model: 'lenet-300-100' }), code('INVALID_ARGUMENT', 'dataset'));
    await assert.rejects(submitJob(ctx, 'empty', undefined), code('INVALID_ARGUMENT', 'body'));
    assert.equal(await ctx.prisma.job.count({ where: { tenant: 'empty' } }), 0);
  });

  test('a job above the example budget is refused with the figures; zoo names out of bounds too', async () => {
    // 100 rounds x (1 + 2 controls) + 1 = 301 trainings x 1,000,000 x 60 = 1.81e10 examples.
    await assert.rejects(submitJob(ctx, 'big', { ...spec(100, 1_000_000) }), (e: unknown) => code('INVALID_ARGUMENT', 'iterations')(e) && /1\.81e10 examples \(301 trainings/.test((e as Error).message));
    await assert.rejects(submitJob(ctx, 'big', { ...spec(1, 10), iterations: 2 ** 53 }), code('INVALID_ARGUMENT', 'iterations'));
    await assert.rejects(submitJob(ctx, 'big', { ...spec(1, 10), epochs: 1e12 }), code('INVALID_ARGUMENT', 'epochs'));
    await assert.rejects(submitJob(ctx, 'big', { ...spec(1, 10), model: 'lenet-99999999-99999999' }), (e: unknown) => code('INVALID_ARGUMENT', 'model')(e) && /at most 2048 units/.test((e as Error).message));
    assert.equal(await ctx.prisma.job.count({ where: { tenant: 'big' } }), 0);
  });

  test('a tenant may queue at most TICKETSMITH_TENANT_MAX_QUEUED jobs; others are not affected; a used key still replays', async () => {
    const ids: string[] = [];
    for (let seed = 0; seed < 3; seed++) ids.push((await submitJob(ctx, 'full', spec(1, 10, seed), `k${seed}`)).job.id);
    await assert.rejects(submitJob(ctx, 'full', spec(1, 10, 3)), (e: unknown) => code('QUOTA_EXCEEDED')(e) && /3 jobs waiting.*at most 3|most it may queue is 3/.test((e as Error).message));
    const replay = await submitJob(ctx, 'full', spec(1, 10, 0), 'k0');
    assert.equal(replay.created, false);
    assert.equal(replay.job.id, ids[0]);
    assert.equal((await submitJob(ctx, 'other', spec(1, 10, 3))).created, true);
    // A cancelled job leaves the queue: room for one more.
    await cancelJob(ctx, 'full', ids[1]!);
    assert.equal((await submitJob(ctx, 'full', spec(1, 10, 4))).created, true);
    await assert.rejects(submitJob(ctx, 'full', spec(1, 10, 5)), code('QUOTA_EXCEEDED'));
    assert.equal(await ctx.prisma.job.count({ where: { tenant: 'full', status: 'queued' } }), 3);
  });

  test('two API processes submitting at once cannot pass the cap together', async () => {
    const other = (await t.open({ config: withLimits({ tenantMaxQueued: 3 }) })).ctx;
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => submitJob(i % 2 === 0 ? ctx : other, 'race', spec(1, 10, i))));
    const created = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    assert.equal(created.length, 3);
    assert.equal(refused.length, 7);
    for (const r of refused) assert.equal(((r as PromiseRejectedResult).reason as ServiceError).code, 'QUOTA_EXCEEDED');
    assert.equal(await ctx.prisma.job.count({ where: { tenant: 'race' } }), 3);
  });
});

describe('running cap', () => {
  let ctx: ServiceContext;
  let stop: () => Promise<void>;
  before(async () => {
    ctx = (await t.open()).ctx;
    // One worker that could run 3 jobs at once, but at most 1 per tenant.
    const rt = await t.open({ config: withLimits({ tenantMaxRunning: 1 }), worker: { ...FAST, concurrency: 3 }, runner: makeTestEngine({ stepMs: 10 }) });
    stop = rt.stop;
  });
  after(() => stop());

  test("a tenant's jobs run one at a time while another tenant's job runs beside them; all finish", async () => {
    const mine = [];
    for (let seed = 0; seed < 3; seed++) mine.push((await submitJob(ctx, 'capped', spec(1, 15, seed))).job.id);
    const theirs = (await submitJob(ctx, 'neighbour', spec(1, 15, 9))).job.id;
    const spans = [];
    for (const id of mine) {
      const done = await finished(ctx, 'capped', id);
      assert.equal(done.status, 'succeeded');
      const events = await listEvents(ctx, 'capped', id);
      const started = events.filter((e) => e.kind === 'started');
      assert.equal(started.length, 1, 'deferred deliveries do not start the job');
      spans.push({ id, from: Date.parse(started[0]!.time), to: Date.parse(events.find((e) => e.kind === 'finished')!.time) });
    }
    spans.sort((a, b) => a.from - b.from);
    for (let i = 1; i < spans.length; i++) assert.ok(spans[i]!.from >= spans[i - 1]!.to, `job ${spans[i]!.id} started before ${spans[i - 1]!.id} finished`);
    const n = await finished(ctx, 'neighbour', theirs);
    assert.equal(n.status, 'succeeded');
    const nFrom = Date.parse(n.startedAt!);
    assert.ok(nFrom < spans.at(-1)!.from, 'the other tenant did not wait for the capped queue to drain');
  });
});

describe('job timeout', () => {
  let ctx: ServiceContext;
  let stop: () => Promise<void>;
  before(async () => {
    ctx = (await t.open()).ctx;
    const rt = await t.open({ config: withLimits({ jobTimeoutSeconds: 1.5 }), worker: FAST, runner: makeTestEngine({ stepMs: 10 }) });
    stop = rt.stop;
  });
  after(() => stop());

  test('a job past the timeout fails as DEADLINE_EXCEEDED and keeps its finished rounds', async () => {
    // 6 rounds of 40 steps of 10 ms: about 2.4 s of work, stopped at 1.5 s.
    const { job } = await submitJob(ctx, 'slow', spec(5, 40));
    const done = await finished(ctx, 'slow', job.id);
    assert.equal(done.status, 'failed');
    assert.equal(done.error?.code, 'DEADLINE_EXCEEDED');
    const rounds = await listRounds(ctx, 'slow', job.id);
    assert.ok(rounds.length >= 1 && rounds.length < 6, `${rounds.length} rounds kept`);
    assert.match(done.error!.message, new RegExp(`job timeout of 1\\.5 s; its ${rounds.length} finished rounds are kept`));
    const last = (await listEvents(ctx, 'slow', job.id)).at(-1)!;
    assert.deepEqual(last.payload, { status: 'failed', error: { code: 'DEADLINE_EXCEEDED', message: done.error!.message } });
  });
});

describe('storage quota', () => {
  test('an upload that would take a tenant past its stored bytes is QUOTA_EXCEEDED; another tenant still uploads', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3, name: 'out' })] });
    const files = await uploadFiles(model);
    model.dispose();
    const bytes = files.reduce((n, f) => n + f.bytes.byteLength, 0);
    const ctx = (await t.open({ config: withLimits({ tenantMaxStorageBytes: Math.floor(bytes * 1.5) }) })).ctx;
    const first = await uploadModel(ctx, 'store', { files });
    assert.equal(first.size, bytes);
    await assert.rejects(uploadModel(ctx, 'store', { files }), (e: unknown) => code('QUOTA_EXCEEDED')(e) && new RegExp(`stores ${bytes.toLocaleString('en-US')} bytes`).test((e as Error).message));
    assert.equal(await ctx.prisma.model.count({ where: { tenant: 'store' } }), 1);
    await uploadModel(ctx, 'store-2', { files });
  });
});
