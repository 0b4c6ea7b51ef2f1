// What a model.json will cost, read from the JSON alone, before TF.js is asked
// to build anything: TF.js allocates every weight when it builds a layer, so a
// 20 KB model.json declaring a 20M-unit Dense layer costs gigabytes before any
// later check (manifest vs weights, strict loading) gets to run. This walks the
// Keras / TF.js topology (Sequential and functional configs, nested models),
// infers each layer's output shape and parameter count, and reads the weights
// manifest (element counts, bytes per dtype, bytes vs the files' sizes); any
// figure over its limit, any unknown layer class and any malformed number is
// refused with the layer (or manifest entry) named.
//
// It does NOT build, load or validate anything TF.js would check anyway
// (activations, initialisers, whether the manifest's weights match the
// layers); it only bounds the cost of letting TF.js try. Counts for
// spatial dimensions follow Keras's rules; where a figure is unknown until
// run time (a `null` dimension) only what is known is bounded. Shapes here
// are one example's (no batch axis).
import { product, type Shape } from '../shapes.js';

export interface ModelLimits {
  /** Parameters of the whole model (topology), and elements of the whole manifest. */
  maxParams: number;
  /** Parameters of one layer, and elements of one manifest weight. */
  maxLayerParams: number;
  /** Layers, nested models' layers included. */
  maxLayers: number;
  /** Elements of one layer's output for one example (activation memory). */
  maxLayerOutput: number;
  /** Weight bytes the manifest may describe. */
  maxBytes: number;
  /**
   * Most a compressed upload (a .tar.gz, a zip member, a .keras archive's
   * entries) may expand over its compressed size; unset (as in the defaults
   * here, for the CLI's own files): no ratio cap, only maxBytes. The service
   * always sets it (TICKETSMITH_MAX_MODEL_RATIO).
   */
  maxRatio?: number;
}

export const DEFAULT_MODEL_LIMITS: Readonly<ModelLimits> = Object.freeze({
  maxParams: 50_000_000,
  maxLayerParams: 25_000_000,
  maxLayers: 1000,
  maxLayerOutput: 16_777_216,
  maxBytes: 512 * 1024 * 1024,
});

/** Nested models inside nested models: deeper than this is refused (and keeps the walk's recursion bounded). */
const MAX_NESTING = 8;
/** No single dimension may exceed this (TF.js indexes with int32). */
const MAX_DIM = 2 ** 31 - 1;

export class ModelBudgetError extends Error {
  override name = 'ModelBudgetError';
  constructor(
    message: string,
    /** The request field at fault: `model.json` or a manifest path inside it. */
    readonly field: string,
  ) {
    super(message);
  }
}

export interface LayerBudget {
  name: string;
  className: string;
  params: number;
}

export interface ModelBudget {
  /** Parameters by the topology. */
  params: number;
  /** Elements by the weights manifest. */
  manifestElements: number;
  /** Bytes by the weights manifest (quantisation taken into account). */
  weightBytes: number;
  layers: LayerBudget[];
}

type Json = Record<string, unknown>;

const FIELD = 'model.json';
const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);
const fmt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n));
const known = (s: Shape): number[] | null => (s.every((d) => d !== null) ? (s as number[]) : null);

interface Walk {
  limits: ModelLimits;
  layers: LayerBudget[];
  params: number;
}

/** A layer being read: its name and class for every message about it. */
class LayerReader {
  constructor(
    readonly name: string,
    readonly cls: string,
    readonly config: Json,
  ) {}

  fail(what: string): never {
    throw new ModelBudgetError(`${FIELD}: layer '${this.name}' (${this.cls}): ${what}`, FIELD);
  }

  /** A positive integer setting (units, filters); `def` when absent. */
  int(key: string, def?: number, min = 1): number {
    const v = this.config[key];
    if (v === undefined || v === null) {
      if (def !== undefined) return def;
      this.fail(`'${key}' is missing`);
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > MAX_DIM) {
      this.fail(`'${key}' must be an integer from ${min} to ${fmt(MAX_DIM)}, got ${JSON.stringify(v) ?? String(v)}`);
    }
    return v;
  }

  /** An int-or-tuple setting (kernel_size, strides) as `rank` positive integers. */
  tuple(key: string, rank: number, def?: number[], min = 1): number[] {
    const v = this.config[key];
    if (v === undefined || v === null) {
      if (def !== undefined) return def;
      this.fail(`'${key}' is missing`);
    }
    const xs = typeof v === 'number' ? Array<unknown>(rank).fill(v) : v;
    if (!Array.isArray(xs) || xs.length !== rank || !xs.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= min && d <= MAX_DIM)) {
      this.fail(`'${key}' must be ${rank === 1 ? 'an integer' : `${rank} integers`} >= ${min}, got ${JSON.stringify(v) ?? String(v)}`);
    }
    return xs as number[];
  }

  bool(key: string, def: boolean): boolean {
    const v = this.config[key];
    return typeof v === 'boolean' ? v : def;
  }

  channelsFirst(): boolean {
    return this.config.data_format === 'channels_first';
  }

  /** The input's known last (channel) dimension, or a refusal saying why it is needed. */
  channels(input: Shape, what: string): number {
    const c = this.channelsFirst() ? input[0] : input[input.length - 1];
    if (c === null || c === undefined) this.fail(`${what} needs a known input size, got input shape ${JSON.stringify(input)}`);
    return c;
  }
}

/** A declared input shape (batch_input_shape / batch_shape with the batch axis, input_shape without). */
function declaredInput(layer: LayerReader): Shape | null {
  const c = layer.config;
  const raw = c.batch_input_shape ?? c.batch_shape;
  const dims = Array.isArray(raw) ? raw.slice(1) : Array.isArray(c.input_shape) ? c.input_shape : null;
  if (raw !== undefined && raw !== null && !Array.isArray(raw)) layer.fail(`'batch_input_shape' must be a list, got ${JSON.stringify(raw)}`);
  if (dims === null) return null;
  return dims.map((d) => {
    if (d === null) return null;
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 1 || d > MAX_DIM) {
      layer.fail(`input shape ${JSON.stringify(raw ?? c.input_shape)} must hold positive integers (or null), got ${JSON.stringify(d) ?? String(d)}`);
    }
    return d;
  });
}

function spatialOut(size: number | null, k: number, stride: number, dilation: number, padding: unknown): number | null {
  if (size === null) return null;
  const span = (k - 1) * dilation + 1;
  const out = padding === 'same' ? Math.ceil(size / stride) : Math.ceil((size - span + 1) / stride);
  return out;
}

/** Spatial dims, channels and where they sit, for conv and pooling layers of `rank` spatial axes. */
function splitSpatial(layer: LayerReader, input: Shape, rank: number): { spatial: Shape; channels: number | null; first: boolean } {
  if (input.length !== rank + 1) layer.fail(`expects input of rank ${rank + 1} (without the batch axis), got shape ${JSON.stringify(input)}`);
  const first = layer.channelsFirst();
  return first ? { spatial: input.slice(1), channels: input[0]!, first } : { spatial: input.slice(0, -1), channels: input[rank]!, first };
}

function joinSpatial(spatial: Shape, channels: number | null, first: boolean): Shape {
  return first ? [channels, ...spatial] : [...spatial, channels];
}

function convLike(layer: LayerReader, input: Shape, rank: number, kind: 'conv' | 'transpose' | 'depthwise' | 'separable'): { params: number; output: Shape; detail: string } {
  const { spatial, first } = splitSpatial(layer, input, rank);
  const cin = layer.channels(input, 'a convolution');
  const k = layer.tuple('kernel_size', rank);
  const strides = layer.tuple('strides', rank, Array<number>(rank).fill(1));
  const dilation = layer.tuple('dilation_rate', rank, Array<number>(rank).fill(1));
  const padding = layer.config.padding ?? 'valid';
  if (padding !== 'valid' && padding !== 'same' && padding !== 'causal') layer.fail(`'padding' must be 'valid', 'same' or 'causal', got ${JSON.stringify(padding)}`);
  const bias = layer.bool('use_bias', true);
  let params: number;
  let cout: number;
  if (kind === 'depthwise') {
    const dm = layer.int('depth_multiplier', 1);
    cout = cin * dm;
    params = product(k) * cin * dm + (bias ? cout : 0);
  } else if (kind === 'separable') {
    const dm = layer.int('depth_multiplier', 1);
    cout = layer.int('filters');
    params = product(k) * cin * dm + cin * dm * cout + (bias ? cout : 0);
  } else {
    cout = layer.int('filters');
    params = product(k) * cin * cout + (bias ? cout : 0);
  }
  const out = spatial.map((s, i) => {
    if (s === null) return null;
    if (kind === 'transpose') return padding === 'same' ? s * strides[i]! : s * strides[i]! + Math.max(k[i]! - strides[i]!, 0);
    return spatialOut(s, k[i]!, strides[i]!, dilation[i]!, padding === 'causal' ? 'same' : padding);
  });
  if (out.some((d) => d !== null && d < 1)) layer.fail(`kernel ${JSON.stringify(k)} does not fit input shape ${JSON.stringify(input)}`);
  return { params, output: joinSpatial(out, cout, first), detail: `kernel ${k.join('x')} x ${fmt(cin)} input channels -> ${fmt(cout)} channels` };
}

function pooling(layer: LayerReader, input: Shape, rank: number): Shape {
  const { spatial, channels, first } = splitSpatial(layer, input, rank);
  const pool = layer.tuple('pool_size', rank, Array<number>(rank).fill(2));
  const strides = layer.tuple('strides', rank, pool);
  const out = spatial.map((s, i) => spatialOut(s, pool[i]!, strides[i]!, 1, layer.config.padding ?? 'valid'));
  if (out.some((d) => d !== null && d < 1)) layer.fail(`pool ${JSON.stringify(pool)} does not fit input shape ${JSON.stringify(input)}`);
  return joinSpatial(out, channels, first);
}

/** The spatial rank a class name ends with (`Conv2D` -> 2), default 2. */
const rankOf = (cls: string): number => Number(/(\d)D/.exec(cls)?.[1] ?? 2);

/** A layer's cost; `detail` says where the parameters come from (for messages). */
type LayerFn = (layer: LayerReader, inputs: Shape[], walk: Walk, depth: number) => { params: number; output: Shape; detail?: string };

const one = (layer: LayerReader, inputs: Shape[]): Shape => {
  if (inputs.length !== 1) layer.fail(`expects one input, got ${inputs.length}`);
  return inputs[0]!;
};

const identity: LayerFn = (layer, inputs) => ({ params: 0, output: one(layer, inputs) });

const merge: LayerFn = (layer, inputs) => {
  if (inputs.length < 1) layer.fail('expects inputs');
  const rank = inputs[0]!.length;
  if (inputs.some((s) => s.length !== rank)) layer.fail(`inputs of different ranks: ${JSON.stringify(inputs)}`);
  return { params: 0, output: inputs[0]!.map((_, i) => (inputs.some((s) => s[i] === null) ? null : Math.max(...inputs.map((s) => s[i]!)))) };
};

const recurrent = (gates: number): LayerFn => (layer, inputs) => {
  const input = one(layer, inputs);
  if (input.length !== 2) layer.fail(`expects input [timesteps, features], got ${JSON.stringify(input)}`);
  const units = layer.int('units');
  const features = layer.channels(input, 'a recurrent layer');
  const params = gates * (units * (features + units) + (layer.bool('use_bias', true) ? units : 0));
  return { params, output: layer.bool('return_sequences', false) ? [input[0]!, units] : [units] };
};

const LAYERS: Record<string, LayerFn> = {
  Dense: (layer, inputs) => {
    const input = one(layer, inputs);
    if (input.length === 0) layer.fail('expects an input of rank >= 1');
    const units = layer.int('units');
    const fanIn = input[input.length - 1];
    if (fanIn === null || fanIn === undefined) return layer.fail(`needs a known input size, got input shape ${JSON.stringify(input)}`);
    const detail = `${fmt(units)} units x ${fmt(fanIn)} inputs`;
    return { params: fanIn * units + (layer.bool('use_bias', true) ? units : 0), output: [...input.slice(0, -1), units], detail };
  },
  Conv1D: (l, i) => convLike(l, one(l, i), 1, 'conv'),
  Conv2D: (l, i) => convLike(l, one(l, i), 2, 'conv'),
  Conv3D: (l, i) => convLike(l, one(l, i), 3, 'conv'),
  Conv2DTranspose: (l, i) => convLike(l, one(l, i), 2, 'transpose'),
  Conv3DTranspose: (l, i) => convLike(l, one(l, i), 3, 'transpose'),
  DepthwiseConv2D: (l, i) => convLike(l, one(l, i), 2, 'depthwise'),
  SeparableConv1D: (l, i) => convLike(l, one(l, i), 1, 'separable'),
  SeparableConv2D: (l, i) => convLike(l, one(l, i), 2, 'separable'),
  MaxPooling1D: (l, i) => ({ params: 0, output: pooling(l, one(l, i), 1) }),
  MaxPooling2D: (l, i) => ({ params: 0, output: pooling(l, one(l, i), 2) }),
  MaxPooling3D: (l, i) => ({ params: 0, output: pooling(l, one(l, i), 3) }),
  AveragePooling1D: (l, i) => ({ params: 0, output: pooling(l, one(l, i), 1) }),
  AveragePooling2D: (l, i) => ({ params: 0, output: pooling(l, one(l, i), 2) }),
  AveragePooling3D: (l, i) => ({ params: 0, output: pooling(l, one(l, i), 3) }),
  ...Object.fromEntries(
    ['GlobalAveragePooling1D', 'GlobalAveragePooling2D', 'GlobalAveragePooling3D', 'GlobalMaxPooling1D', 'GlobalMaxPooling2D', 'GlobalMaxPooling3D'].map((cls) => [
      cls,
      ((l, i) => {
        const input = one(l, i);
        splitSpatial(l, input, rankOf(cls));
        return { params: 0, output: [l.channelsFirst() ? input[0]! : input[input.length - 1]!] };
      }) satisfies LayerFn,
    ]),
  ),
  Flatten: (l, i) => {
    const input = one(l, i);
    const dims = known(input);
    return { params: 0, output: [dims ? product(dims) : null] };
  },
  Reshape: (l, i) => {
    const input = one(l, i);
    const target = l.config.target_shape;
    if (!Array.isArray(target) || target.length === 0 || !target.every((d) => d === -1 || (typeof d === 'number' && Number.isInteger(d) && d >= 1 && d <= MAX_DIM))) {
      l.fail(`'target_shape' must be a list of positive integers (one may be -1), got ${JSON.stringify(target)}`);
    }
    const t = target as number[];
    if (t.filter((d) => d === -1).length > 1) l.fail(`'target_shape' may hold one -1, got ${JSON.stringify(t)}`);
    const dims = known(input);
    const rest = product(t.filter((d) => d !== -1));
    const output: Shape = t.map((d) => (d === -1 ? (dims ? Math.floor(product(dims) / rest) : null) : d));
    if (dims && known(output) && product(known(output)!) !== product(dims)) l.fail(`cannot reshape ${JSON.stringify(input)} to ${JSON.stringify(t)}`);
    return { params: 0, output };
  },
  Permute: (l, i) => {
    const input = one(l, i);
    const dims = l.config.dims;
    if (!Array.isArray(dims) || dims.length !== input.length || !dims.every((d) => Number.isInteger(d) && d >= 1 && d <= input.length)) {
      l.fail(`'dims' must be a permutation of 1..${input.length}, got ${JSON.stringify(dims)}`);
    }
    return { params: 0, output: (dims as number[]).map((d) => input[d - 1]!) };
  },
  RepeatVector: (l, i) => {
    const input = one(l, i);
    if (input.length !== 1) l.fail(`expects input of rank 1, got ${JSON.stringify(input)}`);
    return { params: 0, output: [l.int('n'), input[0]!] };
  },
  BatchNormalization: (l, i) => {
    const input = one(l, i);
    const axis = l.config.axis ?? -1;
    if (typeof axis !== 'number' || !Number.isInteger(axis)) return l.fail(`'axis' must be an integer, got ${JSON.stringify(axis)}`);
    // Keras axes count the batch axis; ours do not.
    const at = axis < 0 ? input.length + axis : axis - 1;
    const c = input[at];
    if (c === null || c === undefined) return l.fail(`axis ${axis} of input shape ${JSON.stringify(input)} must be known`);
    return { params: c * (2 + (l.bool('center', true) ? 1 : 0) + (l.bool('scale', true) ? 1 : 0)), output: input };
  },
  LayerNormalization: (l, i) => {
    const input = one(l, i);
    const c = l.channels(input, 'layer normalisation');
    return { params: c * ((l.bool('center', true) ? 1 : 0) + (l.bool('scale', true) ? 1 : 0)), output: input };
  },
  PReLU: (l, i) => {
    const input = one(l, i);
    const dims = known(input);
    if (!dims) return l.fail(`needs a fully known input shape, got ${JSON.stringify(input)}`);
    return { params: product(dims), output: input };
  },
  Embedding: (l, i) => {
    const input = one(l, i);
    const out = l.int('output_dim');
    return { params: l.int('input_dim') * out, output: [...input, out] };
  },
  ZeroPadding2D: (l, i) => {
    const input = one(l, i);
    const { spatial, channels, first } = splitSpatial(l, input, 2);
    const p = l.config.padding ?? 1;
    const pairs = typeof p === 'number' ? [[p, p], [p, p]] : Array.isArray(p) && p.every((x) => typeof x === 'number') ? [[p[0], p[0]], [p[1], p[1]]] : p;
    if (!Array.isArray(pairs) || pairs.length !== 2 || !pairs.every((q) => Array.isArray(q) && q.length === 2 && q.every((x) => Number.isInteger(x) && x >= 0 && x <= MAX_DIM))) {
      l.fail(`'padding' must be an integer or pairs of non-negative integers, got ${JSON.stringify(p)}`);
    }
    const pp = pairs as number[][];
    return { params: 0, output: joinSpatial(spatial.map((s, k) => (s === null ? null : s + pp[k]![0]! + pp[k]![1]!)), channels, first) };
  },
  Cropping2D: (l, i) => {
    const input = one(l, i);
    const { spatial, channels, first } = splitSpatial(l, input, 2);
    const c = l.config.cropping ?? 0;
    const pairs = typeof c === 'number' ? [[c, c], [c, c]] : c;
    if (!Array.isArray(pairs) || pairs.length !== 2 || !pairs.every((q) => Array.isArray(q) && q.length === 2 && q.every((x) => Number.isInteger(x) && x >= 0))) {
      l.fail(`'cropping' must be an integer or pairs of non-negative integers, got ${JSON.stringify(c)}`);
    }
    const pp = pairs as number[][];
    const out = spatial.map((s, k) => (s === null ? null : s - pp[k]![0]! - pp[k]![1]!));
    if (out.some((d) => d !== null && d < 1)) l.fail(`cropping ${JSON.stringify(c)} leaves nothing of input ${JSON.stringify(input)}`);
    return { params: 0, output: joinSpatial(out, channels, first) };
  },
  UpSampling2D: (l, i) => {
    const input = one(l, i);
    const { spatial, channels, first } = splitSpatial(l, input, 2);
    const size = l.tuple('size', 2, [2, 2]);
    return { params: 0, output: joinSpatial(spatial.map((s, k) => (s === null ? null : s * size[k]!)), channels, first) };
  },
  Concatenate: (l, inputs) => {
    if (inputs.length < 1) l.fail('expects inputs');
    const rank = inputs[0]!.length;
    const axis = typeof l.config.axis === 'number' ? l.config.axis : -1;
    const at = axis < 0 ? rank + axis : axis - 1;
    if (!Number.isInteger(at) || at < 0 || at >= rank || inputs.some((s) => s.length !== rank)) l.fail(`cannot concatenate ${JSON.stringify(inputs)} on axis ${axis}`);
    const output = inputs[0]!.map((d, k) => (k === at ? (inputs.some((s) => s[k] === null) ? null : inputs.reduce((a, s) => a + s[k]!, 0)) : d));
    return { params: 0, output };
  },
  SimpleRNN: recurrent(1),
  GRU: recurrent(3),
  LSTM: recurrent(4),
  InputLayer: (l, inputs) => {
    const declared = declaredInput(l);
    if (declared) return { params: 0, output: declared };
    if (inputs.length === 1) return { params: 0, output: inputs[0]! };
    return l.fail("declares no 'batch_input_shape'");
  },
};
for (const cls of ['Activation', 'Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'ReLU', 'LeakyReLU', 'ELU', 'Softmax', 'ThresholdedReLU', 'Masking', 'Rescaling', 'TsScale', 'TsClip', 'TsHardSigmoid', 'TsHardSwish']) {
  LAYERS[cls] = identity;
}
for (const cls of ['Add', 'Subtract', 'Multiply', 'Average', 'Maximum', 'Minimum']) LAYERS[cls] = merge;

const NESTED = new Set(['Sequential', 'Model', 'Functional']);

/** Layer classes this check understands (and so the ones an upload may use). */
export const SUPPORTED_LAYER_CLASSES: readonly string[] = Object.freeze([...Object.keys(LAYERS), ...NESTED].sort());

/** Counts one layer against the limits: its parameters, its output size and the number of layers. */
function account(layer: LayerReader, params: number, output: Shape, walk: Walk, first: boolean, detail?: string): void {
  const { limits } = walk;
  if (first) {
    if (walk.layers.length + 1 > limits.maxLayers) layer.fail(`the model has more than ${fmt(limits.maxLayers)} layers, the limit`);
    if (!(params <= limits.maxLayerParams)) layer.fail(`${detail ? `${detail}: ` : ''}${fmt(params)} parameters; the limit per layer is ${fmt(limits.maxLayerParams)}`);
    walk.params += params;
    walk.layers.push({ name: layer.name, className: layer.cls, params });
    if (!(walk.params <= limits.maxParams)) layer.fail(`the model reaches ${fmt(walk.params)} parameters at this layer; the limit is ${fmt(limits.maxParams)}`);
  }
  const dims = output.filter((d): d is number => d !== null);
  if (dims.some((d) => !(Number.isInteger(d) && d >= 1 && d <= MAX_DIM))) layer.fail(`output shape ${JSON.stringify(output)} is not a valid shape`);
  const elements = product(dims);
  if (!(elements <= limits.maxLayerOutput)) {
    layer.fail(`output shape ${JSON.stringify(output)} holds ${fmt(elements)} values per example; the limit per layer is ${fmt(limits.maxLayerOutput)}`);
  }
}

function layerName(node: Json, config: Json, fallback: string): string {
  const n = typeof node.name === 'string' ? node.name : typeof config.name === 'string' ? config.name : fallback;
  return n.length > 200 ? `${n.slice(0, 200)}…` : n;
}

/** One layer node of a topology (not the model itself): its output for `inputs`. */
function walkLayer(node: unknown, inputs: Shape[], walk: Walk, depth: number, index: number, first: boolean): Shape {
  if (!isObject(node) || typeof node.class_name !== 'string') {
    throw new ModelBudgetError(`${FIELD}: layer #${index} must be an object with a 'class_name'`, FIELD);
  }
  const cls = node.class_name;
  const config = isObject(node.config) ? node.config : Array.isArray(node.config) ? { layers: node.config } : {};
  const layer = new LayerReader(layerName(node, config, `#${index}`), cls.length > 100 ? `${cls.slice(0, 100)}…` : cls, config);
  if (NESTED.has(cls)) {
    if (depth + 1 > MAX_NESTING) layer.fail(`models nested more than ${MAX_NESTING} deep`);
    // A nested model's own layers are counted one by one; calling it again counts nothing new.
    return first ? walkModel(node, inputs, walk, depth + 1) : walkModel(node, inputs, { ...walk, layers: [], params: 0, limits: { ...walk.limits, maxLayers: Infinity, maxParams: Infinity } }, depth + 1);
  }
  const fn = LAYERS[cls];
  if (fn === undefined) {
    throw new ModelBudgetError(`${FIELD}: unsupported layer class '${layer.cls}' (layer '${layer.name}'); supported classes: ${SUPPORTED_LAYER_CLASSES.join(', ')}`, FIELD);
  }
  // A layer that declares its input shape takes that shape (the first layer of a Sequential).
  const declared = cls === 'InputLayer' ? null : declaredInput(layer);
  const ins = declared ? [declared] : inputs;
  if (ins.length === 0 && cls !== 'InputLayer') layer.fail("has no input: give the first layer a 'batch_input_shape'");
  const { params, output, detail } = fn(layer, ins, walk, depth);
  if (!(Number.isFinite(params) && params >= 0)) layer.fail(`parameter count ${String(params)} is not a valid count`);
  account(layer, params, output, walk, first, detail);
  return output;
}

/** Whether a layer node is a nested model with an input of its own (so its node 0 is its own, not a call). */
function ownsFirstNode(node: Json): boolean {
  if (typeof node.class_name !== 'string' || !NESTED.has(node.class_name)) return false;
  if (node.class_name !== 'Sequential') return true;
  const config = Array.isArray(node.config) ? { layers: node.config } : isObject(node.config) ? node.config : {};
  const first: unknown = Array.isArray(config.layers) ? config.layers[0] : undefined;
  if (!isObject(first)) return false;
  const c = isObject(first.config) ? first.config : {};
  return first.class_name === 'InputLayer' || Array.isArray(c.batch_input_shape) || Array.isArray(c.batch_shape) || Array.isArray(c.input_shape);
}

type TensorRef = [string, number, number];

function tensorRefs(raw: unknown, where: string): TensorRef[] {
  const bad = () => new ModelBudgetError(`${FIELD}: ${where} must be a list of [layer name, node index, tensor index]`, FIELD);
  if (!Array.isArray(raw)) throw bad();
  // Single-tensor references may come bare ([name, 0, 0]) instead of as a one-item list.
  const list = raw.length === 3 && typeof raw[0] === 'string' ? [raw] : raw;
  return list.map((r: unknown) => {
    if (!Array.isArray(r) || typeof r[0] !== 'string' || !Number.isInteger(r[1]) || !Number.isInteger(r[2]) || r[1] < 0 || r[2] < 0) throw bad();
    return [r[0], r[1] as number, r[2] as number];
  });
}

/**
 * A Sequential or functional model node (`{ class_name, config }`); returns
 * its output shapes. `inputs` are the shapes it is called on (empty at the top).
 */
function walkModel(node: Json, inputs: Shape[], walk: Walk, depth: number): Shape {
  const config = Array.isArray(node.config) ? { layers: node.config } : isObject(node.config) ? node.config : null;
  const name = isObject(node.config) && typeof node.config.name === 'string' ? node.config.name : String(node.class_name);
  const fail = (what: string): never => {
    throw new ModelBudgetError(`${FIELD}: model '${name}': ${what}`, FIELD);
  };
  if (config === null || !Array.isArray(config.layers)) return fail("'config.layers' must be a list of layers");
  const layers = config.layers as unknown[];
  if (layers.length > walk.limits.maxLayers) return fail(`${fmt(layers.length)} layers; the limit is ${fmt(walk.limits.maxLayers)}`);

  if (node.class_name === 'Sequential') {
    let shape: Shape[] = inputs.length > 0 ? inputs : [];
    layers.forEach((l, i) => {
      shape = [walkLayer(l, shape, walk, depth, i, true)];
    });
    if (shape.length === 0) return fail('has no layers');
    return shape[0]!;
  }

  // Functional: layers carry inbound_nodes naming the tensors they are called on.
  const outputs = new Map<string, Shape[]>(); // `${layer}/${node}` -> shape of each output tensor
  const pending = layers.map((l, i) => ({ l, i, node: 0 }));
  const seen = new Set<string>();
  const inputNames = config.input_layers === undefined ? [] : tensorRefs(config.input_layers, `model '${name}' input_layers`);
  // A nested functional model called on outer tensors: its input layers take those shapes.
  const given = new Map(inputNames.map((r, k) => [r[0], inputs[k]]));
  // Bounded passes: each resolves at least one call or the graph is refused.
  for (let progress = true; progress && pending.length > 0; ) {
    progress = false;
    for (let p = 0; p < pending.length; p++) {
      const { l, i } = pending[p]!;
      if (!isObject(l)) throw new ModelBudgetError(`${FIELD}: model '${name}': layer #${i} must be an object`, FIELD);
      const lname = typeof l.name === 'string' ? l.name : isObject(l.config) && typeof l.config.name === 'string' ? l.config.name : `#${i}`;
      const inbound = Array.isArray(l.inbound_nodes) ? l.inbound_nodes : [];
      if (inbound.length === 0) {
        const g = given.get(lname);
        outputs.set(`${lname}/0`, [walkLayer(l, g ? [g] : [], walk, depth, i, !seen.has(lname))]);
        seen.add(lname);
        pending.splice(p--, 1);
        progress = true;
        continue;
      }
      if (inbound.length > walk.limits.maxLayers) throw new ModelBudgetError(`${FIELD}: layer '${lname}': called ${inbound.length} times`, FIELD);
      const calls = inbound.map((n: unknown, k) => tensorRefs(n, `layer '${lname}' inbound_nodes[${k}]`));
      // Calls resolve one by one, in order: a layer's second call may read what its first call fed.
      const entry = pending[p]!;
      // A nested model built on its own input already has node 0; its calls here are nodes 1, 2, ...
      const offset = ownsFirstNode(l) ? 1 : 0;
      while (entry.node < calls.length && calls[entry.node]!.every(([src, n]) => outputs.has(`${src}/${n}`))) {
        const k = entry.node++;
        const shapes = calls[k]!.map(([src, n, t]) => {
          const s = outputs.get(`${src}/${n}`)![t];
          if (s === undefined) throw new ModelBudgetError(`${FIELD}: layer '${lname}' reads tensor ${t} of '${src}', which has no such output`, FIELD);
          return s;
        });
        outputs.set(`${lname}/${k + offset}`, [walkLayer(l, shapes, walk, depth, i, !seen.has(lname))]);
        seen.add(lname);
        progress = true;
      }
      if (entry.node === calls.length) pending.splice(p--, 1);
    }
  }
  if (pending.length > 0) {
    const stuck = pending.map(({ l, i }) => (isObject(l) && typeof l.name === 'string' ? l.name : `#${i}`)).slice(0, 5);
    return fail(`layer(s) ${stuck.map((s) => `'${s}'`).join(', ')} read tensors no layer produces (or form a cycle)`);
  }
  const outs = config.output_layers === undefined ? [] : tensorRefs(config.output_layers, `model '${name}' output_layers`);
  const first = outs[0];
  if (first === undefined) return fail("names no 'output_layers'");
  const s = outputs.get(`${first[0]}/${first[1]}`)?.[first[2]];
  if (s === undefined) return fail(`output '${first[0]}' is not a layer of the model`);
  return s;
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
const QUANT_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };

/** Sums the manifest and checks it against the limits and, when given, the files' sizes. */
function walkManifest(raw: unknown, limits: ModelLimits, fileBytes?: ReadonlyMap<string, number>): { elements: number; bytes: number } {
  const base = `${FIELD}.weightsManifest`;
  if (!Array.isArray(raw)) throw new ModelBudgetError(`${base}: must be a list of weight groups`, base);
  let elements = 0;
  let bytes = 0;
  raw.forEach((group: unknown, g) => {
    const gf = `${base}[${g}]`;
    if (!isObject(group) || !Array.isArray(group.weights) || !Array.isArray(group.paths)) {
      throw new ModelBudgetError(`${gf}: must be an object with 'paths' and 'weights' lists`, gf);
    }
    let groupBytes = 0;
    const spans: { name: string; field: string; start: number; end: number }[] = [];
    group.weights.forEach((w: unknown, i) => {
      const wf = `${gf}.weights[${i}]`;
      if (!isObject(w) || typeof w.name !== 'string') throw new ModelBudgetError(`${wf}.name: must be a string`, `${wf}.name`);
      const label = `weight '${w.name.slice(0, 200)}'`;
      if (!Array.isArray(w.shape) || !w.shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0 && d <= MAX_DIM)) {
        throw new ModelBudgetError(`${wf}.shape: ${label} has shape ${JSON.stringify(w.shape) ?? String(w.shape)}; it must be a list of non-negative integers`, `${wf}.shape`);
      }
      const q = isObject(w.quantization) ? w.quantization.dtype : undefined;
      const size = q !== undefined ? QUANT_BYTES[String(q)] : DTYPE_BYTES[String(w.dtype)];
      if (size === undefined) {
        const what = q !== undefined ? `.quantization.dtype '${String(q)}'` : `.dtype '${String(w.dtype)}'`;
        throw new ModelBudgetError(`${wf}${what} is not supported in a Layers model (${label})`, `${wf}.dtype`);
      }
      const n = product(w.shape as number[]);
      if (!(n <= limits.maxLayerParams)) {
        throw new ModelBudgetError(`${wf}.shape: ${label} has ${fmt(n)} values; the limit per layer is ${fmt(limits.maxLayerParams)}`, `${wf}.shape`);
      }
      elements += n;
      spans.push({ name: w.name, field: wf, start: groupBytes, end: groupBytes + n * size });
      groupBytes += n * size;
      bytes += n * size;
      if (!(elements <= limits.maxParams)) {
        throw new ModelBudgetError(`${wf}: the manifest reaches ${fmt(elements)} values at ${label}; the limit is ${fmt(limits.maxParams)}`, wf);
      }
      if (!(bytes <= limits.maxBytes)) {
        throw new ModelBudgetError(`${wf}: the manifest reaches ${fmt(bytes)} weight bytes at ${label}; the limit is ${fmt(limits.maxBytes)}`, wf);
      }
    });
    if (fileBytes === undefined) return;
    let found = 0;
    group.paths.forEach((p: unknown, k) => {
      const size = typeof p === 'string' ? fileBytes.get(p) : undefined;
      if (size === undefined) throw new ModelBudgetError(`${gf}.paths[${k}]: weight file ${JSON.stringify(p)} is missing`, `${gf}.paths[${k}]`);
      found += size;
    });
    if (found < groupBytes) {
      const cut = spans.find((s) => s.end > found)!;
      throw new ModelBudgetError(
        `${cut.field}: weight '${cut.name.slice(0, 200)}' needs bytes ${fmt(cut.start)}-${fmt(cut.end)} of ${group.paths.join(', ')}, which hold only ${fmt(found)} bytes (truncated?)`,
        cut.field,
      );
    }
    if (found > groupBytes) {
      throw new ModelBudgetError(`${gf}.paths: weight file(s) ${group.paths.join(', ')} hold ${fmt(found)} bytes but ${gf} describes ${fmt(groupBytes)} bytes`, `${gf}.paths`);
    }
  });
  return { elements, bytes };
}

/**
 * Checks a parsed model.json against `limits` without building anything:
 * the topology's layers (classes, settings, inferred shapes and parameter
 * counts) and the weights manifest (shapes, dtypes, bytes; against
 * `fileBytes`, the weight files' sizes by manifest path, when given). Throws
 * ModelBudgetError naming the layer or manifest entry; returns the figures.
 */
export function checkModelJson(modelJson: unknown, limits: ModelLimits = DEFAULT_MODEL_LIMITS, fileBytes?: ReadonlyMap<string, number>): ModelBudget {
  if (!isObject(modelJson)) throw new ModelBudgetError(`${FIELD}: expected a JSON object`, FIELD);
  const topology = modelJson.modelTopology;
  if (!isObject(topology)) throw new ModelBudgetError(`${FIELD}: missing 'modelTopology' (a TF.js Layers model is required)`, `${FIELD}.modelTopology`);
  // Keras writes { model_config, training_config } around the model; TF.js writes the model itself.
  const root = isObject(topology.model_config) ? topology.model_config : topology;
  if (typeof root.class_name !== 'string' || !NESTED.has(root.class_name)) {
    throw new ModelBudgetError(`${FIELD}: modelTopology must be a Sequential or functional model, got class ${JSON.stringify(root.class_name)}`, `${FIELD}.modelTopology`);
  }
  const walk: Walk = { limits, layers: [], params: 0 };
  walkModel(root, [], walk, 0);
  const manifest = walkManifest(modelJson.weightsManifest, limits, fileBytes);
  return { params: walk.params, manifestElements: manifest.elements, weightBytes: manifest.bytes, layers: walk.layers };
}
