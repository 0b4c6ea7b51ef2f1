// Importance of each output channel of a channel group, for filter pruning:
// the L1 norm of the filter's kernel weights (Li et al. 2017, "Pruning
// Filters for Efficient ConvNets": sum of absolute kernel weights, bias and BN
// not included), the L2 norm as a variant, and seeded random scores as the
// control. A group coupled by residual adds has one filter per producer for
// each channel; its score is the SUM over producers of each producer's own
// norm (L1: the L1 norm of all coupled filters together; L2: a sum of L2
// norms, not the L2 norm of the concatenation), so every coupled layer has a
// say. Pure math on weight values; higher score = more important.
import type { WeightMap } from '../../types.js';
import { childSeed, mulberry32 } from '../../rng.js';
import { product } from '../../shapes.js';
import { nodeByName, producerKernel, type ChannelGroup, type DependencyGraph } from './graph.js';

export type ImportanceKind = 'l1' | 'l2' | 'random';

/** Per-index norm along `axis` of a row-major tensor: the norm of every slice `t[..., i, ...]`. */
export function sliceNorms(values: Float32Array, shape: readonly number[], axis: number, kind: 'l1' | 'l2'): Float64Array {
  if (axis < 0 || axis >= shape.length) throw new Error(`sliceNorms: axis ${axis} out of range for shape ${JSON.stringify(shape)}`);
  const n = shape[axis]!;
  const inner = product(shape.slice(axis + 1));
  const out = new Float64Array(n);
  for (let i = 0; i < values.length; i++) {
    const c = Math.floor(i / inner) % n;
    const v = values[i]!;
    out[c] += kind === 'l1' ? Math.abs(v) : v * v;
  }
  if (kind === 'l2') for (let c = 0; c < n; c++) out[c] = Math.sqrt(out[c]!);
  return out;
}

/**
 * Scores of a group's channels from the current weights. `seed` only matters
 * for `random` (derived per group, so groups draw independent scores).
 */
export function groupImportance(
  graph: DependencyGraph,
  group: ChannelGroup,
  weights: WeightMap,
  kind: ImportanceKind,
  seed = 0,
): Float64Array {
  if (kind === 'random') {
    const next = mulberry32(childSeed(seed, 'filter-importance', group.name));
    return Float64Array.from({ length: group.size }, () => next());
  }
  if (group.producers.length === 0) throw new Error(`filter pruning: group '${group.name}' has no producing layer to score`);
  const total = new Float64Array(group.size);
  for (const layer of group.producers) {
    const { weight, axisFromEnd } = producerKernel(nodeByName(graph, layer));
    const w = weights[weight];
    if (w === undefined) throw new Error(`filter pruning: weights lack '${weight}' (layer '${layer}')`);
    const norms = sliceNorms(w.values, w.shape, w.shape.length - axisFromEnd, kind);
    if (norms.length !== group.size) throw new Error(`filter pruning: '${weight}' has ${norms.length} filters, group '${group.name}' ${group.size}`);
    for (let c = 0; c < group.size; c++) total[c] += norms[c]!;
  }
  return total;
}
