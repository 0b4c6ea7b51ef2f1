// ONNX out: zoo models and a pruned ticket exported to ONNX and run in a real
// runtime (onnxruntime-node) give the TF.js outputs within 1e-4, the ticket's
// zeros are in the file's initializers, and an unsupported layer is refused by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { exportOnnx, ONNX_EXPORTABLE_LAYERS, ONNX_OPSET } from '../../src/engine/export/onnx.ts';
import { createModel } from '../../src/engine/models/registry.ts';
import { getWeightMap, prunableWeights, setWeightMap } from '../../src/engine/models/inspect.ts';
import { applyMaskTo } from '../../src/engine/pruning/mask.ts';
import { shrinkModel } from '../../src/engine/pruning/structure/surgery.ts';
import { mulberry32 } from '../../src/engine/rng.ts';
import type { Mask, WeightMap } from '../../src/engine/types.ts';

const { onnx } = onnxProto;

function randomArray(n: number, next: () => number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

/** Random biases and batch-norm statistics (the zoo starts them at 0/1, which would hide layout mistakes). */
function randomizeNonKernels(model: tf.LayersModel, seed: number): void {
  const next = mulberry32(seed);
  const w = getWeightMap(model);
  const out: WeightMap = {};
  for (const [name, { shape, values }] of Object.entries(w)) {
    if (name.endsWith('kernel')) continue;
    const variance = name.endsWith('moving_variance');
    out[name] = { shape, values: randomArray(values.length, next, variance ? 0.5 : -0.5, variance ? 1.5 : 0.5) };
  }
  setWeightMap(model, out);
}

/** max |TF.js - ONNX Runtime| over a few random NHWC inputs (ONNX gets them as NCHW). */
async function maxDiff(model: tf.LayersModel, bytes: Uint8Array, batch = 3, seed = 7): Promise<number> {
  const session = await ort.InferenceSession.create(bytes);
  const shape = model.inputs[0]!.shape.slice(1) as number[];
  const size = shape.reduce((a, b) => a * b, 1);
  const x = tf.tensor(randomArray(batch * size, mulberry32(seed)), [batch, ...shape]);
  const xOnnx = shape.length === 3 ? tf.transpose(x, [0, 3, 1, 2]) : x;
  const expected = (model.predict(x) as tf.Tensor).dataSync();
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', xOnnx.dataSync() as Float32Array, xOnnx.shape) };
  const result = await session.run(feeds);
  const got = result[session.outputNames[0]!]!.data as Float32Array;
  tf.dispose([x, xOnnx]);
  await session.release();
  assert.equal(got.length, expected.length);
  // Outputs that are all (near) zero would match anything.
  assert.ok(expected.some((v) => Math.abs(v) > 1e-2), 'TF.js outputs are not all near zero');
  let diff = 0;
  for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i]! - expected[i]!));
  return diff;
}

function decode(bytes: Uint8Array): ReturnType<typeof onnx.ModelProto.decode> {
  return onnx.ModelProto.decode(bytes);
}

function initializerValues(bytes: Uint8Array): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const t of decode(bytes).graph?.initializer ?? []) {
    const raw = t.rawData ?? new Uint8Array(0);
    out.set(t.name ?? '', new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)));
  }
  return out;
}

async function checkZoo(name: string, inputShape: number[]): Promise<void> {
  const model = createModel(name, { inputShape, numClasses: 10, seed: 3 });
  randomizeNonKernels(model, 11);
  const bytes = exportOnnx(model);
  const m = decode(bytes);
  assert.equal(Number(m.opsetImport?.[0]?.version), ONNX_OPSET);
  const dims = (m.graph?.input?.[0]?.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
  if (inputShape.length === 3) assert.deepEqual(dims, ['N', inputShape[2], inputShape[0], inputShape[1]], 'NCHW input');
  const diff = await maxDiff(model, bytes);
  assert.ok(diff <= 1e-4, `${name}: max abs diff ${diff}`);
  model.dispose();
}

test('lenet-300-100 exports to ONNX and matches TF.js', async () => {
  await checkZoo('lenet-300-100', [28, 28, 1]);
});

test('conv-2 exports to ONNX and matches TF.js (same padding, max-pool, flatten in NHWC order)', async () => {
  await checkZoo('conv-2', [8, 8, 3]);
});

test('vgg-11 exports to ONNX and matches TF.js (batch norm on convs and dense)', async () => {
  await checkZoo('vgg-11', [32, 32, 3]);
});

test('resnet-8 exports to ONNX and matches TF.js (residual adds, strided 1x1 shortcuts, global pool)', async () => {
  await checkZoo('resnet-8', [12, 12, 3]);
});

test('a pruned ticket keeps its zeros in the ONNX initializers and still matches', async () => {
  const model = createModel('conv-2', { inputShape: [8, 8, 3], numClasses: 10, seed: 5 });
  const next = mulberry32(99);
  const mask: Mask = {};
  for (const p of prunableWeights(model)) {
    const m = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < m.length; i++) m[i] = next() < 0.2 ? 1 : 0;
    mask[p.name] = m;
  }
  setWeightMap(model, applyMaskTo(getWeightMap(model), mask));
  randomizeNonKernels(model, 13);
  const bytes = exportOnnx(model);
  const inits = initializerValues(bytes);
  let maskZeros = 0;
  for (const [name, m] of Object.entries(mask)) {
    const values = inits.get(name);
    assert.ok(values, `initializer ${name} present`);
    assert.equal(values.length, m.length);
    const want = m.length - m.reduce((a, b) => a + b, 0);
    const got = values.reduce((a, v) => a + (v === 0 ? 1 : 0), 0);
    assert.equal(got, want, `${name}: zeros in the file equal the mask's zeros`);
    maskZeros += want;
  }
  assert.ok(maskZeros > 0.7 * Object.values(mask).reduce((a, m) => a + m.length, 0));
  const diff = await maxDiff(model, bytes);
  assert.ok(diff <= 1e-4, `pruned conv-2: max abs diff ${diff}`);
  model.dispose();
});

function initializerScalars(bytes: Uint8Array): number {
  let n = 0;
  for (const v of initializerValues(bytes).values()) n += v.length;
  return n;
}

test('a filter-pruned resnet-8 exports a smaller graph that still matches its TF.js model', async () => {
  const model = createModel('resnet-8', { inputShape: [12, 12, 3], numClasses: 10, seed: 4 });
  randomizeNonKernels(model, 17);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i * 2);
  const small = await shrinkModel(model, { s1b1_conv1: range(8), s2b1_conv1: range(16), s3b1_conv1: range(32) });
  const big = exportOnnx(model);
  const bytes = exportOnnx(small);
  assert.ok(initializerScalars(bytes) < initializerScalars(big) - 10_000, 'the pruned graph holds fewer weights');
  const conv = decode(bytes).graph?.initializer?.find((t) => t.name === 's2b1_conv1/kernel');
  assert.deepEqual(conv?.dims?.map(Number), [16, 16, 3, 3], 'the pruned conv has 16 filters, OIHW');
  const diff = await maxDiff(small, bytes);
  assert.ok(diff <= 1e-4, `filter-pruned resnet-8: max abs diff ${diff}`);
  small.dispose();
  model.dispose();
});

test('exporting leaks no tensors', () => {
  const model = createModel('conv-2', { inputShape: [8, 8, 3], numClasses: 10, seed: 1 });
  const before = tf.memory().numTensors;
  exportOnnx(model);
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});

test('depthwise, separable, average pooling, concatenation, odd strided same padding and softmax match', async () => {
  const input = tf.input({ shape: [9, 7, 4], name: 'img' });
  const a = tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', strides: 2, name: 'dw', activation: 'relu6' }).apply(input) as tf.SymbolicTensor;
  const b = tf.layers.separableConv2d({ filters: 8, kernelSize: [3, 2], padding: 'same', strides: 2, name: 'sep', biasInitializer: 'ones' }).apply(input) as tf.SymbolicTensor;
  let x = tf.layers.concatenate({ axis: -1, name: 'cat' }).apply([a, b]) as tf.SymbolicTensor;
  x = tf.layers.leakyReLU({ alpha: 0.1, name: 'leaky' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'avg' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ filters: 5, kernelSize: 2, padding: 'valid', name: 'c', activation: 'tanh' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flat' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: 0.5, name: 'drop' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 6, activation: 'softmax', name: 'out' }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: x });
  const diff = await maxDiff(model, exportOnnx(model));
  assert.ok(diff <= 1e-4, `max abs diff ${diff}`);
  model.dispose();
});

test('the exporter registry lists every layer class it writes, in the order refusals have always quoted', () => {
  assert.deepEqual(ONNX_EXPORTABLE_LAYERS, [
    'InputLayer', 'Dense', 'Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'BatchNormalization',
    'Activation', 'ReLU', 'LeakyReLU', 'Softmax', 'MaxPooling2D', 'AveragePooling2D',
    'GlobalAveragePooling2D', 'Flatten', 'Add', 'Concatenate', 'Dropout',
    'ZeroPadding2D', 'Permute', 'Reshape', 'TsScale', 'TsClip', 'TsHardSigmoid', 'TsHardSwish',
  ]);
  const model = tf.sequential({ layers: [tf.layers.upSampling2d({ inputShape: [4, 4, 1], size: [2, 2], name: 'grow' })] });
  assert.throws(() => exportOnnx(model), (err: Error) => {
    assert.equal(err.message, `ONNX export: layer 'grow' (UpSampling2D) is not supported; supported layers: ${ONNX_EXPORTABLE_LAYERS.join(', ')}`);
    return true;
  });
  model.dispose();
});

test('an unsupported layer is refused by name and class', () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, name: 'c1' }),
      tf.layers.upSampling2d({ size: [2, 2], name: 'grow' }),
      tf.layers.flatten({ name: 'f' }),
    ],
  });
  assert.throws(() => exportOnnx(model), (err: Error) => {
    assert.match(err.message, /'grow' \(UpSampling2D\)/);
    assert.match(err.message, /supported layers: .*Conv2D/);
    return true;
  });
  model.dispose();
});
