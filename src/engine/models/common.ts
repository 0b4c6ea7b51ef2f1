// Shared pieces of the model zoo: the options every family takes, the family
// interface the registry holds, seeded initialisers so that a zoo model is a
// pure function of (name, options), and the dense classifier head.
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_MODEL_LIMITS, ModelBudgetError } from './budget.js';

export type Initializer = ReturnType<typeof tf.initializers.glorotNormal>;

export interface ModelOptions {
  /** Shape of one example, without the batch dimension, e.g. [28, 28, 1]. */
  inputShape: number[];
  numClasses: number;
  /** Integer; equal seeds give bit-identical initial weights. */
  seed: number;
  /** Most weights one dense layer may hold, judged before it is built (default: the model budget's maxLayerParams). */
  maxLayerParams?: number;
}

/**
 * Refuses a dense layer the data would make too large, before TF.js
 * allocates it: a zoo model's first dense layer grows with the input size
 * and its output layer with the class count, both the tenant's data.
 */
export function checkDenseWeights(layer: string, fanIn: number, units: number, opts: ModelOptions): void {
  const n = (v: number) => v.toLocaleString('en-US');
  checkLayerWeights(layer, fanIn * units + units, `${n(fanIn)} inputs x ${n(units)} units; inputs come from the data's example size, output units from its class count`, opts);
}

/** The same for a model's first 3x3 convolution, whose kernel grows with the data's channels. */
export function checkFirstConv(layer: string, channels: number, filters: number, opts: ModelOptions): void {
  const n = (v: number) => v.toLocaleString('en-US');
  checkLayerWeights(layer, 9 * channels * filters + filters, `3x3 x ${n(channels)} channels x ${n(filters)} filters; channels come from the data's examples`, opts);
}

function checkLayerWeights(layer: string, weights: number, why: string, opts: ModelOptions): void {
  const max = opts.maxLayerParams ?? DEFAULT_MODEL_LIMITS.maxLayerParams;
  if (weights > max) {
    const n = (v: number) => v.toLocaleString('en-US');
    throw new ModelBudgetError(`layer '${layer}' would hold ${n(weights)} weights, over the limit of ${n(max)} for one layer (${why})`, 'dataset');
  }
}

/** Elements of one example at the model's current output (the fan-in of the next dense layer). */
export function fanIn(shape: ReadonlyArray<number | null>): number {
  return shape.slice(1).reduce<number>((a, d) => a * (d ?? 1), 1);
}

export interface ZooEntry {
  name: string;
  description: string;
  defaultInput: number[];
}

/** CIFAR-10 images (NHWC): the default input of the conv, VGG and ResNet families. */
export const CIFAR_INPUT: readonly number[] = [32, 32, 3];

/** One family of zoo models (one file each); the registry only dispatches. */
export interface ModelFamily {
  /** Names shown by listModels(); a family may accept more (e.g. lenet-N-M). */
  entries: ZooEntry[];
  /** Human-readable name patterns, for error messages, e.g. `lenet-N-M`. */
  patterns: string[];
  matches(name: string): boolean;
  /** For a name of this family's pattern whose sizes are out of bounds: why (else null). */
  problem?(name: string): string | null;
  build(name: string, opts: ModelOptions): tf.LayersModel;
  /** Why `build` would refuse this example shape, or null; checked at submit without building (absent: any shape). */
  inputProblem?(name: string, inputShape: number[]): string | null;
}

export function validateOptions(name: string, opts: ModelOptions): void {
  const { inputShape, numClasses, seed } = opts;
  if (!Array.isArray(inputShape) || inputShape.length === 0
      || !inputShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`${name}: inputShape must be a non-empty list of positive integers, got ${JSON.stringify(inputShape)}`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new Error(`${name}: numClasses must be a positive integer, got ${String(numClasses)}`);
  }
  if (!Number.isSafeInteger(seed)) {
    throw new Error(`${name}: seed must be a safe integer, got ${String(seed)}`);
  }
}

/**
 * Seed for one layer's initialiser, derived from the model seed and the
 * layer's (unique, stable) name rather than its position, so inserting a
 * layer never reshuffles the initial weights of the others. Never 0: tfjs's
 * truncated-normal treats a falsy seed as "unseeded" and draws Math.random().
 */
export function layerSeed(seed: number, layerName: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < layerName.length; i++) {
    h = Math.imul(h ^ layerName.charCodeAt(i), 0x01000193);
  }
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 0x100000000) >>> 0;
  h = Math.imul(h ^ lo, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ hi, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) || 1;
}

/** Glorot (Xavier) normal, the Lottery Ticket paper's init for LeNet and Conv-2/4/6. */
export function glorotNormal(seed: number, layerName: string): Initializer {
  return tf.initializers.glorotNormal({ seed: layerSeed(seed, layerName) });
}

export function glorotUniform(seed: number, layerName: string): Initializer {
  return tf.initializers.glorotUniform({ seed: layerSeed(seed, layerName) });
}

/** He (Kaiming) normal, fan-in: the usual init for ReLU conv stacks with BN (VGG, ResNet). */
export function heNormal(seed: number, layerName: string): Initializer {
  return tf.initializers.heNormal({ seed: layerSeed(seed, layerName) });
}

/**
 * Batch norm with PyTorch-like statistics (momentum 0.9 in Keras terms, eps
 * 1e-5): the CIFAR VGG/ResNet results we compare against were trained that way.
 */
export function batchNorm(name: string): tf.layers.Layer {
  return tf.layers.batchNormalization({ name, momentum: 0.9, epsilon: 1e-5 });
}

/** The dense classifier that ends the lenet, conv and vgg families. */
export interface DenseHead {
  /** Units of each hidden layer, named fc1, fc2, ...; the output layer `out` follows. */
  hidden: number[];
  init: (seed: number, layerName: string) => Initializer;
  /**
   * Hidden layers as Dense without bias -> batch norm `bn_fcN` -> ReLU
   * `relu_fcN` (VGG) instead of Dense with ReLU and a zero bias (LeNet, Conv-N).
   */
  batchNorm?: boolean;
  /** Example shape for fc1 when it is the model's first layer (a LeNet on flat input). */
  inputShape?: number[];
}

/** Appends `head`'s hidden layers and the logits layer `out` (no softmax: the training loop owns the loss). */
export function addDenseHead(model: tf.Sequential, head: DenseHead, opts: ModelOptions): void {
  // The fan-in of the next dense layer: the flat input for the first one when nothing is in front of it.
  const inputs = () => (model.layers.length === 0 ? (head.inputShape ?? []).reduce((a, d) => a * d, 1) : fanIn(model.outputShape as Array<number | null>));
  head.hidden.forEach((units, i) => {
    const name = `fc${i + 1}`;
    const input = i === 0 && head.inputShape !== undefined ? { inputShape: head.inputShape } : {};
    checkDenseWeights(name, inputs(), units, opts);
    const kernelInitializer = head.init(opts.seed, name);
    if (head.batchNorm === true) {
      model.add(tf.layers.dense({ ...input, units, useBias: false, name, kernelInitializer }));
      model.add(batchNorm(`bn_${name}`));
      model.add(tf.layers.activation({ activation: 'relu', name: `relu_${name}` }));
    } else {
      model.add(tf.layers.dense({ ...input, units, activation: 'relu', name, kernelInitializer, biasInitializer: 'zeros' }));
    }
  });
  checkDenseWeights('out', inputs(), opts.numClasses, opts);
  model.add(tf.layers.dense({
    units: opts.numClasses, name: 'out',
    kernelInitializer: head.init(opts.seed, 'out'), biasInitializer: 'zeros',
  }));
}

/** Throws unless the image `inputShape` keeps a spatial size of at least 1 after `pools` 2x2/stride-2 max-pools. */
export function checkPoolable(name: string, inputShape: number[], pools: number): void {
  const problem = poolProblem(name, inputShape, pools);
  if (problem !== null) throw new Error(problem);
}

/** Why `pools` 2x2 max-pools cannot take `inputShape`, or null. */
export function poolProblem(name: string, inputShape: number[], pools: number): string | null {
  const image = imageProblem(name, inputShape);
  if (image !== null) return image;
  const min = 2 ** pools;
  if (inputShape[0] < min || inputShape[1] < min) {
    return `${name}: ${pools} 2x2 max-pools need height and width >= ${min}, got ${inputShape[0]}x${inputShape[1]}`;
  }
  return null;
}

/** Why `inputShape` is not an image [height, width, channels], or null. */
export function imageProblem(name: string, inputShape: number[]): string | null {
  return inputShape.length === 3 ? null : `${name}: needs an image input [height, width, channels], got ${JSON.stringify(inputShape)}`;
}
