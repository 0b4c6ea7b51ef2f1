// Filter surgery: builds a NEW, smaller TF.js Layers model (Sequential or
// functional) in which the removed channels of each pruned group are really
// gone: the producers' `filters` / `units` are reduced in the topology JSON,
// and every weight is sliced: the producers' kernels and biases on their
// output axis, a following BatchNormalization's gamma / beta / moving
// statistics, a DepthwiseConv2D's kernel and bias, and the input axis of every
// consumer (next conv, a Dense after Flatten, rows in flattened HWC order).
// `silenceWeights` is the masked twin used to prove the surgery exact: it
// zeroes the same channels in place so that each of them emits exactly zero.
import * as tf from '@tensorflow/tfjs';
import type { WeightMap } from '../../types.js';
import { product } from '../../shapes.js';
import { getWeightMap, setWeightMap } from '../../models/inspect.js';
import { buildGraph, describeGroups, isTransposeConv, type ChannelLayout, type DependencyGraph, type GraphNode } from './graph.js';

/** Group name -> indices of the channels to KEEP, ascending. Groups not named keep everything. */
export type PrunePlan = Record<string, number[]>;

/** Kept indices per group id, after checking the plan against the graph. */
export type ResolvedPlan = Map<number, Int32Array>;

export function resolvePlan(graph: DependencyGraph, plan: PrunePlan): ResolvedPlan {
  const out: ResolvedPlan = new Map();
  for (const [name, kept] of Object.entries(plan)) {
    const group = graph.groups.find((x) => x.name === name);
    if (group === undefined) {
      throw new Error(`filter pruning: model '${graph.model}' has no channel group '${name}'; groups:\n${describeGroups(graph)}`);
    }
    if (kept.length === group.size && kept.every((k, i) => k === i)) continue;
    if (group.blocked !== undefined) throw new Error(`filter pruning: cannot prune '${name}': ${group.blocked}`);
    if (kept.length === 0) throw new Error(`filter pruning: plan keeps no channel of '${name}'; keep at least one`);
    kept.forEach((k, i) => {
      if (!Number.isInteger(k) || k < 0 || k >= group.size) throw new Error(`filter pruning: plan for '${name}' keeps channel ${k}, outside 0..${group.size - 1}`);
      if (i > 0 && k <= kept[i - 1]!) throw new Error(`filter pruning: plan for '${name}' must list kept channels in ascending order without repeats`);
    });
    out.set(group.id, Int32Array.from(kept));
  }
  return out;
}

/** Indices along a tensor's last axis that survive, or null when the layout loses nothing. */
export function layoutIndices(layout: ChannelLayout, kept: ResolvedPlan): Int32Array | null {
  if (!layout.segments.some((s) => kept.has(s.group))) return null;
  const block = layout.segments.reduce((a, s) => a + s.size * s.mult, 0);
  const perBlock: number[] = [];
  let offset = 0;
  for (const s of layout.segments) {
    const keep = kept.get(s.group);
    const channels = keep ?? Int32Array.from({ length: s.size }, (_, i) => i);
    for (const c of channels) for (let j = 0; j < s.mult; j++) perBlock.push(offset + c * s.mult + j);
    offset += s.size * s.mult;
  }
  const out = new Int32Array(layout.positions * perBlock.length);
  for (let p = 0; p < layout.positions; p++) {
    for (let i = 0; i < perBlock.length; i++) out[p * perBlock.length + i] = p * block + perBlock[i]!;
  }
  return out;
}

/** The entries `t[..., indices[i], ...]` along `axis` of a row-major tensor. */
export function takeAlong(
  t: { shape: number[]; values: Float32Array },
  axis: number,
  indices: Int32Array,
): { shape: number[]; values: Float32Array } {
  const { shape, values } = t;
  const n = shape[axis]!;
  const outer = product(shape.slice(0, axis));
  const inner = product(shape.slice(axis + 1));
  const out = new Float32Array(outer * indices.length * inner);
  let o = 0;
  for (let a = 0; a < outer; a++) {
    for (const k of indices) {
      if (k < 0 || k >= n) throw new Error(`takeAlong: index ${k} outside axis of ${n}`);
      const start = (a * n + k) * inner;
      out.set(values.subarray(start, start + inner), o);
      o += inner;
    }
  }
  const newShape = [...shape];
  newShape[axis] = indices.length;
  return { shape: newShape, values: out };
}

/** Zero `t[..., i, ...]` along `axis` for every i NOT in `keep` (a copy). */
function zeroAlong(t: { shape: number[]; values: Float32Array }, axis: number, keep: Int32Array): { shape: number[]; values: Float32Array } {
  const n = t.shape[axis]!;
  const inner = product(t.shape.slice(axis + 1));
  const alive = new Uint8Array(n);
  for (const k of keep) alive[k] = 1;
  const values = Float32Array.from(t.values);
  for (let i = 0; i < values.length; i++) if (alive[Math.floor(i / inner) % n] === 0) values[i] = 0;
  return { shape: [...t.shape], values };
}

interface AxisCut {
  /** Short weight name (`kernel`, `bias`, `gamma`, ...). */
  weight: string;
  axisFromEnd: number;
  keep: Int32Array | null;
}

/** What each weight of a layer loses; `silence` marks the cuts that make a removed channel emit zero. */
function cutsOf(node: GraphNode, kept: ResolvedPlan): { slice: AxisCut[]; silence: AxisCut[] } {
  const ownOut = (): Int32Array | null => (node.produces === undefined ? null : (kept.get(node.produces) ?? null));
  const input = node.inLayouts[0] ? layoutIndices(node.inLayouts[0], kept) : null;
  switch (node.role) {
    case 'producer': {
      const out = ownOut();
      const transpose = isTransposeConv(node.className);
      const cuts: AxisCut[] = [
        { weight: 'kernel', axisFromEnd: transpose ? 1 : 2, keep: input },
        { weight: 'kernel', axisFromEnd: transpose ? 2 : 1, keep: out },
        { weight: 'bias', axisFromEnd: 1, keep: out },
      ];
      return { slice: cuts, silence: cuts.slice(1) };
    }
    case 'separable': {
      const out = ownOut();
      const cuts: AxisCut[] = [
        { weight: 'depthwise_kernel', axisFromEnd: 2, keep: input },
        // Its input axis reads the depthwise output (each channel repeated depth-multiplier times): set in transform().
        { weight: 'pointwise_kernel', axisFromEnd: 2, keep: null },
        { weight: 'pointwise_kernel', axisFromEnd: 1, keep: out },
        { weight: 'bias', axisFromEnd: 1, keep: out },
      ];
      return { slice: cuts, silence: cuts.slice(2) };
    }
    case 'depthwise': {
      const out = layoutIndices(node.outLayout, kept);
      const cuts: AxisCut[] = [
        { weight: 'depthwise_kernel', axisFromEnd: 2, keep: input },
        { weight: 'bias', axisFromEnd: 1, keep: out },
      ];
      return { slice: cuts, silence: cuts.slice(1) };
    }
    case 'batchnorm': {
      const cuts = ['gamma', 'beta', 'moving_mean', 'moving_variance'].map((weight) => ({ weight, axisFromEnd: 1, keep: input }));
      return { slice: cuts, silence: cuts.slice(0, 2) };
    }
    default:
      return { slice: [], silence: [] };
  }
}

function layerWeights(weights: WeightMap, layer: string): string[] {
  return Object.keys(weights).filter((k) => k.startsWith(`${layer}/`));
}

function touchesPlan(node: GraphNode, kept: ResolvedPlan): boolean {
  return [...node.inLayouts, node.outLayout].some((l) => l.segments.some((s) => kept.has(s.group)));
}

function transform(
  graph: DependencyGraph,
  weights: WeightMap,
  plan: PrunePlan,
  mode: 'slice' | 'silence',
): WeightMap {
  const kept = resolvePlan(graph, plan);
  const out: WeightMap = { ...weights };
  for (const node of graph.nodes) {
    const names = layerWeights(weights, node.name);
    if (names.length === 0 || !touchesPlan(node, kept)) continue;
    const { slice, silence } = cutsOf(node, kept);
    if (slice.length === 0) {
      throw new Error(`filter pruning: layer '${node.name}' (${node.className}) holds weights on pruned channels and surgery cannot slice them`);
    }
    let sepPointwise: Int32Array | null = null;
    if (node.role === 'separable') {
      // Depth multiplier from the depthwise kernel's last axis: [k..., in, m].
      const dk = weights[`${node.name}/depthwise_kernel`]!;
      const m = dk.shape.at(-1)!;
      const inL = node.inLayouts[0]!;
      sepPointwise = layoutIndices({ positions: inL.positions, segments: inL.segments.map((s) => ({ ...s, mult: s.mult * m })) }, kept);
    }
    const cuts = mode === 'slice' ? slice : silence;
    for (const cut of cuts) {
      const keep = node.role === 'separable' && cut.weight === 'pointwise_kernel' && cut.axisFromEnd === 2 ? sepPointwise : cut.keep;
      if (keep === null) continue;
      const name = `${node.name}/${cut.weight}`;
      const w = out[name];
      if (w === undefined) continue; // useBias: false, center/scale: false
      const axis = w.shape.length - cut.axisFromEnd;
      const width = w.shape[axis]!;
      if (keep.length > 0 && keep[keep.length - 1]! >= width) {
        throw new Error(`filter pruning: layer '${node.name}': '${cut.weight}' has ${width} channels on axis ${axis}, the plan needs index ${keep[keep.length - 1]}`);
      }
      out[name] = mode === 'slice' ? takeAlong(w, axis, keep) : zeroAlong(w, axis, keep);
    }
  }
  return out;
}

/** The weights of the shrunken model: every removed channel sliced out everywhere it appears. */
export function sliceWeights(graph: DependencyGraph, weights: WeightMap, plan: PrunePlan): WeightMap {
  return transform(graph, weights, plan, 'slice');
}

/**
 * Same-shape weights in which each removed channel emits exactly zero: its
 * filter and bias zeroed, the gamma and beta of a following BatchNormalization
 * zeroed, and a following depthwise conv's bias zeroed. With activations that
 * map 0 to 0 the model then computes what the shrunken model computes.
 */
export function silenceWeights(graph: DependencyGraph, weights: WeightMap, plan: PrunePlan): WeightMap {
  return transform(graph, weights, plan, 'silence');
}

type Json = Record<string, unknown>;
const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Layer entries of a Sequential (either config form) or functional topology. */
function topologyLayers(topology: Json): Json[] {
  const config = topology.config;
  const layers = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
  if (!Array.isArray(layers)) throw new Error(`filter pruning: model topology of class '${String(topology.class_name)}' has no layer list`);
  return layers.filter(isObject);
}

/** A copy of the topology with every pruned producer's `filters` / `units` reduced. */
export function shrinkTopology(topology: Json, graph: DependencyGraph, plan: PrunePlan): Json {
  const kept = resolvePlan(graph, plan);
  const copy = structuredClone(topology);
  const entries = topologyLayers(copy);
  for (const node of graph.nodes) {
    if (node.produces === undefined) continue;
    const keep = kept.get(node.produces);
    if (keep === undefined) continue;
    const entry = entries.find((e) => isObject(e.config) && e.config.name === node.name);
    if (entry === undefined || !isObject(entry.config)) throw new Error(`filter pruning: layer '${node.name}' is missing from the model topology`);
    const field = node.className === 'Dense' ? 'units' : 'filters';
    if (typeof entry.config[field] !== 'number') throw new Error(`filter pruning: layer '${node.name}' (${node.className}) has no '${field}' in its config`);
    entry.config[field] = keep.length;
  }
  return copy;
}

/**
 * A new model without the removed channels, holding the original's remaining
 * weights; the original is left untouched. Layer names (and so weight names)
 * are kept, so plans and weight maps carry over between the two.
 */
export async function shrinkModel(model: tf.LayersModel, plan: PrunePlan, graph: DependencyGraph = buildGraph(model)): Promise<tf.LayersModel> {
  const weights = sliceWeights(graph, getWeightMap(model), plan);
  const topology = shrinkTopology(model.toJSON(null, false) as Json, graph, plan);
  const smaller = await tf.models.modelFromJSON({ modelTopology: topology } as tf.io.ModelJSON);
  try {
    setWeightMap(smaller, weights, { requireAll: true });
  } catch (e) {
    smaller.dispose();
    throw e;
  }
  return smaller;
}
