// The sparse MLP path trains the same net as the TF.js loop: same data
// order, same update rule, pruned weights exactly zero, close weights and
// metrics after training.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { toTensors, trainModel, type TrainConfig } from '../../src/engine/training/train.js';
import { sparsePathApplies, trainSparseMlp, mlpLayers } from '../../src/engine/training/sparse-mlp.js';
import { createModel } from '../../src/engine/models/registry.js';
import { getWeightMap, setWeightMap, prunableWeights } from '../../src/engine/models/inspect.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { pruneToDensity } from '../../src/engine/pruning/magnitude.js';
import { onesMask } from '../../src/engine/pruning/mask.js';
import type { Mask } from '../../src/engine/types.js';

before(async () => {
  await tf.setBackend('cpu');
});

test('only plain MLPs take the sparse path, and only when sparse', () => {
  const lenet = createModel('lenet-40-20', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  const conv = createModel('conv-2', { inputShape: [32, 32, 3], numClasses: 10, seed: 1 });
  assert.deepEqual(mlpLayers(lenet)!.map((l) => l.name), ['fc1', 'fc2', 'out']);
  assert.equal(mlpLayers(conv), null);
  const dense = onesMask(prunableWeights(lenet));
  assert.equal(sparsePathApplies(lenet, dense, 'wasm'), false);
  const w = Object.fromEntries(Object.entries(getWeightMap(lenet)).map(([k, v]) => [k, v.values]));
  const sparse = pruneToDensity(w, dense, Object.keys(dense), 0.05, 'layerwise');
  assert.equal(sparsePathApplies(lenet, sparse, 'wasm'), true);
  assert.equal(sparsePathApplies(lenet, sparse, 'tensorflow'), false);
  assert.equal(sparsePathApplies(conv, onesMask(prunableWeights(conv)), 'wasm'), false);
  lenet.dispose();
  conv.dispose();
});

for (const optimizer of ['adam', 'momentum'] as const) {
  test(`sparse and TF.js training agree (${optimizer})`, async () => {
    const ds = await loadDataset('builtin:mnist', { maxTrain: 400, seed: 2 });
    const model = createModel('lenet-40-20', { inputShape: ds.inputShape, numClasses: 10, seed: 4 });
    const init = getWeightMap(model);
    const names = prunableWeights(model).map((p) => p.name);
    const values = Object.fromEntries(names.map((n) => [n, init[n]!.values]));
    const mask: Mask = pruneToDensity(values, onesMask(prunableWeights(model)), names, 0.1, 'layerwise');
    const masked = structuredClone(init);
    for (const n of names) for (let i = 0; i < mask[n]!.length; i++) masked[n]!.values[i]! *= mask[n]![i]!;
    const cfg: TrainConfig = {
      optimizer,
      learningRate: optimizer === 'adam' ? 1e-3 : 0.05,
      momentum: 0.9,
      lrSchedule: 'cosine',
      warmupIterations: 0,
      batchSize: 20,
      iterations: 25,
      startIteration: 3,
      evalEvery: 5,
      seed: 9,
    };
    const data = toTensors(ds);
    setWeightMap(model, masked);
    const viaSparse = await trainSparseMlp(model, data.source, mask, cfg);
    const sparseW = getWeightMap(model);
    setWeightMap(model, masked);
    process.env.TICKETSMITH_SPARSE = '0';
    const viaTf = await trainModel(model, data, mask, cfg);
    delete process.env.TICKETSMITH_SPARSE;
    const tfW = getWeightMap(model);
    let maxDiff = 0;
    for (const n of Object.keys(tfW)) {
      const a = sparseW[n]!.values;
      const b = tfW[n]!.values;
      for (let i = 0; i < a.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
        if (mask[n] && mask[n]![i] === 0) assert.ok(a[i] === 0, `${n}[${i}] pruned but ${a[i]}`);
      }
    }
    assert.ok(maxDiff < 2e-4, `max weight difference ${maxDiff}`);
    assert.ok(Math.abs(viaSparse.finalTestAccuracy - viaTf.finalTestAccuracy) <= 0.01, `${viaSparse.finalTestAccuracy} vs ${viaTf.finalTestAccuracy}`);
    assert.equal(viaSparse.curve.length, viaTf.curve.length);
    for (let i = 0; i < viaTf.curve.length; i++) assert.ok(Math.abs(viaSparse.curve[i]![1] - viaTf.curve[i]![1]) < 1e-3, "Math.abs(viaSparse.curve[i]![1] - viaTf.curve[i]![1]) < 1e-3");
    data.dispose();
    model.dispose();
  });
}
