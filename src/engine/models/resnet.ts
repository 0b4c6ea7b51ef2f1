// CIFAR ResNets of He et al. (2016, section 4.2): a 3x3/16 stem, three stages
// of n basic blocks with 16, 32 and 64 filters (depth 6n+2; resnet-20 has
// n = 3), global average pooling and the output layer. Basic block: conv3x3
// -BN-ReLU-conv3x3-BN, Add with the shortcut, ReLU. Where the shape changes
// (first block of stages 2 and 3, stride 2) the shortcut is option B, a 1x1
// strided conv + BN; the paper's CIFAR nets used option A (zero padding), which
// we avoid because it has no weights for filter pruning to keep consistent.
// resnet-20 on 32x32x3 / 10 classes: 274,042 params (paper: 0.27M).
// Functional API, so residual structure is visible to graph-walking code.
import * as tf from '@tensorflow/tfjs';
import { CIFAR_INPUT, batchNorm, checkDenseWeights, checkFirstConv, fanIn, glorotUniform, heNormal, imageProblem, validateOptions, type ModelFamily, type ModelOptions } from './common.js';

const NAME = /^resnet-([1-9]\d*)$/;
const WIDTHS = [16, 32, 64];
/** He et al.'s deepest CIFAR ResNet; deeper names are refused. */
const MAX_DEPTH = 1202;

/** Blocks per stage for `resnet-(6n+2)`, or null if the depth is not of that form. */
function blocksPerStage(name: string): number | null {
  const m = NAME.exec(name);
  if (m === null) return null;
  const depth = Number(m[1]);
  return depth >= 8 && (depth - 2) % 6 === 0 && depth <= MAX_DEPTH ? (depth - 2) / 6 : null;
}

/** Why a resnet-N name is refused: a depth of the wrong form or beyond the bound. */
function problem(name: string): string | null {
  const m = NAME.exec(name);
  if (m === null || blocksPerStage(name) !== null) return null;
  return `${name}: depth must be 6n+2 between 8 and ${MAX_DEPTH} (resnet-20, resnet-32, resnet-56, ...)`;
}

type Sym = tf.SymbolicTensor;

function conv(x: Sym, name: string, filters: number, kernelSize: number, strides: number, seed: number): Sym {
  return tf.layers.conv2d({
    filters, kernelSize, strides, padding: 'same', useBias: false, name,
    kernelInitializer: heNormal(seed, name),
  }).apply(x) as Sym;
}

function relu(x: Sym, name: string): Sym {
  return tf.layers.activation({ activation: 'relu', name }).apply(x) as Sym;
}

function basicBlock(x: Sym, prefix: string, filters: number, strides: number, seed: number): Sym {
  const inChannels = x.shape[x.shape.length - 1];
  let y = conv(x, `${prefix}_conv1`, filters, 3, strides, seed);
  y = batchNorm(`${prefix}_bn1`).apply(y) as Sym;
  y = relu(y, `${prefix}_relu1`);
  y = conv(y, `${prefix}_conv2`, filters, 3, 1, seed);
  y = batchNorm(`${prefix}_bn2`).apply(y) as Sym;
  let shortcut = x;
  if (strides !== 1 || inChannels !== filters) {
    shortcut = conv(x, `${prefix}_proj_conv`, filters, 1, strides, seed);
    shortcut = batchNorm(`${prefix}_proj_bn`).apply(shortcut) as Sym;
  }
  const sum = tf.layers.add({ name: `${prefix}_add` }).apply([y, shortcut]) as Sym;
  return relu(sum, `${prefix}_relu2`);
}

function build(name: string, opts: ModelOptions): tf.LayersModel {
  validateOptions(name, opts);
  const n = blocksPerStage(name);
  if (n === null) throw new Error(`not a CIFAR ResNet name (resnet-(6n+2)): ${name}`);
  if (opts.inputShape.length !== 3) {
    throw new Error(`${name}: needs an image input [height, width, channels], got ${JSON.stringify(opts.inputShape)}`);
  }
  checkFirstConv('conv1', opts.inputShape[2]!, WIDTHS[0]!, opts);
  const input = tf.input({ shape: opts.inputShape, name: 'input' });
  let x = conv(input, 'conv1', WIDTHS[0], 3, 1, opts.seed);
  x = batchNorm('bn1').apply(x) as Sym;
  x = relu(x, 'relu1');
  WIDTHS.forEach((filters, s) => {
    for (let b = 0; b < n; b++) {
      const strides = s > 0 && b === 0 ? 2 : 1;
      x = basicBlock(x, `s${s + 1}b${b + 1}`, filters, strides, opts.seed);
    }
  });
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as Sym;
  checkDenseWeights('out', fanIn(x.shape), opts.numClasses, opts);
  const logits = tf.layers.dense({
    units: opts.numClasses, name: 'out',
    kernelInitializer: glorotUniform(opts.seed, 'out'), biasInitializer: 'zeros',
  }).apply(x) as Sym;
  return tf.model({ inputs: input, outputs: logits, name });
}

export const resnetFamily: ModelFamily = {
  entries: [
    { name: 'resnet-20', description: 'CIFAR ResNet-20 (He et al. 2016): 3 stages x 3 basic blocks, 16/32/64 filters, BN, 1x1 projection shortcuts; 0.27M params', defaultInput: [...CIFAR_INPUT] },
    { name: 'resnet-56', description: 'CIFAR ResNet-56: 3 stages x 9 basic blocks (any resnet-(6n+2) accepted)', defaultInput: [...CIFAR_INPUT] },
  ],
  patterns: ['resnet-(6n+2), e.g. resnet-20, resnet-32, resnet-56'],
  matches: (name) => blocksPerStage(name) !== null,
  problem,
  build,
  inputProblem: imageProblem,
};
