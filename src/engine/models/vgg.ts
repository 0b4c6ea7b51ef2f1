// CIFAR-style VGG-11 and VGG-16 (configurations A and D of Simonyan &
// Zisserman), in the form Li et al. ("Pruning Filters for Efficient
// ConvNets", 2017) used on CIFAR-10: every 3x3 conv is followed by batch norm
// and ReLU, five 2x2 max-pools bring 32x32 down to 1x1x512, and the classifier
// is Dense 512 -> BN -> ReLU -> out, without dropout.
// Choices of ours: convs and fc1 carry no bias (the BN shift that follows makes
// it redundant, and filter pruning then has one fewer tensor to slice); He
// normal init for convs, Glorot uniform for the dense layers.
// VGG-16 on 32x32x3 / 10 classes: 14,996,682 params, 313,463,808 multiply-adds
// (Li et al. report 1.5e7 and 3.13e8).
import * as tf from '@tensorflow/tfjs';
import {
  CIFAR_INPUT, addDenseHead, batchNorm, checkFirstConv, checkPoolable, poolProblem, glorotUniform, heNormal, validateOptions,
  type ModelFamily, type ModelOptions,
} from './common.js';

/** Filters per conv; 'M' is a 2x2 max-pool. */
type Cfg = (number | 'M')[];
const CFGS: Record<string, Cfg> = {
  'vgg-11': [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  'vgg-16': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
};

function build(name: string, opts: ModelOptions): tf.LayersModel {
  validateOptions(name, opts);
  const cfg = CFGS[name];
  if (cfg === undefined) throw new Error(`not a VGG name: ${name}`);
  checkPoolable(name, opts.inputShape, cfg.filter((c) => c === 'M').length);
  checkFirstConv('conv1', opts.inputShape[2]!, cfg.find((c): c is number => c !== 'M')!, opts);
  const model = tf.sequential({ name });
  let conv = 0;
  let pool = 0;
  for (const c of cfg) {
    if (c === 'M') {
      pool++;
      model.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `pool${pool}` }));
      continue;
    }
    conv++;
    const layer = `conv${conv}`;
    model.add(tf.layers.conv2d({
      ...(conv === 1 ? { inputShape: opts.inputShape } : {}),
      filters: c, kernelSize: 3, padding: 'same', useBias: false, name: layer,
      kernelInitializer: heNormal(opts.seed, layer),
    }));
    model.add(batchNorm(`bn${conv}`));
    model.add(tf.layers.activation({ activation: 'relu', name: `relu${conv}` }));
  }
  model.add(tf.layers.flatten({ name: 'flatten' }));
  addDenseHead(model, { hidden: [512], init: glorotUniform, batchNorm: true }, opts);
  return model;
}

export const vggFamily: ModelFamily = {
  entries: [
    { name: 'vgg-11', description: 'CIFAR VGG-11 (config A) with BN, classifier 512-BN-ReLU-out; 9.50M params on CIFAR-10; input >= 32x32', defaultInput: [...CIFAR_INPUT] },
    { name: 'vgg-16', description: 'CIFAR VGG-16 (config D, Li et al. 2017) with BN, classifier 512-BN-ReLU-out; 15.0M params, 313M MACs on CIFAR-10', defaultInput: [...CIFAR_INPUT] },
  ],
  patterns: ['vgg-11', 'vgg-16'],
  matches: (name) => Object.hasOwn(CFGS, name),
  build,
  inputProblem: (name, inputShape) => poolProblem(name, inputShape, (CFGS[name] ?? []).filter((c) => c === 'M').length),
};
