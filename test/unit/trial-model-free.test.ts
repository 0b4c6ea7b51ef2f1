// A pool worker trains a trial the conv engine takes from the job's start
// weights and returns the engine's, without building the TF.js model (whose
// weights on a WASM backend would stay in its heap): its results must be
// the ones a model trained in this thread gives, on as many threads (one),
// in the model's weight order, and the trials the engine does not take must
// still train a model.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/runtime/backend.js';
import { syntheticDataset } from '../../src/engine/training/bench.js';
import { trainConfigFor } from '../../src/engine/training/train.js';
import { TrialRunner, WorkerPool, type ModelSource, type TrialJob } from '../../src/engine/training/trial.js';
import { createModel } from '../../src/engine/models/registry.js';
import { getWeightMap, prunableWeights } from '../../src/engine/models/inspect.js';
import { pruneToDensity } from '../../src/engine/pruning/magnitude.js';
import { onesMask } from '../../src/engine/pruning/mask.js';
import type { TrainingMetrics } from '../../src/engine/sink.js';

before(async () => {
  // One engine thread here, as in a pool worker: the same sums in the same order.
  await initBackend({ prefer: 'cpu', wasmThreads: 1 });
});

/** Metrics without the timings. */
const untimed = ({ trainSeconds: _s, examplesPerSecond: _e, ...rest }: TrainingMetrics) => rest;

test('a pool worker trains a conv net on the engine from the job\'s weights, without a model, as this thread trains the model; other loops still train a model', async () => {
  const ds = syntheticDataset([8, 8, 3], 10, 120, 30, 4, 0);
  const conv: ModelSource = { zoo: 'conv-2', inputShape: [8, 8, 3], numClasses: 10, seed: 6 };
  const model = createModel('conv-2', conv);
  const start = getWeightMap(model);
  const names = prunableWeights(model).map((p) => p.name);
  const sparse = pruneToDensity(Object.fromEntries(names.map((n) => [n, start[n]!.values])), onesMask(prunableWeights(model)), names, 0.1, 'layerwise');
  model.dispose();
  const settings = { optimizer: 'adam', learningRate: 1e-3, momentum: 0, lrSchedule: 'constant', warmupIterations: 0, batchSize: 20, evalEvery: 2 } as const;
  const jobs: Array<[TrialJob, string]> = [
    [{ round: 0, trial: 'ticket', start, mask: {}, cfg: trainConfigFor(settings, 5, 1, 'auto'), captureAt: 2 }, 'cnn-simd'],
    [{ round: 1, trial: 'reinit', start, mask: sparse, cfg: { ...trainConfigFor(settings, 5, 2, 'auto'), startIteration: 2 }, captureAt: 3 }, 'cnn-sparse'],
    [{ round: 1, trial: 'ticket', start, mask: sparse, cfg: trainConfigFor(settings, 2, 3, 'tfjs') }, 'tfjs'],
  ];
  const pool = new WorkerPool(1, ds, conv, 'cpu');
  const runner = new TrialRunner(ds, conv);
  try {
    for (const [j, loop] of jobs) {
      const progress: number[] = [];
      const there = await pool.run(j, { onProgress: (p) => progress.push(p.step) });
      const here = await runner.run(j);
      assert.equal(there.metrics.trainingLoop, loop);
      assert.deepEqual(untimed(there.metrics), untimed(here.metrics), loop);
      assert.ok(progress.includes(j.cfg.iterations - j.cfg.startIteration), `${loop}: progress reached the last step`);
      // Same weights, in the model's order (getWeightMap's), each on a buffer of its own (moved, not copied).
      assert.deepEqual(Object.keys(there.weights), Object.keys(here.weights));
      for (const [name, w] of Object.entries(here.weights)) {
        assert.deepEqual(there.weights[name]!.shape, w.shape, name);
        assert.deepEqual(there.weights[name]!.values, w.values, `${loop}: ${name}`);
        assert.equal(there.weights[name]!.values.byteLength, there.weights[name]!.values.buffer.byteLength);
      }
      assert.equal(there.captured === undefined, j.captureAt === undefined);
      if (here.captured) {
        assert.deepEqual(Object.keys(there.captured!), Object.keys(here.captured));
        for (const [name, w] of Object.entries(here.captured)) assert.deepEqual(there.captured![name]!.values, w.values, `${loop} captured: ${name}`);
        assert.notDeepEqual(there.captured![names[0]!]!.values, there.weights[names[0]!]!.values, 'captured before the end');
      }
    }
  } finally {
    await pool.dispose();
    await runner.dispose();
  }
});
