// A WorkerPool moves a job's weights and mask to its worker, and the result's
// weights back, in transfer lists instead of structured-clone copies: the
// caller's arrays must stay its own and intact (a round's trials share
// them), and the trial must train exactly as in this thread.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { syntheticDataset } from '../../src/engine/training/bench.js';
import { trainConfigFor } from '../../src/engine/training/train.js';
import { TrialRunner, WorkerPool, movableBuffers, movableJob, type ModelSource, type TrialJob } from '../../src/engine/training/trial.js';
import { createModel } from '../../src/engine/models/registry.js';
import { getWeightMap, prunableWeights } from '../../src/engine/models/inspect.js';
import type { Mask } from '../../src/engine/types.js';

before(async () => {
  await tf.setBackend('cpu');
});

const zoo = { zoo: 'lenet-300-100', inputShape: [28, 28, 1], numClasses: 10, seed: 4 };
const source: ModelSource = zoo;

function job(): TrialJob {
  const model = createModel('lenet-300-100', zoo);
  const start = getWeightMap(model);
  const mask: Mask = {};
  for (const p of prunableWeights(model)) mask[p.name] = Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, (_, i) => (i % 3 === 0 ? 0 : 1));
  model.dispose();
  const cfg = trainConfigFor({ optimizer: 'adam', learningRate: 1e-3, momentum: 0, lrSchedule: 'constant', warmupIterations: 0, batchSize: 30, evalEvery: 2 }, 3, 1, 'auto');
  return { round: 0, trial: 'ticket', start, mask, cfg, captureAt: 1 };
}

test('movableJob copies the weights and mask into one buffer; the originals are untouched', () => {
  const j = job();
  const { job: moved, buffer } = movableJob(j);
  let floats = 0;
  for (const [name, w] of Object.entries(j.start)) {
    assert.deepEqual(moved.start[name]!.values, w.values);
    assert.deepEqual(moved.start[name]!.shape, w.shape);
    assert.equal(moved.start[name]!.values.buffer, buffer);
    assert.notEqual(w.values.buffer, buffer);
    floats += w.values.length;
  }
  for (const [name, m] of Object.entries(j.mask)) {
    assert.deepEqual(moved.mask[name], m);
    assert.equal(moved.mask[name]!.buffer, buffer);
    floats += m.length;
  }
  assert.equal(buffer.byteLength, 4 * floats);
  assert.equal(moved.cfg, j.cfg);
});

test('movableBuffers takes whole plain buffers only, each once', () => {
  const own = new Float32Array(4);
  const big = new Float32Array(8);
  const shared = new Float32Array(new SharedArrayBuffer(16));
  const buffers = movableBuffers({
    metrics: {} as never,
    weights: { a: { shape: [4], values: own }, b: { shape: [2], values: big.subarray(0, 2) }, c: { shape: [4], values: shared } },
    captured: { a: { shape: [4], values: own } },
  });
  assert.deepEqual(buffers, [own.buffer]);
});

test('a pool trial leaves the caller its arrays and trains as this thread does; its weights arrive whole', async () => {
  const ds = syntheticDataset([28, 28, 1], 10, 90, 30, 2, 0.81);
  const j = job();
  const before = Object.values(j.start).map((w) => Float32Array.from(w.values));
  const pool = new WorkerPool(1, ds, source, 'cpu');
  try {
    const there = await pool.run(j);
    Object.values(j.start).forEach((w, i) => assert.deepEqual(w.values, before[i], 'the caller keeps its start weights'));
    for (const m of Object.values(j.mask)) assert.ok(m.byteLength > 0, 'the caller keeps its mask');
    const runner = new TrialRunner(ds, source);
    const here = await runner.run(j);
    await runner.dispose();
    assert.equal(there.metrics.finalTestLoss, here.metrics.finalTestLoss);
    for (const [name, w] of Object.entries(here.weights)) assert.deepEqual(there.weights[name]!.values, w.values, name);
    for (const [name, w] of Object.entries(here.captured!)) assert.deepEqual(there.captured![name]!.values, w.values, name);
    const pruned = Object.entries(j.mask).flatMap(([name, m]) => [...there.weights[name]!.values].filter((_, i) => m[i] === 0));
    assert.ok(pruned.length > 0 && pruned.every((v) => v === 0), 'pruned weights stay 0');
    // A second run of the same job: the caller's arrays were not detached by the first.
    const again = await pool.run(j);
    assert.equal(again.metrics.finalTestLoss, there.metrics.finalTestLoss);
  } finally {
    await pool.dispose();
  }
});
