// Pruning math checked by hand on tiny arrays.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pruneGlobal, pruneLayerwise, pruneToDensity, layerFractions } from '../../src/engine/pruning/magnitude.js';
import { shuffleMask } from '../../src/engine/pruning/random.js';
import { countAlive, deserializeMask, globalDensity, layerDensity, serializeMask } from '../../src/engine/pruning/mask.js';
import { getStrategy } from '../../src/engine/pruning/registry.js';
import type { PrunableWeight } from '../../src/engine/types.js';

const f = (...xs: number[]) => Float32Array.from(xs);

describe('magnitude pruning', () => {
  const weights = {
    a: f(0.5, -0.1, 0.3, -0.9, 0.05, 0.2, -0.7, 0.4, 0.6, -0.25),
    b: f(1, -2, 0.01, 3),
  };
  const ones = { a: new Float32Array(10).fill(1), b: new Float32Array(4).fill(1) };

  test('layer-wise removes round(fraction × alive) smallest per layer', () => {
    const m = pruneLayerwise(weights, ones, { a: 0.2, b: 0.5 });
    // a: 2 smallest |w| are 0.05 (i=4) and 0.1 (i=1); b: 2 smallest are 0.01 (i=2) and 1 (i=0)
    assert.deepEqual([...m.a!], [1, 0, 1, 1, 0, 1, 1, 1, 1, 1]);
    assert.deepEqual([...m.b!], [0, 1, 0, 1]);
  });

  test('layer-wise counts fractions of survivors, not of the layer', () => {
    const m1 = pruneLayerwise(weights, ones, { a: 0.2 });
    const m2 = pruneLayerwise(weights, m1, { a: 0.25 }); // 8 alive → 2 more go: 0.2 (i=5), 0.25 (i=9)
    assert.equal(countAlive(m2.a!), 6);
    assert.deepEqual([...m2.a!], [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]);
    assert.deepEqual([...m2.b!], [1, 1, 1, 1], 'layers not named keep their mask');
  });

  test('global ranks all layers against one threshold', () => {
    // 14 weights, 50% → 7 smallest overall: 0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4
    const m = pruneGlobal(weights, ones, ['a', 'b'], 0.5);
    assert.deepEqual([...m.a!], [1, 0, 0, 1, 0, 0, 1, 0, 1, 0]);
    assert.deepEqual([...m.b!], [1, 1, 0, 1]);
    assert.equal(globalDensity(m), 7 / 14);
  });

  test('ties break by index so exactly k go', () => {
    const w = { t: f(0.5, 0.5, 0.5, 0.5, 1) };
    const m = pruneLayerwise(w, { t: new Float32Array(5).fill(1) }, { t: 0.4 });
    assert.deepEqual([...m.t!], [0, 0, 1, 1, 1]);
  });

  test('one-shot prunes to a target density, layer-wise and globally', () => {
    const lw = pruneToDensity(weights, ones, ['a', 'b'], 0.5, 'layerwise');
    assert.equal(countAlive(lw.a!), 5);
    assert.equal(countAlive(lw.b!), 2);
    const gl = pruneToDensity(weights, ones, ['a', 'b'], 0.25, 'global');
    assert.equal(countAlive(gl.a!) + countAlive(gl.b!), 4); // keeps 3, -2, -0.9, 1
    assert.deepEqual([...gl.b!], [1, 1, 0, 1]);
    assert.deepEqual([...gl.a!], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  });

  test('per-kind fractions: the output layer at its own rate, skipped layers untouched', () => {
    const prunable: PrunableWeight[] = [
      { name: 'conv1/kernel', layer: 'conv1', kind: 'conv', shape: [3, 3, 1, 2] },
      { name: 'fc1/kernel', layer: 'fc1', kind: 'dense', shape: [4, 5] },
      { name: 'out/kernel', layer: 'out', kind: 'output', shape: [5, 10] },
    ];
    const s = { convFraction: 0.15, denseFraction: 0.2, outputFraction: 0.1, skipLayers: ['conv1'] };
    assert.deepEqual(layerFractions(prunable, s), { 'fc1/kernel': 0.2, 'out/kernel': 0.1 });
    assert.deepEqual(layerFractions(prunable, { ...s, fraction: 0.5, skipLayers: [] }), {
      'conv1/kernel': 0.5,
      'fc1/kernel': 0.5,
      'out/kernel': 0.5,
    });
    const w = { 'fc1/kernel': new Float32Array(20).map((_, i) => i + 1), 'out/kernel': new Float32Array(50).map((_, i) => i + 1), 'conv1/kernel': new Float32Array(18).fill(1) };
    const mask = { 'fc1/kernel': new Float32Array(20).fill(1), 'out/kernel': new Float32Array(50).fill(1), 'conv1/kernel': new Float32Array(18).fill(1) };
    const next = getStrategy('magnitude').prune({ ...s, weights: w, mask, prunable, ranking: 'layerwise', seed: 0 });
    assert.equal(countAlive(next['fc1/kernel']!), 16); // 20% of 20
    assert.equal(countAlive(next['out/kernel']!), 45); // 10% of 50
    assert.equal(countAlive(next['conv1/kernel']!), 18); // skipped
    assert.equal(next['fc1/kernel']![3], 0);
    assert.equal(next['fc1/kernel']![4], 1);
  });
});

describe('random controls', () => {
  test('random structure keeps each layer’s count and changes the pattern', () => {
    const mask = { a: new Float32Array(100).map((_, i) => (i < 30 ? 1 : 0)), b: new Float32Array(7).fill(1) };
    const s = shuffleMask(mask, 42);
    assert.equal(countAlive(s.a!), 30);
    assert.equal(countAlive(s.b!), 7);
    assert.notDeepEqual([...s.a!], [...mask.a!]);
    assert.deepEqual([...shuffleMask(mask, 42).a!], [...s.a!], 'same seed, same shuffle');
  });
});

describe('mask files', () => {
  test('serialise and parse back bit-exact; densities', () => {
    const mask = { x: f(1, 0, 0, 1, 1, 0, 1, 0, 1), y: f(0, 0) };
    const back = deserializeMask(serializeMask(mask));
    assert.deepEqual([...back.x!], [...mask.x!]);
    assert.deepEqual([...back.y!], [0, 0]);
    assert.deepEqual(layerDensity(mask), { x: 5 / 9, y: 0 });
  });
});
