// Random controls and the random-pruning baseline. A ticket is only a ticket
// if it beats (a) its own mask with a fresh init and (b) its init with each
// layer's mask shuffled; (b) lives here, (a) needs no mask change at all.
import type { Mask } from '../types.js';
import { countAlive } from './mask.js';
import { mulberry32 as rng, shuffleInPlace, childSeed } from '../rng.js';

/** Random structure: permute each layer's mask, so each layer keeps its count of survivors. */
export function shuffleMask(mask: Mask, seed: number): Mask {
  const out: Mask = {};
  for (const [name, m] of Object.entries(mask)) out[name] = shuffleInPlace(Float32Array.from(m), rng(childSeed(seed, name)));
  return out;
}

/** Random pruning: each layer loses round(fraction × alive) survivors chosen uniformly. */
export function pruneRandom(mask: Mask, fractions: Record<string, number>, seed: number): Mask {
  const next: Mask = { ...mask };
  for (const [name, f] of Object.entries(fractions)) {
    const m = Float32Array.from(mask[name]!);
    const aliveIdx: number[] = [];
    for (let i = 0; i < m.length; i++) if (m[i] !== 0) aliveIdx.push(i);
    const k = Math.min(aliveIdx.length, Math.round(f * countAlive(m)));
    shuffleInPlace(aliveIdx, rng(childSeed(seed, 'random', name)));
    for (let i = 0; i < k; i++) m[aliveIdx[i]!] = 0;
    next[name] = m;
  }
  return next;
}
