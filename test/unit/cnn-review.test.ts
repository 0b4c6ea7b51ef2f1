// Models the conv engine's graph compiler accepts outside the zoo train as
// TF.js trains them (a few steps from the same weights), and models it
// cannot train exactly fall back to TF.js kernels instead of training wrongly.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { RunCancelled, toTensors, trainModel, type TrainConfig } from '../../src/engine/training/train.js';
import { createModel } from '../../src/engine/models/registry.js';
import { cnnEngineBytes, cnnMaxBatch, cnnPath, compileGraph } from '../../src/engine/training/cnn/index.js';
import { getWeightMap, setWeightMap } from '../../src/engine/models/inspect.js';
import { mulberry32 } from '../../src/engine/rng.js';
import { buildState } from '../../src/engine/training/cnn/engine.js';
import { benchMask } from '../../src/engine/training/bench.js';
import { keepKernels } from '../../src/runtime/simd/cnn-kernels.js';
import type { Dataset, Split } from '../../src/engine/types.js';

before(async () => {
  await tf.setBackend('cpu');
});

function split(n: number, shape: number[], classes: number, next: () => number): Split {
  const size = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n * size);
  for (let i = 0; i < x.length; i++) x[i] = next() * 2 - 0.5;
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = Math.floor(next() * classes);
  return { x, y, n };
}

function dataset(shape: number[], classes: number, seed: number): Dataset {
  const next = mulberry32(seed);
  return { name: 'synthetic', inputShape: shape, numClasses: classes, train: split(36, shape, classes, next), validation: split(10, shape, classes, next), test: split(10, shape, classes, next) } as Dataset;
}

const cfg: TrainConfig = {
  optimizer: 'adam', learningRate: 1e-2, momentum: 0.9, lrSchedule: 'constant', warmupIterations: 0,
  batchSize: 9, iterations: 5, startIteration: 0, evalEvery: 5, seed: 4,
};

/** Trains `model` with `loop` and with TF.js from the same weights; the loop the engine recorded and the largest relative weight difference. */
async function versusTf(model: tf.LayersModel, shape: number[], loop: TrainConfig['loop'] = 'cnn-simd') {
  const ds = dataset(shape, 3, 11);
  const data = toTensors(ds);
  const init = getWeightMap(model);
  const ours = await trainModel(model, data, null, { ...cfg, loop });
  const a = getWeightMap(model);
  setWeightMap(model, init);
  const ref = await trainModel(model, data, null, { ...cfg, loop: 'tfjs' });
  const b = getWeightMap(model);
  data.dispose();
  let diff = 0;
  let at = '';
  for (const n of Object.keys(b)) {
    const scale = b[n]!.values.reduce((m, v) => Math.max(m, Math.abs(v)), 1);
    b[n]!.values.forEach((v, i) => {
      const d = Math.abs(a[n]!.values[i]! - v) / scale;
      if (d > diff) [diff, at] = [d, `${n}[${i}]`];
    });
  }
  // Something moved: the comparison is not of two untouched copies.
  const moved = Object.keys(b).some((n) => b[n]!.values.some((v, i) => v !== init[n]!.values[i]));
  assert.ok(moved, 'training changed no weight');
  assert.ok(Math.abs(ours.finalTestLoss - ref.finalTestLoss) < 1e-3, `test loss ${ours.finalTestLoss} vs ${ref.finalTestLoss}`);
  return { loop: ours.trainingLoop, diff, at };
}

const L = tf.layers;
const models: Record<string, { shape: number[]; build: () => tf.LayersModel }> = {
  'valid padding, stride 2, 1x1 convs': {
    shape: [9, 9, 2],
    build: () => tf.sequential({ layers: [
      L.conv2d({ inputShape: [9, 9, 2], filters: 4, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu', seed: 1 } as never),
      L.conv2d({ filters: 5, kernelSize: 1, activation: 'relu' }),
      L.conv2d({ filters: 3, kernelSize: [2, 3], strides: [1, 2], padding: 'same' }),
      L.flatten(), L.dense({ units: 3 }),
    ] }),
  },
  'depthwise convs with and without bias, max pool with same padding': {
    shape: [8, 7, 3],
    build: () => tf.sequential({ layers: [
      L.depthwiseConv2d({ inputShape: [8, 7, 3], kernelSize: 3, padding: 'same', activation: 'relu' }),
      L.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'valid', useBias: false }),
      L.maxPooling2d({ poolSize: 3, strides: 1, padding: 'same' }),
      L.flatten(), L.dense({ units: 3, activation: 'softmax' }),
    ] }),
  },
  // (TF.js 4.22 cannot train a BatchNormalization without center or scale: its training branch reads the absent gamma/beta.)
  'ReLU layers after batch norm and after a dense, batch norm of a dense': {
    shape: [6, 6, 2],
    build: () => tf.sequential({ layers: [
      L.conv2d({ inputShape: [6, 6, 2], filters: 4, kernelSize: 3, useBias: false }),
      L.batchNormalization({}), L.reLU(),
      // No bias before a batch norm: its gradient is rounding noise, which Adam scales to whole steps.
      L.conv2d({ filters: 4, kernelSize: 3, useBias: false }),
      L.batchNormalization({ momentum: 0.5 }), L.activation({ activation: 'relu' }),
      L.flatten(), L.dense({ units: 6, useBias: false }), L.reLU(),
      L.batchNormalization({}),
      L.dense({ units: 3 }),
    ] }),
  },
  'a tensor read by two layers, Add of a tensor with itself, a ReLU layer after Add': (() => {
    const shape = [6, 6, 2];
    return {
      shape,
      build: () => {
        const x = tf.input({ shape });
        const a = L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(x) as tf.SymbolicTensor;
        const b = L.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(a) as tf.SymbolicTensor;
        const c = L.conv2d({ filters: 4, kernelSize: 1 }).apply(a) as tf.SymbolicTensor;
        const s = L.reLU().apply(L.add().apply([b, c]) as tf.SymbolicTensor) as tf.SymbolicTensor;
        const d = L.add().apply([s, s]) as tf.SymbolicTensor;
        const g = L.globalAveragePooling2d({}).apply(d) as tf.SymbolicTensor;
        return tf.model({ inputs: x, outputs: L.dense({ units: 3 }).apply(g) as tf.SymbolicTensor });
      },
    };
  })(),
};

for (const [name, m] of Object.entries(models)) {
  test(`the conv engine trains ${name} as TF.js does`, async () => {
    const model = m.build();
    assert.ok(typeof compileGraph(model) !== 'string', String(compileGraph(model)));
    const r = await versusTf(model, m.shape);
    assert.equal(r.loop, 'cnn-simd');
    assert.ok(r.diff < 2e-4, `largest weight difference ${r.diff} at ${r.at}`);
    model.dispose();
  });
}

/** Models the engine would train differently from TF.js: each must fall back to TF.js (or train alike), even when the engine is forced. */
const tricky: Record<string, { shape: number[]; build: () => tf.LayersModel }> = {
  'a ReLU output layer (the loss reads the ReLU output as logits)': {
    shape: [6, 6, 1],
    build: () => tf.sequential({ layers: [
      L.conv2d({ inputShape: [6, 6, 1], filters: 3, kernelSize: 3, activation: 'relu' }), L.flatten(), L.dense({ units: 3, activation: 'relu' }),
    ] }),
  },
  'a frozen layer (trainable false)': {
    shape: [6, 6, 1],
    build: () => {
      const m = tf.sequential({ layers: [
        L.conv2d({ inputShape: [6, 6, 1], filters: 3, kernelSize: 3, activation: 'relu' }), L.flatten(), L.dense({ units: 3 }),
      ] });
      m.layers[0]!.trainable = false;
      return m;
    },
  },
  'a layer reading the pre-ReLU output through a linear activation': (() => {
    const shape = [6, 6, 1];
    return {
      shape,
      build: () => {
        const x = tf.input({ shape });
        const a = L.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
        const lin = L.activation({ activation: 'linear' }).apply(a) as tf.SymbolicTensor;
        const r = L.reLU().apply(lin) as tf.SymbolicTensor;
        const c = L.conv2d({ filters: 3, kernelSize: 1 }).apply(lin) as tf.SymbolicTensor;
        const s = L.add().apply([r, c]) as tf.SymbolicTensor;
        return tf.model({ inputs: x, outputs: L.dense({ units: 3 }).apply(L.flatten().apply(s) as tf.SymbolicTensor) as tf.SymbolicTensor });
      },
    };
  })(),
};

for (const [name, m] of Object.entries(tricky)) {
  test(`${name} trains as TF.js trains it, on whichever loop`, async () => {
    const model = m.build();
    const r = await versusTf(model, m.shape);
    assert.ok(r.diff < 2e-4, `${r.loop}: largest weight difference ${r.diff} at ${r.at}`);
    model.dispose();
  });
}

test('a conv net whose batches exceed WebAssembly memory keeps TF.js, or fails with a clear error before allocating when the engine is forced', async () => {
  // 256x256x192 activations: 48 MiB an image, its gradient and the widest-tensor buffer as much, so a batch of 60 needs about 9 GiB.
  const model = tf.sequential({ layers: [
    L.conv2d({ inputShape: [256, 256, 8], filters: 192, kernelSize: 3, padding: 'same', activation: 'relu' }),
    L.globalAveragePooling2d({}), L.dense({ units: 3 }),
  ] });
  const g = compileGraph(model);
  assert.ok(typeof g !== 'string', String(g));
  const weights = model.countParams();
  assert.ok(cnnEngineBytes(g, weights, 60, 2) > 2 ** 32);
  assert.equal(cnnMaxBatch(g, weights, 60, 2), null);
  // Small training batches fit, though evaluation chunks of 32 (EVAL_CHUNK_MIN) would not: the engine then evaluates in training-sized chunks.
  assert.equal(cnnMaxBatch(g, weights, 4, 2), 4);
  assert.equal(cnnPath(model, 'cpu', 'auto', 60), null);
  assert.ok(cnnPath(model, 'cpu', 'auto', 4) !== null);
  const ds = dataset([256, 256, 8], 3, 1);
  const data = toTensors(ds);
  const rss = process.memoryUsage().rss;
  await assert.rejects(trainModel(model, data, null, { ...cfg, batchSize: 60, loop: 'cnn-simd' }), /needs about \d+\.\d GiB, more than WebAssembly's 4 GiB/);
  assert.ok(process.memoryUsage().rss - rss < 2 ** 30, 'the engine allocated before failing');
  data.dispose();
  model.dispose();
});

test('the conv engine trains a ResNet bit for bit the same twice, on batches of 1, and ends its worker threads when cancelled', async () => {
  const shape = [8, 8, 3];
  const data = toTensors(dataset(shape, 4, 3));
  const model = createModel('resnet-8', { inputShape: shape, numClasses: 4, seed: 1 });
  const init = getWeightMap(model);
  const base: TrainConfig = { ...cfg, batchSize: 7, iterations: 4, evalEvery: 2, loop: 'cnn-simd' };
  const run = async (c: Partial<TrainConfig>, cb = {}) => {
    setWeightMap(model, init);
    const m = await trainModel(model, data, null, { ...base, ...c }, cb);
    return { m, w: getWeightMap(model) };
  };
  const a = await run({});
  const b = await run({});
  assert.equal(a.m.trainingLoop, 'cnn-simd');
  for (const n of Object.keys(a.w)) assert.deepEqual(a.w[n]!.values, b.w[n]!.values, n);
  // Batches of 1 leave threads without images; the evaluation chunks of 10 split unevenly.
  const one = await run({ batchSize: 1 });
  assert.ok(Number.isFinite(one.m.finalTestLoss) && one.m.finalTestLoss > 0);
  const handles = () => (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
  const before = handles();
  const ac = new AbortController();
  await assert.rejects(run({ iterations: 1000 }, { signal: ac.signal, onProgress: () => ac.abort() }), RunCancelled);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(handles() <= before, `${handles()} handles after cancelling, ${before} before`);
  data.dispose();
  model.dispose();
});

test('cnnEngineBytes bounds what buildState allocates, dense and with sparse layers (their survivor lists and kept inputs)', () => {
  const model = tf.sequential({ layers: [
    // A wide flatten into a narrow dense layer: the kept inputs (flatten size x batch) outweigh the bound's slack.
    L.conv2d({ inputShape: [24, 24, 3], filters: 32, kernelSize: 3, padding: 'same', activation: 'relu' }),
    L.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu' }),
    L.flatten(), L.dense({ units: 8, activation: 'relu' }), L.dense({ units: 5 }),
  ] });
  const g = compileGraph(model);
  assert.ok(typeof g !== 'string', String(g));
  const weights = getWeightMap(model);
  for (const density of [1, 0.05]) {
    const mask = benchMask(model, density);
    for (const [batch, threads] of [[60, 2], [7, 1], [33, 3]] as const) {
      const state = buildState(g, weights, mask, batch, threads, true);
      try {
        if (density < 1) assert.ok(state.buf.some((b) => (b?.extra.sparse ?? 0) > 0 && b?.extra.xT), 'a dense layer trains sparse and keeps its input');
        const bound = cnnEngineBytes(g, model.countParams(), batch, threads);
        assert.ok(state.mem.used <= bound, `density ${density}, batch ${batch}, ${threads} threads: allocated ${state.mem.used} > bound ${bound}`);
      } finally {
        keepKernels(state.mem);
      }
    }
  }
  model.dispose();
});
