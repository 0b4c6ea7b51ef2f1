// The MLP engines (simd and csr) train the same net as the TF.js loop: same
// data order, same update rule, pruned weights exactly zero, close weights and
// metrics after training.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { toTensors, trainModel, type TrainConfig } from '../../src/engine/training/train.js';
import { mlpPath, trainMlp, mlpLayers, CSR_DENSITY_THRESHOLD, type MlpPath } from '../../src/engine/training/mlp.js';
import { createModel } from '../../src/engine/models/registry.js';
import { getWeightMap, setWeightMap, prunableWeights } from '../../src/engine/models/inspect.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { pruneToDensity } from '../../src/engine/pruning/magnitude.js';
import { onesMask } from '../../src/engine/pruning/mask.js';
import type { Mask } from '../../src/engine/types.js';
import { loadEngineConfig } from '../../src/runtime/config.js';

/** The loop TICKETSMITH_MLP=`value` picks, as the runtime reads it for the engine. */
const envLoop = (value: string) => loadEngineConfig({ TICKETSMITH_MLP: value }).loop;

before(async () => {
  await tf.setBackend('cpu');
});

test('plain MLPs take the simd engine, sparse ones the csr engine, other nets and CUDA TF.js', () => {
  const lenet = createModel('lenet-40-20', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  const conv = createModel('conv-2', { inputShape: [32, 32, 3], numClasses: 10, seed: 1 });
  assert.deepEqual(mlpLayers(lenet)!.map((l) => l.name), ['fc1', 'fc2', 'out']);
  assert.equal(mlpLayers(conv), null);
  // A ReLU on the output layer is not the loss the engines compute.
  const reluOut = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [4], units: 3, activation: 'relu' }), tf.layers.dense({ units: 2, activation: 'relu' })],
  });
  assert.equal(mlpLayers(reluOut), null);
  reluOut.dispose();
  const dense = onesMask(prunableWeights(lenet));
  assert.equal(mlpPath(lenet, dense, 'wasm'), 'simd');
  assert.equal(mlpPath(lenet, null, 'cpu'), 'simd');
  const w = Object.fromEntries(Object.entries(getWeightMap(lenet)).map(([k, v]) => [k, v.values]));
  const half = pruneToDensity(w, dense, Object.keys(dense), 0.5, 'layerwise');
  assert.equal(mlpPath(lenet, half, 'wasm'), 'simd');
  const sparse = pruneToDensity(w, dense, Object.keys(dense), CSR_DENSITY_THRESHOLD / 2, 'layerwise');
  assert.equal(mlpPath(lenet, sparse, 'wasm'), 'csr');
  assert.equal(mlpPath(lenet, sparse, 'tensorflow'), 'csr');
  assert.equal(mlpPath(lenet, sparse, 'tensorflow-gpu'), null);
  assert.equal(mlpPath(conv, onesMask(prunableWeights(conv)), 'wasm'), null);
  assert.equal(mlpPath(lenet, dense, 'wasm', envLoop('tfjs')), null);
  assert.equal(mlpPath(lenet, dense, 'tensorflow-gpu', envLoop('csr')), 'csr');
  assert.equal(mlpPath(conv, null, 'wasm', envLoop('csr')), null);
  assert.throws(() => mlpPath(lenet, dense, 'wasm', envLoop('fast')), /TICKETSMITH_MLP must be one of simd, csr, cnn, tfjs; got 'fast'/);
  lenet.dispose();
  conv.dispose();
});

const cases: Array<[MlpPath, 'adam' | 'momentum' | 'sgd', number]> = [
  ['csr', 'adam', 0.1],
  ['csr', 'momentum', 0.1],
  ['simd', 'adam', 0.3],
  ['simd', 'momentum', 1],
  ['simd', 'sgd', 0.3],
];
for (const [path, optimizer, density] of cases) {
  test(`${path} engine and TF.js training agree (${optimizer}, ${density * 100}% weights)`, async () => {
    const ds = await loadDataset('builtin:mnist', { maxTrain: 400, seed: 2 });
    const model = createModel('lenet-40-20', { inputShape: ds.inputShape, numClasses: 10, seed: 4 });
    const init = getWeightMap(model);
    const names = prunableWeights(model).map((p) => p.name);
    const values = Object.fromEntries(names.map((n) => [n, init[n]!.values]));
    const mask: Mask = pruneToDensity(values, onesMask(prunableWeights(model)), names, density, 'layerwise');
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
    const viaEngine = await trainMlp(model, data.source, mask, cfg, {}, path);
    const engineW = getWeightMap(model);
    setWeightMap(model, masked);
    const viaTf = await trainModel(model, data, mask, { ...cfg, loop: 'tfjs' });
    const tfW = getWeightMap(model);
    let maxDiff = 0;
    for (const n of Object.keys(tfW)) {
      const a = engineW[n]!.values;
      const b = tfW[n]!.values;
      for (let i = 0; i < a.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
        if (mask[n] && mask[n]![i] === 0) assert.ok(a[i] === 0, `${n}[${i}] pruned but ${a[i]}`);
      }
    }
    assert.ok(maxDiff < 2e-4, `max weight difference ${maxDiff}`);
    assert.ok(Math.abs(viaEngine.finalTestAccuracy - viaTf.finalTestAccuracy) <= 0.01, `${viaEngine.finalTestAccuracy} vs ${viaTf.finalTestAccuracy}`);
    assert.equal(viaEngine.curve.length, viaTf.curve.length);
    assert.equal(viaEngine.trainingLoop, `mlp-${path}`);
    assert.equal(viaTf.trainingLoop, 'tfjs');
    assert.equal(viaEngine.earlyStopIteration, viaTf.earlyStopIteration);
    assert.ok(Math.abs(viaEngine.earlyStopTestAccuracy - viaTf.earlyStopTestAccuracy) <= 0.01, `early-stop accuracy ${viaEngine.earlyStopTestAccuracy} vs ${viaTf.earlyStopTestAccuracy}`);
    for (let i = 0; i < viaTf.curve.length; i++) assert.ok(Math.abs(viaEngine.curve[i]![1] - viaTf.curve[i]![1]) < 1e-3, `validation loss at ${viaTf.curve[i]![0]}: ${viaEngine.curve[i]![1]} vs ${viaTf.curve[i]![1]}`);
    data.dispose();
    model.dispose();
  });
}
