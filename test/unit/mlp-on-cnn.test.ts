// A dense plain-MLP round on mostly nonzero inputs trains on the conv engine,
// whose threads split each batch and the update (cnnPathForMlp), and trains
// as TF.js trains it; on MNIST-like inputs (mostly zeros), with one thread,
// or at csr densities it keeps the MLP engines; loop cnn-simd forces it.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { toTensors, trainModel, type TrainConfig } from '../../src/engine/training/train.js';
import { cnnPathForMlp, compileGraph, MLP_ON_CNN_MIN_NONZERO, nonzeroShare } from '../../src/engine/training/cnn/index.js';
import { createModel } from '../../src/engine/models/registry.js';
import { getWeightMap, setWeightMap, prunableWeights } from '../../src/engine/models/inspect.js';
import { pruneToDensity } from '../../src/engine/pruning/magnitude.js';
import { onesMask } from '../../src/engine/pruning/mask.js';
import { mulberry32 } from '../../src/engine/rng.js';
import { computeThreads, initBackend } from '../../src/runtime/backend.js';
import type { Dataset, Mask, Split } from '../../src/engine/types.js';

before(async () => {
  // Two compute threads whatever the host's cores, so the conv engine's routing and worker threads are exercised everywhere.
  await initBackend({ prefer: 'cpu', wasmThreads: 2 });
});

/** A dataset of 28x28x1 images whose pixels are 0 with probability `zeros`, else uniform in (0, 1]. */
function images(zeros: number, seed: number): Dataset {
  const next = mulberry32(seed);
  const split = (n: number): Split => {
    const x = new Float32Array(n * 784);
    for (let i = 0; i < x.length; i++) x[i] = next() < zeros ? 0 : 1 - next();
    return { x, y: Int32Array.from({ length: n }, () => Math.floor(next() * 10)), n };
  };
  return { reference: 'synthetic', name: 'synthetic', sha256: '', inputShape: [28, 28, 1], numClasses: 10, train: split(120), validation: split(40), test: split(40) };
}

const cfg: TrainConfig = { optimizer: 'adam', learningRate: 1e-3, momentum: 0, lrSchedule: 'constant', warmupIterations: 0, batchSize: 20, iterations: 12, startIteration: 0, evalEvery: 6, seed: 3 };

test('the conv engine compiles a plain MLP only when asked, its Flatten of the input read as the input', () => {
  const lenet = createModel('lenet-300-100', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  assert.match(String(compileGraph(lenet)), /plain MLP/);
  const g = compileGraph(lenet, { plainMlp: true });
  assert.ok(typeof g !== 'string', String(g));
  assert.deepEqual(g.nodes.map((n) => [n.kind, n.shape, n.relu]), [['input', [784], false], ['dense', [300], true], ['dense', [100], true], ['dense', [10], false]]);
  assert.deepEqual(g.inputShape, [28, 28, 1]);
  lenet.dispose();
});

test('which loop a plain MLP takes: the conv engine on mostly nonzero inputs with two threads or more, else the MLP engines', () => {
  const model = createModel('lenet-40-20', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  const dense = toTensors(images(0, 1));
  const mnistLike = toTensors(images(0.81, 1));
  try {
    assert.ok(nonzeroShare(dense.source) > 0.99);
    assert.ok(Math.abs(nonzeroShare(mnistLike.source) - 0.19) < 0.02, String(nonzeroShare(mnistLike.source)));
    assert.equal(computeThreads(), 2);
    assert.notEqual(cnnPathForMlp(model, dense.source, 'cpu', 'auto', 20), null);
    assert.notEqual(cnnPathForMlp(model, dense.source, 'wasm', 'auto', 20), null);
    // A batch of 1 has one slice: one thread.
    assert.equal(cnnPathForMlp(model, dense.source, 'cpu', 'auto', 1), null);
    assert.equal(cnnPathForMlp(model, mnistLike.source, 'cpu', 'auto', 20), null);
    assert.equal(cnnPathForMlp(model, dense.source, 'tensorflow-gpu', 'auto', 20), null);
    for (const loop of ['mlp-simd', 'mlp-csr', 'tfjs'] as const) assert.equal(cnnPathForMlp(model, dense.source, 'cpu', loop, 20), null, loop);
    // Forced: on any inputs and backend, with any number of threads.
    assert.notEqual(cnnPathForMlp(model, mnistLike.source, 'tensorflow-gpu', 'cnn-simd', 1), null);
    assert.ok(MLP_ON_CNN_MIN_NONZERO > 0.19 && MLP_ON_CNN_MIN_NONZERO < 0.99);
    // A Flatten of the input compiles only for plain MLPs.
    const bnNet = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.batchNormalization(), tf.layers.dense({ units: 3 })] });
    assert.match(String(compileGraph(bnNet)), /Flatten .* of the input/);
    bnNet.dispose();
  } finally {
    dense.dispose();
    mnistLike.dispose();
    model.dispose();
  }
});

for (const density of [1, 0.5]) {
  test(`a plain MLP at ${density * 100}% weights on inputs without zeros: trainModel's default trains it as TF.js does, pruned weights exactly 0`, async () => {
    const ds = images(0, 5);
    const model = createModel('lenet-40-20', { inputShape: [28, 28, 1], numClasses: 10, seed: 4 });
    const init = getWeightMap(model);
    const names = prunableWeights(model).map((p) => p.name);
    const mask: Mask = pruneToDensity(Object.fromEntries(names.map((n) => [n, init[n]!.values])), onesMask(prunableWeights(model)), names, density, 'layerwise');
    const masked = structuredClone(init);
    for (const n of names) for (let i = 0; i < mask[n]!.length; i++) masked[n]!.values[i]! *= mask[n]![i]!;
    const data = toTensors(ds);
    try {
      setWeightMap(model, masked);
      const viaDefault = await trainModel(model, data, mask, cfg);
      const engineW = getWeightMap(model);
      setWeightMap(model, masked);
      const viaTf = await trainModel(model, data, mask, { ...cfg, loop: 'tfjs' });
      const tfW = getWeightMap(model);
      assert.equal(viaDefault.trainingLoop, 'cnn-simd');
      assert.equal(viaTf.trainingLoop, 'tfjs');
      let maxDiff = 0;
      let pruned = 0;
      for (const n of Object.keys(tfW)) {
        const a = engineW[n]!.values;
        const b = tfW[n]!.values;
        for (let i = 0; i < a.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
          if (mask[n] && mask[n]![i] === 0) (pruned++, assert.ok(a[i] === 0, `${n}[${i}] pruned but ${a[i]}`));
        }
      }
      assert.equal(pruned > 0, density < 1);
      assert.ok(maxDiff < 2e-4, `max weight difference ${maxDiff}`);
      assert.equal(viaDefault.curve.length, viaTf.curve.length);
      for (let i = 0; i < viaTf.curve.length; i++) assert.ok(Math.abs(viaDefault.curve[i]![1] - viaTf.curve[i]![1]) < 1e-3, `validation loss at ${viaTf.curve[i]![0]}`);
      assert.ok(Math.abs(viaDefault.finalTestAccuracy - viaTf.finalTestAccuracy) <= 0.03, `${viaDefault.finalTestAccuracy} vs ${viaTf.finalTestAccuracy}`);
    } finally {
      data.dispose();
      model.dispose();
    }
  });
}

test('at csr densities trainModel keeps the csr MLP engine on inputs without zeros', async () => {
  const ds = images(0, 6);
  const model = createModel('lenet-40-20', { inputShape: [28, 28, 1], numClasses: 10, seed: 4 });
  const init = getWeightMap(model);
  const names = prunableWeights(model).map((p) => p.name);
  const mask: Mask = pruneToDensity(Object.fromEntries(names.map((n) => [n, init[n]!.values])), onesMask(prunableWeights(model)), names, 0.1, 'layerwise');
  const data = toTensors(ds);
  try {
    const m = await trainModel(model, data, mask, { ...cfg, iterations: 2, evalEvery: 2 });
    assert.equal(m.trainingLoop, 'mlp-csr');
    const forced = await trainModel(model, data, mask, { ...cfg, iterations: 2, evalEvery: 2, loop: 'cnn-simd' });
    assert.match(forced.trainingLoop!, /^cnn-/);
  } finally {
    data.dispose();
    model.dispose();
  }
});
