// No server paths in what a tenant reads back about a job. An uploaded model
// runs from a temp folder the worker writes (queue/inputs.ts); a finished
// job's result, events and JSON artifacts, and a failed job's error, must
// name it `model:<id>` and never show that folder (or any temp, blob or data
// path), and neither may what the engine itself reports, before the worker's
// last-guard redaction. The run name hashes `model:<id>`, not the folder: two
// attempts unpacking to different folders run under the job's runName.
// The finished jobs run on the real engine; the failing one fails inside the
// engine's real model loader, which names the model by its reference.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import type { EngineEvent } from '../../src/engine/events.js';
import { openModel } from '../../src/engine/models/source.js';
import type { RunSpec } from '../../src/engine/spec.js';
import { BlobStoreUnavailableError } from '../../src/store/blobs.js';
import { loadEngineRunner, type EngineRunner } from '../../src/queue/worker.js';
import { getJob, listEvents, submitJob, uploadModel, type JobDto, type ServiceContext } from '../../src/service/index.js';
import { startTestDb, until, type TestDb, uploadFiles } from './fixtures/harness.js';

let t: TestDb;
let ctx: ServiceContext;
let modelRef: string;
/** Paths the failing run's loader saw: proof the engine did get a temp folder. */
const seenPaths: string[] = [];

const FAILING_SEED = 666;
/** This job's first attempt fails as the blob store refuses its result, so a second attempt (another temp folder) finishes it. */
const RETRIED_SEED = 7;

/** What the engine said per job (by seed), before the worker's redaction: each attempt's model folder, run-start and result names, everything it emitted or threw. */
interface Seen { dirs: string[]; startNames: string[]; resultNames: string[]; said: string[] }
const seen = new Map<number, Seen>();
const seenFor = (seed: number): Seen => {
  let s = seen.get(seed);
  if (!s) seen.set(seed, (s = { dirs: [], startNames: [], resultNames: [], said: [] }));
  return s;
};

/** The real engine, except that seed 666 loads the model against data it cannot take (the loader's own error). */
const runner: EngineRunner = async (spec: RunSpec, ctx) => {
  const s = seenFor(spec.seed);
  assert.equal(spec.model, modelRef, 'the engine gets the spec as stored');
  assert.ok(ctx.model?.kind === 'files' && ctx.model.ref === modelRef, 'and the unpacked files under their reference');
  s.dirs.push(ctx.model.dir);
  if (spec.seed === FAILING_SEED) {
    seenPaths.push(ctx.model.dir);
    try {
      const { model } = await openModel(ctx.model, { inputShape: [5], numClasses: 3, seed: 0 });
      model.dispose();
    } catch (e) {
      s.said.push(String(e));
      throw e;
    }
    throw new Error('unreachable: the loader should have refused');
  }
  const onEvent = (e: EngineEvent) => {
    s.said.push(JSON.stringify(e));
    if (e.kind === 'run-start') s.startNames.push(e.name);
    ctx.onEvent?.(e);
  };
  const { sink } = ctx;
  const refuseResult = spec.seed === RETRIED_SEED && s.dirs.length === 1;
  const result = await (await loadEngineRunner())(spec, {
    ...ctx,
    onEvent,
    sink: {
      finishedRounds: () => sink.finishedRounds(),
      getState: (key) => sink.getState(key),
      putState: (key, bytes) => sink.putState(key, bytes),
      commitRound: (round) => sink.commitRound(round),
      commitResult: async (r) => {
        s.resultNames.push(r.name);
        if (refuseResult) throw new BlobStoreUnavailableError('ENOSPC', 'no space left on device (test)');
        return sink.commitResult(r);
      },
    },
  });
  s.said.push(JSON.stringify({ name: result.name, verdict: result.verdict, summary: result.summary }));
  return result;
};

before(async () => {
  t = await startTestDb();
  ctx = (await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, progressIntervalMs: 200, blobRetrySeconds: 0 }, runner })).ctx;
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
  // The service's data folder holds the blobs and the database.
  for (const dir of [t.dir, t.config.dataDir]) assert.ok(!text.includes(dir), `${what} shows the data folder ${dir}`);
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
  // The engine's own events and result, before the worker's redaction (only a last guard now).
  const said = seenFor(1).said;
  assert.ok(said.length > 3, 'the engine emitted events and a result');
  assertNoServerPath('what the engine reported', said.join('\n'));
  assert.equal(seenFor(1).resultNames[0], job.runName, "the engine's run name is the job's");
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
  assertNoServerPath('what the engine threw', seenFor(FAILING_SEED).said.join('\n'));
});

test('the run name hashes model:<id>, not where the worker unpacked it: two attempts, two folders, one name', async () => {
  const { job } = await submitJob(ctx, 'acme', spec(RETRIED_SEED));
  const done = await finished(job.id);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assert.equal(done.attempts, 2);
  const s = seenFor(RETRIED_SEED);
  assert.equal(s.dirs.length, 2);
  assert.notEqual(s.dirs[0], s.dirs[1], 'each attempt unpacks to its own folder');
  assert.deepEqual(s.startNames, [job.runName, job.runName]);
  assert.deepEqual(s.resultNames, [job.runName, job.runName]);
  assert.equal((done.result as { name?: string } | null)?.name, job.runName);
  const events = await listEvents(ctx, 'acme', job.id);
  const starts = events.filter((e) => e.kind === 'run-start').map((e) => e.payload as { name: string; resumedFrom: number });
  assert.deepEqual(starts.map((p) => p.name), [job.runName, job.runName]);
  assert.deepEqual(starts.map((p) => p.resumedFrom), [0, 2], 'the second attempt resumes after both committed rounds');
  assertNoServerPath('the job', JSON.stringify(done));
  assertNoServerPath('the events', JSON.stringify(events));
});
