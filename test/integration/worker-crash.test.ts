// A worker process killed with SIGKILL in the middle of a round: its job's
// heartbeat goes stale, the surviving worker's reaper requeues it, and it
// completes from the last committed round, with every round exactly once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { getJob, listEvents, submitJob, type ServiceContext } from '../../src/service/index.js';
import { startChildWorker } from './fixtures/child-worker.js';
import { makeTestEngine } from './fixtures/test-engine.js';
import { startTestDb, until, type TestDb } from './fixtures/harness.js';

let t: TestDb;
let ctx: ServiceContext;
let child: ChildProcess | undefined;

before(async () => {
  t = await startTestDb();
  ctx = (await t.open()).ctx;
});
after(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await t?.stop();
});

test('SIGKILL mid-round: a new worker resumes the job and each round exists exactly once', async () => {
  const { job } = await submitJob(ctx, 'acme', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 3, iterations: 25 });
  const w = startChildWorker(t);
  child = w.proc;
  await w.waitFor('ready');
  await w.waitFor('committed 1');
  // Into round 2, with progress recorded, then kill without any chance to clean up.
  await until(async () => {
    const p = (await getJob(ctx, 'acme', job.id)).progress;
    return p !== null && p.round === 2 && p.step >= 5;
  }, 10_000, 'round 2 under way');
  w.proc.kill('SIGKILL');
  await new Promise((r) => w.proc.once('exit', r));
  assert.equal(w.proc.signalCode, 'SIGKILL');
  const orphan = await getJob(ctx, 'acme', job.id);
  assert.equal(orphan.status, 'running');
  assert.equal(orphan.attempts, 1);

  // A surviving worker (here: in this process) reaps the stale job and resumes it.
  const killedAt = Date.now();
  await t.open({
    worker: { heartbeatSeconds: 0.3, staleSeconds: 2, reapSeconds: 0.5, pollSeconds: 0.5, progressIntervalMs: 100 },
    runner: makeTestEngine({ stepMs: 5 }),
  });
  const done = await until(async () => {
    const j = await getJob(ctx, 'acme', job.id);
    return j.status === 'succeeded' || j.status === 'failed' ? j : null;
  }, 20_000, 'job to complete on the new worker');
  assert.equal(done.status, 'succeeded');
  assert.equal(done.attempts, 2);
  assert.ok(Date.now() - killedAt < 10_000, 'recovered within seconds (stale after 2 s)');

  const perIndex = await ctx.prisma.$queryRaw<{ index: number; n: bigint }[]>`
    SELECT index, count(*) AS n FROM round WHERE job_id = ${job.id}::uuid GROUP BY index ORDER BY index`;
  assert.deepEqual(perIndex.map((r) => [r.index, Number(r.n)]), [[0, 1], [1, 1], [2, 1], [3, 1]]);
  const roundArtifacts = await ctx.prisma.artifact.count({ where: { jobId: job.id, kind: 'round' } });
  assert.equal(roundArtifacts, 8, 'two files per round, none duplicated');

  const events = await listEvents(ctx, 'acme', job.id);
  const requeued = events.filter((e) => e.kind === 'requeued');
  assert.equal(requeued.length, 1);
  assert.equal((requeued[0]!.payload as { reason: string }).reason, 'worker heartbeat stale');
  const starts = events.filter((e) => e.kind === 'run-start').map((e) => (e.payload as { resumedFrom: number }).resumedFrom);
  assert.deepEqual(starts, [0, 2], 'the second attempt resumed after the two committed rounds');
  assert.deepEqual(events.filter((e) => e.kind === 'round').map((e) => (e.payload as { round: number }).round), [0, 1, 2, 3]);
  assert.equal(events.at(-1)!.kind, 'finished');
});
