// Conv-2/4/6 from the Lottery Ticket paper (Frankle & Carbin 2019, Figure 2):
// VGG-like stacks of 3x3 same-padded ReLU convolutions (64, 128, 256 filters
// in pairs) each pair followed by a 2x2 max-pool, then FC 256, 256 and the
// output layer. Gaussian Glorot init and no batch norm, as in the paper.
// On CIFAR-10 (32x32x3) the exact counts are 4,301,642 / 2,425,930 /
// 2,262,602 parameters (weights + biases); the paper's figure rounds the first
// two to 4.3M and 2.4M and lists 1.7M for Conv-6.
import * as tf from '@tensorflow/tfjs';
import { CIFAR_INPUT, addDenseHead, checkFirstConv, checkPoolable, glorotNormal, poolProblem, validateOptions, type ModelFamily, type ModelOptions } from './common.js';

/** Filters of each conv pair, in order; one pool after each pair. */
const BLOCKS: Record<string, number[]> = {
  'conv-2': [64],
  'conv-4': [64, 128],
  'conv-6': [64, 128, 256],
};

function build(name: string, opts: ModelOptions): tf.LayersModel {
  validateOptions(name, opts);
  const blocks = BLOCKS[name];
  if (blocks === undefined) throw new Error(`not a Conv-N name: ${name}`);
  checkPoolable(name, opts.inputShape, blocks.length);
  checkFirstConv('conv1', opts.inputShape[2]!, blocks[0]!, opts);
  const model = tf.sequential({ name });
  let conv = 0;
  blocks.forEach((filters, b) => {
    for (let k = 0; k < 2; k++) {
      conv++;
      const layer = `conv${conv}`;
      model.add(tf.layers.conv2d({
        ...(conv === 1 ? { inputShape: opts.inputShape } : {}),
        filters, kernelSize: 3, padding: 'same', activation: 'relu', name: layer,
        kernelInitializer: glorotNormal(opts.seed, layer), biasInitializer: 'zeros',
      }));
    }
    model.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `pool${b + 1}` }));
  });
  model.add(tf.layers.flatten({ name: 'flatten' }));
  addDenseHead(model, { hidden: [256, 256], init: glorotNormal }, opts);
  return model;
}

export const convFamily: ModelFamily = {
  entries: [
    { name: 'conv-2', description: 'Conv-2 (Frankle & Carbin 2019): conv 64,64, pool, FC 256,256, out; 4.30M params on CIFAR-10', defaultInput: [...CIFAR_INPUT] },
    { name: 'conv-4', description: 'Conv-4: conv 64,64, pool, 128,128, pool, FC 256,256, out; 2.43M params on CIFAR-10', defaultInput: [...CIFAR_INPUT] },
    { name: 'conv-6', description: 'Conv-6: conv 64,64, pool, 128,128, pool, 256,256, pool, FC 256,256, out; 2.26M params on CIFAR-10', defaultInput: [...CIFAR_INPUT] },
  ],
  patterns: ['conv-2', 'conv-4', 'conv-6'],
  matches: (name) => Object.hasOwn(BLOCKS, name),
  build,
  inputProblem: (name, inputShape) => poolProblem(name, inputShape, BLOCKS[name]?.length ?? 0),
};
