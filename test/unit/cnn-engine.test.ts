// The conv engine (src/engine/training/cnn/) trains what the TF.js loop
// trains: from the same weights, data order and update rule, a few steps of
// Conv-2-like and ResNet nets end within a small tolerance of TF.js's weights
// (BatchNorm's moving statistics included), pruned weights stay exactly zero,
// and models the engine cannot train compile to a reason and keep TF.js.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { toTensors, trainModel, type TrainConfig } from '../../src/engine/training/train.js';
import { cnnEngine, cnnPath, compileGraph } from '../../src/engine/training/cnn/index.js';
import { SPARSE_CONV_DENSITY, SPARSE_DENSE_DENSITY, sparseLists } from '../../src/engine/training/cnn/ops.js';
import { createModel } from '../../src/engine/models/registry.js';
import { getWeightMap, setWeightMap, prunableWeights } from '../../src/engine/models/inspect.js';
import { pruneToDensity } from '../../src/engine/pruning/magnitude.js';
import { onesMask } from '../../src/engine/pruning/mask.js';
import { mulberry32 } from '../../src/engine/rng.js';
import type { Dataset, Mask, Split } from '../../src/engine/types.js';

before(async () => {
  await tf.setBackend('cpu');
});

function split(n: number, shape: number[], classes: number, next: () => number): Split {
  const size = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n * size);
  for (let i = 0; i < x.length; i++) x[i] = next();
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = Math.floor(next() * classes);
  return { x, y, n };
}

function dataset(shape: number[], classes: number, seed: number): Dataset {
  const next = mulberry32(seed);
  return {
    name: 'synthetic',
    inputShape: shape,
    numClasses: classes,
    train: split(48, shape, classes, next),
    validation: split(16, shape, classes, next),
    test: split(16, shape, classes, next),
  } as Dataset;
}

test('the engine compiles the zoo conv nets and refuses what it cannot train, with a reason', () => {
  const conv2 = createModel('conv-2', { inputShape: [8, 8, 3], numClasses: 4, seed: 1 });
  const g = compileGraph(conv2);
  assert.ok(typeof g !== 'string', String(g));
  assert.deepEqual(g.nodes.map((n) => `${n.kind}${n.relu ? '+relu' : ''}`), ['input', 'conv+relu', 'conv+relu', 'maxpool', 'flatten', 'dense+relu', 'dense+relu', 'dense']);
  const resnet = createModel('resnet-8', { inputShape: [8, 8, 3], numClasses: 4, seed: 1 });
  const r = compileGraph(resnet);
  assert.ok(typeof r !== 'string', String(r));
  assert.ok(r.nodes.some((n) => n.kind === 'add' && n.relu) && r.nodes.some((n) => n.kind === 'bn' && n.relu) && r.nodes.some((n) => n.kind === 'gap'));
  const sigmoid = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3, activation: 'sigmoid' }), tf.layers.flatten(), tf.layers.dense({ units: 2 })] });
  assert.equal(compileGraph(sigmoid), 'Conv2D with activation sigmoid');
  const dropout = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3 }), tf.layers.dropout({ rate: 0.5 }), tf.layers.flatten(), tf.layers.dense({ units: 2 })] });
  assert.equal(compileGraph(dropout), 'layer class Dropout');
  const mlp = createModel('lenet-40-20', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  assert.match(String(compileGraph(mlp)), /plain MLP/);
  assert.ok(cnnPath(conv2, 'wasm') !== null);
  assert.equal(cnnPath(conv2, 'tensorflow-gpu'), null);
  assert.ok(cnnPath(conv2, 'tensorflow-gpu', 'cnn-simd') !== null);
  assert.equal(cnnPath(conv2, 'wasm', 'tfjs'), null);
  assert.equal(cnnPath(sigmoid, 'wasm', 'cnn-simd'), null);
  for (const m of [conv2, resnet, sigmoid, dropout, mlp]) m.dispose();
});

function maxDiff(a: Record<string, { values: Float32Array }>, b: Record<string, { values: Float32Array }>): { diff: number; name: string } {
  let diff = 0;
  let name = '';
  for (const n of Object.keys(b)) {
    const x = a[n]!.values;
    const y = b[n]!.values;
    const scale = y.reduce((m, v) => Math.max(m, Math.abs(v)), 1);
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i]! - y[i]!) / scale;
      if (d > diff) {
        diff = d;
        name = `${n}[${i}]`;
      }
    }
  }
  return { diff, name };
}

const cases: Array<{ model: string; shape: number[]; optimizer: 'adam' | 'sgd' | 'momentum'; density: number }> = [
  { model: 'conv-2', shape: [8, 8, 3], optimizer: 'adam', density: 1 },
  { model: 'conv-2', shape: [9, 7, 1], optimizer: 'momentum', density: 0.3 },
  { model: 'conv-4', shape: [8, 8, 3], optimizer: 'sgd', density: 1 },
  { model: 'resnet-8', shape: [8, 8, 3], optimizer: 'adam', density: 0.5 },
  { model: 'resnet-8', shape: [6, 6, 2], optimizer: 'momentum', density: 1 },
  // Below ops.ts's SPARSE_CONV_DENSITY / SPARSE_DENSE_DENSITY: stride-1 conv and dense layers train on their survivors only (loop cnn-sparse).
  { model: 'conv-2', shape: [9, 7, 3], optimizer: 'adam', density: 0.1 },
  { model: 'resnet-8', shape: [8, 8, 3], optimizer: 'momentum', density: 0.05 },
];
for (const c of cases) {
  test(`the conv engine and TF.js train ${c.model} on ${c.shape.join('x')} alike (${c.optimizer}, ${c.density * 100}% weights)`, async () => {
    const ds = dataset(c.shape, 4, 7);
    const model = createModel(c.model, { inputShape: c.shape, numClasses: 4, seed: 3 });
    const init = getWeightMap(model);
    const names = prunableWeights(model).map((p) => p.name);
    const values = Object.fromEntries(names.map((n) => [n, init[n]!.values]));
    const mask: Mask | null = c.density < 1 ? pruneToDensity(values, onesMask(prunableWeights(model)), names, c.density, 'layerwise') : null;
    const cfg: TrainConfig = {
      optimizer: c.optimizer,
      learningRate: c.optimizer === 'adam' ? 1e-3 : 0.02,
      momentum: 0.9,
      lrSchedule: 'constant',
      warmupIterations: 0,
      batchSize: 12,
      iterations: 6,
      startIteration: 0,
      evalEvery: 3,
      seed: 5,
    };
    const data = toTensors(ds);
    const viaEngine = await trainModel(model, data, mask, { ...cfg, loop: 'cnn-simd' });
    const engineW = getWeightMap(model);
    setWeightMap(model, init);
    const viaTf = await trainModel(model, data, mask, { ...cfg, loop: 'tfjs' });
    const tfW = getWeightMap(model);
    assert.equal(viaEngine.trainingLoop, c.density < Math.max(SPARSE_CONV_DENSITY, SPARSE_DENSE_DENSITY) ? 'cnn-sparse' : 'cnn-simd');
    assert.equal(viaTf.trainingLoop, 'tfjs');
    const { diff, name } = maxDiff(engineW, tfW);
    assert.ok(diff < 2e-4, `largest weight difference ${diff} at ${name}`);
    if (mask) for (const n of names) mask[n]!.forEach((m, i) => m === 0 && assert.ok(engineW[n]!.values[i] === 0, `${n}[${i}] pruned but ${engineW[n]!.values[i]}`));
    for (let i = 0; i < viaTf.curve.length; i++) {
      assert.ok(Math.abs(viaEngine.curve[i]![1] - viaTf.curve[i]![1]) < 1e-3, `validation loss at ${viaTf.curve[i]![0]}: ${viaEngine.curve[i]![1]} vs ${viaTf.curve[i]![1]}`);
    }
    // 16 test examples: a logit difference below the tolerance may flip one of them at most.
    assert.ok(Math.abs(viaEngine.finalTestAccuracy - viaTf.finalTestAccuracy) <= 1 / 16 + 1e-9, `${viaEngine.finalTestAccuracy} vs ${viaTf.finalTestAccuracy}`);
    data.dispose();
    model.dispose();
  });
}

test('conv layers whose passes mix sparse and dense kernels train as TF.js trains them and keep pruned weights exactly 0', async () => {
  const shape = [7, 6, 3];
  const ds = dataset(shape, 4, 11);
  const model = createModel('conv-2', { inputShape: shape, numClasses: 4, seed: 8 });
  const init = getWeightMap(model);
  const names = prunableWeights(model).map((p) => p.name);
  const mask = pruneToDensity(Object.fromEntries(names.map((n) => [n, init[n]!.values])), onesMask(prunableWeights(model)), names, 0.17, 'layerwise');
  const cfg: TrainConfig = {
    optimizer: 'adam', learningRate: 1e-3, momentum: 0.9, lrSchedule: 'constant', warmupIterations: 0, batchSize: 12, iterations: 6, startIteration: 0, evalEvery: 3, seed: 5,
  };
  // At 17%: both layers run forward and weight gradient on their survivors; the 64->64 layer's output gradient is
  // mostly zero behind the max pool, so it keeps the dense input gradient, which skips those zeros.
  const graph = cnnPath(model, 'cpu', 'cnn-simd')!;
  const engine = cnnEngine(graph, init, mask, cfg, 12, 2);
  const passes = graph.nodes.filter((n) => n.kind === 'conv').map((n) => {
    const l = sparseLists(engine.state, n);
    return l && { forward: l.forward, weights: l.weights, input: l.input };
  });
  engine.dispose?.();
  assert.deepEqual(passes, [{ forward: true, weights: true, input: false }, { forward: true, weights: true, input: false }]);
  const data = toTensors(ds);
  const viaEngine = await trainModel(model, data, mask, { ...cfg, loop: 'cnn-simd' });
  const engineW = getWeightMap(model);
  setWeightMap(model, init);
  const viaTf = await trainModel(model, data, mask, { ...cfg, loop: 'tfjs' });
  assert.equal(viaEngine.trainingLoop, 'cnn-sparse');
  const { diff, name } = maxDiff(engineW, getWeightMap(model));
  assert.ok(diff < 2e-4, `largest weight difference ${diff} at ${name}`);
  for (const n of names) mask[n]!.forEach((m, i) => m === 0 && assert.ok(engineW[n]!.values[i] === 0, `${n}[${i}] pruned but ${engineW[n]!.values[i]}`));
  for (let i = 0; i < viaTf.curve.length; i++) assert.ok(Math.abs(viaEngine.curve[i]![1] - viaTf.curve[i]![1]) < 1e-3, `validation loss at ${viaTf.curve[i]![0]}`);
  data.dispose();
  model.dispose();
});
