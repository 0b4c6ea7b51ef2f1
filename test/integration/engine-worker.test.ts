// The worker with the real engine (src/engine/run.ts) on a tiny spec: a
// LeNet on 300 builtin MNIST examples, two rounds, a few iterations. Proves
// the PostgresSink carries what the engine commits (rounds, masks, weights,
// ticket) and that progress and events come through.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { getJob, listArtifacts, listEvents, listRounds, submitJob, type ServiceContext } from '../../src/service/index.js';
import { startTestDb, until, type TestDb } from './fixtures/harness.js';

let t: TestDb;
let ctx: ServiceContext;

before(async () => {
  t = await startTestDb();
  ctx = (await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, progressIntervalMs: 200 } })).ctx;
});
after(() => t?.stop());

test('a tiny IMP job runs on the real engine and is stored whole', async () => {
  const { job } = await submitJob(ctx, 'acme', {
    model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 20, evalEvery: 10, batchSize: 30,
    maxTrainExamples: 300, controls: 'none', seed: 1,
  });
  const done = await until(async () => {
    const j = await getJob(ctx, 'acme', job.id);
    return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
  }, 120_000, 'the real engine to finish');
  assert.equal(done.error, null);
  assert.equal(done.status, 'succeeded');
  assert.ok(done.backend, "done.backend");
  const rounds = await listRounds(ctx, 'acme', job.id);
  assert.deepEqual(rounds.map((r) => r.index), [0, 1]);
  assert.equal(rounds[0]!.density, 1);
  assert.ok(rounds[1]!.density < 1 && rounds[1]!.density > 0.7, `round 1 density ${rounds[1]!.density}`);
  assert.ok(rounds[1]!.testAccuracy >= 0 && rounds[1]!.testAccuracy <= 1, "rounds[1]!.testAccuracy >= 0 && rounds[1]!.testAccuracy <= 1");
  const names = (await listArtifacts(ctx, 'acme', { jobId: job.id })).map((a) => a.name);
  assert.ok(names.includes('round_1/mask.json'), names.join(','));
  assert.ok(names.some((n) => n.startsWith('ticket/')), names.join(','));
  const kinds = new Set((await listEvents(ctx, 'acme', job.id)).map((e) => e.kind));
  for (const k of ['started', 'run-start', 'round', 'result', 'finished']) assert.ok(kinds.has(k), k);
});
