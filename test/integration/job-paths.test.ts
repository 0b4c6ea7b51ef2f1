// No server paths in what a tenant reads back about a job. An uploaded model
// runs from a temp folder the worker writes (queue/inputs.ts); a finished
// job's result, events and JSON artifacts, and a failed job's error, must
// name it `model:<id>` and never show that folder (or any temp path).
// The finished job runs on the real engine; the failing one fails inside the
// engine's real model loader, which names the path it loaded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { createOrLoadModel } from '../../src/engine/models/load.js';
import type { RunSpec } from '../../src/engine/spec.js';
import { loadEngineRunner, type EngineRunner } from '../../src/queue/worker.js';
import { getJob, listEvents, submitJob, uploadModel, type JobDto, type ServiceContext } from '../../src/service/index.js';
import { startTestDb, until, type TestDb, uploadFiles } from './fixtures/harness.js';

let t: TestDb;
let ctx: ServiceContext;
let modelRef: string;
/** Paths the failing run's loader saw: proof the engine did get a temp folder. */
const seenPaths: string[] = [];

const FAILING_SEED = 666;

/** The real engine, except that seed 666 loads the model against data it cannot take (the loader's own error). */
const runner: EngineRunner = async (spec: RunSpec, ctx) => {
  if (spec.seed === FAILING_SEED) {
    seenPaths.push(spec.model);
    const model = await createOrLoadModel(spec.model, { inputShape: [5], numClasses: 3, seed: 0 });
    model.dispose();
    throw new Error('unreachable: the loader should have refused');
  }
  return (await loadEngineRunner())(spec, ctx);
};

before(async () => {
  t = await startTestDb();
  ctx = (await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, progressIntervalMs: 200 }, runner })).ctx;
  const net = tf.sequential({
    layers: [tf.layers.flatten({ inputShape: [28, 28, 1], name: 'flat' }), tf.layers.dense({ units: 8, activation: 'relu', name: 'fc1' }), tf.layers.dense({ units: 10, name: 'out' })],
  });
  modelRef = `model:${(await uploadModel(ctx, 'acme', { files: await uploadFiles(net) })).id}`;
  net.dispose();
});
after(() => t?.stop());

const spec = (seed: number) => ({
  model: modelRef, dataset: 'builtin:mnist', rounds: 1, iterations: 10, evalEvery: 5, batchSize: 30, maxTrainExamples: 120, controls: 'none', seed,
});

async function finished(id: string): Promise<JobDto> {
  return until(async () => {
    const j = await getJob(ctx, 'acme', id);
    return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
  }, 180_000, `job ${id} to finish`);
}

function assertNoServerPath(what: string, text: string): void {
  assert.ok(!text.includes(`${tmpdir()}/`), `${what} shows a temp path: ${text.slice(Math.max(0, text.indexOf(tmpdir()) - 80), text.indexOf(tmpdir()) + 120)}`);
  assert.ok(!/ticketsmith-[0-9a-f]{8}-/.test(text), `${what} shows a job temp folder`);
}

test("a finished job's result, events and JSON artifacts name the model model:<id>, never its temp folder", async () => {
  const { job } = await submitJob(ctx, 'acme', spec(1));
  const done = await finished(job.id);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  const summary = (done.result as { summary?: { spec?: { model?: string } } } | null)?.summary;
  assert.equal(summary?.spec?.model, modelRef);
  assertNoServerPath('the job', JSON.stringify(done));
  const events = await listEvents(ctx, 'acme', job.id);
  assert.ok(events.length > 3);
  assertNoServerPath('the events', JSON.stringify(events));
  const artifacts = await ctx.prisma.artifact.findMany({ where: { jobId: job.id } });
  for (const a of artifacts.filter((x) => x.name.endsWith('.json'))) {
    assertNoServerPath(a.name, new TextDecoder().decode(await ctx.blobs.get(a.storageKey)));
  }
});

test("a failed job's error names model:<id> where the engine named the temp folder", async () => {
  const { job } = await submitJob(ctx, 'acme', spec(FAILING_SEED));
  const done = await finished(job.id);
  assert.equal(done.status, 'failed');
  assert.ok(seenPaths.length > 0 && seenPaths.every((p) => p.startsWith(tmpdir())), `the engine ran from ${seenPaths.join(', ')}`);
  const message = done.error?.message ?? '';
  assert.match(message, new RegExp(`model '${modelRef}' takes input`));
  assertNoServerPath('the error', JSON.stringify(done));
  assertNoServerPath('the events', JSON.stringify(await listEvents(ctx, 'acme', job.id)));
});
