// Sensitivity analysis: each group pruned alone, accuracy without retraining
// (filters with zero weights cost nothing, so pruning exactly those keeps the
// accuracy bit for bit); fractions picked for a FLOP target from the curves;
// the plot.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/runtime/backend.js';
import { getWeightMap, setWeightMap } from '../../src/engine/models/inspect.js';
import { mulberry32 } from '../../src/engine/rng.js';
import { toTensors } from '../../src/engine/training/train.js';
import type { Dataset, Split } from '../../src/engine/types.js';
import { buildGraph } from '../../src/engine/pruning/structure/graph.js';
import { estimateFlops } from '../../src/engine/pruning/structure/algorithm.js';
import { analyseSensitivity, fractionsForFlopTarget, sensitivitySvg, type SensitivityResult } from '../../src/engine/filter/sensitivity.js';

before(async () => {
  await initBackend();
});

function randomSplit(n: number, seed: number): Split {
  const next = mulberry32(seed);
  return { x: Float32Array.from({ length: n * 36 }, () => next()), y: Int32Array.from({ length: n }, () => Math.floor(next() * 3)), n };
}

/** 6x6x1 -> conv c1 (4 filters, 2 of them all-zero) -> conv c2 (8) -> flatten -> out 3, random weights. */
function net(): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [6, 6, 1], filters: 4, kernelSize: 3, activation: 'relu', name: 'c1' }));
  m.add(tf.layers.conv2d({ filters: 8, kernelSize: 3, activation: 'relu', name: 'c2' }));
  m.add(tf.layers.flatten({ name: 'f' }));
  m.add(tf.layers.dense({ units: 3, name: 'out' }));
  const next = mulberry32(3);
  const w = getWeightMap(m);
  for (const t of Object.values(w)) for (let i = 0; i < t.values.length; i++) t.values[i] = next() - 0.5;
  // c1 kernel [3,3,1,4]: zero filters 1 and 3 (and their biases).
  const k = w['c1/kernel']!;
  for (let i = 0; i < k.values.length; i++) if (i % 4 === 1 || i % 4 === 3) k.values[i] = 0;
  w['c1/bias']!.values[1] = 0;
  w['c1/bias']!.values[3] = 0;
  setWeightMap(m, w);
  return m;
}

describe('analyseSensitivity', () => {
  test('pruning only zero filters leaves accuracy unchanged; curves have one point per fraction', async () => {
    const m = net();
    const ds: Dataset = {
      reference: 'random', name: 'random', sha256: '', inputShape: [6, 6, 1], numClasses: 3,
      train: randomSplit(4, 1), validation: randomSplit(200, 2), test: randomSplit(4, 3),
    };
    const data = toTensors(ds);
    const graph = buildGraph(m);
    // toTensors uploads a split on first use: take it before counting.
    const validation = data.validation;
    const before = tf.memory().numTensors;
    const s = await analyseSensitivity(m, graph, validation, { groups: ['c1', 'c2'], importance: 'l1', seed: 0, maxExamples: 150 });
    assert.equal(tf.memory().numTensors, before, 'no tensors leak');
    assert.equal(s.examples, 150);
    assert.deepEqual(s.fractions, [0.25, 0.5, 0.75]);
    const c1 = s.groups.find((g) => g.group === 'c1')!;
    assert.equal(c1.filters, 4);
    // 25% = 1 filter and 50% = 2 filters: the zero filters go first (L1 = 0).
    assert.equal(c1.accuracy[0], s.baselineAccuracy);
    assert.equal(c1.accuracy[1], s.baselineAccuracy);
    assert.equal(s.groups.find((g) => g.group === 'c2')!.accuracy.length, 3);
    // c1's multiply-adds: its own 3*3*1*4*16 = 576 plus c2's 3*3*4*8*4 = 1152 of 576 + 1152 + 32*3 = 1824.
    assert.ok(Math.abs(c1.flopShare - (576 + 1152) / 1824) < 1e-12, "Math.abs(c1.flopShare - (576 + 1152) / 1824) < 1e-12");
    const svg = sensitivitySvg(s);
    assert.ok(svg.startsWith('<svg') && svg.includes('>c1<') && svg.includes('% of filters kept'), "svg.startsWith('<svg') && svg.includes('>c1<') && svg.includes('% of filters kept')");
    data.dispose();
    m.dispose();
  });
});

describe('fractionsForFlopTarget', () => {
  test('cheapest accuracy per FLOP first, until the target is met', () => {
    const m = net();
    const graph = buildGraph(m);
    // c1 is insensitive, c2 loses accuracy fast.
    const s: SensitivityResult = {
      fractions: [0.25, 0.5, 0.75],
      baselineAccuracy: 0.9,
      examples: 100,
      importance: 'l1',
      groups: [
        { group: 'c1', layers: ['c1'], filters: 4, flopShare: 0, accuracy: [0.9, 0.9, 0.89] },
        { group: 'c2', layers: ['c2'], filters: 8, flopShare: 0, accuracy: [0.6, 0.4, 0.2] },
      ],
    };
    const base = estimateFlops(graph, {});
    const small = fractionsForFlopTarget(graph, s, 0.3);
    assert.deepEqual(small, { c1: 0.5 }, 'c1 at 50% saves (288 + 576) / 1824 = 47% at no cost');
    // c1 at 75% alone saves 71%; 80% needs c2 too: 25% (76%), then 50% (1 - 336 / 1824 = 81.6%).
    const big = fractionsForFlopTarget(graph, s, 0.8);
    assert.deepEqual(big, { c1: 0.75, c2: 0.5 });
    assert.equal(estimateFlops(graph, { c1: 1, c2: 4 }), 336);
    assert.ok(1 - 336 / base >= 0.8, "1 - 336 / base >= 0.8");
    assert.throws(() => fractionsForFlopTarget(graph, s, 0.99), /out of reach/);
    m.dispose();
  });
});
