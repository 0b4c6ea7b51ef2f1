// Graph knowledge for structural (filter) pruning: which channels of a TF.js
// Layers model are coupled, so that removing one output filter of a conv also
// removes its bias, the matching entries of a following BatchNormalization,
// and the matching input channels of every consumer (next conv, depthwise
// conv, a Dense after Flatten, a Dense after global pooling). Layers joined by
// a residual Add (or another elementwise merge) must lose the same channels,
// so their producers form one *channel group*; Concatenate stacks the groups
// of its inputs side by side. Pure analysis: no weights are read or written
// here (importance.ts scores channels, algorithm.ts decides, surgery.ts cuts).
//
// Every tensor's last axis is described by a ChannelLayout: `positions`
// blocks (more than one only after a Flatten: rows in flattened HWC order,
// position-major, channel fastest), each block a sequence of segments, a
// segment being the channels of one group, each repeated `mult` times in a
// row (a DepthwiseConv2D with depth multiplier m emits channel c as c*m..c*m+m-1).
import * as tf from '@tensorflow/tfjs';
import { fixedDims, product, shapesOf, type Shape } from '../../shapes.js';
import { layerCost, type CostTerm } from '../../models/flops.js';

type Layer = tf.layers.Layer;

export interface ChannelSegment {
  /** Channel group id (index into DependencyGraph.groups). */
  group: number;
  /** Channels of the group. */
  size: number;
  /** Consecutive copies of each channel (DepthwiseConv2D depth multiplier). */
  mult: number;
}

export interface ChannelLayout {
  positions: number;
  segments: ChannelSegment[];
}

export type NodeRole =
  | 'input'
  | 'producer'
  | 'separable'
  | 'depthwise'
  | 'batchnorm'
  | 'passthrough'
  | 'flatten'
  | 'global-pool'
  | 'merge'
  | 'concat'
  | 'unsupported';

export interface GraphNode {
  name: string;
  className: string;
  role: NodeRole;
  /** Inbound layer names, in call order. */
  inputs: string[];
  inLayouts: ChannelLayout[];
  outLayout: ChannelLayout;
  /** Group of the channels this layer creates (producers and separable convs). */
  produces?: number;
  /** Multiply-adds at batch 1 of the unpruned layer, split by what they scale with. */
  cost: CostTerm[];
  /** Why channels cannot be pruned through this layer (role `unsupported`). */
  reason?: string;
}

export type GroupKind = 'conv' | 'dense' | 'input' | 'opaque';

export interface ChannelGroup {
  id: number;
  /** Name of its first producer in topological order (stable across surgery); `input` for the model input. */
  name: string;
  size: number;
  kind: GroupKind;
  /** Layers whose output filters / units are these channels. */
  producers: string[];
  /** Layers with weights to slice on their input side (producers downstream, BatchNormalization, DepthwiseConv2D). */
  consumers: string[];
  /** Why this group cannot be pruned; absent when it can. */
  blocked?: string;
}

export interface DependencyGraph {
  model: string;
  /** Topological order. */
  nodes: GraphNode[];
  groups: ChannelGroup[];
}

const CONV_PRODUCERS = new Set(['Conv1D', 'Conv2D', 'Conv3D', 'Conv2DTranspose', 'Conv3DTranspose']);
const SEPARABLE = new Set(['SeparableConv1D', 'SeparableConv2D']);
const GLOBAL_POOL = new Set(['GlobalAveragePooling1D', 'GlobalAveragePooling2D', 'GlobalMaxPooling1D', 'GlobalMaxPooling2D']);
const MERGE = new Set(['Add', 'Subtract', 'Multiply', 'Average', 'Maximum', 'Minimum']);
/** Weightless layers that act on each channel on its own (or only along spatial axes). */
const PASSTHROUGH = new Set([
  'Activation', 'ReLU', 'LeakyReLU', 'ELU', 'ThresholdedReLU',
  'Dropout', 'SpatialDropout1D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout',
  'MaxPooling1D', 'MaxPooling2D', 'MaxPooling3D', 'AveragePooling1D', 'AveragePooling2D', 'AveragePooling3D',
  'ZeroPadding2D', 'Cropping2D', 'UpSampling2D',
  // Elementwise layers of imported ONNX models (models/layers/).
  'TsScale', 'TsClip', 'TsHardSigmoid', 'TsHardSwish',
]);
/** Activations that mix the channels of their input, so a removed channel changes the others. */
const MIXING_ACTIVATIONS = new Set(['softmax', 'logSoftmax']);

export const isTransposeConv = (cls: string): boolean => cls === 'Conv2DTranspose' || cls === 'Conv3DTranspose';

const dims = (layer: Layer, s: Shape): number[] => fixedDims(s, `filter pruning: layer '${layer.name}'`);

export function layoutWidth(l: ChannelLayout): number {
  return l.positions * l.segments.reduce((a, s) => a + s.size * s.mult, 0);
}

/** Union-find over provisional group ids; reasons to block travel with the union. */
class Groups {
  parent: number[] = [];
  info: Array<{ size: number; kind: GroupKind; producers: string[]; consumers: Set<string>; blocked: string[] }> = [];

  create(size: number, kind: GroupKind, producer?: string): number {
    const id = this.parent.length;
    this.parent.push(id);
    this.info.push({ size, kind, producers: producer ? [producer] : [], consumers: new Set(), blocked: [] });
    return id;
  }

  find(x: number): number {
    while (this.parent[x] !== x) {
      this.parent[x] = this.parent[this.parent[x]!]!;
      x = this.parent[x]!;
    }
    return x;
  }

  union(a: number, b: number, at: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    const ia = this.info[ra]!;
    const ib = this.info[rb]!;
    if (ia.size !== ib.size) throw new Error(`filter pruning: layer '${at}' joins tensors of ${ia.size} and ${ib.size} channels`);
    // The lower id stays root so group order follows first appearance.
    const [root, child] = ra < rb ? [ra, rb] : [rb, ra];
    this.parent[child] = root;
    const ir = this.info[root]!;
    const ic = this.info[child]!;
    ir.producers.push(...ic.producers);
    for (const c of ic.consumers) ir.consumers.add(c);
    ir.blocked.push(...ic.blocked);
    const kinds = new Set([ir.kind, ic.kind]);
    ir.kind = (['input', 'conv', 'dense', 'opaque'] as const).find((k) => kinds.has(k))!;
  }

  block(layout: ChannelLayout, reason: string): void {
    for (const s of layout.segments) this.info[this.find(s.group)]!.blocked.push(reason);
  }

  consume(layout: ChannelLayout, layer: string): void {
    for (const s of layout.segments) this.info[this.find(s.group)]!.consumers.add(layer);
  }
}

const sameStructure = (a: ChannelLayout, b: ChannelLayout): boolean =>
  a.positions === b.positions &&
  a.segments.length === b.segments.length &&
  a.segments.every((s, i) => s.size === b.segments[i]!.size && s.mult === b.segments[i]!.mult);

interface Visit {
  layer: Layer;
  nodeIndex: number;
}

/** Layers reachable backwards from the outputs, inputs before users; shared layers are rejected. */
function topological(model: tf.LayersModel): Visit[] {
  const order: Visit[] = [];
  const seen = new Map<Layer, number>();
  const visit = (t: tf.SymbolicTensor): void => {
    const layer = t.sourceLayer;
    if (t.tensorIndex !== 0) {
      throw new Error(`filter pruning: layer '${layer.name}' (${layer.getClassName()}) has several outputs, which filter pruning does not handle`);
    }
    const prev = seen.get(layer);
    if (prev !== undefined) {
      if (prev !== t.nodeIndex) {
        throw new Error(`filter pruning: layer '${layer.name}' (${layer.getClassName()}) is called more than once (a shared layer), which filter pruning does not handle`);
      }
      return;
    }
    seen.set(layer, t.nodeIndex);
    if (layer.getClassName() !== 'InputLayer') {
      const node = layer.inboundNodes[t.nodeIndex];
      for (const input of node?.inputTensors ?? []) visit(input);
    }
    order.push({ layer, nodeIndex: t.nodeIndex });
  };
  for (const t of model.outputs) visit(t);
  return order;
}

/** Why a layer's config stops channel tracking, or null. */
function configProblem(cls: string, cfg: Record<string, unknown>, outRank: number): string | null {
  if (cfg.dataFormat === 'channelsFirst') return 'uses channels-first data, which filter pruning does not handle';
  if (cls === 'BatchNormalization') {
    const axis = cfg.axis;
    if (!(axis === -1 || axis === outRank - 1)) return `normalises axis ${JSON.stringify(axis)}, not the channel axis`;
  }
  if (cls === 'Activation' && MIXING_ACTIVATIONS.has(String(cfg.activation))) return `applies ${String(cfg.activation)} across channels`;
  return null;
}

/** One layer being added to the graph: what a handler reads, and the node it fills in. */
interface LayerStep {
  layer: Layer;
  nodeIndex: number;
  cls: string;
  cfg: Record<string, unknown>;
  node: GraphNode;
  inLayouts: ChannelLayout[];
  inShape: Shape;
  outShape: Shape;
  channels: number;
  g: Groups;
}

type LayerHandler = (s: LayerStep) => void;

const single = (s: LayerStep): ChannelLayout => s.inLayouts[0]!;

/** A layout of one fresh group, as a producer (or an opaque layer) emits it. */
const ownLayout = (id: number, channels: number): ChannelLayout => ({ positions: 1, segments: [{ group: id, size: channels, mult: 1 }] });

/** Blocks every group flowing in and gives the output a fresh, blocked group. */
function unsupported(s: LayerStep, why: string): void {
  const { node, g } = s;
  node.role = 'unsupported';
  node.reason = `layer '${s.layer.name}' (${s.cls}) ${why}`;
  for (const l of s.inLayouts) g.block(l, node.reason);
  const id = g.create(s.channels, 'opaque');
  g.info[id]!.blocked.push(node.reason);
  node.outLayout = ownLayout(id, s.channels);
}

/** Inputs joined channel by channel (an elementwise merge, a spatial concat): their groups become one. */
function sameChannels(s: LayerStep, verb: string): void {
  const first = s.inLayouts[0]!;
  if (!s.inLayouts.every((l) => sameStructure(l, first))) return unsupported(s, `${verb} tensors whose channels are laid out differently`);
  s.node.role = 'merge';
  for (const l of s.inLayouts.slice(1)) l.segments.forEach((seg, i) => s.g.union(first.segments[i]!.group, seg.group, s.layer.name));
  s.node.outLayout = first;
}

function inputLayer(s: LayerStep): void {
  s.node.role = 'input';
  const id = s.g.create(s.channels, 'input');
  s.g.info[id]!.blocked.push('it is the model input');
  s.node.outLayout = ownLayout(id, s.channels);
}

function producer(s: LayerStep): void {
  const { node, g, layer, cfg } = s;
  node.role = 'producer';
  const inL = single(s);
  const id = g.create(s.channels, s.cls === 'Dense' ? 'dense' : 'conv', layer.name);
  g.consume(inL, layer.name);
  if (MIXING_ACTIVATIONS.has(String(cfg.activation))) g.info[id]!.blocked.push(`layer '${layer.name}' applies ${String(cfg.activation)} across its outputs`);
  node.produces = id;
  node.outLayout = ownLayout(id, s.channels);
  node.cost = layerCost(layer, s.nodeIndex, 'filter pruning');
}

function separable(s: LayerStep): void {
  const { node, g, layer } = s;
  node.role = 'separable';
  const inL = single(s);
  if (inL.positions !== 1) return unsupported(s, 'reads a flattened tensor');
  const id = g.create(s.channels, 'conv', layer.name);
  g.consume(inL, layer.name);
  node.produces = id;
  node.outLayout = ownLayout(id, s.channels);
  node.cost = layerCost(layer, s.nodeIndex, 'filter pruning');
}

function depthwise(s: LayerStep): void {
  const { node, layer } = s;
  const inL = single(s);
  if (inL.positions !== 1) return unsupported(s, 'reads a flattened tensor');
  node.role = 'depthwise';
  const m = Number(s.cfg.depthMultiplier ?? 1);
  s.g.consume(inL, layer.name);
  node.outLayout = { positions: 1, segments: inL.segments.map((seg) => ({ ...seg, mult: seg.mult * m })) };
  node.cost = layerCost(layer, s.nodeIndex, 'filter pruning');
}

function batchNorm(s: LayerStep): void {
  s.node.role = 'batchnorm';
  s.g.consume(single(s), s.layer.name);
  s.node.outLayout = single(s);
}

function passthrough(s: LayerStep): void {
  s.node.role = 'passthrough';
  s.node.outLayout = single(s);
}

function flatten(s: LayerStep): void {
  s.node.role = 'flatten';
  const inL = single(s);
  const inDims = dims(s.layer, s.inShape);
  s.node.outLayout = { positions: inL.positions * product(inDims.slice(0, -1)), segments: inL.segments };
}

function globalPool(s: LayerStep): void {
  if (single(s).positions !== 1) return unsupported(s, 'pools a flattened tensor');
  s.node.role = 'global-pool';
  s.node.outLayout = single(s);
}

function concatenate(s: LayerStep): void {
  const axis = Number(s.cfg.axis ?? -1);
  // Stacking along a spatial axis: every input keeps the same channels.
  if (!(axis === -1 || axis === s.outShape.length - 1)) return sameChannels(s, 'concatenates');
  if (s.inLayouts.some((l) => l.positions !== 1)) return unsupported(s, 'concatenates flattened tensors');
  s.node.role = 'concat';
  s.node.outLayout = { positions: 1, segments: s.inLayouts.flatMap((l) => l.segments) };
}

/** Layer class to the handler that follows its channels; a class not listed cannot be pruned through. */
const HANDLERS = new Map<string, LayerHandler>([
  ...[...CONV_PRODUCERS, 'Dense'].map((c) => [c, producer] as const),
  ...[...SEPARABLE].map((c) => [c, separable] as const),
  ['DepthwiseConv2D', depthwise],
  ['BatchNormalization', batchNorm],
  ...[...PASSTHROUGH].map((c) => [c, passthrough] as const),
  ['Flatten', flatten],
  ...[...GLOBAL_POOL].map((c) => [c, globalPool] as const),
  ...[...MERGE].map((c) => [c, (s: LayerStep) => sameChannels(s, 'merges')] as const),
  ['Concatenate', concatenate],
]);

/** The node of one layer, its groups created or joined in `g`; `layoutOf` holds the layouts of earlier layers. */
function addLayer(g: Groups, layoutOf: Map<string, ChannelLayout>, { layer, nodeIndex }: Visit): GraphNode {
  const cls = layer.getClassName();
  const inbound = cls === 'InputLayer' ? [] : (layer.inboundNodes[nodeIndex]?.inputTensors ?? []);
  const inputs = inbound.map((t) => t.sourceLayer.name);
  const inLayouts = inputs.map((n) => layoutOf.get(n)!);
  const boundary = layer.inboundNodes[nodeIndex]!;
  const outShape = shapesOf(boundary.outputShapes)[0]!;
  const inShape = shapesOf(boundary.inputShapes)[0] ?? outShape;
  const channels = dims(layer, outShape).at(-1) ?? 1;
  const cfg = (layer instanceof tf.LayersModel ? {} : layer.getConfig()) as Record<string, unknown>;
  const node: GraphNode = { name: layer.name, className: cls, role: 'unsupported', inputs, inLayouts, outLayout: { positions: 1, segments: [] }, cost: [] };
  const step: LayerStep = { layer, nodeIndex, cls, cfg, node, inLayouts, inShape, outShape, channels, g };

  const problem = layer instanceof tf.LayersModel ? 'is a nested model' : configProblem(cls, cfg, outShape.length);
  if (cls === 'InputLayer') inputLayer(step);
  else if (problem !== null) unsupported(step, problem);
  else (HANDLERS.get(cls) ?? ((s: LayerStep) => unsupported(s, 'cannot be pruned through')))(step);
  return node;
}

/** Renumbers the provisional group ids of every node to roots, by first appearance; returns the groups. */
function resolveGroups(g: Groups, nodes: GraphNode[]): ChannelGroup[] {
  const idOf = new Map<number, number>();
  const groups: ChannelGroup[] = [];
  const resolve = (raw: number): number => {
    const root = g.find(raw);
    let id = idOf.get(root);
    if (id === undefined) {
      id = groups.length;
      idOf.set(root, id);
      const info = g.info[root]!;
      groups.push({
        id,
        name: info.producers[0] ?? (info.kind === 'input' ? 'input' : `opaque-${id}`),
        size: info.size,
        kind: info.kind,
        producers: [...info.producers],
        consumers: [...info.consumers],
        ...(info.blocked.length > 0 ? { blocked: info.blocked[0] } : {}),
      });
    }
    return id;
  };
  const remap = (l: ChannelLayout): ChannelLayout => ({ positions: l.positions, segments: l.segments.map((s) => ({ ...s, group: resolve(s.group) })) });
  for (const node of nodes) {
    node.inLayouts = node.inLayouts.map(remap);
    node.outLayout = remap(node.outLayout);
    if (node.produces !== undefined) node.produces = resolve(node.produces);
  }
  // Producers were pushed in merge order; list them topologically.
  const rank = new Map(nodes.map((n, i) => [n.name, i]));
  for (const grp of groups) {
    grp.producers.sort((a, b) => rank.get(a)! - rank.get(b)!);
    grp.consumers.sort((a, b) => rank.get(a)! - rank.get(b)!);
    if (grp.producers.length > 0) grp.name = grp.producers[0]!;
  }
  return groups;
}

/**
 * The channel groups of a model and how every layer sees them. Layers whose
 * channels cannot be followed (Reshape, LayerNormalization, softmax across
 * channels, nested models, unknown classes) block the groups that flow into
 * them, with a reason naming the layer; groups reaching a model output are
 * blocked too (the classifier keeps its classes).
 */
export function buildGraph(model: tf.LayersModel): DependencyGraph {
  const g = new Groups();
  const nodes: GraphNode[] = [];
  const layoutOf = new Map<string, ChannelLayout>();
  for (const visit of topological(model)) {
    const node = addLayer(g, layoutOf, visit);
    layoutOf.set(node.name, node.outLayout);
    nodes.push(node);
  }
  for (const t of model.outputs) {
    const l = layoutOf.get(t.sourceLayer.name)!;
    g.block(l, `its channels reach the model output through layer '${t.sourceLayer.name}'`);
  }
  return { model: model.name, nodes, groups: resolveGroups(g, nodes) };
}

export function nodeByName(graph: DependencyGraph, name: string): GraphNode {
  const n = graph.nodes.find((x) => x.name === name);
  if (n === undefined) throw new Error(`filter pruning: model '${graph.model}' has no layer '${name}'`);
  return n;
}

export function groupByName(graph: DependencyGraph, name: string): ChannelGroup | undefined {
  return graph.groups.find((x) => x.name === name);
}

/** The group a layer belongs to as a producer (any member's name finds the whole residual group). */
export function groupOfLayer(graph: DependencyGraph, layer: string): ChannelGroup | undefined {
  return graph.groups.find((x) => x.producers.includes(layer));
}

/** Output filters / units per producer layer (the "filters kept" metric). */
export function filtersPerLayer(graph: DependencyGraph): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of graph.nodes) if (n.produces !== undefined) out[n.name] = graph.groups[n.produces]!.size;
  return out;
}

/** Short human-readable dump, for errors and logs. */
export function describeGroups(graph: DependencyGraph): string {
  return graph.groups
    .map((x) => `${x.name} (${x.size} ${x.kind}${x.producers.length > 1 ? `, coupled: ${x.producers.join('+')}` : ''}${x.blocked ? `; not prunable: ${x.blocked}` : ''})`)
    .join('\n');
}

/**
 * The weight holding a producer's output filters and where they lie, counted
 * from the last axis: conv kernels are [k..., in, out], transposed convs
 * [k..., out, in], Dense [in, out], a separable conv's pointwise kernel [1.., in, out].
 */
export function producerKernel(node: GraphNode): { weight: string; axisFromEnd: 1 | 2 } {
  if (node.role === 'separable') return { weight: `${node.name}/pointwise_kernel`, axisFromEnd: 1 };
  if (node.role !== 'producer') throw new Error(`filter pruning: layer '${node.name}' (${node.className}) produces no filters`);
  return { weight: `${node.name}/kernel`, axisFromEnd: isTransposeConv(node.className) ? 2 : 1 };
}
