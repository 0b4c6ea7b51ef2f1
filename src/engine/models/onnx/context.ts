// What every ONNX op handler (ops/) works with: the value kinds, attribute
// readers, the Converter (values, layer names, pending weights) and the one
// typed context a node's handler receives, refusal by node name included.
import * as tf from '@tensorflow/tfjs';
import { ModelImportError } from '../import/errors.js';
import { num, type AttrProto, type ConstValue, type NodeProto, type ParsedOnnx } from './parse.js';

/** The batch dim inside a folded shape constant (Shape of a tensor): only Gather/Unsqueeze/Concat/Reshape may carry it. */
export const BATCH = -0x7fffffff;

export interface TensorVal {
  kind: 'tensor';
  t: tf.SymbolicTensor;
  /** ONNX dims without the batch: [C, H, W] or [F]. */
  dims: number[];
  /** An ONNX [N, C, 1, 1] held as [N, C] (after a global pool). */
  squeezed: boolean;
  /** Rank 4 whose ONNX dims are [H, W, C] (the NHWC side of tf2onnx's Transposes), held as is. */
  nhwc?: boolean;
}
export type Val = { kind: 'const'; c: ConstValue } | TensorVal;
export type Attrs = Map<string, AttrProto>;

export const unsupported = (message: string) => new ModelImportError('UNSUPPORTED_MODEL', message, 'model.onnx');

export function attrs(node: NodeProto): Attrs {
  return new Map((node.attribute ?? []).map((a) => [a.name ?? '', a]));
}
export function attrInt(a: Attrs, name: string, dflt: number): number {
  const v = a.get(name);
  return v ? num(v.i as never) : dflt;
}
export function attrFloat(a: Attrs, name: string, dflt: number): number {
  const v = a.get(name);
  return v ? (v.f ?? dflt) : dflt;
}
export function attrInts(a: Attrs, name: string): number[] | null {
  const v = a.get(name);
  return v ? (v.ints ?? []).map((x) => num(x as never)) : null;
}
export function attrString(a: Attrs, name: string, dflt: string): string {
  const v = a.get(name);
  return v?.s ? new TextDecoder().decode(v.s) : dflt;
}

export const product = (xs: number[]) => xs.reduce((p, x) => p * x, 1);
export const f32eq = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));
export const isPerm = (node: NodeProto, perm: number[]) => (attrInts(attrs(node), 'perm') ?? []).join() === perm.join();

/** TF's 'same' padding [begin, end] for one spatial axis. */
export function samePads(size: number, k: number, s: number, d: number): [number, number] {
  const out = Math.ceil(size / s);
  const total = Math.max((out - 1) * s + (k - 1) * d + 1 - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

export class Converter {
  readonly values = new Map<string, Val>();
  readonly usedNames = new Set<string>();
  readonly consumers = new Map<string, NodeProto[]>();
  /** Add nodes already folded into the bias of the layer before them. */
  readonly fused = new Set<NodeProto>();
  /** Weights to set once the model is built: layer and tensors in its getWeights() order. */
  readonly pending: { layer: tf.layers.Layer; weights: tf.Tensor[] }[] = [];

  /** Layers built so far (the input's counts), refused past maxLayers: a 100,000-node graph stops at the cap, not a stack overflow. */
  private layers = 1;
  /** The node being converted, named when the layer cap is reached. */
  current = '';

  constructor(readonly p: ParsedOnnx, readonly maxLayers = Infinity, readonly maxConstValues = Infinity) {
    for (const [name, c] of p.initializers) this.values.set(name, { kind: 'const', c });
    for (const n of p.nodes) {
      for (const i of n.input ?? []) {
        if (!i) continue;
        const list = this.consumers.get(i);
        if (list) list.push(n);
        else this.consumers.set(i, [n]);
      }
    }
  }

  layerName(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[_.-]+|[_.-]+$/g, '') || 'layer';
    let name = clean;
    for (let i = 1; this.usedNames.has(name); i++) name = `${clean}_${i}`;
    this.usedNames.add(name);
    return name;
  }

  apply(layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[], weights?: tf.Tensor[]): tf.SymbolicTensor {
    if (++this.layers > this.maxLayers) {
      throw new ModelImportError('INVALID_ARGUMENT', `model.onnx: node ${this.current} makes layer ${this.layers.toLocaleString('en-US')}; the limit is ${this.maxLayers.toLocaleString('en-US')} layers`, 'model.onnx');
    }
    const out = layer.apply(x) as tf.SymbolicTensor;
    if (weights) this.pending.push({ layer, weights });
    return out;
  }
}

export function nodeLabel(node: NodeProto, index: number): string {
  return node.name ? `'${node.name}'` : `#${index}`;
}

/** What a folder (a node whose inputs are all constants) receives. */
export interface FoldCtx {
  node: NodeProto;
  op: string;
  /** The node's label in messages: 'name' or #index. */
  where: string;
  a: Attrs;
  opset: number;
  ins: (ConstValue | null)[];
  x: ConstValue;
}

/** What a layer-building handler receives: its node, inputs (the first a tensor) and the helpers it builds with. */
export interface NodeCtx {
  cv: Converter;
  node: NodeProto;
  op: string;
  index: number;
  where: string;
  a: Attrs;
  opset: number;
  ins: (Val | null)[];
  x: TensorVal;
  outName: string;
  set(v: Val): void;
  refuse(why: string): never;
  /** Input i, which must be a constant. */
  constAt(i: number, what: string): ConstValue;
  /** The next layer name for this node. */
  name(): string;
  /** A weight tensor disposed once the model holds it. */
  keep(t: tf.Tensor): tf.Tensor;
  /** A rank-4 NHWC tensor (re-expanding a squeezed [N, C]). */
  as4(v: TensorVal): tf.SymbolicTensor;
  /** This node's output: `layer` applied to x, x's shape kept. */
  elementwise(layer: tf.layers.Layer): void;
  /** Add node right after this one adding a constant per-output bias, folded into its bias. */
  biasAfter(channels: number): ConstValue | null;
}

export type OpHandler = (c: NodeCtx) => void;
export type Folder = (f: FoldCtx) => ConstValue;

/** One ONNX op: how it becomes a layer, how it folds on constants, and whether it is accepted on constants only. */
export interface OpEntry {
  convert?: OpHandler;
  fold?: Folder;
  constantsOnly?: true;
}
export type OpFamily = Readonly<Record<string, OpEntry>>;

/** Node inputs by name, refused when the graph reads a value before it is defined. */
export function nodeInputs(cv: Converter, node: NodeProto, where: string): (Val | null)[] {
  return (node.input ?? []).map((n) => {
    if (!n) return null;
    const v = cv.values.get(n);
    if (!v) throw new ModelImportError('INVALID_ARGUMENT', `node ${where} (${node.opType!}) reads '${n}', which no earlier node or initializer defines (the graph is not topologically sorted)`, 'model.onnx');
    return v;
  });
}

export interface NodeBasics {
  node: NodeProto;
  index: number;
  where: string;
  a: Attrs;
  ins: (Val | null)[];
  x: TensorVal;
  created: tf.Tensor[];
}

/** The context of a node whose first input is a tensor. */
export function nodeCtx(cv: Converter, b: NodeBasics): NodeCtx {
  const { node, index, where, ins } = b;
  const op = node.opType!;
  const outName = node.output?.[0] ?? '';
  /** Output of an Add folded into this node's bias: it names the same value. */
  let fusedOut: string | null = null;
  const refuse = (why: string): never => { throw unsupported(`node ${where} (${op}) ${why}`); };
  const c: NodeCtx = {
    cv, node, op, index, where, a: b.a, opset: cv.p.opset, ins, x: b.x, outName, refuse,
    set(v) {
      cv.values.set(outName, v);
      if (fusedOut) cv.values.set(fusedOut, v);
    },
    constAt(i, what) {
      const v = ins[i];
      if (!v || v.kind !== 'const') return refuse(`needs a constant ${what} (input ${i})`);
      return v.c;
    },
    name: () => cv.layerName(node.name || `${op}_${index}`),
    keep(t) { b.created.push(t); return t; },
    as4(v) {
      if (v.dims.length !== 3 || v.nhwc) return refuse(`needs an NCHW input, got ONNX shape [N, ${v.dims.join(', ')}]${v.nhwc ? ' (NHWC)' : ''}`);
      if (!v.squeezed) return v.t;
      return cv.apply(tf.layers.reshape({ targetShape: [1, 1, v.dims[0]!], name: cv.layerName(`${node.name || op}_unsqueeze`) }), v.t);
    },
    elementwise: (layer) => c.set({ ...b.x, t: cv.apply(layer, b.x.t) }),
    biasAfter(channels) {
      const users = cv.consumers.get(outName) ?? [];
      if (users.length !== 1 || users[0]!.opType !== 'Add') return null;
      const add = users[0]!;
      const other = (add.input ?? []).find((n) => n !== outName);
      const v = other ? cv.values.get(other) : undefined;
      if (!v || v.kind !== 'const' || v.c.int || product(v.c.dims) !== channels || v.c.dims.filter((d) => d !== 1).length > 1) return null;
      cv.fused.add(add);
      fusedOut = add.output?.[0] ?? null;
      return v.c;
    },
  };
  return c;
}

/**
 * Refuses a conv or pool window that cannot slide over its input: kernel, strides and dilations
 * must be two positive integers each, and the (padded, dilated) kernel must fit the input.
 * Before, a kernel larger than its input built in TF.js and failed only inside onnxruntime (a 500).
 */
export function checkWindow(hw: number[], pads: number[], k: number[], s: number[], d: number[], refuse: (why: string) => never): number[] {
  const pair = (xs: number[]) => xs.length === 2 && xs.every((v) => Number.isInteger(v) && v >= 1);
  if (!pair(k)) return refuse(`has kernel shape ${JSON.stringify(k)}; two positive sizes are needed`);
  if (!pair(s)) return refuse(`has strides ${JSON.stringify(s)}; two positive strides are needed`);
  if (!pair(d)) return refuse(`has dilations ${JSON.stringify(d)}; two positive dilations are needed`);
  const out = [0, 1].map((i) => Math.floor((hw[i]! + pads[i]! + pads[i + 2]! - d[i]! * (k[i]! - 1) - 1) / s[i]!) + 1);
  if (out.some((o) => o < 1)) return refuse(`has a ${k.join('x')} kernel (dilations ${d.join('x')}) larger than its ${hw.join('x')} input padded by ${JSON.stringify(pads)}`);
  return out;
}

/** ONNX pads [top, left, bottom, right] of a conv or pool, from pads or auto_pad. */
export function convPads(a: Attrs, hw: number[], k: number[], s: number[], d: number[], refuse: (why: string) => never): number[] {
  const auto = attrString(a, 'auto_pad', 'NOTSET');
  if (auto === 'VALID') return [0, 0, 0, 0];
  if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') {
    const p = [0, 1].map((i) => samePads(hw[i]!, k[i]!, s[i]!, d[i]!));
    return auto === 'SAME_UPPER' ? [p[0]![0], p[1]![0], p[0]![1], p[1]![1]] : [p[0]![1], p[1]![1], p[0]![0], p[1]![0]];
  }
  if (auto !== 'NOTSET') return refuse(`has auto_pad '${auto}'`);
  const pads = attrInts(a, 'pads') ?? [0, 0, 0, 0];
  if (pads.length !== 4 || pads.some((q) => q < 0)) return refuse(`has pads ${JSON.stringify(pads)}`);
  return pads;
}

export const toTensor = (c: ConstValue) => (c.int ? tf.tensor(c.data as number[], c.dims, 'int32') : tf.tensor(c.data as Float32Array, c.dims, 'float32'));
export const ints = (c: ConstValue) => (c.data as ArrayLike<number>);
export const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** Runs a TF.js computation on constants and reads the result back. */
export function evalConst(fn: () => tf.Tensor, int: boolean): ConstValue {
  const t = tf.tidy(fn);
  const data = t.dataSync();
  const out = { dims: [...t.shape], data: int ? Array.from(data) : Float32Array.from(data), int };
  t.dispose();
  return out;
}
