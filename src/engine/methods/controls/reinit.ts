// The random-reinit control: the ticket's mask on a fresh initialisation of
// the same architecture.
import type * as tf from '@tensorflow/tfjs';
import { getWeightMap } from '../../models/inspect.js';
import { createModel } from '../../models/registry.js';
import type { ModelSource } from '../../models/source.js';
import { applyMaskTo } from '../../pruning/mask.js';
import { childSeed, mulberry32 } from '../../rng.js';
import type { Dataset, WeightMap } from '../../types.js';
import type { Control } from './control.js';

export const reinit: Control = {
  start({ spec, round, mask, model, source, dataset }) {
    const fresh = freshWeights(source, model, dataset, childSeed(spec.seed, 'reinit', round));
    return { start: applyMaskTo(fresh, mask), mask };
  },
};

/** A fresh initialisation of the same architecture. */
export function freshWeights(source: ModelSource, model: tf.LayersModel, ds: Dataset, seed: number): WeightMap {
  if (source.kind === 'zoo') {
    const m = createModel(source.name, { inputShape: ds.inputShape, numClasses: ds.numClasses, seed });
    const w = getWeightMap(m);
    m.dispose();
    return w;
  }
  // Uploaded models (possibly pretrained): a seeded Glorot-uniform draw for every kernel and
  // the standard initial values for everything else, so nothing trained leaks into the control.
  const next = mulberry32(seed);
  const out: WeightMap = {};
  for (const [name, { shape, values }] of Object.entries(getWeightMap(model))) {
    const short = name.slice(name.lastIndexOf('/') + 1);
    if (short === 'kernel' || short.endsWith('_kernel')) {
      const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const fanOut = shape.at(-1)! * (shape.length > 2 ? shape.slice(0, -2).reduce((a, b) => a * b, 1) : 1);
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      out[name] = { shape, values: Float32Array.from(values, () => (next() * 2 - 1) * limit) };
    } else {
      const one = short === 'gamma' || short === 'moving_variance';
      out[name] = { shape, values: new Float32Array(values.length).fill(one ? 1 : 0) };
    }
  }
  return out;
}
