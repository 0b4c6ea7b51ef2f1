// Sensitivity analysis (Li et al. 2017, section 4.1): prune each channel group
// ALONE at several fractions, by importance, and measure the accuracy without
// retraining. Layers whose accuracy barely moves can lose many filters. Also
// picks per-layer fractions from the curves to reach a target FLOP reduction
// (greedy: always take the next fraction step that costs the least accuracy
// per multiply-add saved), and draws the curves as an SVG.
import * as tf from '@tensorflow/tfjs';
import type { WeightMap } from '../types.js';
import type { FilterSensitivity, FilterSensitivityGroup } from '../sink.js';
import { getWeightMap } from '../models/inspect.js';
import { evaluate, type TrainData } from '../training/train.js';
import { groupByName, type DependencyGraph } from '../pruning/structure/graph.js';
import { groupImportance, type ImportanceKind } from '../pruning/structure/importance.js';
import { estimateFlops, topChannels } from '../pruning/structure/algorithm.js';
import { shrinkModel } from '../pruning/structure/surgery.js';
import { lineChartSvg, type Series } from '../report/plot.js';
import { RunCancelled } from '../training/train.js';

export type EvalSplit = TrainData['validation'];

export type GroupSensitivity = FilterSensitivityGroup;

export interface SensitivityResult extends FilterSensitivity {
  importance: ImportanceKind;
}

export interface SensitivityOptions {
  groups: string[];
  fractions?: number[];
  importance: ImportanceKind;
  seed: number;
  /** Examples of the split used (the first n). */
  maxExamples?: number;
  /** Called after each group, for progress. */
  onGroup?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export const DEFAULT_SENSITIVITY_FRACTIONS = [0.25, 0.5, 0.75];

function head(split: EvalSplit, n: number): EvalSplit {
  if (n >= split.n) return split;
  return { x: split.x.slice(0, n), y: split.y.slice(0, n), labels: split.labels.slice(0, n), n };
}

/** Accuracy of the model with `fraction` of one group's filters removed (by surgery), for each group and fraction. */
export async function analyseSensitivity(
  model: tf.LayersModel,
  graph: DependencyGraph,
  split: EvalSplit,
  o: SensitivityOptions,
): Promise<SensitivityResult> {
  const fractions = o.fractions ?? DEFAULT_SENSITIVITY_FRACTIONS;
  const data = head(split, o.maxExamples ?? split.n);
  try {
    const weights: WeightMap = getWeightMap(model);
    const baseline = evaluate(model, data).accuracy;
    const totalFlops = estimateFlops(graph, {});
    const groups: GroupSensitivity[] = [];
    for (const name of o.groups) {
      if (o.signal?.aborted) throw new RunCancelled();
      const group = groupByName(graph, name);
      if (group === undefined) throw new Error(`sensitivity: no channel group '${name}'`);
      const scores = groupImportance(graph, group, weights, o.importance, o.seed);
      const accuracy: number[] = [];
      for (const f of fractions) {
        const keep = Math.max(1, group.size - Math.round(group.size * f));
        const pruned = await shrinkModel(model, { [name]: topChannels(scores, keep) }, graph);
        try {
          accuracy.push(evaluate(pruned, data).accuracy);
        } finally {
          pruned.dispose();
        }
      }
      const flopShare = (totalFlops - estimateFlops(graph, { [name]: 0 })) / totalFlops;
      groups.push({ group: name, layers: [...group.producers], filters: group.size, flopShare, accuracy });
      o.onGroup?.(groups.length, o.groups.length);
    }
    return { fractions, baselineAccuracy: baseline, examples: data.n, importance: o.importance, groups };
  } finally {
    if (data !== split) tf.dispose([data.x, data.y, data.labels]);
  }
}

/**
 * Per-group fractions (group name -> fraction) whose estimated FLOPs are at
 * least `target` below the unpruned model's. Starts from nothing pruned and
 * repeatedly moves one group to its next measured fraction, choosing the move
 * with the smallest accuracy loss per multiply-add saved.
 */
export function fractionsForFlopTarget(graph: DependencyGraph, s: FilterSensitivity, target: number): Record<string, number> {
  if (!(target > 0 && target < 1)) throw new Error(`targetFlopReduction must be in (0, 1), got ${target}`);
  const base = estimateFlops(graph, {});
  const level = new Map<string, number>(s.groups.map((g) => [g.group, -1]));
  const sizes = new Map(s.groups.map((g) => [g.group, g.filters]));
  const kept = (lv: Map<string, number>): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [name, l] of lv) {
      if (l < 0) continue;
      const size = sizes.get(name)!;
      out[name] = Math.max(1, size - Math.round(size * s.fractions[l]!));
    }
    return out;
  };
  const drop = (g: GroupSensitivity, l: number) => (l < 0 ? 0 : Math.max(0, s.baselineAccuracy - g.accuracy[l]!));
  let flops = base;
  while (1 - flops / base < target) {
    let best: { name: string; cost: number; flops: number } | null = null;
    for (const g of s.groups) {
      const l = level.get(g.group)!;
      if (l + 1 >= s.fractions.length) continue;
      const trial = new Map(level).set(g.group, l + 1);
      const f = estimateFlops(graph, kept(trial));
      const saved = flops - f;
      if (saved <= 0) continue;
      // Tiny epsilon: with equal accuracy cost, the bigger FLOP saving wins.
      const cost = (drop(g, l + 1) - drop(g, l) + 1e-9) / saved;
      if (best === null || cost < best.cost) best = { name: g.group, cost, flops: f };
    }
    if (best === null) {
      throw new Error(`targetFlopReduction ${target} is out of reach: pruning every analysed layer at the largest fraction (${s.fractions.at(-1)}) saves ${((1 - flops / base) * 100).toFixed(1)}% of FLOPs`);
    }
    level.set(best.name, level.get(best.name)! + 1);
    flops = best.flops;
  }
  const out: Record<string, number> = {};
  for (const [name, l] of level) if (l >= 0) out[name] = s.fractions[l]!;
  return out;
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/**
 * Accuracy vs % of filters kept, one line per group (Li et al., Figure 2b
 * style); six groups per panel so the legend (two rows of three) fits.
 */
export function sensitivitySvg(s: SensitivityResult): string {
  const series: Series[] = s.groups.map((g, i) => ({
    label: g.group,
    color: PALETTE[i % PALETTE.length]!,
    dashed: i >= PALETTE.length,
    points: [[100, s.baselineAccuracy * 100] as [number, number], ...s.fractions.map((f, j): [number, number] => [100 * (1 - f), g.accuracy[j]! * 100])],
  }));
  const panels = [];
  for (let i = 0; i < series.length; i += 6) {
    const part = series.slice(i, i + 6);
    panels.push({ title: `Filter-pruning sensitivity (${s.importance}), ${part.length === 1 ? part[0]!.label : `${part[0]!.label}..${part.at(-1)!.label}`}`, yLabel: 'accuracy without retraining (%)', series: part });
  }
  return lineChartSvg(panels, { width: 460, height: 360, xLabel: '% of filters kept' });
}
