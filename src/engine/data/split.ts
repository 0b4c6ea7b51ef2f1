// Turns decoded files into the engine's Dataset: fixes the class count, checks
// labels and shapes across splits, and carves the validation split out of the
// training data with a seeded permutation (so a seed always names the same split).

import type { Dataset, Split } from '../types.js';
import { DatasetError } from './errors.js';
import type { Examples, LoadedData } from './examples.js';
import { product } from '../shapes.js';
import { permutation } from '../rng.js';
import { sharedFloat32, sharedInt32, shareSplit } from './shared.js';

export interface SplitOptions {
  /** Fraction of the training pool held out for validation, in [0, 1). Default 0.1. */
  validationFraction: number;
  /** Seeds the permutation that picks validation and the maxTrain subset. Default 0. */
  seed: number;
  /** Caps the training pool before the carve: train.n + validation.n <= maxTrain. */
  maxTrain?: number;
}

export const DEFAULT_VALIDATION_FRACTION = 0.1;

export function checkSplitOptions(opts: { validationFraction?: number; seed?: number; maxTrain?: number }): SplitOptions {
  const validationFraction = opts.validationFraction ?? DEFAULT_VALIDATION_FRACTION;
  if (!(typeof validationFraction === 'number' && validationFraction >= 0 && validationFraction < 1)) {
    throw new DatasetError(`validationFraction must be in [0, 1), got ${String(validationFraction)}`, 'validationFraction');
  }
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new DatasetError(`seed must be an integer, got ${String(seed)}`, 'seed');
  const maxTrain = opts.maxTrain;
  if (maxTrain !== undefined && !(Number.isSafeInteger(maxTrain) && maxTrain >= 1)) {
    throw new DatasetError(`maxTrain must be a positive integer, got ${String(maxTrain)}`, 'maxTrain');
  }
  return { validationFraction, seed, maxTrain };
}

/** Examples of a training pool of `pool` held out for validation. */
export function validationSize(pool: number, validationFraction: number): number {
  // At least one whenever one was asked for: early stopping needs something to measure.
  return validationFraction === 0 ? 0 : Math.min(pool, Math.max(1, Math.round(validationFraction * pool)));
}

export function assemble(reference: string, data: LoadedData, opts: SplitOptions): Dataset {
  const { train, test } = data;
  for (const split of [train, test]) {
    if (split.n === 0) {
      throw new DatasetError(`${split.imageFile}: empty split (0 examples)`, split.imageField, split.imageFile);
    }
  }
  if (train.shape.join('x') !== test.shape.join('x')) {
    throw new DatasetError(
      `${test.imageFile}: test images are ${test.shape.join('x')} but training images (${train.imageFile}) are ${train.shape.join('x')}`,
      test.imageField,
      test.imageFile,
    );
  }
  const numClasses = data.numClasses ?? Math.max(maxLabel(train.y), maxLabel(test.y)) + 1;
  checkLabels(train, numClasses);
  checkLabels(test, numClasses);

  const perm = permutation(train.n, opts.seed);
  const pool = Math.min(train.n, opts.maxTrain ?? train.n);
  const nVal = validationSize(pool, opts.validationFraction);
  if (pool - nVal === 0) {
    throw new DatasetError(
      `${train.imageFile}: empty split: no training examples left after holding out ${nVal} of ${pool} for validation`,
      opts.maxTrain !== undefined && opts.maxTrain < train.n ? 'maxTrain' : 'validationFraction',
      train.imageFile,
    );
  }
  return {
    reference,
    name: data.name,
    sha256: data.sha256,
    inputShape: [...train.shape],
    numClasses,
    train: gather(train, perm.subarray(nVal, pool)),
    validation: gather(train, perm.subarray(0, nVal)),
    test: shareSplit({ x: test.x, y: test.y, n: test.n }),
  };
}

function maxLabel(y: Int32Array): number {
  let m = 0;
  for (let i = 0; i < y.length; i++) if (y[i] > m) m = y[i];
  return m;
}

function checkLabels(split: Examples, numClasses: number): void {
  for (let i = 0; i < split.n; i++) {
    const v = split.y[i];
    if (v < 0 || v >= numClasses) {
      throw new DatasetError(
        `${split.labelFile}: label ${v} at index ${i} is out of range [0, ${numClasses})`,
        split.labelField,
        split.labelFile,
      );
    }
  }
}

/** The examples at `indices`, in that order, on shared buffers (trial workers share them, see shared.ts). */
function gather(src: Examples, indices: Int32Array): Split {
  const size = product(src.shape);
  const x = sharedFloat32(indices.length * size);
  const y = sharedInt32(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    x.set(src.x.subarray(j * size, (j + 1) * size), i * size);
    y[i] = src.y[j];
  }
  return { x, y, n: indices.length };
}
