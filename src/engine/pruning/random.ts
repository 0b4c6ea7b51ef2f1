// The random-structure control. A ticket is only a ticket if it beats (a) its
// own mask with a fresh init and (b) its init with each layer's mask shuffled;
// (b) lives here, (a) needs no mask change at all.
import type { Mask } from '../types.js';
import { mulberry32 as rng, shuffleInPlace, childSeed } from '../rng.js';

/** Random structure: permute each layer's mask, so each layer keeps its count of survivors. */
export function shuffleMask(mask: Mask, seed: number): Mask {
  const out: Mask = {};
  for (const [name, m] of Object.entries(mask)) out[name] = shuffleInPlace(Float32Array.from(m), rng(childSeed(seed, name)));
  return out;
}
