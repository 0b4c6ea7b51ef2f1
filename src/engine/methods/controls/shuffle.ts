// The random-structure control: each layer's mask shuffled (same density per
// layer), survivors reset to the ticket's own rewind point.
import { applyMaskTo } from '../../pruning/mask.js';
import { shuffleMask } from '../../pruning/random.js';
import { childSeed } from '../../rng.js';
import type { Control } from './control.js';

export const shuffle: Control = {
  start({ spec, round, mask, rewindTo }) {
    const shuffled = shuffleMask(mask, childSeed(spec.seed, 'shuffle', round));
    return { start: applyMaskTo(rewindTo, shuffled), mask: shuffled };
  },
};
