// LeNet family: fully connected ReLU nets on flattened input, as in the
// Lottery Ticket paper's MNIST experiments (LeNet-300-100). `lenet-N`,
// `lenet-N-M`, `lenet-N-M-K`, ... give one hidden Dense layer per width.
// Output is logits (no softmax); the training loop owns the loss.
import * as tf from '@tensorflow/tfjs';
import { glorotNormal, validateOptions, type ModelFamily, type ModelOptions } from './common.js';

const NAME = /^lenet((?:-[1-9]\d*)+)$/;
const MAX_HIDDEN = 8;

function widths(name: string): number[] | null {
  const m = NAME.exec(name);
  if (m === null) return null;
  const ws = m[1].slice(1).split('-').map(Number);
  return ws.length <= MAX_HIDDEN ? ws : null;
}

function build(name: string, opts: ModelOptions): tf.LayersModel {
  validateOptions(name, opts);
  const hidden = widths(name);
  if (hidden === null) throw new Error(`not a LeNet name: ${name}`);
  const model = tf.sequential({ name });
  // tfjs's Flatten rejects rank-1 input, which is already flat.
  const flat = opts.inputShape.length === 1;
  if (!flat) model.add(tf.layers.flatten({ inputShape: opts.inputShape, name: 'flatten' }));
  hidden.forEach((units, i) => {
    const layer = `fc${i + 1}`;
    model.add(tf.layers.dense({
      ...(flat && i === 0 ? { inputShape: opts.inputShape } : {}),
      units, activation: 'relu', name: layer,
      kernelInitializer: glorotNormal(opts.seed, layer), biasInitializer: 'zeros',
    }));
  });
  model.add(tf.layers.dense({
    units: opts.numClasses, name: 'out',
    kernelInitializer: glorotNormal(opts.seed, 'out'), biasInitializer: 'zeros',
  }));
  return model;
}

export const lenetFamily: ModelFamily = {
  entries: [
    { name: 'lenet-300-100', description: 'LeNet-300-100: FC 300, 100, out (Frankle & Carbin 2019, MNIST); 266,610 params on 28x28x1', defaultInput: [28, 28, 1] },
    { name: 'lenet-100-50', description: 'Narrower LeNet (any lenet-N[-M[-K]] widths accepted)', defaultInput: [28, 28, 1] },
  ],
  patterns: ['lenet-N', 'lenet-N-M', 'lenet-N-M-K'],
  matches: (name) => widths(name) !== null,
  build,
};
