// Reading a Layers model as data: which weights are prunable, parameter and
// FLOP counts, weights as a name -> values map (and back), and a summary.
// Weight names are `${layer.name}/${short}` (e.g. `fc1/kernel`, `bn1/moving_mean`),
// never tfjs's runtime variable names, which get `_1` suffixes when two models
// with the same layer names live in one process.
import * as tf from '@tensorflow/tfjs';
import type { PrunableWeight, WeightKind, WeightMap } from '../types.js';
import { product, shapesOf, type Shape } from '../shapes.js';
import { CONV_CLASSES } from './classes.js';
import { layerFlops } from './flops.js';

type Layer = tf.layers.Layer;

/** Layers of the model graph that hold weights, nested models flattened. */
function leafLayers(model: tf.LayersModel): Layer[] {
  const out: Layer[] = [];
  const seen = new Set<Layer>();
  const visit = (m: tf.LayersModel): void => {
    for (const layer of m.layers) {
      if (seen.has(layer)) continue;
      seen.add(layer);
      if (layer instanceof tf.LayersModel) visit(layer);
      else out.push(layer);
    }
  };
  visit(model);
  return out;
}

/** The part of a variable's scoped name after its layer's name (`kernel`, `forward_lstm/kernel`). */
function shortName(layer: Layer, v: tf.LayerVariable): string {
  const segs = v.originalName.split('/');
  const i = segs.indexOf(layer.name);
  return i >= 0 && i < segs.length - 1 ? segs.slice(i + 1).join('/') : segs[segs.length - 1];
}

interface WeightEntry { name: string; short: string; layer: Layer; variable: tf.LayerVariable }

function weightEntries(model: tf.LayersModel): WeightEntry[] {
  const entries: WeightEntry[] = [];
  const names = new Set<string>();
  for (const layer of leafLayers(model)) {
    for (const variable of layer.weights) {
      const short = shortName(layer, variable);
      const name = `${layer.name}/${short}`;
      if (names.has(name)) {
        throw new Error(`model '${model.name}' has two weights named '${name}'; layer names must be unique (also across nested models)`);
      }
      names.add(name);
      entries.push({ name, short, layer, variable });
    }
  }
  return entries;
}

/**
 * The live variables by weight name, for code that must write weights in
 * place every step (mask enforcement). `variable.read()` is the model's own
 * tensor: do not dispose it.
 */
export function weightVariables(model: tf.LayersModel): Map<string, tf.LayerVariable> {
  return new Map(weightEntries(model).map((e) => [e.name, e.variable]));
}

function symbolicInputs(layer: Layer, nodeIndex: number): tf.SymbolicTensor[] {
  const node = layer.inboundNodes[nodeIndex];
  return node === undefined ? [] : node.inputTensors;
}

/**
 * Layers that produce a model output, looking back through weightless
 * single-input layers (a separate softmax Activation, Dropout, Reshape) and
 * into nested models, so `Dense -> Activation('softmax')` still marks the Dense.
 */
function outputProducers(model: tf.LayersModel): Set<Layer> {
  const found = new Set<Layer>();
  const walk = (t: tf.SymbolicTensor, depth: number): void => {
    if (depth > 10_000) return;
    const layer = t.sourceLayer;
    if (layer instanceof tf.LayersModel) {
      const inner = layer.outputs[t.tensorIndex];
      if (inner !== undefined) walk(inner, depth + 1);
      return;
    }
    if (layer.weights.length > 0) {
      found.add(layer);
      return;
    }
    const inputs = symbolicInputs(layer, t.nodeIndex);
    if (inputs.length === 1) walk(inputs[0], depth + 1);
  };
  for (const t of model.outputs) walk(t, 0);
  return found;
}

/**
 * Every convolution and Dense kernel (including depthwise and pointwise kernels of
 * separable convs), in layer order. Biases and batch-norm parameters are not
 * prunable. Kind: `conv` for convolutions, `output` for a Dense that produces
 * a model output, `dense` otherwise.
 */
export function prunableWeights(model: tf.LayersModel): PrunableWeight[] {
  const outputs = outputProducers(model);
  const result: PrunableWeight[] = [];
  for (const e of weightEntries(model)) {
    const cls = e.layer.getClassName();
    const isConv = CONV_CLASSES.has(cls);
    if (!isConv && cls !== 'Dense') continue;
    if (!e.short.endsWith('kernel')) continue;
    const kind: WeightKind = isConv ? 'conv' : outputs.has(e.layer) ? 'output' : 'dense';
    result.push({ name: e.name, layer: e.layer.name, kind, shape: [...e.variable.shape] as number[] });
  }
  return result;
}

/**
 * Number of scalars in all weights, trainable or not (batch-norm moving
 * statistics included), like Keras's "Total params".
 */
export function countParams(model: tf.LayersModel): number {
  let n = 0;
  for (const e of weightEntries(model)) n += product(e.variable.shape as number[]);
  return n;
}

/** Multiply-adds of one forward pass at batch 1, every layer call counted as flops.ts says. */
export function countFlops(model: tf.LayersModel): number {
  let total = 0;
  for (const layer of leafLayers(model)) {
    for (let i = 0; i < layer.inboundNodes.length; i++) total += layerFlops(layer, i, 'countFlops');
  }
  return total;
}

/** Copies of all weight values, by weight name. */
export function getWeightMap(model: tf.LayersModel): WeightMap {
  const map: WeightMap = {};
  for (const e of weightEntries(model)) {
    // dataSync() may hand back the backend's own buffer; copy so callers can mutate.
    map[e.name] = {
      shape: [...e.variable.shape] as number[],
      values: Float32Array.from(e.variable.read().dataSync() as ArrayLike<number>),
    };
  }
  return map;
}

export interface SetWeightOptions {
  /** Throw when the map lacks any of the model's weights (default: false, partial updates allowed). */
  requireAll?: boolean;
}

/**
 * Writes weights by name. Everything is checked before anything is written, so
 * a bad map leaves the model untouched. Names the model does not have, shape
 * mismatches and wrong value counts are errors; weights absent from the map
 * keep their values unless `requireAll` is set.
 */
export function setWeightMap(model: tf.LayersModel, w: WeightMap, opts: SetWeightOptions = {}): void {
  const byName = new Map(weightEntries(model).map((e) => [e.name, e]));
  const problems: string[] = [];
  for (const [name, entry] of Object.entries(w)) {
    const target = byName.get(name);
    if (target === undefined) {
      problems.push(`unknown weight '${name}'`);
      continue;
    }
    const want = target.variable.shape as number[];
    if (!Array.isArray(entry.shape) || entry.shape.length !== want.length || entry.shape.some((d, i) => d !== want[i])) {
      problems.push(`'${name}': shape ${JSON.stringify(entry.shape)} does not match the model's ${JSON.stringify(want)}`);
      continue;
    }
    if (entry.values.length !== product(want)) {
      problems.push(`'${name}': ${entry.values.length} values for shape ${JSON.stringify(want)} (${product(want)} expected)`);
    }
  }
  if (opts.requireAll === true) {
    for (const name of byName.keys()) if (!Object.hasOwn(w, name)) problems.push(`missing weight '${name}'`);
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 10).join('; ');
    const more = problems.length > 10 ? ` (and ${problems.length - 10} more)` : '';
    throw new Error(`setWeightMap on model '${model.name}': ${shown}${more}`);
  }
  for (const [name, entry] of Object.entries(w)) {
    const { variable } = byName.get(name) as WeightEntry;
    tf.tidy(() => {
      variable.write(tf.tensor(entry.values, entry.shape, variable.dtype));
    });
  }
}

export interface LayerSummary {
  name: string;
  className: string;
  /** Without the batch dimension; -1 marks a dimension unknown until run time. */
  outputShape: number[];
  params: number;
}

export interface ModelSummary {
  /** Without the batch dimension. */
  inputShape: number[];
  numClasses: number;
  layers: LayerSummary[];
  params: number;
  flops: number;
}

function dropBatch(s: Shape): number[] {
  return s.slice(1).map((d) => (d === null ? -1 : d));
}

/** Summary of a single-input, single-output classifier; layers are the top-level ones. */
export function describeModel(model: tf.LayersModel): ModelSummary {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new Error(`describeModel: model '${model.name}' has ${model.inputs.length} inputs and ${model.outputs.length} outputs; a classifier with one of each is expected`);
  }
  const layers = model.layers.map((layer): LayerSummary => {
    const node = layer.inboundNodes[0];
    const shape = node === undefined ? [] : dropBatch(shapesOf(node.outputShapes)[0]);
    return { name: layer.name, className: layer.getClassName(), outputShape: shape, params: layer.countParams() };
  });
  const outShape = dropBatch(model.outputs[0].shape);
  return {
    inputShape: dropBatch(model.inputs[0].shape),
    numClasses: outShape[outShape.length - 1],
    layers,
    params: countParams(model),
    flops: countFlops(model),
  };
}
