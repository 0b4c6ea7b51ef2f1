// Pruning strategies behind one interface (open_lth's registry idea): the
// engine asks for a strategy by name and calls `prune`; it never switches on
// the kind itself.
import type { Mask, PrunableWeight } from '../types.js';
import { layerFractions, pruneGlobal, pruneLayerwise, pruneToDensity, type FractionSettings, type Weights } from './magnitude.js';

export interface PruneRequest extends FractionSettings {
  weights: Weights;
  mask: Mask;
  prunable: PrunableWeight[];
  ranking: 'layerwise' | 'global';
  /** Prune straight to this density (one-shot) instead of one round's fractions. */
  toDensity?: number;
  seed: number;
}

export interface Strategy {
  name: string;
  description: string;
  prune(req: PruneRequest): Mask;
}

const magnitude: Strategy = {
  name: 'magnitude',
  description: 'Drop the surviving weights of smallest magnitude (lottery-ticket IMP)',
  prune(req) {
    const fractions = layerFractions(req.prunable, req);
    const names = Object.keys(fractions);
    if (req.toDensity !== undefined) return pruneToDensity(req.weights, req.mask, names, req.toDensity, req.ranking);
    if (req.ranking === 'global') return pruneGlobal(req.weights, req.mask, names, req.fraction ?? req.denseFraction);
    return pruneLayerwise(req.weights, req.mask, fractions);
  },
};

const strategies = new Map<string, Strategy>([magnitude].map((s) => [s.name, s]));

export function getStrategy(name: string): Strategy {
  const s = strategies.get(name);
  if (!s) throw new Error(`unknown pruning strategy '${name}' (known: ${[...strategies.keys()].join(', ')})`);
  return s;
}
