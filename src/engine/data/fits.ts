// Checks that a dataset can feed a model before any training starts, so a
// mismatch is a clear client error instead of a TF.js shape exception mid-run.

import type { Dataset } from '../types.js';
import { DatasetError } from './errors.js';
import { product } from '../shapes.js';

/**
 * Fits when the example shape equals the model input, ignoring a trailing
 * channel of 1 on either side ([28, 28] vs [28, 28, 1]), or when the model
 * takes a flat vector of the same size (a dense net reads images flattened).
 * Classes fit when every label has an output unit: a model with more outputs
 * than the dataset has classes still trains (the extra units are never targets).
 */
export function checkFits(ds: Dataset, model: { inputShape: number[]; numClasses: number }): void {
  const data = ds.inputShape;
  const want = model.inputShape;
  const squeeze = (s: number[]) => (s.length > 1 && s[s.length - 1] === 1 ? s.slice(0, -1) : s);
  const same = squeeze(data).join('x') === squeeze(want).join('x');
  const flat = want.length === 1 && want[0] === product(data);
  if (!same && !flat) {
    throw new DatasetError(
      `${ds.reference}: examples are ${data.join('x')} but the model expects input ${want.join('x')}`,
      'inputShape',
    );
  }
  if (!(Number.isInteger(model.numClasses) && model.numClasses >= ds.numClasses)) {
    throw new DatasetError(
      `${ds.reference}: dataset has ${ds.numClasses} classes but the model outputs ${model.numClasses}`,
      'numClasses',
    );
  }
}

/**
 * Why a probed dataset cannot feed an uploaded model, in one sentence, or
 * null: the submit-time twin of the loader's check (models/load.ts
 * checkAgainstOptions), on summaries only. The loader runs first on the
 * worker and takes a model only when its input has the data's rank and dims
 * (a -1 dim, free in the stored architecture, matches anything) and its
 * output has exactly the data's classes, so the door asks the same.
 */
export function misfit(
  data: { inputShape: number[]; numClasses: number; maxLabel: number },
  model: { inputShape: number[]; numClasses: number },
  modelName: string,
): string | null {
  if (data.numClasses < 2) return `the dataset has a single class (every label is ${data.maxLabel}); training needs at least 2`;
  const d = data.inputShape;
  const w = model.inputShape;
  const same = d.length === w.length && d.every((x, i) => w[i] === -1 || w[i] === x);
  if (!same) {
    return `the dataset's examples are ${d.join('x')} but ${modelName} expects input ${w.map((x) => (x === -1 ? '?' : x)).join('x')}`;
  }
  if (data.maxLabel >= model.numClasses) {
    return `the dataset has labels up to ${data.maxLabel} but ${modelName} outputs ${model.numClasses} classes`;
  }
  if (data.numClasses !== model.numClasses) {
    return `the dataset has ${data.numClasses} classes but ${modelName} outputs ${model.numClasses}`;
  }
  return null;
}
