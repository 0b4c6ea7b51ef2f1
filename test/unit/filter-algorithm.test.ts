// Importance scores (L1 / L2 per filter, summed over residual-coupled
// producers, seeded random) and the algorithm: which groups lose what
// fraction, per-step sizes of the iterative schedule, which channels survive.
// Numbers worked out by hand on tiny tensors.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/runtime/backend.js';
import { getWeightMap, setWeightMap } from '../../src/engine/models/inspect.js';
import { buildGraph, groupByName, groupOfLayer } from '../../src/engine/pruning/structure/graph.js';
import { groupImportance, sliceNorms } from '../../src/engine/pruning/structure/importance.js';
import { keptAfterStep, planStep, resolveTargets, topChannels } from '../../src/engine/pruning/structure/algorithm.js';

before(async () => {
  await initBackend();
});

type S = tf.SymbolicTensor;

/** conv a (2 filters) and conv b (2 filters) joined by Add, then conv c (3 filters) -> flatten -> hidden dense -> out. */
function residualNet(): tf.LayersModel {
  const input = tf.input({ shape: [1, 1, 1], name: 'input' });
  const a = tf.layers.conv2d({ filters: 2, kernelSize: 1, useBias: false, name: 'a' }).apply(input) as S;
  const b = tf.layers.conv2d({ filters: 2, kernelSize: 1, useBias: false, name: 'b' }).apply(a) as S;
  const sum = tf.layers.add({ name: 'sum' }).apply([a, b]) as S;
  const c = tf.layers.conv2d({ filters: 3, kernelSize: 1, useBias: false, name: 'c' }).apply(sum) as S;
  const f = tf.layers.flatten({ name: 'f' }).apply(c) as S;
  const h = tf.layers.dense({ units: 4, name: 'hid' }).apply(f) as S;
  return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2, name: 'out' }).apply(h) as S });
}

describe('importance', () => {
  test('sliceNorms: L1 and L2 of each slice along an axis', () => {
    // [2, 3] = rows [1 -2 3], [-4 0 2]
    const v = Float32Array.from([1, -2, 3, -4, 0, 2]);
    assert.deepEqual([...sliceNorms(v, [2, 3], 1, 'l1')], [5, 2, 5]);
    assert.deepEqual([...sliceNorms(v, [2, 3], 0, 'l1')], [6, 6]);
    const l2 = sliceNorms(v, [2, 3], 1, 'l2');
    assert.ok(Math.abs(l2[0]! - Math.sqrt(17)) < 1e-12 && Math.abs(l2[1]! - 2) < 1e-12 && Math.abs(l2[2]! - Math.sqrt(13)) < 1e-12, "Math.abs(l2[0]! - Math.sqrt(17)) < 1e-12 && Math.abs(l2[1]! - 2) < 1e-12 && Math.abs(l2...");
  });

  test('a coupled group sums the norms of every producer; random is seeded per group', () => {
    const m = residualNet();
    // a: kernel [1,1,1,2] = [1, -3]; b: kernel [1,1,2,2] rows (in) [[2, 0], [-1, 1]] -> filter 0 = (2, -1), filter 1 = (0, 1)
    setWeightMap(m, {
      'a/kernel': { shape: [1, 1, 1, 2], values: Float32Array.from([1, -3]) },
      'b/kernel': { shape: [1, 1, 2, 2], values: Float32Array.from([2, 0, -1, 1]) },
    });
    const g = buildGraph(m);
    const group = groupOfLayer(g, 'b')!;
    assert.equal(group.name, 'a');
    assert.deepEqual(group.producers, ['a', 'b']);
    const w = getWeightMap(m);
    // L1: filter 0: |1| + |2|+|-1| = 4; filter 1: |-3| + |0|+|1| = 4
    assert.deepEqual([...groupImportance(g, group, w, 'l1')], [4, 4]);
    // L2 (sum of per-producer norms): filter 0: 1 + sqrt(5); filter 1: 3 + 1
    const l2 = groupImportance(g, group, w, 'l2');
    assert.ok(Math.abs(l2[0]! - (1 + Math.sqrt(5))) < 1e-12 && l2[1] === 4, "Math.abs(l2[0]! - (1 + Math.sqrt(5))) < 1e-12 && l2[1] === 4");
    const r1 = groupImportance(g, group, w, 'random', 7);
    assert.deepEqual(r1, groupImportance(g, group, w, 'random', 7));
    assert.notDeepEqual(r1, groupImportance(g, group, w, 'random', 8));
    m.dispose();
  });
});

describe('algorithm', () => {
  test('targets: a global fraction covers conv groups; dense only when named; skip and blocked listed', () => {
    const m = residualNet();
    const g = buildGraph(m);
    const t = resolveTargets(g, { fraction: 0.5 });
    assert.deepEqual(t.fractions, { a: 0.5, c: 0.5 });
    assert.match(t.skipped.hid!, /dense units are pruned only when the layer is named/);
    assert.match(t.skipped.out!, /model output/);
    const named = resolveTargets(g, { fraction: 0.5, fractions: { b: 0.25, hid: 0.5 }, skip: ['c'] });
    assert.deepEqual(named.fractions, { a: 0.25, hid: 0.5 }, 'naming b sets the fraction of its coupled group a+b');
    assert.match(named.skipped.c!, /'c' is in skipLayers/);
    assert.throws(() => resolveTargets(g, { fractions: { out: 0.5 } }), /cannot prune layer 'out'.*model output/);
    assert.throws(() => resolveTargets(g, { fractions: { sum: 0.5 } }), /layer 'sum' \(Add\) has no filters to prune/);
    assert.throws(() => resolveTargets(g, { fractions: { nope: 0.5 } }), /no layer 'nope'/);
    assert.throws(() => resolveTargets(g, { fractions: { a: 0.5, b: 0.25 } }), /different fractions/);
    assert.throws(() => resolveTargets(g, { fractions: { a: 0.5 }, skip: ['b'] }), /'b' \(coupled with it\) is in skipLayers/);
    m.dispose();
  });

  test('iterative schedule: equal steps towards the final fraction, never below one filter', () => {
    assert.deepEqual([1, 2, 3, 4].map((s) => keptAfterStep(64, 0.5, s, 4)), [56, 48, 40, 32]);
    assert.equal(keptAfterStep(10, 0.5, 1, 1), 5);
    assert.equal(keptAfterStep(3, 0.9, 1, 1), 1);
    assert.equal(keptAfterStep(1, 0.5, 1, 1), 1);
  });

  test('topChannels keeps the highest scores, ascending, ties to the lower index', () => {
    assert.deepEqual(topChannels([0.1, 5, 3, 5, 0], 2), [1, 3]);
    assert.deepEqual(topChannels([1, 1, 1], 2), [0, 1]);
  });

  test('planStep keeps the largest-L1 filters of the current model', () => {
    const m = residualNet();
    // c: kernel [1,1,2,3]: rows (in) [3, -1, 0], [1, 0, 0.5] -> L1 per filter 4, 1, 0.5
    setWeightMap(m, { 'c/kernel': { shape: [1, 1, 2, 3], values: Float32Array.from([3, -1, 0, 1, 0, 0.5]) } });
    const g = buildGraph(m);
    const targets = { fractions: { c: 2 / 3 }, skipped: {} };
    const plan = planStep(g, getWeightMap(m), { targets, originalSizes: { c: 3 }, step: 1, steps: 1, importance: 'l1', seed: 0 });
    assert.deepEqual(plan, { c: [0] });
    const half = planStep(g, getWeightMap(m), { targets, originalSizes: { c: 3 }, step: 1, steps: 2, importance: 'l1', seed: 0 });
    assert.deepEqual(half, { c: [0, 1] }, 'step 1 of 2 removes one of the two filters');
    assert.equal(groupByName(g, 'c')!.size, 3);
    m.dispose();
  });
});
