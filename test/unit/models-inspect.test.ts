// Model inspection: prunable weights and their kinds, parameter and FLOP
// counts worked out by hand on tiny nets, weight maps in and out, summaries.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  countFlops, countParams, describeModel, getWeightMap, prunableWeights, setWeightMap, weightVariables,
} from '../../src/engine/models/inspect.js';
import { createModel } from '../../src/engine/models/registry.js';

/** input 6x6x2 -> conv 3x3x3 valid (4x4x3) -> flatten (48) -> dense 5 -> dense 4 */
function tinyNet(): tf.Sequential {
  const m = tf.sequential({ name: 'tiny' });
  m.add(tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, name: 'c1', kernelInitializer: tf.initializers.ones() }));
  m.add(tf.layers.flatten({ name: 'flat' }));
  m.add(tf.layers.dense({ units: 5, activation: 'relu', name: 'hid' }));
  m.add(tf.layers.dense({ units: 4, name: 'out' }));
  return m;
}

describe('countParams / countFlops by hand', () => {
  test('tiny conv -> flatten -> dense net', () => {
    const m = tinyNet();
    // c1: 3*3*2*3 + 3 = 57; hid: 48*5 + 5 = 245; out: 5*4 + 4 = 24
    assert.equal(countParams(m), 57 + 245 + 24);
    // c1: k_h*k_w*c_in*c_out*out_h*out_w = 3*3*2*3*4*4 = 864; hid 48*5 = 240; out 5*4 = 20
    assert.equal(countFlops(m), 864 + 240 + 20);
    m.dispose();
  });

  test('strided same-padded conv, depthwise and separable convs, BN and pooling ignored', () => {
    const strided = tf.sequential();
    strided.add(tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, strides: 2, padding: 'same' }));
    strided.add(tf.layers.batchNormalization());
    strided.add(tf.layers.maxPooling2d({ poolSize: 3 }));
    // output 3x3x3: 3*3*2*3*3*3 = 486; BN params 4*3 = 12
    assert.equal(countFlops(strided), 486);
    assert.equal(countParams(strided), 3 * 3 * 2 * 3 + 3 + 12);

    const depthwise = tf.sequential();
    depthwise.add(tf.layers.depthwiseConv2d({ inputShape: [6, 6, 2], kernelSize: 3, depthMultiplier: 2, name: 'dw' }));
    // output 4x4x4: 3*3*2*2 MACs per output position -> 36 * 16 = 576
    assert.equal(countFlops(depthwise), 576);

    const separable = tf.sequential();
    separable.add(tf.layers.separableConv2d({ inputShape: [6, 6, 2], kernelSize: 3, filters: 5, name: 'sep' }));
    // output 4x4x5: depthwise 3*3*2*16 = 288, pointwise 2*5*16 = 160
    assert.equal(countFlops(separable), 448);
    assert.deepEqual(prunableWeights(separable).map((p) => `${p.name}:${p.kind}:${p.shape.join('x')}`),
      ['sep/depthwise_kernel:conv:3x3x2x1', 'sep/pointwise_kernel:conv:1x1x2x5']);
    assert.deepEqual(prunableWeights(depthwise).map((p) => p.name), ['dw/depthwise_kernel']);
    for (const m of [strided, depthwise, separable]) m.dispose();
  });

  test('dense on a rank-3 input counts every position', () => {
    const m = tf.sequential();
    m.add(tf.layers.dense({ inputShape: [7, 3], units: 2 }));
    assert.equal(countFlops(m), 7 * 3 * 2);
    m.dispose();
  });

  test('unknown spatial size is a clear error', () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [null, null, 1] as unknown as number[], filters: 2, kernelSize: 3 }));
    assert.throws(() => countFlops(m), /unknown dimension.*fixed input shape/);
    m.dispose();
  });
});

describe('prunableWeights', () => {
  test('kinds: conv, dense, output; no biases', () => {
    const m = tinyNet();
    assert.deepEqual(prunableWeights(m), [
      { name: 'c1/kernel', layer: 'c1', kind: 'conv', shape: [3, 3, 2, 3] },
      { name: 'hid/kernel', layer: 'hid', kind: 'dense', shape: [48, 5] },
      { name: 'out/kernel', layer: 'out', kind: 'output', shape: [5, 4] },
    ]);
    m.dispose();
  });

  test('a Dense followed by a separate softmax/dropout is still the output layer', () => {
    const input = tf.input({ shape: [4] });
    const h = tf.layers.dense({ units: 3, name: 'logits' }).apply(input) as tf.SymbolicTensor;
    const d = tf.layers.dropout({ rate: 0.1, name: 'drop' }).apply(h) as tf.SymbolicTensor;
    const p = tf.layers.activation({ activation: 'softmax', name: 'probs' }).apply(d) as tf.SymbolicTensor;
    const m = tf.model({ inputs: input, outputs: p });
    assert.deepEqual(prunableWeights(m).map((w) => `${w.name}:${w.kind}`), ['logits/kernel:output']);
    m.dispose();
  });

  test('layers of a nested model are found, output seen through the nesting', () => {
    const inner = tf.sequential({ name: 'inner' });
    inner.add(tf.layers.dense({ inputShape: [4], units: 3, name: 'in_fc' }));
    inner.add(tf.layers.dense({ units: 2, name: 'in_out' }));
    const input = tf.input({ shape: [6] });
    const x = tf.layers.dense({ units: 4, name: 'pre' }).apply(input) as tf.SymbolicTensor;
    const m = tf.model({ inputs: input, outputs: inner.apply(x) as tf.SymbolicTensor });
    assert.deepEqual(prunableWeights(m).map((w) => `${w.name}:${w.kind}`),
      ['pre/kernel:dense', 'in_fc/kernel:dense', 'in_out/kernel:output']);
    assert.equal(countParams(m), 6 * 4 + 4 + 4 * 3 + 3 + 3 * 2 + 2);
    assert.equal(countFlops(m), 24 + 12 + 6);
    m.dispose();
  });
});

describe('weight maps', () => {
  test('names are layer/short even when another model reuses the layer names', () => {
    const first = createModel('lenet-8', { inputShape: [4], numClasses: 2, seed: 3 });
    const second = createModel('lenet-8', { inputShape: [4], numClasses: 2, seed: 3 });
    // tfjs renamed the second model's variables (fc1/kernel_1 ...); our names must not change.
    assert.notEqual(second.getLayer('fc1').weights[0].name, 'fc1/kernel');
    assert.deepEqual(Object.keys(getWeightMap(second)), ['fc1/kernel', 'fc1/bias', 'out/kernel', 'out/bias']);
    assert.deepEqual([...weightVariables(second).keys()], ['fc1/kernel', 'fc1/bias', 'out/kernel', 'out/bias']);
    first.dispose();
    second.dispose();
  });

  test('batch-norm weights are included by their short names', () => {
    const m = tf.sequential();
    m.add(tf.layers.dense({ inputShape: [3], units: 2, name: 'fc1', useBias: false }));
    m.add(tf.layers.batchNormalization({ name: 'bn1' }));
    const w = getWeightMap(m);
    assert.deepEqual(Object.keys(w), ['fc1/kernel', 'bn1/gamma', 'bn1/beta', 'bn1/moving_mean', 'bn1/moving_variance']);
    assert.deepEqual(Array.from(w['bn1/moving_variance'].values), [1, 1]);
    assert.deepEqual(w['bn1/gamma'].shape, [2]);
    m.dispose();
  });

  test('set then predict gives the hand-computed output; the map is a copy', () => {
    const m = tf.sequential();
    m.add(tf.layers.dense({ inputShape: [2], units: 2, name: 'fc1' }));
    setWeightMap(m, {
      'fc1/kernel': { shape: [2, 2], values: Float32Array.from([1, 2, 3, 4]) },
      'fc1/bias': { shape: [2], values: Float32Array.from([0.5, -1]) },
    });
    // [1, 1] x [[1, 2], [3, 4]] + [0.5, -1] = [4.5, 5]
    const y = tf.tidy(() => m.predict(tf.tensor2d([[1, 1]])) as tf.Tensor);
    assert.deepEqual(Array.from(y.dataSync()), [4.5, 5]);
    y.dispose();
    const w = getWeightMap(m);
    w['fc1/kernel'].values[0] = 99;
    assert.equal(getWeightMap(m)['fc1/kernel'].values[0], 1);
    m.dispose();
  });

  test('bad maps are rejected before anything is written', () => {
    const m = createModel('lenet-8', { inputShape: [4], numClasses: 2, seed: 3 });
    const before = getWeightMap(m);
    const good = { shape: [8], values: new Float32Array(8).fill(7) };
    assert.throws(() => setWeightMap(m, { 'fc1/bias': good, 'fc9/kernel': good }), /unknown weight 'fc9\/kernel'/);
    assert.throws(() => setWeightMap(m, { 'fc1/bias': good, 'out/kernel': { shape: [2, 8], values: new Float32Array(16) } }),
      /'out\/kernel': shape \[2,8\] does not match the model's \[8,2\]/);
    assert.throws(() => setWeightMap(m, { 'fc1/bias': { shape: [8], values: new Float32Array(7) } }),
      /'fc1\/bias': 7 values for shape \[8\] \(8 expected\)/);
    assert.throws(() => setWeightMap(m, { 'fc1/bias': good }, { requireAll: true }), /missing weight 'fc1\/kernel'/);
    assert.deepEqual(getWeightMap(m), before);
    setWeightMap(m, { 'fc1/bias': good });
    assert.deepEqual(Array.from(getWeightMap(m)['fc1/bias'].values), new Array(8).fill(7));
    setWeightMap(m, before, { requireAll: true });
    assert.deepEqual(getWeightMap(m), before);
    m.dispose();
  });

  test('no tensors leak from reading, writing and counting', () => {
    const m = createModel('resnet-8', { inputShape: [8, 8, 3], numClasses: 3, seed: 1 });
    const w = getWeightMap(m);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      setWeightMap(m, getWeightMap(m));
      countFlops(m);
      describeModel(m);
      prunableWeights(m);
    }
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(getWeightMap(m), w);
    m.dispose();
  });
});

describe('describeModel', () => {
  test('tiny net summary', () => {
    const m = tinyNet();
    assert.deepEqual(describeModel(m), {
      inputShape: [6, 6, 2],
      numClasses: 4,
      layers: [
        { name: 'c1', className: 'Conv2D', outputShape: [4, 4, 3], params: 57 },
        { name: 'flat', className: 'Flatten', outputShape: [48], params: 0 },
        { name: 'hid', className: 'Dense', outputShape: [5], params: 245 },
        { name: 'out', className: 'Dense', outputShape: [4], params: 24 },
      ],
      params: 326,
      flops: 1124,
    });
    m.dispose();
  });

  test('functional model includes its input layer; multi-output models are refused', () => {
    const r = createModel('resnet-8', { inputShape: [8, 8, 3], numClasses: 3, seed: 1 });
    const d = describeModel(r);
    assert.deepEqual(d.layers[0], { name: 'input', className: 'InputLayer', outputShape: [8, 8, 3], params: 0 });
    assert.equal(d.numClasses, 3);
    assert.equal(d.layers.at(-1)?.name, 'out');
    r.dispose();
    const input = tf.input({ shape: [2] });
    const a = tf.layers.dense({ units: 1 }).apply(input) as tf.SymbolicTensor;
    const b = tf.layers.dense({ units: 1 }).apply(input) as tf.SymbolicTensor;
    const two = tf.model({ inputs: input, outputs: [a, b] });
    assert.throws(() => describeModel(two), /1 inputs and 2 outputs/);
    two.dispose();
  });
});
