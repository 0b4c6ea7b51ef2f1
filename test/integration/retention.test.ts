// Retention of finished jobs (store/retention.ts): which jobs a pass deletes
// (finished and older than the retention: succeeded and cancelled alike; not
// young ones, not running or queued ones), that several workers' passes at
// once delete each job exactly once, that rounds, events, artifact rows and
// unshared blobs go while shared blobs stay; then the whole path from
// TICKETSMITH_RETENTION_DAYS (a fraction of a day) through the worker's timer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../../src/runtime/config.js';
import { cancelJob, getJob, openService, submitJob, type JobDto, type ServiceContext, type ServiceRuntime } from '../../src/service/index.js';
import { sweepBlobs } from '../../src/store/blob-gc.js';
import { deleteExpiredJobs, storagePass } from '../../src/store/retention.js';
import { startTestDb, until, type TestDb } from './fixtures/harness.js';
import { makeTestEngine } from './fixtures/test-engine.js';

let t: TestDb;

const quick = { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 2, controls: 'none' as const };
const endless = { ...quick, iterations: 1_000_000 };

before(async () => {
  t = await startTestDb();
});

after(async () => {
  await t?.stop();
});

async function waitFor(ctx: ServiceContext, id: string, status: JobDto['status']): Promise<JobDto> {
  return until(async () => {
    const job = await getJob(ctx, 'acme', id);
    return job.status === status ? job : null;
  }, 30_000, `job ${id} ${status}`);
}

async function rows(ctx: ServiceContext, jobIds: string[]) {
  const where = { jobId: { in: jobIds } };
  const [jobs, rounds, events, artifacts] = await Promise.all([
    ctx.prisma.job.count({ where: { id: { in: jobIds } } }),
    ctx.prisma.round.count({ where }),
    ctx.prisma.event.count({ where }),
    ctx.prisma.artifact.count({ where }),
  ]);
  return { jobs, rounds, events, artifacts };
}

async function keysOf(ctx: ServiceContext, jobIds: string[]): Promise<Set<string>> {
  const r = await ctx.prisma.artifact.findMany({ where: { jobId: { in: jobIds } }, select: { storageKey: true } });
  return new Set(r.map((a) => a.storageKey));
}

async function referenced(ctx: ServiceContext): Promise<Set<string>> {
  const r = await ctx.prisma.artifact.findMany({ select: { storageKey: true } });
  return new Set(r.map((a) => a.storageKey));
}

/** Every key: stored exactly when some row still references it. */
async function assertBlobsFollowReferences(ctx: ServiceContext, keys: Iterable<string>): Promise<{ kept: number; gone: number }> {
  const refs = await referenced(ctx);
  let kept = 0;
  let gone = 0;
  for (const k of keys) {
    const stored = (await ctx.blobs.size(k)) !== null;
    assert.equal(stored, refs.has(k), `blob ${k}: stored ${stored}, referenced ${refs.has(k)}`);
    if (stored) kept++;
    else gone++;
  }
  return { kept, gone };
}

const age = (ctx: ServiceContext, ids: string[], days: number) =>
  ctx.prisma.$executeRaw`UPDATE job SET finished_at = now() - make_interval(days => ${days}::int) WHERE id = ANY(${ids}::uuid[])`;

describe('deleteExpiredJobs', { timeout: 120_000 }, () => {
  let rt: ServiceRuntime;
  let ctx: ServiceContext;

  before(async () => {
    // The worker's own pass is off: this suite calls the store functions itself.
    rt = await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, storageSweepSeconds: 0 }, runner: makeTestEngine({ stepMs: 5 }) });
    ctx = rt.ctx;
  });

  after(async () => {
    await rt?.stop();
  });

  test('finished jobs past the retention go whole, once, with concurrent passes; young, running and queued ones stay', async () => {
    const finished: string[] = [];
    for (let seed = 0; seed < 6; seed++) {
      const { job } = await submitJob(ctx, 'acme', { ...quick, seed });
      await waitFor(ctx, job.id, 'succeeded');
      finished.push(job.id);
    }
    const running = (await submitJob(ctx, 'acme', { ...endless, seed: 100 })).job.id;
    await waitFor(ctx, running, 'running');
    const queued = (await submitJob(ctx, 'acme', { ...endless, seed: 101 })).job.id;
    const cancelled = (await submitJob(ctx, 'acme', { ...endless, seed: 102 })).job.id;
    await cancelJob(ctx, 'acme', cancelled);

    const old = [...finished.slice(0, 4), cancelled];
    const young = finished.slice(4);
    await age(ctx, [...old, running, queued], 3);
    const oldKeys = await keysOf(ctx, old);
    assert.ok(oldKeys.size > 0);

    // Three workers' passes at once, in small batches.
    const passes = await Promise.all([1, 2, 3].map(() => deleteExpiredJobs(ctx.prisma, ctx.blobs, { olderThanSeconds: 2 * 86_400, batch: 2 })));
    const deleted = passes.flatMap((p) => p.jobs);
    assert.deepEqual([...deleted].sort(), [...old].sort(), 'each expired job deleted exactly once');
    assert.deepEqual(await rows(ctx, old), { jobs: 0, rounds: 0, events: 0, artifacts: 0 });
    assert.equal((await rows(ctx, young)).jobs, 2);
    assert.equal((await rows(ctx, young)).rounds, 4, 'young jobs keep their rounds');
    assert.equal((await getJob(ctx, 'acme', running)).status, 'running');
    assert.equal((await getJob(ctx, 'acme', queued)).status, 'queued');
    // The young jobs hold the same bytes (the test engine writes the same for every job): kept.
    const r = await assertBlobsFollowReferences(ctx, oldKeys);
    assert.ok(r.kept > 0, 'blobs shared with remaining jobs are kept');

    // Now everything finished is old: the pass deletes the young ones too, and their last references go.
    await age(ctx, young, 3);
    const youngKeys = await keysOf(ctx, young);
    const pass = await storagePass(ctx.prisma, ctx.blobs, { retentionSeconds: 2 * 86_400, sweep: { minAgeSeconds: 0 } });
    assert.deepEqual([...pass.expiredJobs].sort(), [...young].sort());
    const after = await assertBlobsFollowReferences(ctx, [...oldKeys, ...youngKeys]);
    assert.ok(after.gone > 0, 'the ticket blobs only finished jobs held are collected');
    await sweepBlobs(ctx.prisma, ctx.blobs, { minAgeSeconds: 0 });
    const stored: string[] = [];
    for await (const b of ctx.blobs.list()) stored.push(b.key);
    assert.deepEqual(stored.sort(), [...(await referenced(ctx))].sort(), 'nothing unreferenced is stored');

    // Zero retention keeps everything (the setting's "off").
    const keep = await storagePass(ctx.prisma, ctx.blobs, { retentionSeconds: 0 });
    assert.deepEqual(keep.expiredJobs, []);

    await cancelJob(ctx, 'acme', queued);
    await cancelJob(ctx, 'acme', running);
    await waitFor(ctx, running, 'cancelled');
  });
});

describe('TICKETSMITH_RETENTION_DAYS', { timeout: 120_000 }, () => {
  test('is off by default, takes fractions of a day, refuses negatives', () => {
    assert.equal(loadConfig({}).storage.retentionDays, 0);
    assert.equal(loadConfig({ TICKETSMITH_RETENTION_DAYS: '0.5' }).storage.retentionDays, 0.5);
    assert.equal(loadConfig({ TICKETSMITH_STORAGE_SWEEP_SECONDS: '30' }).storage.sweepSeconds, 30);
    assert.throws(() => loadConfig({ TICKETSMITH_RETENTION_DAYS: '-1' }), ConfigError);
    assert.throws(() => loadConfig({ TICKETSMITH_RETENTION_DAYS: 'a week' }), ConfigError);
  });

  test("a worker started with a few seconds' retention deletes a finished job with its rows and blobs by itself", async () => {
    const config = loadConfig({
      TICKETSMITH_DATA_DIR: t.dir,
      DATABASE_URL: t.db.url,
      TICKETSMITH_RETENTION_DAYS: String(3 / 86_400),
      TICKETSMITH_STORAGE_SWEEP_SECONDS: '0.5',
    });
    const rt = await openService({ config, database: { url: t.db.url }, worker: { heartbeatSeconds: 1, pollSeconds: 0.5 }, runner: makeTestEngine({ stepMs: 5 }) });
    try {
      const ctx = rt.ctx;
      const { job } = await submitJob(ctx, 'acme', { ...quick, seed: 7 });
      await waitFor(ctx, job.id, 'succeeded');
      const keys = await keysOf(ctx, [job.id]);
      const ticket = await ctx.prisma.artifact.findFirst({ where: { jobId: job.id, kind: 'ticket' }, select: { storageKey: true } });
      assert.ok(ticket);
      // The pass collects the blobs right after the rows' commit: wait for both.
      const settled = async () => {
        const refs = await referenced(ctx);
        for (const k of keys) if (((await ctx.blobs.size(k)) !== null) !== refs.has(k)) return false;
        return true;
      };
      await until(async () => (await rows(ctx, [job.id])).jobs === 0 && (await settled()), 30_000, 'the retention pass to delete the job and its blobs');
      assert.deepEqual(await rows(ctx, [job.id]), { jobs: 0, rounds: 0, events: 0, artifacts: 0 });
      await assertBlobsFollowReferences(ctx, keys);
      assert.equal(await ctx.blobs.size(ticket.storageKey), null, 'its ticket blob is collected');
    } finally {
      await rt.stop();
    }
  });
});
