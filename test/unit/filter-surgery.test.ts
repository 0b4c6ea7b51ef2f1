// Filter surgery is exact: silencing channels in the original model (filter
// and bias zeroed, a following BatchNormalization's gamma and beta zeroed, so
// each emits exactly zero) and removing them in the shrunken model give the
// same outputs, for a Sequential VGG-style net with BN, flatten -> dense,
// residual Add nets (a hand-built one and the zoo's resnet-20), Concatenate
// with a depthwise conv, and a separable conv. Parameter and FLOP counts of a
// shrunken tiny net are checked by hand; unsupported layers fail by name.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/runtime/backend.js';
import { countFlops, countParams, getWeightMap, setWeightMap } from '../../src/engine/models/inspect.js';
import { createModel } from '../../src/engine/models/registry.js';
import { mulberry32 } from '../../src/engine/rng.js';
import type { WeightMap } from '../../src/engine/types.js';
import { buildGraph } from '../../src/engine/pruning/structure/graph.js';
import { estimateFlops } from '../../src/engine/pruning/structure/algorithm.js';
import {
  layoutIndices, resolvePlan, shrinkModel, silenceWeights, sliceWeights, takeAlong, type PrunePlan,
} from '../../src/engine/pruning/structure/surgery.js';

before(async () => {
  await initBackend();
});

/**
 * Random weights everywhere, with BN statistics far from identity so a wrong
 * slice shows; kernels scaled by fan-in so deep nets keep outputs near 1.
 */
function randomize(model: tf.LayersModel, seed: number): void {
  const next = mulberry32(seed);
  const u = (lo: number, hi: number) => lo + (hi - lo) * next();
  const w = getWeightMap(model);
  for (const [name, t] of Object.entries(w)) {
    const short = name.split('/').at(-1)!;
    const a = short.endsWith('kernel') ? Math.sqrt(3 / t.shape.slice(0, -1).reduce((x, y) => x * y, 1)) : 0.5;
    const range: [number, number] =
      short === 'gamma' || short === 'moving_variance' ? [0.5, 1.5] : short === 'beta' || short === 'moving_mean' ? [-0.3, 0.3] : [-a, a];
    for (let i = 0; i < t.values.length; i++) t.values[i] = u(...range);
  }
  setWeightMap(model, w);
}

function batch(shape: number[], n: number, seed: number): tf.Tensor {
  const next = mulberry32(seed);
  const size = n * shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: size }, () => next() * 2 - 1), [n, ...shape]);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => a.sub(b).abs().max().dataSync()[0]!);
}

/** Drop `fraction` of each named group, keeping a scattered (not prefix) set of channels. */
function scatteredPlan(sizes: Record<string, number>, fraction: number, seed: number): PrunePlan {
  const next = mulberry32(seed);
  const plan: PrunePlan = {};
  for (const [name, size] of Object.entries(sizes)) {
    const order = Array.from({ length: size }, (_, i) => i).sort(() => next() - 0.5);
    plan[name] = order.slice(0, Math.max(1, size - Math.round(size * fraction))).sort((a, b) => a - b);
  }
  return plan;
}

/** Silenced original vs shrunken model on one batch; returns the max abs difference and both models' sizes. */
async function compare(model: tf.LayersModel, plan: PrunePlan, inputShape: number[]) {
  const graph = buildGraph(model);
  const original = getWeightMap(model);
  const small = await shrinkModel(model, plan, graph);
  setWeightMap(model, silenceWeights(graph, original, plan));
  const x = batch(inputShape, 6, 99);
  const a = model.predict(x) as tf.Tensor;
  const b = small.predict(x) as tf.Tensor;
  const diff = maxAbsDiff(a, b);
  const scale = tf.tidy(() => a.abs().max().dataSync()[0]!);
  assert.deepEqual(b.shape, a.shape);
  const result = { diff, scale, paramsBefore: countParams(model), paramsAfter: countParams(small), flopsAfter: countFlops(small), graph };
  tf.dispose([x, a, b]);
  small.dispose();
  setWeightMap(model, original);
  return result;
}

function vggStyle(): tf.Sequential {
  const m = tf.sequential({ name: 'vgg-tiny' });
  const convBlock = (i: number, filters: number, first = false) => {
    m.add(tf.layers.conv2d({ ...(first ? { inputShape: [8, 8, 3] } : {}), filters, kernelSize: 3, padding: 'same', useBias: false, name: `conv${i}` }));
    m.add(tf.layers.batchNormalization({ name: `bn${i}` }));
    m.add(tf.layers.activation({ activation: 'relu', name: `relu${i}` }));
  };
  convBlock(1, 8, true);
  convBlock(2, 8);
  m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }));
  convBlock(3, 12);
  m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }));
  m.add(tf.layers.flatten({ name: 'flatten' }));
  m.add(tf.layers.dense({ units: 10, useBias: false, name: 'fc1' }));
  m.add(tf.layers.batchNormalization({ name: 'bn_fc1' }));
  m.add(tf.layers.activation({ activation: 'relu', name: 'relu_fc1' }));
  m.add(tf.layers.dense({ units: 5, name: 'out' }));
  return m;
}

describe('slicing helpers', () => {
  test('takeAlong picks slices of any axis', () => {
    // shape [2, 3]: rows [0 1 2], [3 4 5]
    const t = { shape: [2, 3], values: Float32Array.from([0, 1, 2, 3, 4, 5]) };
    assert.deepEqual([...takeAlong(t, 1, Int32Array.from([0, 2])).values], [0, 2, 3, 5]);
    assert.deepEqual([...takeAlong(t, 0, Int32Array.from([1])).values], [3, 4, 5]);
    assert.deepEqual(takeAlong(t, 1, Int32Array.from([2])).shape, [2, 1]);
  });

  test('flattened HWC rows: channel fastest, position-major', () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [2, 2, 1], filters: 3, kernelSize: 1, name: 'c' }));
    m.add(tf.layers.flatten({ name: 'f' }));
    m.add(tf.layers.dense({ units: 2, name: 'd' }));
    const graph = buildGraph(m);
    const d = graph.nodes.find((n) => n.name === 'd')!;
    assert.equal(d.inLayouts[0]!.positions, 4);
    // keep channels 0 and 2 of 3 at each of 4 positions: rows p*3 + {0, 2}
    const rows = layoutIndices(d.inLayouts[0]!, resolvePlan(graph, { c: [0, 2] }));
    assert.deepEqual([...rows!], [0, 2, 3, 5, 6, 8, 9, 11]);
    m.dispose();
  });
});

describe('surgery is exact (silenced original == shrunken model)', () => {
  test('Sequential VGG-style with BatchNorm, last conv into flatten -> dense, hidden dense units', async () => {
    const m = vggStyle();
    randomize(m, 1);
    const plan = scatteredPlan({ conv1: 8, conv2: 8, conv3: 12, fc1: 10 }, 0.5, 2);
    // Manual silencing, independent of silenceWeights: zero the filter and its BN gamma/beta.
    const graph = buildGraph(m);
    const w = getWeightMap(m);
    const manual: WeightMap = structuredClone(w);
    for (const [layer, bn] of [['conv1', 'bn1'], ['conv2', 'bn2'], ['conv3', 'bn3'], ['fc1', 'bn_fc1']] as const) {
      const k = manual[`${layer}/kernel`]!;
      const out = k.shape.at(-1)!;
      const keep = new Set(plan[layer]);
      for (let i = 0; i < k.values.length; i++) if (!keep.has(i % out)) k.values[i] = 0;
      for (const p of ['gamma', 'beta']) for (let c = 0; c < out; c++) if (!keep.has(c)) manual[`${bn}/${p}`]!.values[c] = 0;
    }
    assert.deepEqual(silenceWeights(graph, w, plan), manual, 'silenceWeights zeroes exactly the filters and BN gamma/beta');

    const r = await compare(m, plan, [8, 8, 3]);
    assert.ok(r.scale > 0.1, `outputs are not trivially zero (${r.scale})`);
    assert.ok(r.diff < 1e-4, `max abs diff ${r.diff}`);
    assert.ok(r.paramsAfter < r.paramsBefore, "r.paramsAfter < r.paramsBefore");
    m.dispose();
  });

  test('flatten -> dense with biases and ReLU inside the convs', async () => {
    const m = tf.sequential({ name: 'flat' });
    m.add(tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 6, kernelSize: 3, activation: 'relu', name: 'c1' }));
    m.add(tf.layers.conv2d({ filters: 5, kernelSize: 2, strides: 2, activation: 'relu', name: 'c2' }));
    m.add(tf.layers.flatten({ name: 'flatten' }));
    m.add(tf.layers.dense({ units: 7, activation: 'relu', name: 'hid' }));
    m.add(tf.layers.dense({ units: 3, name: 'out' }));
    randomize(m, 3);
    const r = await compare(m, { c1: [1, 2, 5], c2: [0, 3], hid: [0, 1, 4, 6] }, [6, 6, 2]);
    assert.ok(r.diff < 1e-4, `max abs diff ${r.diff}`);
    m.dispose();
  });

  test('residual net (functional, Add with identity and projection shortcuts, BN, GAP -> dense)', async () => {
    const input = tf.input({ shape: [8, 8, 3], name: 'input' });
    type S = tf.SymbolicTensor;
    const conv = (x: S, name: string, filters: number, k = 3, strides = 1) =>
      tf.layers.conv2d({ filters, kernelSize: k, strides, padding: 'same', useBias: false, name }).apply(x) as S;
    const bn = (x: S, name: string) => tf.layers.batchNormalization({ name }).apply(x) as S;
    const relu = (x: S, name: string) => tf.layers.activation({ activation: 'relu', name }).apply(x) as S;
    let x = relu(bn(conv(input, 'stem', 6), 'stem_bn'), 'stem_relu');
    // identity block: stem and b1_conv2 share channels
    let y = relu(bn(conv(x, 'b1_conv1', 4), 'b1_bn1'), 'b1_relu1');
    y = bn(conv(y, 'b1_conv2', 6), 'b1_bn2');
    x = relu(tf.layers.add({ name: 'b1_add' }).apply([y, x]) as S, 'b1_relu2');
    // projection block: b2_conv2 and b2_proj share channels
    y = relu(bn(conv(x, 'b2_conv1', 8, 3, 2), 'b2_bn1'), 'b2_relu1');
    y = bn(conv(y, 'b2_conv2', 8), 'b2_bn2');
    const p = bn(conv(x, 'b2_proj', 8, 1, 2), 'b2_proj_bn');
    x = relu(tf.layers.add({ name: 'b2_add' }).apply([y, p]) as S, 'b2_relu2');
    x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as S;
    const out = tf.layers.dense({ units: 4, name: 'out' }).apply(x) as S;
    const m = tf.model({ inputs: input, outputs: out, name: 'res-tiny' });
    randomize(m, 4);

    const graph = buildGraph(m);
    const byName = Object.fromEntries(graph.groups.map((g) => [g.name, g]));
    assert.deepEqual(byName.stem!.producers, ['stem', 'b1_conv2']);
    assert.deepEqual(byName.b2_conv2!.producers, ['b2_conv2', 'b2_proj']);
    assert.ok(byName.out!.blocked?.includes('model output'), "byName.out!.blocked?.includes('model output')");

    const r = await compare(m, { stem: [0, 2, 5], b1_conv1: [1, 3], b2_conv1: [0, 1, 6], b2_conv2: [2, 3, 4, 7] }, [8, 8, 3]);
    assert.ok(r.scale > 0.01, "r.scale > 0.01");
    assert.ok(r.diff < 1e-4, `max abs diff ${r.diff}`);
    m.dispose();
  });

  test('zoo resnet-20: every prunable group halved', async () => {
    const m = createModel('resnet-20', { inputShape: [8, 8, 3], numClasses: 10, seed: 5 });
    randomize(m, 5);
    const graph = buildGraph(m);
    const prunable = graph.groups.filter((g) => g.producers.length > 0 && g.blocked === undefined);
    // 9 block-internal conv1 groups + 3 stage groups (stem/shortcut chain per stage).
    assert.equal(prunable.length, 12);
    const stage1 = prunable.find((g) => g.name === 'conv1')!;
    assert.deepEqual(stage1.producers, ['conv1', 's1b1_conv2', 's1b2_conv2', 's1b3_conv2']);
    const plan = scatteredPlan(Object.fromEntries(prunable.map((g) => [g.name, g.size])), 0.5, 6);
    const r = await compare(m, plan, [8, 8, 3]);
    assert.ok(r.scale > 0.1 && r.scale < 100, `outputs on a sane scale (${r.scale})`);
    assert.ok(r.diff < 1e-4, `max abs diff ${r.diff}`);
    const kept = Object.fromEntries(Object.entries(plan).map(([k, v]) => [k, v.length]));
    assert.equal(estimateFlops(graph, kept), r.flopsAfter, 'FLOP estimate without building the model');
    m.dispose();
  });

  test('Concatenate of two branches, depthwise conv (multiplier 2), separable conv', async () => {
    const input = tf.input({ shape: [6, 6, 2], name: 'input' });
    type S = tf.SymbolicTensor;
    const a = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'a' }).apply(input) as S;
    const b = tf.layers.conv2d({ filters: 3, kernelSize: 1, activation: 'relu', name: 'b' }).apply(input) as S;
    let x = tf.layers.concatenate({ name: 'cat' }).apply([a, b]) as S;
    x = tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', name: 'dw' }).apply(x) as S;
    x = tf.layers.batchNormalization({ name: 'dw_bn' }).apply(x) as S;
    x = tf.layers.activation({ activation: 'relu', name: 'dw_relu' }).apply(x) as S;
    x = tf.layers.separableConv2d({ filters: 5, kernelSize: 3, depthMultiplier: 1, padding: 'same', activation: 'relu', name: 'sep' }).apply(x) as S;
    x = tf.layers.conv2d({ filters: 4, kernelSize: 1, activation: 'relu', name: 'pw' }).apply(x) as S;
    x = tf.layers.flatten({ name: 'flatten' }).apply(x) as S;
    const out = tf.layers.dense({ units: 3, name: 'out' }).apply(x) as S;
    const m = tf.model({ inputs: input, outputs: out });
    randomize(m, 7);
    const r = await compare(m, { a: [0, 3], b: [1], sep: [0, 2, 4], pw: [1, 2] }, [6, 6, 2]);
    assert.ok(r.diff < 1e-4, `max abs diff ${r.diff}`);
    m.dispose();
  });
});

describe('sizes by hand', () => {
  test('input 4x4x1 -> conv 3x3 same 4 filters -> flatten -> dense 2, conv cut to 2 filters', async () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [4, 4, 1], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c' }));
    m.add(tf.layers.flatten({ name: 'f' }));
    m.add(tf.layers.dense({ units: 2, name: 'out' }));
    // before: conv 3*3*1*4 + 4 = 40, dense 64*2 + 2 = 130; MACs 3*3*1*4*16 = 576 + 64*2 = 128
    assert.equal(countParams(m), 170);
    assert.equal(countFlops(m), 704);
    const small = await shrinkModel(m, { c: [1, 3] });
    // after: conv 3*3*1*2 + 2 = 20, dense 32*2 + 2 = 66; MACs 3*3*1*2*16 = 288 + 32*2 = 64
    assert.equal(countParams(small), 86);
    assert.equal(countFlops(small), 352);
    assert.equal(estimateFlops(buildGraph(m), { c: 2 }), 352);
    assert.deepEqual(small.getLayer('c').getConfig().filters, 2);
    // The original is untouched.
    assert.equal(countParams(m), 170);
    m.dispose();
    small.dispose();
  });
});

describe('what surgery refuses', () => {
  test('a layer it cannot prune through is named', async () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [4, 4, 1], filters: 4, kernelSize: 3, name: 'c' }));
    m.add(tf.layers.reshape({ targetShape: [16], name: 'squash' }));
    m.add(tf.layers.dense({ units: 2, name: 'out' }));
    const graph = buildGraph(m);
    assert.throws(() => sliceWeights(graph, getWeightMap(m), { c: [0, 1] }), /layer 'squash' \(Reshape\)/);
    await assert.rejects(shrinkModel(m, { c: [0] }), /cannot prune 'c'.*'squash'/);
    m.dispose();
  });

  test('the classifier, unknown groups, empty and unordered plans', () => {
    const m = vggStyle();
    const graph = buildGraph(m);
    assert.throws(() => resolvePlan(graph, { out: [0, 1] }), /cannot prune 'out'.*model output/);
    assert.throws(() => resolvePlan(graph, { nope: [0] }), /no channel group 'nope'/);
    assert.throws(() => resolvePlan(graph, { conv1: [] }), /keeps no channel/);
    assert.throws(() => resolvePlan(graph, { conv1: [3, 1] }), /ascending/);
    assert.throws(() => resolvePlan(graph, { conv1: [0, 8] }), /outside 0..7/);
    assert.equal(resolvePlan(graph, { conv1: [0, 1, 2, 3, 4, 5, 6, 7] }).size, 0, 'keeping everything is no cut');
    m.dispose();
  });
});
