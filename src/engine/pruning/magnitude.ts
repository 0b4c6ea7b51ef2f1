// Unstructured magnitude pruning (Frankle & Carbin): drop the surviving
// weights of smallest |w|, either per layer or against one global threshold.
// Pure functions over typed arrays; ties break by layer order then index so
// results replay exactly.
import type { Mask, PrunableWeight } from '../types.js';
import { countAlive } from './mask.js';

export type Weights = Record<string, Float32Array>;

export interface FractionSettings {
  fraction?: number;
  convFraction: number;
  denseFraction: number;
  outputFraction: number;
  skipLayers: string[];
}

/** Per-weight pruning fraction for one round; skipped layers are absent. */
export function layerFractions(prunable: PrunableWeight[], s: FractionSettings): Record<string, number> {
  const out: Record<string, number> = {};
  for (const w of prunable) {
    if (s.skipLayers.includes(w.layer) || s.skipLayers.includes(w.name)) continue;
    out[w.name] = s.fraction ?? (w.kind === 'conv' ? s.convFraction : w.kind === 'output' ? s.outputFraction : s.denseFraction);
  }
  return out;
}

/**
 * Remove exactly `k` alive entries of smallest magnitude across `names`
 * (jointly ranked). Returns new mask arrays for those names.
 */
function removeSmallest(weights: Weights, mask: Mask, names: string[], k: number): Mask {
  const out: Mask = {};
  for (const n of names) out[n] = Float32Array.from(mask[n]!);
  if (k <= 0) return out;
  let alive = 0;
  for (const n of names) alive += countAlive(mask[n]!);
  const vals = new Float32Array(alive);
  let j = 0;
  for (const n of names) {
    const m = mask[n]!;
    const w = weights[n]!;
    for (let i = 0; i < m.length; i++) if (m[i] !== 0) vals[j++] = Math.abs(w[i]!);
  }
  if (k >= alive) {
    for (const n of names) out[n]!.fill(0);
    return out;
  }
  vals.sort();
  const threshold = vals[k - 1]!;
  let removed = 0;
  for (const n of names) {
    const m = out[n]!;
    const w = weights[n]!;
    for (let i = 0; i < m.length; i++) {
      if (m[i] !== 0 && Math.abs(w[i]!) < threshold) {
        m[i] = 0;
        removed++;
      }
    }
  }
  for (const n of names) {
    const m = out[n]!;
    const w = weights[n]!;
    for (let i = 0; i < m.length && removed < k; i++) {
      if (m[i] !== 0 && Math.abs(w[i]!) === threshold) {
        m[i] = 0;
        removed++;
      }
    }
  }
  return out;
}

function checkInputs(weights: Weights, mask: Mask, names: string[]): void {
  for (const n of names) {
    if (!weights[n]) throw new Error(`no weights for ${n}`);
    if (!mask[n]) throw new Error(`no mask for ${n}`);
    if (weights[n]!.length !== mask[n]!.length) throw new Error(`${n}: mask and weight sizes differ`);
  }
}

/** Each layer loses round(fraction × its surviving weights). */
export function pruneLayerwise(weights: Weights, mask: Mask, fractions: Record<string, number>): Mask {
  const names = Object.keys(fractions);
  checkInputs(weights, mask, names);
  const next: Mask = { ...mask };
  for (const n of names) {
    const k = Math.round(fractions[n]! * countAlive(mask[n]!));
    Object.assign(next, removeSmallest(weights, mask, [n], k));
  }
  return next;
}

/** round(fraction × all surviving weights in `names`) go, ranked together. */
export function pruneGlobal(weights: Weights, mask: Mask, names: string[], fraction: number): Mask {
  checkInputs(weights, mask, names);
  let alive = 0;
  for (const n of names) alive += countAlive(mask[n]!);
  return { ...mask, ...removeSmallest(weights, mask, names, Math.round(fraction * alive)) };
}

/** One-shot: prune straight to `density` of each layer (layerwise) or of all `names` (global). */
export function pruneToDensity(
  weights: Weights,
  mask: Mask,
  names: string[],
  density: number,
  ranking: 'layerwise' | 'global',
): Mask {
  checkInputs(weights, mask, names);
  if (ranking === 'global') {
    let alive = 0;
    let total = 0;
    for (const n of names) {
      alive += countAlive(mask[n]!);
      total += mask[n]!.length;
    }
    return { ...mask, ...removeSmallest(weights, mask, names, alive - Math.round(density * total)) };
  }
  const next: Mask = { ...mask };
  for (const n of names) {
    const k = countAlive(mask[n]!) - Math.round(density * mask[n]!.length);
    Object.assign(next, removeSmallest(weights, mask, [n], k));
  }
  return next;
}
