// LeNet family: fully connected ReLU nets on flattened input, as in the
// Lottery Ticket paper's MNIST experiments (LeNet-300-100). `lenet-N`,
// `lenet-N-M`, `lenet-N-M-K`, ... give one hidden Dense layer per width.
// Output is logits (no softmax); the training loop owns the loss.
import * as tf from '@tensorflow/tfjs';
import { addDenseHead, glorotNormal, validateOptions, type ModelFamily, type ModelOptions } from './common.js';

const NAME = /^lenet((?:-[1-9]\d*)+)$/;
/** Bounds on a name's architecture: a zoo name is tenant input, and 8 x 2048 units is already ~30M weights. */
export const LENET_LIMITS = Object.freeze({ hidden: 8, width: 2048 });

function parse(name: string): number[] | null {
  const m = NAME.exec(name);
  return m === null ? null : m[1].slice(1).split('-').map(Number);
}

/** Why a lenet-N-M... name is out of bounds (null: fine, or not a LeNet name). */
function problem(name: string): string | null {
  const ws = parse(name);
  if (ws === null) return null;
  if (ws.length > LENET_LIMITS.hidden) return `${name}: at most ${LENET_LIMITS.hidden} hidden layers (got ${ws.length})`;
  const wide = ws.find((w) => w > LENET_LIMITS.width);
  if (wide !== undefined) return `${name}: hidden widths are at most ${LENET_LIMITS.width} units (got ${wide})`;
  return null;
}

function widths(name: string): number[] | null {
  return problem(name) === null ? parse(name) : null;
}

function build(name: string, opts: ModelOptions): tf.LayersModel {
  validateOptions(name, opts);
  const hidden = widths(name);
  if (hidden === null) throw new Error(`not a LeNet name: ${name}`);
  const model = tf.sequential({ name });
  // tfjs's Flatten rejects rank-1 input, which is already flat.
  const flat = opts.inputShape.length === 1;
  if (!flat) model.add(tf.layers.flatten({ inputShape: opts.inputShape, name: 'flatten' }));
  addDenseHead(model, { hidden, init: glorotNormal, ...(flat ? { inputShape: opts.inputShape } : {}) }, opts);
  return model;
}

export const lenetFamily: ModelFamily = {
  entries: [
    { name: 'lenet-300-100', description: 'LeNet-300-100: FC 300, 100, out (Frankle & Carbin 2019, MNIST); 266,610 params on 28x28x1', defaultInput: [28, 28, 1] },
    { name: 'lenet-100-50', description: 'Narrower LeNet (any lenet-N[-M[-K]] widths accepted)', defaultInput: [28, 28, 1] },
  ],
  patterns: ['lenet-N', 'lenet-N-M', 'lenet-N-M-K'],
  matches: (name) => widths(name) !== null,
  problem,
  build,
};
