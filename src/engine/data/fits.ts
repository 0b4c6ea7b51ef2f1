// Checks that a dataset can feed a model before any training starts, so a
// mismatch is a clear client error instead of a TF.js shape exception mid-run.

import type { Dataset } from '../types.js';
import { DatasetError } from './errors.js';
import { product } from './examples.js';

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
 * Why a probed dataset cannot feed a model, in one sentence, or null: the
 * submit-time twin of checkFits, on summaries only (no tensors). Model dims of
 * -1 (free in the stored architecture) match anything.
 */
export function misfit(
  data: { inputShape: number[]; numClasses: number; maxLabel: number },
  model: { inputShape: number[]; numClasses: number },
  modelName: string,
): string | null {
  const squeeze = (s: number[]) => (s.length > 1 && s[s.length - 1] === 1 ? s.slice(0, -1) : s);
  const d = squeeze(data.inputShape);
  const w = squeeze(model.inputShape);
  const same = d.length === w.length && d.every((x, i) => w[i] === -1 || w[i] === x);
  const flat = model.inputShape.length === 1 && (model.inputShape[0] === -1 || model.inputShape[0] === product(data.inputShape));
  if (!same && !flat) {
    return `the dataset's examples are ${data.inputShape.join('x')} but ${modelName} expects input ${model.inputShape.map((x) => (x === -1 ? '?' : x)).join('x')}`;
  }
  if (data.maxLabel >= model.numClasses) {
    return `the dataset has labels up to ${data.maxLabel} but ${modelName} outputs ${model.numClasses} classes`;
  }
  if (data.numClasses > model.numClasses) {
    return `the dataset has ${data.numClasses} classes but ${modelName} outputs ${model.numClasses}`;
  }
  return null;
}
