// A Keras model config (Keras 3's config.json, or the `model_config` of a
// legacy .h5, Keras 2 or 3) rewritten as the Keras-2-style functional
// topology TF.js's `modelFromJSON` builds. Keras 3 wraps everything in
// {module, class_name, config, registered_name}, writes dtype policies as
// objects, InputLayer's `batch_shape`, and calls as {args, kwargs} holding
// `__keras_tensor__`s; TF.js wants plain class/config pairs, a dtype string,
// `batch_input_shape` and `[[layer, node, tensor, {}]]`. Sequential models
// become a chain in the same functional form, so one builder serves both.
//
// Each layer is rebuilt from an allowlist of its settings, not copied: a
// setting TF.js lacks or computes differently (channels_first, grouped
// convolution, ReLU thresholds, keepdims pooling, Keras 3's hard_sigmoid)
// is refused by name rather than silently dropped. Initialisers are not
// carried: the weights come from the file, and an uploaded model's
// random-reinit control draws its own (controls/reinit.ts).
import { ModelImportError } from '../import/errors.js';

type Json = Record<string, unknown>;
const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A layer of the converted topology, with what the weight readers need. */
export interface KerasLayer {
  name: string;
  className: string;
}

export interface ConvertedModel {
  /** `{class_name: 'Model', config: {...}}`, ready for `tf.models.modelFromJSON({modelTopology})`. */
  topology: Json;
  /** Every layer in config order (Keras 3 numbers its weight groups in this order). */
  layers: KerasLayer[];
}

const unsupported = (msg: string): ModelImportError => new ModelImportError('UNSUPPORTED_MODEL', msg);

/** A layer being converted: its name and class for every message about it. */
class Source {
  constructor(
    readonly where: string,
    readonly name: string,
    readonly cls: string,
    readonly config: Json,
  ) {}

  refuse(what: string, why = 'Ticketsmith builds Keras models with TF.js Layers, which lacks this'): never {
    throw unsupported(`${this.where}: layer '${this.name}' (${this.cls}) ${what}; ${why}`);
  }

  invalid(what: string): never {
    throw new ModelImportError('INVALID_ARGUMENT', `${this.where}: layer '${this.name}' (${this.cls}): ${what}`);
  }

  /** Copies `keys` that are present (snake_case, as TF.js reads them). */
  pick(...keys: string[]): Json {
    const out: Json = {};
    for (const k of keys) if (this.config[k] !== undefined) out[k] = this.config[k];
    return out;
  }

  channelsLast(): void {
    const f = this.config.data_format;
    if (f !== undefined && f !== null && f !== 'channels_last') {
      this.refuse(`uses data_format '${String(f)}'; only channels_last is supported (re-save the model with channels_last)`);
    }
  }

  activation(key = 'activation'): string {
    const raw = this.config[key];
    if (raw === undefined || raw === null) return 'linear';
    const name = typeof raw === 'string' ? raw : isObject(raw) && typeof raw.class_name === 'string' ? raw.class_name : JSON.stringify(raw);
    const mapped = ACTIVATIONS[name];
    if (mapped === undefined) this.refuse(`uses activation '${name}'; supported activations: ${Object.keys(ACTIVATIONS).sort().join(', ')}`);
    return mapped;
  }

  zero(key: string): void {
    const v = this.config[key];
    if (v !== undefined && v !== null && v !== 0) this.refuse(`sets ${key}=${JSON.stringify(v)}`);
  }
}

/** Keras activation names TF.js computes the same way, and TF.js's name for each. */
const ACTIVATIONS: Record<string, string> = {
  linear: 'linear',
  relu: 'relu',
  relu6: 'relu6',
  sigmoid: 'sigmoid',
  tanh: 'tanh',
  softmax: 'softmax',
  softplus: 'softplus',
  softsign: 'softsign',
  elu: 'elu',
  selu: 'selu',
  swish: 'swish',
  silu: 'swish',
  gelu: 'gelu',
  mish: 'mish',
};

const CONV_KEYS = ['kernel_size', 'strides', 'padding', 'dilation_rate', 'use_bias'];

/** A layer TF.js builds under another class (Keras's ReLU with a negative slope is TF.js's LeakyReLU). */
class Retyped {
  constructor(
    readonly cls: string,
    readonly config: Json,
  ) {}
}

/** A layer's TF.js config (name, trainable and dtype are added by the caller). */
type Converter = (layer: Source) => Json | Retyped;

const conv = (extra: string[]): Converter => (l) => {
  l.channelsLast();
  const groups = l.config.groups;
  if (groups !== undefined && groups !== 1) l.refuse(`uses groups=${JSON.stringify(groups)}; grouped convolutions are not supported (depthwise ones are: use DepthwiseConv2D)`);
  if (l.config.padding === 'causal') l.refuse("uses padding 'causal'");
  return { ...l.pick(...CONV_KEYS, ...extra), data_format: 'channels_last', activation: l.activation() };
};

const pool2d: Converter = (l) => {
  l.channelsLast();
  return { ...l.pick('pool_size', 'strides', 'padding'), data_format: 'channels_last' };
};

const globalPool2d: Converter = (l) => {
  l.channelsLast();
  if (l.config.keepdims === true) l.refuse('sets keepdims=true');
  return { data_format: 'channels_last' };
};

const none: Converter = () => ({});

const CONVERTERS: Record<string, Converter> = {
  Conv2D: conv(['filters']),
  DepthwiseConv2D: conv(['depth_multiplier']),
  SeparableConv2D: conv(['filters', 'depth_multiplier']),
  Dense: (l) => ({ ...l.pick('units', 'use_bias'), activation: l.activation() }),
  BatchNormalization: (l) => {
    const axis = l.config.axis ?? -1;
    if (axis !== -1 && axis !== 3) l.refuse(`normalises axis ${JSON.stringify(axis)}; only the channel axis (-1) of channels_last data is supported`);
    if (l.config.renorm === true) l.refuse('uses batch renormalisation (renorm=true)');
    return { ...l.pick('momentum', 'epsilon', 'center', 'scale'), axis: -1 };
  },
  Activation: (l) => ({ activation: l.activation() }),
  ReLU: (l) => {
    l.zero('threshold');
    const max = l.config.max_value;
    if (max !== undefined && max !== null && (typeof max !== 'number' || !(max > 0))) l.invalid(`max_value must be a positive number, got ${JSON.stringify(max)}`);
    const slope = l.config.negative_slope ?? 0;
    if (typeof slope !== 'number') l.invalid(`negative_slope must be a number, got ${JSON.stringify(slope)}`);
    if (slope !== 0) {
      if (max !== undefined && max !== null) l.refuse(`sets both negative_slope=${slope} and max_value=${max}`);
      return new Retyped('LeakyReLU', { alpha: slope });
    }
    return max === undefined || max === null ? {} : { max_value: max };
  },
  LeakyReLU: (l) => {
    const alpha = l.config.negative_slope ?? l.config.alpha ?? 0.3;
    if (typeof alpha !== 'number') l.invalid(`negative_slope must be a number, got ${JSON.stringify(alpha)}`);
    return { alpha };
  },
  ELU: (l) => ({ alpha: l.config.alpha ?? 1 }),
  Softmax: (l) => {
    const axis = l.config.axis ?? -1;
    if (axis !== -1) l.refuse(`normalises axis ${JSON.stringify(axis)}; only the last axis (-1) is supported`);
    return { axis: -1 };
  },
  MaxPooling2D: pool2d,
  AveragePooling2D: pool2d,
  GlobalAveragePooling2D: globalPool2d,
  GlobalMaxPooling2D: globalPool2d,
  Flatten: (l) => {
    l.channelsLast();
    return { data_format: 'channels_last' };
  },
  Reshape: (l) => l.pick('target_shape'),
  Dropout: (l) => l.pick('rate'),
  ZeroPadding2D: (l) => {
    l.channelsLast();
    return { ...l.pick('padding'), data_format: 'channels_last' };
  },
  Rescaling: (l) => {
    const { scale, offset } = l.config;
    if (typeof scale !== 'number' || (offset !== undefined && typeof offset !== 'number')) {
      l.refuse(`has scale ${JSON.stringify(scale)} and offset ${JSON.stringify(offset)}; only single numbers are supported`);
    }
    return { scale, offset: offset ?? 0 };
  },
  Add: none,
  Multiply: none,
  Average: none,
  Maximum: none,
  Minimum: none,
  Concatenate: (l) => {
    const axis = l.config.axis ?? -1;
    if (axis !== -1 && axis !== 3) l.refuse(`joins on axis ${JSON.stringify(axis)}; only the channel axis (-1) is supported`);
    return { axis: -1 };
  },
};

/** The Keras layer classes importKeras maps (besides InputLayer). */
export const KERAS_LAYER_CLASSES: readonly string[] = Object.freeze(Object.keys(CONVERTERS).sort());

const MODEL_CLASSES = new Set(['Functional', 'Model', 'Sequential']);

/** Keras 3 writes a dtype policy object; Keras 2 a string. Only float32 is built. */
function dtypeOf(l: Source): string {
  const raw = l.config.dtype;
  const name = raw === undefined || raw === null ? 'float32' : typeof raw === 'string' ? raw : isObject(raw) && isObject(raw.config) ? raw.config.name : undefined;
  if (name !== 'float32') l.refuse(`has dtype ${JSON.stringify(name ?? raw)}; only float32 models are supported`);
  return 'float32';
}

function layerName(node: Json, index: number): string {
  const config = isObject(node.config) ? node.config : {};
  const name = node.name ?? config.name;
  return typeof name === 'string' && name.length > 0 ? name : `#${index}`;
}

type Ref = [string, number, number];

/** [name, node, tensor] references, bare (`['x', 0, 0]`) or listed (`[['x', 0, 0], ...]`). */
function refs(raw: unknown, where: string): Ref[] {
  const isRef = (r: unknown): r is Ref => Array.isArray(r) && r.length >= 3 && typeof r[0] === 'string' && Number.isInteger(r[1]) && Number.isInteger(r[2]);
  if (isRef(raw)) return [[raw[0], raw[1], raw[2]]];
  if (Array.isArray(raw) && raw.every(isRef)) return raw.map((r) => [r[0], r[1], r[2]]);
  throw new ModelImportError('INVALID_ARGUMENT', `${where} must be a list of [layer name, node index, tensor index], got ${JSON.stringify(raw)?.slice(0, 200)}`);
}

/** The tensors one call of a layer reads, from Keras 3's {args, kwargs} or Keras 2's [[name, node, tensor, kwargs], ...]. */
function callInputs(call: unknown, l: Source): Ref[] {
  if (Array.isArray(call)) return refs(call, `${l.where}: layer '${l.name}' inbound_nodes`);
  if (!isObject(call)) l.invalid(`inbound node ${JSON.stringify(call)?.slice(0, 200)} is neither a Keras 3 {args, kwargs} call nor a Keras 2 list`);
  const out: Ref[] = [];
  const visit = (x: unknown, inKwargs: boolean): void => {
    if (Array.isArray(x)) {
      x.forEach((y) => visit(y, inKwargs));
    } else if (isObject(x) && x.class_name === '__keras_tensor__') {
      if (inKwargs) l.refuse('is called with a tensor as a keyword argument');
      const hist = isObject(x.config) ? x.config.keras_history : undefined;
      out.push(...refs(hist, `${l.where}: layer '${l.name}' keras_history`));
    } else if (isObject(x)) {
      Object.values(x).forEach((y) => visit(y, inKwargs));
    } else if (!inKwargs && x !== null) {
      l.refuse(`is called with a non-tensor argument ${JSON.stringify(x)}`);
    }
  };
  visit(call.args ?? [], false);
  visit(call.kwargs ?? {}, true);
  return out;
}

/** The input's per-example shape from an InputLayer or from a first layer's declared shape. */
function inputShape(l: Source, fallback?: unknown): (number | null)[] {
  const c = l.config;
  const batch = c.batch_shape ?? c.batch_input_shape;
  const raw = Array.isArray(batch) ? batch : Array.isArray(c.input_shape) ? [null, ...c.input_shape] : isObject(l.config.build_config) ? l.config.build_config.input_shape : fallback;
  if (!Array.isArray(raw) || raw.length < 2) l.invalid(`declares no input shape (batch_shape), got ${JSON.stringify(raw)}`);
  const dims = raw.slice(1);
  if (!dims.every((d) => d === null || (Number.isInteger(d) && (d as number) > 0))) l.invalid(`input shape ${JSON.stringify(raw)} must hold positive integers`);
  if (dims.some((d) => d === null)) {
    l.refuse(`has input shape ${JSON.stringify(raw)} with a dynamic (None) size`, 'pruning needs a fixed input size: re-save the model with one');
  }
  return dims as number[];
}

function inputLayer(name: string, shape: (number | null)[]): Json {
  return { class_name: 'InputLayer', name, inbound_nodes: [], config: { name, batch_input_shape: [null, ...shape], dtype: 'float32', sparse: false } };
}

function convertLayer(l: Source): Json {
  const convert = CONVERTERS[l.cls];
  if (convert === undefined) throw new Error(`no converter for ${l.cls}`);
  const trainable = l.config.trainable === false ? false : true;
  const out = convert(l);
  const [cls, config] = out instanceof Retyped ? [out.cls, out.config] : [l.cls, out];
  return { class_name: cls, config: { ...config, name: l.name, trainable, dtype: dtypeOf(l) } };
}

/** The model's class, its config and one Source per layer, names unique; refuses what is not a Keras model config. */
function readModel(raw: unknown, where: string): { cls: string; config: Json; nodes: unknown[]; sources: Source[]; names: Set<string> } {
  if (!isObject(raw) || typeof raw.class_name !== 'string') {
    throw new ModelImportError('INVALID_ARGUMENT', `${where}: expected a Keras model config with a 'class_name'`);
  }
  const cls = raw.class_name;
  if (!MODEL_CLASSES.has(cls)) {
    throw unsupported(`${where}: the model is a '${cls}'; only Sequential and functional Keras models can be imported (subclassed models have no config to rebuild)`);
  }
  const config = Array.isArray(raw.config) ? { layers: raw.config } : isObject(raw.config) ? raw.config : null;
  if (config === null || !Array.isArray(config.layers) || config.layers.length === 0) {
    throw new ModelImportError('INVALID_ARGUMENT', `${where}: model '${String(raw.class_name)}' lists no layers`);
  }
  const nodes = config.layers as unknown[];
  const sources = nodes.map((n, i) => {
    if (!isObject(n) || typeof n.class_name !== 'string') throw new ModelImportError('INVALID_ARGUMENT', `${where}: layer #${i} must be an object with a 'class_name'`);
    return new Source(where, layerName(n, i), n.class_name, isObject(n.config) ? n.config : {});
  });
  const names = new Set<string>();
  for (const s of sources) {
    if (names.has(s.name)) throw new ModelImportError('INVALID_ARGUMENT', `${where}: two layers are named '${s.name}'`);
    names.add(s.name);
  }
  return { cls, config, nodes, sources, names };
}

/** Every unknown class at once, each with the first layer that uses it. */
function checkClasses(sources: Source[], where: string): void {
  const firstUse = new Map<string, string>();
  for (const s of sources) if (s.cls !== 'InputLayer' && CONVERTERS[s.cls] === undefined && !firstUse.has(s.cls)) firstUse.set(s.cls, s.name);
  if (firstUse.size > 0) {
    const list = [...firstUse].map(([c, n]) => `${c} (first used by layer '${n}'${MODEL_CLASSES.has(c) ? ', a nested model' : ''})`).join(', ');
    throw unsupported(`${where}: unsupported Keras layer class${firstUse.size > 1 ? 'es' : ''}: ${list}; supported: InputLayer, ${KERAS_LAYER_CLASSES.join(', ')}`);
  }
}

interface Wired {
  out: Json[];
  inputs: Ref[];
  outputs: Ref[];
}

/** A Sequential model as a chain, an InputLayer added (and listed in `layers`) when the config has none. */
function wireSequential(m: ReturnType<typeof readModel>, layers: KerasLayer[], where: string): Wired {
  const { sources, names, config } = m;
  const out: Json[] = [];
  const first = sources[0]!;
  let prev: string;
  let rest = sources;
  if (first.cls === 'InputLayer') {
    out.push(inputLayer(first.name, inputShape(first)));
    prev = first.name;
    rest = sources.slice(1);
  } else {
    const build = isObject(config.build_input_shape) ? undefined : config.build_input_shape;
    const shape = inputShape(first, build);
    prev = names.has('input_layer') ? `${first.name}_input` : 'input_layer';
    out.push(inputLayer(prev, shape));
    layers.unshift({ name: prev, className: 'InputLayer' });
  }
  if (rest.length === 0) throw new ModelImportError('INVALID_ARGUMENT', `${where}: the Sequential model has no layers after its input`);
  for (const s of rest) {
    if (s.cls === 'InputLayer') s.invalid('an InputLayer may only come first in a Sequential model');
    out.push({ ...convertLayer(s), name: s.name, inbound_nodes: [[[prev, 0, 0, {}]]] });
    prev = s.name;
  }
  return { out, inputs: [[out[0]!.name as string, 0, 0]], outputs: [[prev, 0, 0]] };
}

/** A functional model: each layer with the calls its inbound_nodes list. */
function wireFunctional(m: ReturnType<typeof readModel>, where: string): Wired {
  const out: Json[] = [];
  const inputs = refs(m.config.input_layers, `${where}: input_layers`);
  const outputs = refs(m.config.output_layers, `${where}: output_layers`);
  m.nodes.forEach((n, i) => {
    const s = m.sources[i]!;
    const inbound = (n as Json).inbound_nodes;
    if (s.cls === 'InputLayer') {
      out.push(inputLayer(s.name, inputShape(s)));
      return;
    }
    if (!Array.isArray(inbound) || inbound.length === 0) return s.invalid('has no inbound_nodes: it is not connected to the model');
    const calls = (inbound as unknown[]).map((call) => callInputs(call, s).map(([src, node, t]) => [src, node, t, {}]));
    out.push({ ...convertLayer(s), name: s.name, inbound_nodes: calls });
  });
  return { out, inputs, outputs };
}

/** One input and one output, each a layer of the model. */
function checkEnds({ out, inputs, outputs }: Wired, names: Set<string>, where: string): void {
  const many = (what: string, rs: Ref[]): void => {
    if (rs.length !== 1) {
      throw unsupported(`${where}: the model has ${rs.length} ${what}s (${rs.map((r) => `'${r[0]}'`).join(', ')}); Ticketsmith models take one input and give one output`);
    }
  };
  many('input', inputs);
  many('output', outputs);
  for (const [n] of [...inputs, ...outputs]) {
    if (!names.has(n) && !out.some((l) => l.name === n)) throw new ModelImportError('INVALID_ARGUMENT', `${where}: the model's input or output '${n}' is not one of its layers`);
  }
}

/**
 * Converts a parsed Keras model config; `where` names the file it came from
 * (`config.json`, `model.h5 model_config`). Throws ModelImportError:
 * UNSUPPORTED_MODEL for layer classes or settings TF.js lacks (every
 * unsupported class named with the first layer using it), several inputs or
 * outputs, nested models; INVALID_ARGUMENT for a config that is not one.
 */
export function convertKerasConfig(raw: unknown, where: string): ConvertedModel {
  const m = readModel(raw, where);
  checkClasses(m.sources, where);
  const modelName = typeof m.config.name === 'string' && m.config.name.length > 0 ? m.config.name : 'keras_model';
  const layers: KerasLayer[] = m.sources.map((s) => ({ name: s.name, className: s.cls }));
  const wired = m.cls === 'Sequential' ? wireSequential(m, layers, where) : wireFunctional(m, where);
  checkEnds(wired, m.names, where);
  const topology = {
    class_name: 'Model',
    config: { name: modelName, layers: wired.out, input_layers: wired.inputs, output_layers: wired.outputs },
    keras_version: 'tfjs-layers',
    backend: 'tensor_flow.js',
  };
  return { topology, layers };
}
