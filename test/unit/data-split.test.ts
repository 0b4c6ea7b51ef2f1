// Validation carve, maxTrain, option checks, and checkFits, on hand-made data
// where every example carries its own index so membership can be checked exactly.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DatasetError, checkFits } from '../../src/engine/data/index.js';
import type { Examples, LoadedData } from '../../src/engine/data/examples.js';
import { permutation } from '../../src/engine/rng.js';
import { assemble, checkSplitOptions } from '../../src/engine/data/split.js';
import type { Dataset } from '../../src/engine/types.js';

/** n one-pixel examples: x = index / 1000, y = index % 3. */
function examples(n: number, file = 'train.bin'): Examples {
  return {
    x: Float32Array.from({ length: n }, (_, i) => i / 1000),
    y: Int32Array.from({ length: n }, (_, i) => i % 3),
    n,
    shape: [1],
    imageFile: file,
    imageField: 'train',
    labelFile: file,
    labelField: 'train',
  };
}
const data = (n: number, numClasses?: number): LoadedData => ({
  name: 't',
  sha256: 'abc',
  numClasses,
  train: examples(n),
  test: { ...examples(4, 'test.bin'), imageField: 'test', labelField: 'test' },
});
const indices = (s: { x: Float32Array }) => Array.from(s.x, (v) => Math.round(v * 1000));

function expectError(fn: () => unknown, field: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DatasetError, String(err));
    assert.equal(err.field, field);
    assert.match(err.message, message);
    return true;
  });
}

describe('permutation', () => {
  test('is a fixed function of the seed (changing it would move every stored split)', () => {
    assert.deepEqual(Array.from(permutation(10, 42)), [0, 7, 3, 5, 2, 1, 8, 9, 4, 6]);
    assert.deepEqual(Array.from(permutation(10, 0)), [3, 8, 6, 4, 5, 9, 7, 1, 0, 2]);
    assert.deepEqual(Array.from(permutation(1000, 7)).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  });
});

describe('validation carve', () => {
  test('default 10%: the first round(0.1 n) of the seeded permutation are validation, in that order', () => {
    const opts = checkSplitOptions({ seed: 42 });
    const ds = assemble('ref', data(10), opts);
    assert.equal(ds.validation.n, 1);
    assert.equal(ds.train.n, 9);
    assert.deepEqual(indices(ds.validation), [0]);
    assert.deepEqual(indices(ds.train), [7, 3, 5, 2, 1, 8, 9, 4, 6]);
    assert.deepEqual(Array.from(ds.train.y), [1, 0, 2, 2, 1, 2, 0, 1, 0]);
    assert.equal(ds.numClasses, 3);
    assert.deepEqual(ds.inputShape, [1]);
    assert.equal(ds.test.n, 4);
  });

  test('same seed, same split; another seed, another split; no overlap, nothing lost', () => {
    const a = assemble('r', data(200), checkSplitOptions({ seed: 1, validationFraction: 0.25 }));
    const b = assemble('r', data(200), checkSplitOptions({ seed: 1, validationFraction: 0.25 }));
    const c = assemble('r', data(200), checkSplitOptions({ seed: 2, validationFraction: 0.25 }));
    assert.deepEqual(a, b);
    assert.equal(a.validation.n, 50);
    assert.notDeepEqual(indices(a.validation), indices(c.validation));
    const all = [...indices(a.train), ...indices(a.validation)].sort((x, y) => x - y);
    assert.deepEqual(all, Array.from({ length: 200 }, (_, i) => i));
  });

  test('maxTrain caps the pool before the carve', () => {
    const ds = assemble('r', data(100), checkSplitOptions({ seed: 0, maxTrain: 20 }));
    assert.equal(ds.validation.n, 2);
    assert.equal(ds.train.n, 18);
    const perm = Array.from(permutation(100, 0)).slice(0, 20);
    assert.deepEqual([...indices(ds.validation), ...indices(ds.train)], perm);
    const big = assemble('r', data(5), checkSplitOptions({ maxTrain: 1000 }));
    assert.equal(big.train.n + big.validation.n, 5);
  });

  test('fraction 0 keeps everything for training; a tiny fraction still holds out one', () => {
    const none = assemble('r', data(10), checkSplitOptions({ validationFraction: 0 }));
    assert.equal(none.validation.n, 0);
    assert.equal(none.train.n, 10);
    const tiny = assemble('r', data(10), checkSplitOptions({ validationFraction: 0.01 }));
    assert.equal(tiny.validation.n, 1);
  });

  test('a carve that leaves no training data is an empty-split error', () => {
    expectError(() => assemble('r', data(1), checkSplitOptions({})), 'validationFraction', /train\.bin: empty split: no training examples left after holding out 1 of 1/);
    expectError(() => assemble('r', data(50), checkSplitOptions({ maxTrain: 1 })), 'maxTrain', /empty split/);
  });

  test('pinned class count: labels beyond it are named with file and index', () => {
    expectError(() => assemble('r', data(10, 2), checkSplitOptions({})), 'train', /train\.bin: label 2 at index 2 is out of range \[0, 2\)/);
    assert.equal(assemble('r', data(10, 7), checkSplitOptions({})).numClasses, 7);
  });

  test('option values are checked', () => {
    expectError(() => checkSplitOptions({ validationFraction: 1 }), 'validationFraction', /\[0, 1\), got 1/);
    expectError(() => checkSplitOptions({ validationFraction: -0.1 }), 'validationFraction', /got -0\.1/);
    expectError(() => checkSplitOptions({ validationFraction: Number.NaN }), 'validationFraction', /got NaN/);
    expectError(() => checkSplitOptions({ seed: 1.5 }), 'seed', /integer, got 1\.5/);
    expectError(() => checkSplitOptions({ maxTrain: 0 }), 'maxTrain', /positive integer, got 0/);
    expectError(() => checkSplitOptions({ maxTrain: 2.5 }), 'maxTrain', /got 2\.5/);
  });
});

describe('checkFits', () => {
  const ds = (inputShape: number[], numClasses: number): Dataset => ({
    reference: 'builtin:mnist',
    name: 'mnist',
    sha256: '',
    inputShape,
    numClasses,
    train: { x: new Float32Array(0), y: new Int32Array(0), n: 0 },
    validation: { x: new Float32Array(0), y: new Int32Array(0), n: 0 },
    test: { x: new Float32Array(0), y: new Int32Array(0), n: 0 },
  });

  test('same shape, a dropped channel of 1, or a flat vector of the same size fit', () => {
    checkFits(ds([28, 28, 1], 10), { inputShape: [28, 28, 1], numClasses: 10 });
    checkFits(ds([28, 28, 1], 10), { inputShape: [28, 28], numClasses: 10 });
    checkFits(ds([28, 28, 1], 10), { inputShape: [784], numClasses: 10 });
    checkFits(ds([32, 32, 3], 10), { inputShape: [3072], numClasses: 10 });
    checkFits(ds([784], 10), { inputShape: [784], numClasses: 10 });
  });

  test('other shapes do not', () => {
    expectError(() => checkFits(ds([28, 28, 1], 10), { inputShape: [32, 32, 3], numClasses: 10 }), 'inputShape', /builtin:mnist: examples are 28x28x1 but the model expects input 32x32x3/);
    expectError(() => checkFits(ds([784], 10), { inputShape: [28, 28, 1], numClasses: 10 }), 'inputShape', /784 but the model expects input 28x28x1/);
    expectError(() => checkFits(ds([28, 28, 1], 10), { inputShape: [783], numClasses: 10 }), 'inputShape', /783/);
  });

  test('the model needs an output per class; extra outputs are allowed', () => {
    checkFits(ds([28, 28, 1], 10), { inputShape: [28, 28, 1], numClasses: 12 });
    expectError(() => checkFits(ds([28, 28, 1], 10), { inputShape: [28, 28, 1], numClasses: 9 }), 'numClasses', /dataset has 10 classes but the model outputs 9/);
  });
});
