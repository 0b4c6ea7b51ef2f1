// ONNX out: a TF.js Layers model (channels-last) as an ONNX model (opset 13,
// standard ops only, NCHW input) that ONNX Runtime, TensorRT and friends can
// run. Weights are written as initializers exactly as the model holds them,
// so a ticket's pruned weights stay zeros in the file.
// Layout: every rank-4 activation is kept NCHW, so conv kernels are transposed
// once here instead of wrapping every conv in Transposes; Flatten transposes
// back to NHWC first because TF.js flattens in (h, w, c) order and the Dense
// weights after it expect that order. Layers outside the supported set are
// refused by name rather than approximated.
import * as tf from '@tensorflow/tfjs';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';

const { onnx } = onnxProto;

export const ONNX_OPSET = 13;
/** IR version 7 is the first that carries opset 13. */
const IR_VERSION = 7;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

export interface OnnxExportOptions {
  /** Graph input name (default: `input`). */
  inputName?: string;
  /** Graph output name (default: `output`). */
  outputName?: string;
  /** Written into the model's doc string, e.g. the job id. */
  docString?: string;
}

export class UnsupportedLayerError extends Error {
  constructor(readonly layerName: string, readonly className: string, detail?: string) {
    super(`ONNX export: layer '${layerName}' (${className}) ${detail ?? 'is not supported'}; `
      + `supported layers: ${ONNX_EXPORTABLE_LAYERS.join(', ')}`);
    this.name = 'UnsupportedLayerError';
  }
}

/** An ONNX value: its name and the rank of the TF.js tensor it stands for (rank 4 is stored NCHW). */
interface Value {
  name: string;
  rank: number;
  /** Rank 4 already in the (c, h, w) order a Flatten must keep (after an imported model's Permute). */
  flatOrder?: boolean;
}

/** A layer of a built model (tf.layers.Layer lacks the topology getters). */
type Layer = tf.LayersModel['layers'][number];
type Attr = OnnxTypes.IAttributeProto;
type Config = Record<string, unknown>;

function intsAttr(name: string, ints: number[]): Attr {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints };
}
function intAttr(name: string, i: number): Attr {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}
function floatAttr(name: string, f: number): Attr {
  return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f };
}

function pair(v: unknown, what: string): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0] as number, v[1] as number];
  throw new Error(`ONNX export: ${what} must be a number or a pair, got ${JSON.stringify(v)}`);
}

/** ONNX pads [top, left, bottom, right] matching TF's 'same' (extra pad at the end) or 'valid'. */
function pads2d(padding: unknown, inHW: [number, number], kernel: [number, number], strides: [number, number], dil: [number, number]): number[] {
  if (padding === 'valid') return [0, 0, 0, 0];
  if (padding !== 'same') throw new Error(`ONNX export: padding '${String(padding)}' is not supported`);
  const begin: number[] = [];
  const end: number[] = [];
  for (let i = 0; i < 2; i++) {
    const size = inHW[i]!;
    const out = Math.ceil(size / strides[i]!);
    const total = Math.max((out - 1) * strides[i]! + (kernel[i]! - 1) * dil[i]! + 1 - size, 0);
    begin.push(Math.floor(total / 2));
    end.push(total - Math.floor(total / 2));
  }
  return [...begin, ...end];
}

/** Row-major transpose of `values` with shape `shape` by `perm` (as numpy.transpose). */
function transpose(values: Float32Array, shape: number[], perm: number[]): Float32Array {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1]! * shape[i + 1]!;
  const stridesByOut = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(values.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let d = 0; d < rank; d++) src += idx[d]! * stridesByOut[d]!;
    out[o] = values[src]!;
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d]! < outShape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

class GraphBuilder {
  readonly nodes: OnnxTypes.INodeProto[] = [];
  readonly initializers: OnnxTypes.ITensorProto[] = [];
  private readonly used = new Set<string>();

  unique(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  init(base: string, dims: number[], values: Float32Array): string {
    const name = this.unique(base);
    const bytes = new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    this.initializers.push({ name, dims, dataType: FLOAT, rawData: bytes });
    return name;
  }

  node(opType: string, inputs: string[], base: string, attribute: Attr[] = []): string {
    const out = this.unique(base);
    this.nodes.push({ opType, input: inputs, output: [out], name: this.unique(`${base}/${opType}`), attribute });
    return out;
  }
}

function className(layer: Layer): string {
  return layer.getClassName();
}

function weightValues(layer: Layer): { shape: number[]; values: Float32Array }[] {
  return layer.getWeights().map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
}

/** Emits a Keras activation by its config name applied to `x` (rank `rank`); `layer` names it in errors. */
function activation(g: GraphBuilder, x: Value, act: unknown, base: string, layer: Layer): Value {
  const name = act === undefined || act === null ? 'linear' : String(act);
  const channelAxis = x.rank === 4 ? 1 : x.rank - 1;
  const op = (opType: string, attrs: Attr[] = []): Value => ({ name: g.node(opType, [x.name], base, attrs), rank: x.rank });
  switch (name) {
    case 'linear': return x;
    case 'relu': return op('Relu');
    case 'relu6': return clip(g, x, 0, 6, base);
    case 'sigmoid': return op('Sigmoid');
    case 'tanh': return op('Tanh');
    case 'softmax': return op('Softmax', [intAttr('axis', channelAxis)]);
    case 'elu': return op('Elu', [floatAttr('alpha', 1)]);
    case 'selu': return op('Selu', [floatAttr('alpha', 1.6732632423543772), floatAttr('gamma', 1.0507009873554805)]);
    case 'softplus': return op('Softplus');
    case 'softsign': return op('Softsign');
    case 'hardSigmoid':
    case 'hard_sigmoid': return op('HardSigmoid', [floatAttr('alpha', 0.2), floatAttr('beta', 0.5)]);
    case 'swish': {
      const s = g.node('Sigmoid', [x.name], `${base}_sigmoid`);
      return { name: g.node('Mul', [x.name, s], base), rank: x.rank };
    }
    default: throw new UnsupportedLayerError(layer.name, className(layer), `has activation '${name}', which is not supported`);
  }
}

function clip(g: GraphBuilder, x: Value, min: number, max: number, base: string): Value {
  const lo = g.init(`${base}/min`, [], new Float32Array([min]));
  const hi = g.init(`${base}/max`, [], new Float32Array([max]));
  return { name: g.node('Clip', [x.name, lo, hi], base), rank: x.rank };
}

/** The static [height, width] of an NHWC input shape. */
function spatial(layer: Layer, shape: (number | null)[]): [number, number] {
  const h = shape[1];
  const w = shape[2];
  if (typeof h !== 'number' || typeof w !== 'number') {
    throw new UnsupportedLayerError(layer.name, className(layer), 'has a dynamic spatial size');
  }
  return [h, w];
}

function need4(layer: Layer, x: Value): void {
  if (x.rank !== 4) throw new UnsupportedLayerError(layer.name, className(layer), `has rank-${x.rank} input (rank 4 expected)`);
}

function checkChannelsLast(layer: Layer, cfg: Config): void {
  if (cfg.dataFormat !== undefined && cfg.dataFormat !== 'channelsLast') {
    throw new UnsupportedLayerError(layer.name, className(layer), `has dataFormat '${String(cfg.dataFormat)}' (channelsLast expected)`);
  }
}

/** Conv kernel [kh, kw, in, out] -> ONNX [out, in, kh, kw]. */
function convKernel(w: { shape: number[]; values: Float32Array }): { dims: number[]; values: Float32Array } {
  const [kh, kw, cin, cout] = w.shape as [number, number, number, number];
  return { dims: [cout, cin, kh, kw], values: transpose(w.values, w.shape, [3, 2, 0, 1]) };
}

/** Depthwise kernel [kh, kw, in, mult] -> ONNX grouped [in*mult, 1, kh, kw] (TF orders outputs c*mult+m, as ONNX groups do). */
function depthwiseKernel(w: { shape: number[]; values: Float32Array }): { dims: number[]; values: Float32Array } {
  const [kh, kw, cin, mult] = w.shape as [number, number, number, number];
  return { dims: [cin * mult, 1, kh, kw], values: transpose(w.values, w.shape, [2, 3, 0, 1]) };
}

/** A 1-D int64 initializer (Pad's pads, Unsqueeze's axes at opset 13). */
function int64Init(g: GraphBuilder, base: string, values: number[]): string {
  const name = g.unique(base);
  g.initializers.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer) });
  return name;
}

/** What an emitter gets: the layer, its config and ONNX inputs, and the graph it writes into. */
interface EmitCtx {
  g: GraphBuilder;
  layer: Layer;
  cls: string;
  cfg: Config;
  /** The layer's name, the base of every ONNX name it writes. */
  base: string;
  inputs: Value[];
  x: Value;
  /** The TF.js (NHWC) shape of the first input. */
  inShape: (number | null)[];
}
/** Writes one layer's ONNX nodes and returns its output value. */
type Emitter = (e: EmitCtx) => Value;

const refuse = (e: EmitCtx, detail: string): never => { throw new UnsupportedLayerError(e.layer.name, e.cls, detail); };
function one(e: EmitCtx): void {
  if (e.inputs.length !== 1) refuse(e, `has ${e.inputs.length} inputs (1 expected)`);
}
/** Wraps an emitter of a one-input layer. */
const single = (emit: Emitter): Emitter => (e) => { one(e); return emit(e); };

function emitDense({ g, layer, cfg, base, x }: EmitCtx): Value {
  if (x.rank !== 2) throw new UnsupportedLayerError(layer.name, 'Dense', `has rank-${x.rank} input (rank 2 expected)`);
  const [kernel, bias] = weightValues(layer);
  const ins = [x.name, g.init(`${base}/kernel`, kernel!.shape, kernel!.values)];
  if (cfg.useBias !== false && bias !== undefined) ins.push(g.init(`${base}/bias`, bias.shape, bias.values));
  const y = { name: g.node('Gemm', ins, base), rank: 2 };
  return activation(g, y, cfg.activation, `${base}_act`, layer);
}

/** Conv2D, DepthwiseConv2D (a grouped Conv) and SeparableConv2D (grouped Conv, then a 1×1 Conv). */
function emitConv({ g, layer, cls, cfg, base, x, inShape }: EmitCtx): Value {
  need4(layer, x);
  checkChannelsLast(layer, cfg);
  const ws = weightValues(layer);
  const kernel = pair(cfg.kernelSize, 'kernelSize');
  const strides = pair(cfg.strides ?? 1, 'strides');
  const dil = pair(cfg.dilationRate ?? 1, 'dilationRate');
  const pads = pads2d(cfg.padding, spatial(layer, inShape), kernel, strides, dil);
  const attrs = (group: number): Attr[] => [
    intsAttr('kernel_shape', kernel), intsAttr('strides', strides), intsAttr('dilations', dil),
    intsAttr('pads', pads), intAttr('group', group),
  ];
  const useBias = cfg.useBias !== false;
  let y: string;
  if (cls === 'Conv2D') {
    const k = convKernel(ws[0]!);
    const ins = [x.name, g.init(`${base}/kernel`, k.dims, k.values)];
    if (useBias) ins.push(g.init(`${base}/bias`, ws[1]!.shape, ws[1]!.values));
    y = g.node('Conv', ins, base, attrs(1));
  } else {
    const dk = depthwiseKernel(ws[0]!);
    const cin = ws[0]!.shape[2]!;
    const dins = [x.name, g.init(`${base}/depthwise_kernel`, dk.dims, dk.values)];
    if (cls === 'DepthwiseConv2D') {
      if (useBias) dins.push(g.init(`${base}/bias`, ws[1]!.shape, ws[1]!.values));
      y = g.node('Conv', dins, base, attrs(cin));
    } else {
      const d = g.node('Conv', dins, `${base}_depthwise`, attrs(cin));
      const pk = convKernel(ws[1]!);
      const pins = [d, g.init(`${base}/pointwise_kernel`, pk.dims, pk.values)];
      if (useBias) pins.push(g.init(`${base}/bias`, ws[2]!.shape, ws[2]!.values));
      y = g.node('Conv', pins, base, [intsAttr('kernel_shape', [1, 1])]);
    }
  }
  return activation(g, { name: y, rank: 4 }, cfg.activation, `${base}_act`, layer);
}

function emitBatchNorm(e: EmitCtx): Value {
  const { g, layer, cfg, base, x } = e;
  const axis = cfg.axis as number;
  if (axis !== -1 && axis !== x.rank - 1) refuse(e, `normalises axis ${axis} (only the channel axis is supported)`);
  if (x.rank !== 2 && x.rank !== 4) refuse(e, `has rank-${x.rank} input (rank 2 or 4 expected)`);
  const ws = weightValues(layer);
  let i = 0;
  const channels = ws[ws.length - 1]!.shape[0]!;
  const gamma = cfg.scale !== false ? ws[i++]!.values : new Float32Array(channels).fill(1);
  const beta = cfg.center !== false ? ws[i++]!.values : new Float32Array(channels);
  const mean = ws[i++]!.values;
  const variance = ws[i++]!.values;
  const ins = [
    x.name, g.init(`${base}/gamma`, [channels], gamma), g.init(`${base}/beta`, [channels], beta),
    g.init(`${base}/moving_mean`, [channels], mean), g.init(`${base}/moving_variance`, [channels], variance),
  ];
  return { name: g.node('BatchNormalization', ins, base, [floatAttr('epsilon', cfg.epsilon as number)]), rank: x.rank };
}

function emitReLU({ g, cfg, base, x }: EmitCtx): Value {
  const max = cfg.maxValue;
  if (typeof max === 'number') return clip(g, x, 0, max, base);
  return { name: g.node('Relu', [x.name], base), rank: x.rank };
}

function emitSoftmax(e: EmitCtx): Value {
  const { g, cfg, base, x } = e;
  const a = (cfg.axis as number | undefined) ?? -1;
  if (a !== -1 && a !== x.rank - 1) refuse(e, `has softmax axis ${a} (only the last axis is supported)`);
  return { name: g.node('Softmax', [x.name], base, [intAttr('axis', x.rank === 4 ? 1 : x.rank - 1)]), rank: x.rank };
}

function emitPool({ g, layer, cls, cfg, base, x, inShape }: EmitCtx): Value {
  need4(layer, x);
  checkChannelsLast(layer, cfg);
  const kernel = pair(cfg.poolSize, 'poolSize');
  const strides = pair(cfg.strides ?? cfg.poolSize, 'strides');
  const pads = pads2d(cfg.padding, spatial(layer, inShape), kernel, strides, [1, 1]);
  const attrs = [intsAttr('kernel_shape', kernel), intsAttr('strides', strides), intsAttr('pads', pads)];
  // TF averages over the valid (unpadded) window only: count_include_pad 0, ONNX's default.
  return { name: g.node(cls === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool', [x.name], base, attrs), rank: 4 };
}

function emitGlobalAverage({ g, layer, cfg, base, x }: EmitCtx): Value {
  need4(layer, x);
  checkChannelsLast(layer, cfg);
  const p = g.node('GlobalAveragePool', [x.name], `${base}_pool`);
  return { name: g.node('Flatten', [p], base, [intAttr('axis', 1)]), rank: 2 };
}

function emitFlatten({ g, base, x }: EmitCtx): Value {
  if (x.rank === 2) return x;
  const src = x.rank === 4 && x.flatOrder !== true ? g.node('Transpose', [x.name], `${base}_nhwc`, [intsAttr('perm', [0, 2, 3, 1])]) : x.name;
  return { name: g.node('Flatten', [src], base, [intAttr('axis', 1)]), rank: 2 };
}

function emitAdd(e: EmitCtx): Value {
  const { g, base, x, inputs } = e;
  if (inputs.some((v) => v.rank !== x.rank)) refuse(e, 'adds tensors of different ranks');
  return { name: g.node('Sum', inputs.map((v) => v.name), base), rank: x.rank };
}

function emitConcat(e: EmitCtx): Value {
  const { g, cfg, base, x, inputs } = e;
  const rank = x.rank;
  let axis = (cfg.axis as number | undefined) ?? -1;
  if (axis < 0) axis += rank;
  if (axis <= 0 || axis >= rank) refuse(e, `concatenates on axis ${String(cfg.axis)}`);
  // NHWC axis -> NCHW axis: h 1 -> 2, w 2 -> 3, c 3 -> 1.
  const onnxAxis = rank === 4 ? [0, 2, 3, 1][axis]! : axis;
  return { name: g.node('Concat', inputs.map((v) => v.name), base, [intAttr('axis', onnxAxis)]), rank };
}

function emitZeroPadding({ g, layer, cfg, base, x }: EmitCtx): Value {
  need4(layer, x);
  checkChannelsLast(layer, cfg);
  const p = cfg.padding as [[number, number], [number, number]];
  const pads = int64Init(g, `${base}/pads`, [0, 0, p[0][0], p[1][0], 0, 0, p[0][1], p[1][1]]);
  return { name: g.node('Pad', [x.name, pads], base, [{ name: 'mode', type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode('constant') }]), rank: 4 };
}

function emitPermute(e: EmitCtx): Value {
  // Import only puts Permute([3, 1, 2]) before a Flatten, to flatten NHWC in NCHW order;
  // the NCHW values here are already in that order.
  if (e.x.rank !== 4 || JSON.stringify(e.cfg.dims) !== '[3,1,2]') refuse(e, `permutes ${JSON.stringify(e.cfg.dims)} (only [3, 1, 2] before a Flatten is supported)`);
  return { name: e.x.name, rank: 4, flatOrder: true };
}

function emitReshape(e: EmitCtx): Value {
  // Import only reshapes [N, C] to [N, 1, 1, C] (a squeezed global pool back to rank 4).
  const t = e.cfg.targetShape as number[];
  if (e.x.rank !== 2 || t.length !== 3 || t[0] !== 1 || t[1] !== 1) refuse(e, `reshapes to ${JSON.stringify(t)} (only [1, 1, C] is supported)`);
  return { name: e.g.node('Unsqueeze', [e.x.name, int64Init(e.g, `${e.base}/axes`, [2, 3])], e.base), rank: 4 };
}

const scalar = (e: EmitCtx, suffix: string, v: number) => e.g.init(`${e.base}/${suffix}`, [], new Float32Array([v]));

function emitTsClip(e: EmitCtx): Value {
  const lo = e.cfg.min === null ? '' : scalar(e, 'min', e.cfg.min as number);
  const hi = e.cfg.max === null ? '' : scalar(e, 'max', e.cfg.max as number);
  return { name: e.g.node('Clip', [e.x.name, lo, hi], e.base), rank: e.x.rank };
}

const hardSigmoidAttrs = (cfg: Config) => [floatAttr('alpha', cfg.alpha as number), floatAttr('beta', cfg.beta as number)];

function emitTsHardSwish({ g, cfg, base, x }: EmitCtx): Value {
  // HardSwish itself needs opset 14; x * HardSigmoid(x) is the same at opset 13.
  const hs = g.node('HardSigmoid', [x.name], `${base}_gate`, hardSigmoidAttrs(cfg));
  return { name: g.node('Mul', [x.name, hs], base), rank: x.rank };
}

/**
 * Layer class name -> emitter, in the order refusals list them. The second group is what ONNX import
 * builds (models/onnx/, models/layers/); InputLayer is the graph input, never emitted.
 */
const EMITTERS: ReadonlyMap<string, Emitter> = new Map<string, Emitter>([
  ['InputLayer', (e) => e.x],
  ['Dense', single(emitDense)],
  ['Conv2D', single(emitConv)],
  ['DepthwiseConv2D', single(emitConv)],
  ['SeparableConv2D', single(emitConv)],
  ['BatchNormalization', single(emitBatchNorm)],
  ['Activation', single((e) => activation(e.g, e.x, e.cfg.activation, e.base, e.layer))],
  ['ReLU', single(emitReLU)],
  ['LeakyReLU', single(({ g, cfg, base, x }) => ({ name: g.node('LeakyRelu', [x.name], base, [floatAttr('alpha', (cfg.alpha as number | undefined) ?? 0.3)]), rank: x.rank }))],
  ['Softmax', single(emitSoftmax)],
  ['MaxPooling2D', single(emitPool)],
  ['AveragePooling2D', single(emitPool)],
  ['GlobalAveragePooling2D', single(emitGlobalAverage)],
  ['Flatten', single(emitFlatten)],
  ['Add', emitAdd],
  ['Concatenate', emitConcat],
  ['Dropout', single((e) => e.x)],
  ['ZeroPadding2D', single(emitZeroPadding)],
  ['Permute', single(emitPermute)],
  ['Reshape', single(emitReshape)],
  ['TsScale', single((e) => ({ name: e.g.node('Mul', [e.x.name, scalar(e, 'scale', e.cfg.scale as number)], e.base), rank: e.x.rank }))],
  ['TsClip', single(emitTsClip)],
  ['TsHardSigmoid', single(({ g, cfg, base, x }) => ({ name: g.node('HardSigmoid', [x.name], base, hardSigmoidAttrs(cfg)), rank: x.rank }))],
  ['TsHardSwish', single(emitTsHardSwish)],
]);

function emitLayer(g: GraphBuilder, layer: Layer, inputs: Value[], inShape: (number | null)[]): Value {
  const cls = className(layer);
  const emit = EMITTERS.get(cls);
  if (emit === undefined) throw new UnsupportedLayerError(layer.name, cls);
  return emit({ g, layer, cls, cfg: layer.getConfig() as Config, base: layer.name, inputs, x: inputs[0]!, inShape });
}

/** Layer class names exportOnnx understands (the registry's keys); anything else is refused. */
export const ONNX_EXPORTABLE_LAYERS: readonly string[] = Object.freeze([...EMITTERS.keys()]);

/** Refuses the first layer exportOnnx cannot write, before any work is done. */
export function checkOnnxExportable(model: tf.LayersModel): void {
  for (const layer of model.layers) {
    const cls = className(layer);
    if (!ONNX_EXPORTABLE_LAYERS.includes(cls)) throw new UnsupportedLayerError(layer.name, cls);
  }
}

function valueInfo(name: string, dims: (number | null)[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: dims.map((d, i) => (d === null ? { dimParam: i === 0 ? 'N' : `d${i}` } : { dimValue: d })) },
      },
    },
  };
}

/** NHWC TF.js shape -> the ONNX shape of that value (rank 4 becomes NCHW). */
function onnxShape(shape: (number | null)[]): (number | null)[] {
  return shape.length === 4 ? [shape[0]!, shape[3]!, shape[1]!, shape[2]!] : shape;
}

/**
 * The model as ONNX protobuf bytes. A rank-4 input is NCHW ([N, C, H, W]);
 * a rank-4 output would be NCHW too. One input and one output only.
 */
export function exportOnnx(model: tf.LayersModel, opts: OnnxExportOptions = {}): Uint8Array {
  checkOnnxExportable(model);
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new Error(`ONNX export: the model must have one input and one output (has ${model.inputs.length} and ${model.outputs.length})`);
  }
  const g = new GraphBuilder();
  const input = model.inputs[0]!;
  const inputName = g.unique(opts.inputName ?? 'input');
  const values = new Map<number, Value>([[input.id, { name: inputName, rank: input.shape.length }]]);

  // model.layers is in topological order; each layer of a built model has the node that links it into this graph.
  for (const layer of model.layers) {
    if (className(layer) === 'InputLayer') continue;
    const node = layer.inboundNodes.find((n) => n.inputTensors.every((t) => values.has(t.id)));
    if (node === undefined) throw new Error(`ONNX export: cannot find the inputs of layer '${layer.name}'`);
    if (node.outputTensors.length !== 1) throw new UnsupportedLayerError(layer.name, className(layer), 'has more than one output');
    const ins = node.inputTensors.map((t) => values.get(t.id)!);
    const out = emitLayer(g, layer, ins, node.inputTensors[0]!.shape);
    values.set(node.outputTensors[0]!.id, out);
  }

  const output = model.outputs[0]!;
  const last = values.get(output.id);
  if (last === undefined) throw new Error('ONNX export: the model output is not reached from its input');
  const outputName = g.unique(opts.outputName ?? 'output');
  g.nodes.push({ opType: 'Identity', input: [last.name], output: [outputName], name: g.unique(`${outputName}/Identity`) });

  const proto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'ticketsmith',
    docString: opts.docString ?? '',
    graph: {
      name: model.name,
      node: g.nodes,
      initializer: g.initializers,
      input: [valueInfo(inputName, onnxShape(input.shape))],
      output: [valueInfo(outputName, onnxShape(output.shape))],
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}
