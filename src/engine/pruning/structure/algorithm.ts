// The filter-pruning algorithm: WHAT to remove WHEN. Resolves the spec's
// per-layer fractions / one global fraction / layers to skip into a fraction
// of filters per channel group, spreads it over the steps of a one-shot or
// iterative schedule, and picks the channels to keep at each step by
// importance. It also estimates the FLOPs of a plan without building the
// model (used to hit a target FLOP reduction). Graph knowledge is in
// graph.ts, scores in importance.ts, the cutting in surgery.ts.
import type { WeightMap } from '../../types.js';
import { describeGroups, groupByName, groupOfLayer, layoutWidth, type ChannelLayout, type DependencyGraph } from './graph.js';
import { groupImportance, type ImportanceKind } from './importance.js';
import type { PrunePlan } from './surgery.js';

export interface TargetOptions {
  /** Fraction of filters removed from every prunable conv group not named in `fractions`. */
  fraction?: number;
  /** Layer name -> fraction; any producer of a coupled (residual) group names the whole group. Dense layers only prune when named. */
  fractions?: Record<string, number>;
  /** Layers never pruned; skipping any producer of a group skips the group. */
  skip?: string[];
}

export interface FilterTargets {
  /** Group name -> total fraction of its ORIGINAL filters to remove. */
  fractions: Record<string, number>;
  /** Group name -> why it is left whole. */
  skipped: Record<string, string>;
}

/**
 * Which groups lose what fraction. A layer named in `fractions` that cannot be
 * pruned (coupled to the model output, flowing into a layer surgery cannot
 * cut) is an error naming that layer; under a global fraction such groups are
 * only listed in `skipped`.
 */
export function resolveTargets(graph: DependencyGraph, opts: TargetOptions): FilterTargets {
  const fractions: Record<string, number> = {};
  const skipped: Record<string, string> = {};
  const skip = new Set(opts.skip ?? []);
  const skippedBy = (names: string[]) => names.find((n) => skip.has(n));
  for (const [layer, f] of Object.entries(opts.fractions ?? {})) {
    if (!(f >= 0 && f < 1)) throw new Error(`filter pruning: fraction for '${layer}' must be in [0, 1), got ${f}`);
    const group = groupOfLayer(graph, layer);
    if (group === undefined) {
      const known = graph.nodes.find((n) => n.name === layer);
      const why = known ? `layer '${layer}' (${known.className}) has no filters to prune` : `model '${graph.model}' has no layer '${layer}'`;
      throw new Error(`filter pruning: ${why}; prunable groups:\n${describeGroups(graph)}`);
    }
    if (group.blocked !== undefined) throw new Error(`filter pruning: cannot prune layer '${layer}': ${group.blocked}`);
    const by = skippedBy(group.producers);
    if (by !== undefined) throw new Error(`filter pruning: layer '${layer}' has a fraction but '${by}' (coupled with it) is in skipLayers`);
    const prev = fractions[group.name];
    if (prev !== undefined && prev !== f) {
      throw new Error(`filter pruning: layers of coupled group '${group.name}' (${group.producers.join(', ')}) were given different fractions (${prev} and ${f})`);
    }
    if (f > 0) fractions[group.name] = f;
  }
  for (const group of graph.groups) {
    if (group.producers.length === 0 || Object.hasOwn(fractions, group.name)) continue;
    const by = skippedBy(group.producers);
    if (opts.fractions && Object.keys(opts.fractions).some((l) => group.producers.includes(l))) skipped[group.name] = 'its fraction is 0';
    else if (by !== undefined) skipped[group.name] = `'${by}' is in skipLayers`;
    else if (group.blocked !== undefined) skipped[group.name] = group.blocked;
    else if (opts.fraction === undefined) skipped[group.name] = 'no fraction given for it';
    else if (group.kind !== 'conv') skipped[group.name] = 'dense units are pruned only when the layer is named in filterFractions';
    else fractions[group.name] = opts.fraction;
  }
  return { fractions, skipped };
}

/** Filters a group of `size` keeps after `step` of `steps` equal steps towards removing `fraction` (never fewer than one). */
export function keptAfterStep(size: number, fraction: number, step: number, steps: number): number {
  const removed = Math.round((size * fraction * Math.min(step, steps)) / steps);
  return Math.max(1, size - removed);
}

/** Indices of the `keep` highest scores, ascending; ties keep the lower index. */
export function topChannels(scores: ArrayLike<number>, keep: number): number[] {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  return order.slice(0, keep).sort((a, b) => a - b);
}

export interface StepOptions {
  targets: FilterTargets;
  /** Group name -> filters before any pruning (step 0's graph). */
  originalSizes: Record<string, number>;
  step: number;
  steps: number;
  importance: ImportanceKind;
  seed: number;
}

/**
 * The plan for one step on the CURRENT (possibly already shrunken) model:
 * each target group is cut down to its size after `step`, keeping its most
 * important channels by the current weights.
 */
export function planStep(graph: DependencyGraph, weights: WeightMap, o: StepOptions): PrunePlan {
  const plan: PrunePlan = {};
  for (const [name, fraction] of Object.entries(o.targets.fractions)) {
    const group = groupByName(graph, name);
    if (group === undefined) throw new Error(`filter pruning: channel group '${name}' is missing from model '${graph.model}'`);
    const original = o.originalSizes[name] ?? group.size;
    const keep = keptAfterStep(original, fraction, o.step, o.steps);
    if (keep >= group.size) continue;
    const scores = groupImportance(graph, group, weights, o.importance, o.seed + o.step * 7919);
    plan[name] = topChannels(scores, keep);
  }
  return plan;
}

function keptWidth(l: ChannelLayout, kept: Map<number, number>): number {
  return l.positions * l.segments.reduce((a, s) => a + (kept.get(s.group) ?? s.size) * s.mult, 0);
}

/**
 * Multiply-adds at batch 1 if each named group kept `kept[name]` channels,
 * without building the model: every layer's cost scales with the share of its
 * input and / or output channels left (the graph keeps each layer's cost
 * terms from models/flops.ts, the ones countFlops sums).
 */
export function estimateFlops(graph: DependencyGraph, kept: Record<string, number>): number {
  const byId = new Map<number, number>();
  for (const [name, k] of Object.entries(kept)) {
    const g = groupByName(graph, name);
    if (g !== undefined) byId.set(g.id, k);
  }
  let total = 0;
  for (const node of graph.nodes) {
    if (node.cost.length === 0) continue;
    const inL = node.inLayouts[0];
    const inRatio = inL ? keptWidth(inL, byId) / Math.max(1, layoutWidth(inL)) : 1;
    const outRatio = node.produces !== undefined ? (byId.get(node.produces) ?? graph.groups[node.produces]!.size) / graph.groups[node.produces]!.size : 1;
    for (const c of node.cost) total += c.macs * (c.input ? inRatio : 1) * (c.output ? outRatio : 1);
  }
  return total;
}
