// Graph knowledge for filter pruning, one focused case each: conv -> BN ->
// next conv, flatten -> dense (positions), GAP -> dense, residual Add coupling
// (zoo resnet-20), Concatenate segments, depthwise multipliers, the last conv
// before the classifier, and the layers that block pruning (by name).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/runtime/backend.js';
import { createModel } from '../../src/engine/models/registry.js';
import { countFlops } from '../../src/engine/models/inspect.js';
import { buildGraph, filtersPerLayer, groupOfLayer, layoutWidth, nodeByName } from '../../src/engine/pruning/structure/graph.js';
import { estimateFlops } from '../../src/engine/pruning/structure/algorithm.js';

before(async () => {
  await initBackend();
});

type S = tf.SymbolicTensor;

describe('buildGraph', () => {
  test('Sequential VGG: conv -> BN -> conv chain, last conv into flatten -> dense, classifier blocked', () => {
    const m = createModel('vgg-11', { inputShape: [32, 32, 3], numClasses: 10, seed: 0 });
    const g = buildGraph(m);
    const conv1 = groupOfLayer(g, 'conv1')!;
    assert.deepEqual(conv1.producers, ['conv1']);
    assert.deepEqual(conv1.consumers, ['bn1', 'conv2'], 'BN and the next conv slice conv1 filters');
    assert.equal(conv1.kind, 'conv');
    assert.equal(conv1.blocked, undefined);
    const last = groupOfLayer(g, 'conv8')!;
    assert.deepEqual(last.consumers, ['bn8', 'fc1'], 'the last conv feeds the classifier through Flatten');
    // 32 / 2^5 = 1x1 spatial: fc1 reads 1 position of 512 channels.
    assert.equal(nodeByName(g, 'fc1').inLayouts[0]!.positions, 1);
    assert.equal(groupOfLayer(g, 'fc1')!.kind, 'dense');
    assert.match(groupOfLayer(g, 'out')!.blocked!, /model output through layer 'out'/);
    assert.match(g.groups[0]!.blocked!, /model input/);
    assert.equal(filtersPerLayer(g).conv5, 512);
    // Widths add up to the tensors' last axes.
    for (const layer of m.layers) {
      const dims = (layer.outputShape as number[]).slice(1);
      const n = nodeByName(g, layer.name);
      const expected = n.role === 'flatten' ? dims.reduce((a, b) => a * b, 1) : dims.at(-1);
      assert.equal(layoutWidth(n.outLayout), expected, layer.name);
    }
    assert.equal(estimateFlops(g, {}), countFlops(m), 'unpruned estimate equals countFlops');
    m.dispose();
  });

  test('flatten after a 2x2x3 map: 4 positions of the conv channels', () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [4, 4, 1], filters: 3, kernelSize: 3, name: 'c' }));
    m.add(tf.layers.flatten({ name: 'f' }));
    m.add(tf.layers.dense({ units: 2, name: 'out' }));
    const g = buildGraph(m);
    const l = nodeByName(g, 'out').inLayouts[0]!;
    assert.equal(l.positions, 4);
    assert.deepEqual(l.segments.map((s) => [g.groups[s.group]!.name, s.size]), [['c', 3]]);
    m.dispose();
  });

  test('residual Add couples producers: zoo resnet-20 stages, projection shortcuts, GAP -> dense', () => {
    const m = createModel('resnet-20', { inputShape: [8, 8, 3], numClasses: 10, seed: 0 });
    const g = buildGraph(m);
    assert.deepEqual(groupOfLayer(g, 's1b2_conv2')!.producers, ['conv1', 's1b1_conv2', 's1b2_conv2', 's1b3_conv2']);
    assert.deepEqual(groupOfLayer(g, 's2b1_proj_conv')!.producers, ['s2b1_conv2', 's2b1_proj_conv', 's2b2_conv2', 's2b3_conv2']);
    const s3 = groupOfLayer(g, 's3b3_conv2')!;
    assert.equal(s3.name, 's3b1_conv2');
    assert.ok(s3.consumers.includes('out'), 'the last stage feeds the classifier through GAP');
    assert.equal(nodeByName(g, 'gap').role, 'global-pool');
    assert.deepEqual(groupOfLayer(g, 's2b2_conv1')!.producers, ['s2b2_conv1'], 'block-internal convs stand alone');
    m.dispose();
  });

  test('Concatenate stacks segments; depthwise multiplies them; merge of different layouts blocks', () => {
    const input = tf.input({ shape: [4, 4, 2] });
    const a = tf.layers.conv2d({ filters: 3, kernelSize: 1, name: 'a' }).apply(input) as S;
    const b = tf.layers.conv2d({ filters: 2, kernelSize: 1, name: 'b' }).apply(input) as S;
    const cat = tf.layers.concatenate({ name: 'cat' }).apply([a, b]) as S;
    const dw = tf.layers.depthwiseConv2d({ kernelSize: 1, depthMultiplier: 2, name: 'dw' }).apply(cat) as S;
    const c = tf.layers.conv2d({ filters: 5, kernelSize: 1, name: 'c' }).apply(input) as S;
    const odd = tf.layers.add({ name: 'odd' }).apply([cat, c]) as S;
    const out = tf.layers.concatenate({ name: 'out_cat' }).apply([dw, odd]) as S;
    const m = tf.model({ inputs: input, outputs: tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(out) as S });
    const g = buildGraph(m);
    const seg = (name: string) => nodeByName(g, name).outLayout.segments.map((s) => `${g.groups[s.group]!.name}:${s.size}x${s.mult}`);
    assert.deepEqual(seg('cat'), ['a:3x1', 'b:2x1']);
    assert.deepEqual(seg('dw'), ['a:3x2', 'b:2x2']);
    assert.match(groupOfLayer(g, 'c')!.blocked!, /layer 'odd' \(Add\) merges tensors whose channels are laid out differently/);
    m.dispose();
  });

  test('Concatenate along a spatial axis couples its inputs like an Add, and blocks when their channels are laid out differently', () => {
    const input = tf.input({ shape: [4, 4, 2] });
    const conv = (filters: number, name: string) => tf.layers.conv2d({ filters, kernelSize: 1, name }).apply(input) as S;
    const rows = tf.layers.concatenate({ axis: 1, name: 'rows' }).apply([conv(3, 'a'), conv(3, 'b')]) as S;
    const split = tf.layers.concatenate({ name: 'split' }).apply([conv(1, 'e'), conv(2, 'f')]) as S;
    const skew = tf.layers.concatenate({ axis: 1, name: 'skew' }).apply([conv(3, 'd'), split]) as S;
    const gap = (t: S, name: string) => tf.layers.globalAveragePooling2d({ name }).apply(t) as S;
    const m = tf.model({ inputs: input, outputs: [gap(rows, 'gap1'), gap(skew, 'gap2')] });
    const g = buildGraph(m);
    assert.equal(nodeByName(g, 'rows').role, 'merge');
    assert.deepEqual(groupOfLayer(g, 'b')!.producers, ['a', 'b'], 'a and b lose the same channels');
    assert.equal(nodeByName(g, 'skew').role, 'unsupported');
    assert.match(nodeByName(g, 'skew').reason!, /layer 'skew' \(Concatenate\) concatenates tensors whose channels are laid out differently/);
    m.dispose();
  });

  test('blocking layers are named: Reshape, softmax across channels, LayerNormalization', () => {
    const build = (mid: tf.layers.Layer) => {
      const m = tf.sequential();
      m.add(tf.layers.conv2d({ inputShape: [4, 4, 1], filters: 4, kernelSize: 1, name: 'c' }));
      m.add(mid);
      m.add(tf.layers.flatten({ name: 'f' }));
      m.add(tf.layers.dense({ units: 2, name: 'out' }));
      return m;
    };
    const cases: Array<[tf.layers.Layer, RegExp]> = [
      [tf.layers.reshape({ targetShape: [16, 4], name: 'squash' }), /layer 'squash' \(Reshape\) cannot be pruned through/],
      [tf.layers.activation({ activation: 'softmax', name: 'sm' }), /layer 'sm' \(Activation\) applies softmax across channels/],
      [tf.layers.layerNormalization({ name: 'ln' }), /layer 'ln' \(LayerNormalization\)/],
    ];
    for (const [layer, why] of cases) {
      const m = build(layer);
      assert.match(groupOfLayer(buildGraph(m), 'c')!.blocked!, why);
      m.dispose();
    }
  });

  test('shared layers are refused by name', () => {
    const input = tf.input({ shape: [4] });
    const shared = tf.layers.dense({ units: 4, name: 'shared' });
    const x = shared.apply(shared.apply(input) as S) as S;
    const m = tf.model({ inputs: input, outputs: x });
    assert.throws(() => buildGraph(m), /layer 'shared' \(Dense\) is called more than once/);
    m.dispose();
  });
});
