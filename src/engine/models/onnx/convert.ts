// ONNX graph -> TF.js Layers functional model, channels-last. Each ONNX
// value is either a constant (initializers, Constant nodes, and every node
// whose inputs are all constants, folded here: torch's
// Shape→Gather→Unsqueeze→Concat chain before a Reshape ends up as a constant
// shape) or a symbolic tensor of the model being built. Rank-4 tensors are
// NCHW in ONNX and NHWC here, so conv kernels are transposed (OIHW → HWIO),
// channel axes remapped, and a Flatten of a real H×W map first permutes back
// to channels-first so the Dense after it keeps torch's element order. A
// global pool yields [N, C] here for ONNX's [N, C, 1, 1] ("squeezed").
// What cannot be built exactly is refused by node name; ops outside
// SUPPORTED_OPS are all listed at once before anything is built.
import * as tf from '@tensorflow/tfjs';
import { ModelImportError } from '../import/errors.js';
import { TsClip, TsHardSigmoid, TsHardSwish, TsScale } from '../layers/index.js';
import { num, tensorValue, type AttrProto, type ConstValue, type NodeProto, type ParsedOnnx } from './parse.js';

/** Ops that become layers (or vanish: Dropout, Identity). */
export const SUPPORTED_OPS: readonly string[] = Object.freeze([
  'Add', 'AveragePool', 'BatchNormalization', 'Clip', 'Concat', 'Constant', 'Conv', 'Dropout', 'Flatten', 'Gemm',
  'GlobalAveragePool', 'HardSigmoid', 'HardSwish', 'Identity', 'LeakyRelu', 'MatMul', 'MaxPool', 'Mul', 'Pad',
  'ReduceMean', 'Relu', 'Reshape', 'Shape', 'Sigmoid', 'Softmax', 'Tanh', 'Transpose',
]);

/** Ops accepted only where every input is constant: folded at import (shape arithmetic, weight preprocessing). */
export const CONSTANT_OPS: readonly string[] = Object.freeze(['Cast', 'Div', 'Gather', 'Sqrt', 'Squeeze', 'Sub', 'Unsqueeze']);

/** The batch dim inside a folded shape constant (Shape of a tensor): only Gather/Unsqueeze/Concat/Reshape may carry it. */
const BATCH = -0x7fffffff;

interface TensorVal {
  kind: 'tensor';
  t: tf.SymbolicTensor;
  /** ONNX dims without the batch: [C, H, W] or [F]. */
  dims: number[];
  /** An ONNX [N, C, 1, 1] held as [N, C] (after a global pool). */
  squeezed: boolean;
  /** Rank 4 whose ONNX dims are [H, W, C] (the NHWC side of tf2onnx's Transposes), held as is. */
  nhwc?: boolean;
}
type Val = { kind: 'const'; c: ConstValue } | TensorVal;

const unsupported = (message: string) => new ModelImportError('UNSUPPORTED_MODEL', message, 'model.onnx');

function attrs(node: NodeProto): Map<string, AttrProto> {
  return new Map((node.attribute ?? []).map((a) => [a.name ?? '', a]));
}
function attrInt(a: Map<string, AttrProto>, name: string, dflt: number): number {
  const v = a.get(name);
  return v ? num(v.i as never) : dflt;
}
function attrFloat(a: Map<string, AttrProto>, name: string, dflt: number): number {
  const v = a.get(name);
  return v ? (v.f ?? dflt) : dflt;
}
function attrInts(a: Map<string, AttrProto>, name: string): number[] | null {
  const v = a.get(name);
  return v ? (v.ints ?? []).map((x) => num(x as never)) : null;
}
function attrString(a: Map<string, AttrProto>, name: string, dflt: string): string {
  const v = a.get(name);
  return v?.s ? new TextDecoder().decode(v.s) : dflt;
}

const product = (xs: number[]) => xs.reduce((p, x) => p * x, 1);
const f32eq = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));

/** TF's 'same' padding [begin, end] for one spatial axis. */
function samePads(size: number, k: number, s: number, d: number): [number, number] {
  const out = Math.ceil(size / s);
  const total = Math.max((out - 1) * s + (k - 1) * d + 1 - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

export interface ConvertOptions {
  name?: string;
}

class Converter {
  readonly values = new Map<string, Val>();
  readonly usedNames = new Set<string>();
  readonly consumers = new Map<string, NodeProto[]>();
  /** Add nodes already folded into the bias of the layer before them. */
  readonly fused = new Set<NodeProto>();
  /** Weights to set once the model is built: layer and tensors in its getWeights() order. */
  readonly pending: { layer: tf.layers.Layer; weights: tf.Tensor[] }[] = [];

  constructor(readonly p: ParsedOnnx) {
    for (const [name, c] of p.initializers) this.values.set(name, { kind: 'const', c });
    for (const n of p.nodes) for (const i of n.input ?? []) if (i) this.consumers.set(i, [...(this.consumers.get(i) ?? []), n]);
  }

  layerName(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[_.-]+|[_.-]+$/g, '') || 'layer';
    let name = clean;
    for (let i = 1; this.usedNames.has(name); i++) name = `${clean}_${i}`;
    this.usedNames.add(name);
    return name;
  }

  apply(layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[], weights?: tf.Tensor[]): tf.SymbolicTensor {
    const out = layer.apply(x) as tf.SymbolicTensor;
    if (weights) this.pending.push({ layer, weights });
    return out;
  }
}

function nodeLabel(node: NodeProto, index: number): string {
  return node.name ? `'${node.name}'` : `#${index}`;
}

/** Every op type outside SUPPORTED_OPS with the first node that uses it, refused together. */
export function checkOps(nodes: NodeProto[]): void {
  const first = new Map<string, string>();
  nodes.forEach((n, i) => {
    const domain = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.` : '';
    const op = `${domain}${n.opType ?? '?'}`;
    const known = SUPPORTED_OPS.includes(n.opType ?? '') || CONSTANT_OPS.includes(n.opType ?? '');
    if ((domain || !known) && !first.has(op)) first.set(op, nodeLabel(n, i));
  });
  if (first.size > 0) {
    const list = [...first].map(([op, node]) => `${op} (first used by node ${node})`).join(', ');
    throw unsupported(`unsupported ONNX op type${first.size > 1 ? 's' : ''}: ${list}; supported ops: ${SUPPORTED_OPS.join(', ')}; on constants only (folded at import): ${CONSTANT_OPS.join(', ')}`);
  }
}

const toTensor = (c: ConstValue) => (c.int ? tf.tensor(c.data as number[], c.dims, 'int32') : tf.tensor(c.data as Float32Array, c.dims, 'float32'));
/** Runs a TF.js computation on constants and reads the result back. */
function evalConst(fn: () => tf.Tensor, int: boolean): ConstValue {
  const t = tf.tidy(fn);
  const data = t.dataSync();
  const out = { dims: [...t.shape], data: int ? Array.from(data) : Float32Array.from(data), int };
  t.dispose();
  return out;
}

/** Folds a node whose inputs are all constants. */
function foldConst(node: NodeProto, ins: (ConstValue | null)[], a: Map<string, AttrProto>, opset: number, where: string): ConstValue {
  const op = node.opType!;
  const x = ins[0]!;
  const ints = (c: ConstValue) => (c.data as ArrayLike<number>);
  const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
  switch (op) {
    case 'Constant': {
      if (a.get('value')?.t) return tensorValue(a.get('value')!.t!, `Constant ${where}`);
      if (a.has('value_float')) return { dims: [], data: new Float32Array([attrFloat(a, 'value_float', 0)]), int: false };
      if (a.has('value_floats')) return { dims: [a.get('value_floats')!.floats!.length], data: Float32Array.from(a.get('value_floats')!.floats!), int: false };
      if (a.has('value_int')) return { dims: [], data: [attrInt(a, 'value_int', 0)], int: true };
      if (a.has('value_ints')) { const v = attrInts(a, 'value_ints')!; return { dims: [v.length], data: v, int: true }; }
      throw unsupported(`Constant ${where} has no value this importer reads (value, value_float(s), value_int(s))`);
    }
    case 'Identity':
    case 'Dropout':
      return x;
    case 'Cast': {
      const to = attrInt(a, 'to', 1);
      const int = to === 6 || to === 7;
      return { dims: x.dims, data: int ? Array.from(ints(x), Math.trunc) : Float32Array.from(ints(x)), int };
    }
    case 'Unsqueeze':
    case 'Squeeze': {
      const axes = opset >= 13 ? (ins[1] ? Array.from(ints(ins[1])) : null) : attrInts(a, 'axes');
      let dims = [...x.dims];
      if (op === 'Squeeze') {
        const ax = (axes ?? dims.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)).map((v) => normAxis(v, dims.length));
        dims = dims.filter((_, i) => !ax.includes(i));
      } else {
        const rank = dims.length + (axes ?? []).length;
        for (const ax of (axes ?? []).map((v) => normAxis(v, rank)).sort((p, q) => p - q)) dims.splice(ax, 0, 1);
      }
      return { dims, data: x.data, int: x.int };
    }
    case 'Concat': {
      const axis = normAxis(attrInt(a, 'axis', 0), x.dims.length);
      if (x.dims.length <= 1 && axis === 0) {
        const all = ins.flatMap((c) => Array.from(ints(c!)));
        return { dims: [all.length], data: x.int ? all : Float32Array.from(all), int: x.int };
      }
      return evalConst(() => tf.concat(ins.map((c) => toTensor(c!)), axis), x.int);
    }
    case 'Gather': {
      const idx = ins[1]!;
      const axis = normAxis(attrInt(a, 'axis', 0), x.dims.length);
      if (x.dims.length === 1) {
        const src = Array.from(ints(x));
        const out = Array.from(ints(idx), (i) => src[i < 0 ? i + src.length : i]!);
        return { dims: idx.dims, data: x.int ? out : Float32Array.from(out), int: x.int };
      }
      return evalConst(() => tf.gather(toTensor(x), toTensor(idx), axis), x.int);
    }
    case 'Shape': {
      const start = attrInt(a, 'start', 0);
      const end = a.has('end') ? attrInt(a, 'end', 0) : x.dims.length;
      const d = x.dims.slice(start, end);
      return { dims: [d.length], data: d, int: true };
    }
    case 'Reshape': {
      const shape = Array.from(ints(ins[1]!));
      const resolved = shape.map((s, i) => (s === 0 ? x.dims[i]! : s));
      const known = product(resolved.filter((s) => s !== -1));
      return { dims: resolved.map((s) => (s === -1 ? product(x.dims) / known : s)), data: x.data, int: x.int };
    }
    case 'Flatten': {
      const axis = normAxis(attrInt(a, 'axis', 1), x.dims.length);
      return { dims: [product(x.dims.slice(0, axis)), product(x.dims.slice(axis))], data: x.data, int: x.int };
    }
    case 'Transpose': {
      const perm = attrInts(a, 'perm') ?? x.dims.map((_, i) => x.dims.length - 1 - i);
      return evalConst(() => tf.transpose(toTensor(x), perm), x.int);
    }
    case 'Add': case 'Sub': case 'Mul': case 'Div': {
      const fn = { Add: tf.add, Sub: tf.sub, Mul: tf.mul, Div: tf.div }[op];
      return evalConst(() => fn(toTensor(x), toTensor(ins[1]!)), x.int && ins[1]!.int);
    }
    case 'Sqrt':
      return evalConst(() => tf.sqrt(toTensor(x)), false);
    default:
      throw unsupported(`node ${where} (${op}) has only constant inputs, and folding ${op} is not supported`);
  }
}

/** 'nhwc' when the graph takes an NHWC image and transposes it to NCHW first (as tf2onnx writes Keras models). */
export type InputLayout = 'nchw' | 'nhwc' | 'flat';

const isPerm = (node: NodeProto, perm: number[]) => (attrInts(attrs(node), 'perm') ?? []).join() === perm.join();

export function inputLayout(p: ParsedOnnx): InputLayout {
  if (p.input.dims.length !== 3) return 'flat';
  const users = p.nodes.filter((n) => (n.input ?? []).includes(p.input.name));
  return users.length > 0 && users.every((n) => n.opType === 'Transpose' && isPerm(n, [0, 3, 1, 2])) ? 'nhwc' : 'nchw';
}

/** Builds the Layers model of a parsed ONNX graph (parse.ts), its weights set from the initializers. */
export function convertOnnx(p: ParsedOnnx, opts: ConvertOptions = {}): tf.LayersModel {
  checkOps(p.nodes);
  const cv = new Converter(p);
  const inDims = p.input.dims;
  const layout = inputLayout(p);
  const shape = layout === 'nchw' ? [inDims[1]!, inDims[2]!, inDims[0]!] : inDims;
  const input = tf.input({ shape, name: cv.layerName(p.input.name) });
  cv.values.set(p.input.name, { kind: 'tensor', t: input, dims: inDims, squeezed: false, nhwc: layout === 'nhwc' });
  const created: tf.Tensor[] = [];
  try {
    p.nodes.forEach((node, index) => {
      if (cv.fused.has(node)) return;
      convertNode(cv, node, index, created);
    });
    const out = cv.values.get(p.output.name);
    if (!out || out.kind !== 'tensor') throw unsupported(`the graph output '${p.output.name}' is ${out ? 'a constant' : 'never computed'}`);
    if (out.t.shape.length !== 2) throw unsupported(`the graph output '${p.output.name}' has ONNX shape [N, ${out.dims.join(', ')}]; a classifier output [N, classes] is supported`);
    const model = tf.model({ inputs: input, outputs: out.t, name: cv.layerName(opts.name ?? p.graphName) });
    for (const { layer, weights } of cv.pending) layer.setWeights(weights);
    return model;
  } finally {
    tf.dispose(created);
    for (const { weights } of cv.pending) tf.dispose(weights);
  }
}

function convertNode(cv: Converter, node: NodeProto, index: number, created: tf.Tensor[]): void {
  const op = node.opType!;
  const where = nodeLabel(node, index);
  const a = attrs(node);
  const opset = cv.p.opset;
  const inNames = node.input ?? [];
  const ins: (Val | null)[] = inNames.map((n) => {
    if (!n) return null;
    const v = cv.values.get(n);
    if (!v) throw new ModelImportError('INVALID_ARGUMENT', `node ${where} (${op}) reads '${n}', which no earlier node or initializer defines (the graph is not topologically sorted)`, 'model.onnx');
    return v;
  });
  const outName = node.output?.[0] ?? '';
  /** Output of an Add folded into this node's bias: it names the same value. */
  let fusedOut: string | null = null;
  const set = (v: Val): void => {
    cv.values.set(outName, v);
    if (fusedOut) cv.values.set(fusedOut, v);
  };
  const refuse = (why: string) => { throw unsupported(`node ${where} (${op}) ${why}`); };

  const allConst = ins.every((v) => v === null || v.kind === 'const');
  if (op === 'Shape' && ins[0]?.kind === 'tensor') {
    const x = ins[0];
    const full = [BATCH, ...x.dims];
    const start = attrInt(a, 'start', 0);
    const end = a.has('end') ? attrInt(a, 'end', 0) : full.length;
    const d = full.slice(start, end);
    return set({ kind: 'const', c: { dims: [d.length], data: d, int: true } });
  }
  if (allConst) return set({ kind: 'const', c: foldConst(node, ins.map((v) => (v && v.kind === 'const' ? v.c : null)), a, opset, where) });

  // Add and Mul commute: the constant may come first.
  if ((op === 'Add' || op === 'Mul') && ins[0]?.kind === 'const' && ins[1]?.kind === 'tensor') ins.reverse();
  const x = ins[0];
  if (!x || x.kind !== 'tensor') return refuse('takes a constant as its first input where a tensor is expected');
  const constAt = (i: number, what: string): ConstValue => {
    const v = ins[i];
    if (!v || v.kind !== 'const') return refuse(`needs a constant ${what} (input ${i})`);
    return v.c;
  };
  const name = () => cv.layerName(node.name || `${op}_${index}`);
  const keep = (t: tf.Tensor) => { created.push(t); return t; };
  /** A rank-4 NHWC tensor (re-expanding a squeezed [N, C]). */
  const as4 = (v: TensorVal): tf.SymbolicTensor => {
    if (v.dims.length !== 3 || v.nhwc) return refuse(`needs an NCHW input, got ONNX shape [N, ${v.dims.join(', ')}]${v.nhwc ? ' (NHWC)' : ''}`);
    if (!v.squeezed) return v.t;
    return cv.apply(tf.layers.reshape({ targetShape: [1, 1, v.dims[0]!], name: cv.layerName(`${node.name || op}_unsqueeze`) }), v.t);
  };
  const elementwise = (layer: tf.layers.Layer) => set({ ...x, t: cv.apply(layer, x.t) });
  /** Add node right after this one adding a constant per-output bias, folded into its bias. */
  const biasAfter = (channels: number): ConstValue | null => {
    const users = cv.consumers.get(outName) ?? [];
    if (users.length !== 1 || users[0]!.opType !== 'Add') return null;
    const add = users[0]!;
    const other = (add.input ?? []).find((n) => n !== outName);
    const v = other ? cv.values.get(other) : undefined;
    if (!v || v.kind !== 'const' || v.c.int || product(v.c.dims) !== channels || v.c.dims.filter((d) => d !== 1).length > 1) return null;
    cv.fused.add(add);
    fusedOut = add.output?.[0] ?? null;
    return v.c;
  };

  switch (op) {
    case 'Identity':
    case 'Dropout':
      return set(x);
    case 'Relu':
      return elementwise(tf.layers.reLU({ name: name() }));
    case 'Sigmoid':
    case 'Tanh':
      return elementwise(tf.layers.activation({ activation: op === 'Sigmoid' ? 'sigmoid' : 'tanh', name: name() }));
    case 'LeakyRelu':
      return elementwise(tf.layers.leakyReLU({ alpha: attrFloat(a, 'alpha', 0.01), name: name() }));
    case 'HardSigmoid': {
      const alpha = attrFloat(a, 'alpha', 0.2);
      const beta = attrFloat(a, 'beta', 0.5);
      // TF.js's hardSigmoid is fixed at 0.2x + 0.5; anything else (torch's 1/6) needs its own layer.
      if (f32eq(alpha, 0.2) && f32eq(beta, 0.5)) return elementwise(tf.layers.activation({ activation: 'hardSigmoid', name: name() }));
      return elementwise(new TsHardSigmoid({ alpha, beta, name: name() }));
    }
    case 'HardSwish':
      return elementwise(new TsHardSwish({ alpha: 1 / 6, beta: 0.5, name: name() }));
    case 'Clip': {
      let min = -Infinity;
      let max = Infinity;
      if (opset < 11) {
        min = attrFloat(a, 'min', -Infinity);
        max = attrFloat(a, 'max', Infinity);
      } else {
        if (ins[1]) min = constAt(1, 'min').data[0]!;
        if (ins[2]) max = constAt(2, 'max').data[0]!;
      }
      if (min <= -3.4e38) min = -Infinity;
      if (max >= 3.4e38) max = Infinity;
      if (min === 0 && max === 6) return elementwise(tf.layers.reLU({ maxValue: 6, name: name() }));
      if (min === 0 && max === Infinity) return elementwise(tf.layers.reLU({ name: name() }));
      return elementwise(new TsClip({ min, max, name: name() }));
    }
    case 'Softmax': {
      const rank = x.squeezed ? 2 : x.dims.length + 1;
      const axis = attrInt(a, 'axis', opset >= 13 ? -1 : 1);
      const ax = axis < 0 ? axis + (x.squeezed ? 4 : rank) : axis;
      if (rank === 2 && ax === 1) return elementwise(tf.layers.softmax({ name: name() }));
      if (x.squeezed && ax === 1) return elementwise(tf.layers.softmax({ name: name() }));
      return refuse(`applies softmax on axis ${axis} of a rank-${rank} tensor; only softmax over the classes of [N, classes] is supported`);
    }
    case 'Conv': {
      const w = constAt(1, 'weight');
      const t4 = as4(x);
      if (w.dims.length !== 4) return refuse(`has a rank-${w.dims.length} weight; only 2-D convolutions are supported`);
      const [cout, cinPerGroup, kh, kw] = w.dims as [number, number, number, number];
      const [cin, h, wd] = x.dims as [number, number, number];
      const group = attrInt(a, 'group', 1);
      const strides = attrInts(a, 'strides') ?? [1, 1];
      const dil = attrInts(a, 'dilations') ?? [1, 1];
      const pads = convPads(a, [h, wd], [kh, kw], strides, dil, refuse);
      if ((strides[0]! > 1 || strides[1]! > 1) && (dil[0]! > 1 || dil[1]! > 1)) return refuse('has both strides and dilations above 1, which TF.js convolutions do not support');
      const depthwise = group > 1 && group === cin && cinPerGroup === 1 && cout % cin === 0;
      if (group !== 1 && !depthwise) return refuse(`is a grouped convolution (group ${group} of ${cin} input channels); only group 1 and depthwise (group = input channels) are supported`);
      if (!depthwise && cinPerGroup !== cin) return refuse(`has a weight for ${cinPerGroup} input channels but its input has ${cin}`);
      const bias = ins[2] ? constAt(2, 'bias') : biasAfter(cout);
      const base = name();
      const { input: padded, padding } = padFor(cv, t4, pads, [h, wd], [kh, kw], strides, dil, base);
      const kernel = keep(tf.tidy(() => {
        const t = tf.tensor(w.data as Float32Array, w.dims);
        return depthwise ? tf.transpose(tf.reshape(t, [cin, cout / cin, kh, kw]), [2, 3, 0, 1]) : tf.transpose(t, [2, 3, 1, 0]);
      }));
      const weights = bias ? [kernel, keep(tf.tensor(Float32Array.from(bias.data as Float32Array), [cout]))] : [kernel];
      const common = { kernelSize: [kh, kw] as [number, number], strides: strides as [number, number], padding, dilationRate: dil as [number, number], useBias: bias !== null, name: base };
      const layer = depthwise
        ? tf.layers.depthwiseConv2d({ ...common, depthMultiplier: cout / cin, depthwiseInitializer: 'zeros' })
        : tf.layers.conv2d({ ...common, filters: cout, kernelInitializer: 'zeros' });
      const y = cv.apply(layer, padded, weights);
      const outHW = [0, 1].map((i) => Math.floor(([h, wd][i]! + pads[i]! + pads[i + 2]! - dil[i]! * ([kh, kw][i]! - 1) - 1) / strides[i]!) + 1);
      return set({ kind: 'tensor', t: y, dims: [cout, outHW[0]!, outHW[1]!], squeezed: false });
    }
    case 'Gemm':
    case 'MatMul': {
      if (!(x.dims.length === 1 || x.squeezed)) return refuse(`multiplies a tensor of ONNX shape [N, ${x.dims.join(', ')}]; only [N, features] inputs are supported`);
      const features = x.dims[0]!;
      const b = constAt(1, 'B');
      if (b.dims.length !== 2) return refuse(`has a rank-${b.dims.length} B; a matrix is expected`);
      const transA = op === 'Gemm' ? attrInt(a, 'transA', 0) : 0;
      if (transA) return refuse('has transA=1 on its input, which a Dense layer cannot express');
      const transB = op === 'Gemm' ? attrInt(a, 'transB', 0) : 0;
      const alpha = op === 'Gemm' ? attrFloat(a, 'alpha', 1) : 1;
      const beta = op === 'Gemm' ? attrFloat(a, 'beta', 1) : 1;
      const [k, units] = transB ? [b.dims[1]!, b.dims[0]!] : [b.dims[0]!, b.dims[1]!];
      if (k !== features) return refuse(`has B of shape ${JSON.stringify(b.dims)} (transB ${transB}) for ${features} input features`);
      let c: ConstValue | null = op === 'Gemm' && ins[2] ? constAt(2, 'C') : null;
      if (c && product(c.dims) !== units && product(c.dims) !== 1) return refuse(`has C of shape ${JSON.stringify(c.dims)}; a bias of ${units} values (or a scalar) is supported`);
      if (!c) c = biasAfter(units);
      const kernel = keep(tf.tidy(() => {
        const t = tf.tensor(b.data as Float32Array, b.dims);
        return tf.mul(transB ? tf.transpose(t) : t, alpha);
      }));
      const weights = [kernel];
      if (c) {
        const cc = c;
        const scale = op === 'Gemm' && ins[2] ? beta : 1;
        weights.push(keep(tf.tidy(() => tf.mul(tf.broadcastTo(tf.reshape(tf.tensor(cc.data as Float32Array, cc.dims), [-1]), [units]), scale))));
      }
      const y = cv.apply(tf.layers.dense({ units, useBias: c !== null, kernelInitializer: 'zeros', name: name() }), x.t, weights);
      return set({ kind: 'tensor', t: y, dims: [units], squeezed: false });
    }
    case 'BatchNormalization': {
      if (attrInt(a, 'training_mode', 0) !== 0) return refuse('is in training mode; export the model in eval mode');
      const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => constAt(i, ['scale', 'B', 'mean', 'var'][i - 1]!));
      if (x.nhwc) return refuse('normalises an NHWC tensor on axis 1, which is not its channel axis');
      const channels = x.dims[0]!;
      const ws = [scale!, bias!, mean!, variance!].map((c) => keep(tf.tensor(Float32Array.from(c.data as Float32Array), [channels])));
      const layer = tf.layers.batchNormalization({ axis: -1, epsilon: attrFloat(a, 'epsilon', 1e-5), name: name() });
      return set({ ...x, t: cv.apply(layer, x.t, ws) });
    }
    case 'MaxPool':
    case 'AveragePool': {
      const t4 = as4(x);
      const [c, h, wd] = x.dims as [number, number, number];
      const k = attrInts(a, 'kernel_shape') ?? refuse('has no kernel_shape');
      const strides = attrInts(a, 'strides') ?? [1, 1];
      if ((attrInts(a, 'dilations') ?? [1, 1]).some((d) => d !== 1)) return refuse('has dilations, which TF.js pooling does not support');
      if (attrInt(a, 'storage_order', 0) !== 0) return refuse('uses storage_order 1');
      const pads = convPads(a, [h, wd], k as number[], strides, [1, 1], refuse);
      const outHW = [0, 1].map((i) => Math.floor(([h, wd][i]! + pads[i]! + pads[i + 2]! - k[i]!) / strides[i]!) + 1);
      if (attrInt(a, 'ceil_mode', 0) === 1) {
        const ceil = [0, 1].map((i) => Math.ceil(([h, wd][i]! + pads[i]! + pads[i + 2]! - k[i]!) / strides[i]!) + 1);
        if (ceil[0] !== outHW[0] || ceil[1] !== outHW[1]) return refuse('uses ceil_mode 1 where it changes the output size');
      }
      const same = [0, 1].map((i) => samePads([h, wd][i]!, k[i]!, strides[i]!, 1));
      const isSame = pads[0] === same[0]![0] && pads[2] === same[0]![1] && pads[1] === same[1]![0] && pads[3] === same[1]![1];
      const zero = pads.every((q) => q === 0);
      let src = t4;
      let padding: 'valid' | 'same' = 'valid';
      const base = name();
      if (zero) padding = 'valid';
      else if (op === 'AveragePool' && attrInt(a, 'count_include_pad', 0) === 1) {
        src = cv.apply(tf.layers.zeroPadding2d({ padding: [[pads[0]!, pads[2]!], [pads[1]!, pads[3]!]], name: cv.layerName(`${base}_pad`) }), t4);
      } else if (isSame) padding = 'same';
      else return refuse(`has pads ${JSON.stringify(pads)}, which TF.js pooling cannot express (only none or TF's 'same')`);
      const cfg = { poolSize: k as [number, number], strides: strides as [number, number], padding, name: base };
      const y = cv.apply(op === 'MaxPool' ? tf.layers.maxPooling2d(cfg) : tf.layers.averagePooling2d(cfg), src);
      return set({ kind: 'tensor', t: y, dims: [c, outHW[0]!, outHW[1]!], squeezed: false });
    }
    case 'GlobalAveragePool':
    case 'ReduceMean': {
      if (x.squeezed) return set(x);
      let keepdims = 1;
      if (op === 'ReduceMean') {
        // From opset 18 the axes are an input (a constant here), no longer an attribute.
        const given = opset >= 18 ? (ins[1] ? Array.from(constAt(1, 'axes').data as ArrayLike<number>) : null) : attrInts(a, 'axes');
        const axes = (given ?? []).map((v) => (v < 0 ? v + 4 : v)).sort();
        // Spatial axes are [2, 3] of NCHW, [1, 2] of an NHWC tensor.
        const spatial = x.nhwc ? '1,2' : '2,3';
        if (axes.join() !== spatial) return refuse(`averages over axes ${JSON.stringify(given ?? 'all')}; only the spatial axes [${spatial.replace(',', ', ')}] are supported`);
        keepdims = attrInt(a, 'keepdims', 1);
        if (x.nhwc && keepdims) return refuse('averages an NHWC tensor keeping its dims; use keepdims 0');
      }
      const channels = x.nhwc ? x.dims[2]! : x.dims[0]!;
      const y = cv.apply(tf.layers.globalAveragePooling2d({ name: name() }), x.nhwc ? x.t : as4(x));
      return set({ kind: 'tensor', t: y, dims: keepdims ? [channels, 1, 1] : [channels], squeezed: keepdims === 1 });
    }
    case 'Flatten':
    case 'Reshape': {
      const total = product(x.dims);
      if (op === 'Flatten') {
        const axis = attrInt(a, 'axis', 1);
        if (axis !== 1) return refuse(`flattens from axis ${axis}; only axis 1 is supported`);
      } else {
        const shape = Array.from(constAt(1, 'shape').data as ArrayLike<number>);
        if (attrInt(a, 'allowzero', 0) === 1 && shape.includes(0)) return refuse('reshapes with allowzero 1 to a shape holding 0; only a flatten to [N, features] is supported');
        const rest = shape.slice(1);
        const batchOk = shape[0] === BATCH || shape[0] === 0 || shape[0] === -1 || (cv.p.input.batch !== null && shape[0] === cv.p.input.batch);
        const restOk = rest.length === 1 && (rest[0] === -1 || rest[0] === total) && !(shape[0] === -1 && rest[0] === -1);
        if (!batchOk || !restOk) return refuse(`reshapes to ${JSON.stringify(shape.map((s) => (s === BATCH ? 'N' : s)))}; only a flatten to [N, ${total}] is supported`);
      }
      if (x.dims.length === 1) return set(x);
      if (x.squeezed) return set({ ...x, dims: [total], squeezed: false });
      // ONNX [H, W, C] flattens in TF.js's own (h, w, c) order.
      if (x.nhwc) return set({ kind: 'tensor', t: cv.apply(tf.layers.flatten({ name: name() }), x.t), dims: [total], squeezed: false });
      const [c, h, wd] = x.dims as [number, number, number];
      let src = x.t;
      // NHWC flattens in (h, w, c) order; torch's Dense after it expects (c, h, w).
      if (c > 1 && h * wd > 1) src = cv.apply(tf.layers.permute({ dims: [3, 1, 2], name: cv.layerName(`${node.name || op}_nchw`) }), src);
      const y = cv.apply(tf.layers.flatten({ name: name() }), src);
      return set({ kind: 'tensor', t: y, dims: [total], squeezed: false });
    }
    case 'Add': {
      const other = ins[1];
      if (!other) return refuse('has one input');
      if (other.kind === 'const') {
        if (Array.from(other.c.data).every((v) => v === 0)) return set(x);
        return refuse('adds a constant that is not a bias right after a Conv, Gemm or MatMul');
      }
      if (other.squeezed !== x.squeezed || Boolean(other.nhwc) !== Boolean(x.nhwc) || other.dims.join() !== x.dims.join()) return refuse(`adds tensors of different shapes ([N, ${x.dims.join(', ')}] and [N, ${other.dims.join(', ')}]); broadcasting is not supported`);
      return set({ ...x, t: cv.apply(tf.layers.add({ name: name() }), [x.t, other.t]) });
    }
    case 'Mul': {
      const other = ins[1];
      if (!other || other.kind !== 'const' || product(other.c.dims) !== 1) return refuse('multiplies by something other than a scalar constant; only Mul by a scalar constant is supported');
      return elementwise(new TsScale({ scale: other.c.data[0]!, name: name() }));
    }
    case 'Concat': {
      const ts = ins.filter((v): v is TensorVal => v !== null && v.kind === 'tensor');
      if (ts.length !== ins.length) return refuse('concatenates tensors with constants');
      if (ts.some((v) => v.nhwc)) return refuse('concatenates NHWC tensors; only NCHW channel concatenation is supported');
      const rank = x.dims.length + 1;
      let axis = attrInt(a, 'axis', 1);
      if (axis < 0) axis += x.squeezed ? 4 : rank;
      if (axis !== 1) return refuse(`concatenates on axis ${attrInt(a, 'axis', 1)}; only the channel axis 1 is supported`);
      if (ts.some((v) => v.squeezed !== x.squeezed || v.dims.slice(1).join() !== x.dims.slice(1).join())) return refuse('concatenates tensors of different spatial shapes');
      const channels = ts.reduce((s, v) => s + v.dims[0]!, 0);
      const y = cv.apply(tf.layers.concatenate({ axis: -1, name: name() }), ts.map((v) => v.t));
      return set({ kind: 'tensor', t: y, dims: [channels, ...x.dims.slice(1)], squeezed: x.squeezed });
    }
    case 'Transpose': {
      // Only the layout switches tf2onnx writes around NCHW ops: the TF.js tensor stays NHWC, the ONNX view changes.
      if (x.dims.length === 3 && !x.squeezed && x.nhwc && isPerm(node, [0, 3, 1, 2])) {
        return set({ ...x, dims: [x.dims[2]!, x.dims[0]!, x.dims[1]!], nhwc: false });
      }
      if (x.dims.length === 3 && !x.squeezed && !x.nhwc && isPerm(node, [0, 2, 3, 1])) {
        return set({ ...x, dims: [x.dims[1]!, x.dims[2]!, x.dims[0]!], nhwc: true });
      }
      return refuse(`transposes with perm ${JSON.stringify(attrInts(a, 'perm'))}; only NHWC<->NCHW switches of an image tensor are supported`);
    }
    case 'Pad': {
      const mode = attrString(a, 'mode', 'constant');
      let pads = opset < 11 ? attrInts(a, 'pads') ?? [] : Array.from(constAt(1, 'pads').data as ArrayLike<number>);
      // Opset 18's optional `axes` input says which axes `pads` covers (begins, then ends); spread it over all four.
      if (opset >= 18 && ins[3]) {
        const axes = Array.from(constAt(3, 'axes').data as ArrayLike<number>).map((v) => (v < 0 ? v + 4 : v));
        const full = new Array<number>(8).fill(0);
        axes.forEach((ax, i) => {
          full[ax] = pads[i] ?? 0;
          full[ax + 4] = pads[i + axes.length] ?? 0;
        });
        pads = full;
      }
      const value = opset < 11 ? attrFloat(a, 'value', 0) : ins[2] ? constAt(2, 'constant_value').data[0]! : 0;
      if (mode !== 'constant' || value !== 0) return refuse(`pads in mode '${mode}' with value ${value}; only zero padding is supported`);
      if (pads.length !== 8 || pads[0] || pads[1] || pads[4] || pads[5] || pads.some((q) => q < 0)) return refuse(`has pads ${JSON.stringify(pads)}; only non-negative padding of H and W of an NCHW tensor is supported`);
      const t4 = as4(x);
      const y = cv.apply(tf.layers.zeroPadding2d({ padding: [[pads[2]!, pads[6]!], [pads[3]!, pads[7]!]], name: name() }), t4);
      return set({ kind: 'tensor', t: y, dims: [x.dims[0]!, x.dims[1]! + pads[2]! + pads[6]!, x.dims[2]! + pads[3]! + pads[7]!], squeezed: false });
    }
    default:
      return refuse(`is applied to a tensor; ${op} is supported only on constants, folded at import`);
  }
}

/** ONNX pads [top, left, bottom, right] of a conv or pool, from pads or auto_pad. */
function convPads(a: Map<string, AttrProto>, hw: number[], k: number[], s: number[], d: number[], refuse: (why: string) => never): number[] {
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

/** 'same' when TF's same padding is exactly these pads (and dilation 1), else explicit ZeroPadding2D + 'valid'. */
function padFor(cv: Converter, x: tf.SymbolicTensor, pads: number[], hw: number[], k: number[], s: number[], d: number[], base: string): { input: tf.SymbolicTensor; padding: 'same' | 'valid' } {
  if (pads.every((q) => q === 0)) return { input: x, padding: 'valid' };
  const same = [0, 1].map((i) => samePads(hw[i]!, k[i]!, s[i]!, d[i]!));
  if (d.every((v) => v === 1) && pads[0] === same[0]![0] && pads[2] === same[0]![1] && pads[1] === same[1]![0] && pads[3] === same[1]![1]) {
    return { input: x, padding: 'same' };
  }
  const layer = tf.layers.zeroPadding2d({ padding: [[pads[0]!, pads[2]!], [pads[1]!, pads[3]!]], name: cv.layerName(`${base}_pad`) });
  return { input: cv.apply(layer, x), padding: 'valid' };
}
