// Elementwise activations: TF.js's own layers where they match exactly, ours (layers/) where they do not.
import * as tf from '@tensorflow/tfjs';
import { TsClip, TsHardSigmoid, TsHardSwish } from '../../layers/index.js';
import { attrFloat, attrInt, f32eq, type NodeCtx, type OpFamily } from '../context.js';

const relu = (c: NodeCtx) => c.elementwise(tf.layers.reLU({ name: c.name() }));
const sigmoidOrTanh = (c: NodeCtx) => c.elementwise(tf.layers.activation({ activation: c.op === 'Sigmoid' ? 'sigmoid' : 'tanh', name: c.name() }));
const leakyRelu = (c: NodeCtx) => c.elementwise(tf.layers.leakyReLU({ alpha: attrFloat(c.a, 'alpha', 0.01), name: c.name() }));
const hardSwish = (c: NodeCtx) => c.elementwise(new TsHardSwish({ alpha: 1 / 6, beta: 0.5, name: c.name() }));

function hardSigmoid(c: NodeCtx): void {
  const alpha = attrFloat(c.a, 'alpha', 0.2);
  const beta = attrFloat(c.a, 'beta', 0.5);
  // TF.js's hardSigmoid is fixed at 0.2x + 0.5; anything else (torch's 1/6) needs its own layer.
  if (f32eq(alpha, 0.2) && f32eq(beta, 0.5)) return c.elementwise(tf.layers.activation({ activation: 'hardSigmoid', name: c.name() }));
  return c.elementwise(new TsHardSigmoid({ alpha, beta, name: c.name() }));
}

function clip(c: NodeCtx): void {
  let min = -Infinity;
  let max = Infinity;
  if (c.opset < 11) {
    min = attrFloat(c.a, 'min', -Infinity);
    max = attrFloat(c.a, 'max', Infinity);
  } else {
    if (c.ins[1]) min = c.constAt(1, 'min').data[0]!;
    if (c.ins[2]) max = c.constAt(2, 'max').data[0]!;
  }
  if (min <= -3.4e38) min = -Infinity;
  if (max >= 3.4e38) max = Infinity;
  if (min === 0 && max === 6) return c.elementwise(tf.layers.reLU({ maxValue: 6, name: c.name() }));
  if (min === 0 && max === Infinity) return c.elementwise(tf.layers.reLU({ name: c.name() }));
  return c.elementwise(new TsClip({ min, max, name: c.name() }));
}

function softmax(c: NodeCtx): void {
  const { x } = c;
  const rank = x.squeezed ? 2 : x.dims.length + 1;
  const axis = attrInt(c.a, 'axis', c.opset >= 13 ? -1 : 1);
  const ax = axis < 0 ? axis + (x.squeezed ? 4 : rank) : axis;
  if (rank === 2 && ax === 1) return c.elementwise(tf.layers.softmax({ name: c.name() }));
  if (x.squeezed && ax === 1) return c.elementwise(tf.layers.softmax({ name: c.name() }));
  return c.refuse(`applies softmax on axis ${axis} of a rank-${rank} tensor; only softmax over the classes of [N, classes] is supported`);
}

export const activationOps: OpFamily = {
  Clip: { convert: clip },
  HardSigmoid: { convert: hardSigmoid },
  HardSwish: { convert: hardSwish },
  LeakyRelu: { convert: leakyRelu },
  Relu: { convert: relu },
  Sigmoid: { convert: sigmoidOrTanh },
  Softmax: { convert: softmax },
  Tanh: { convert: sigmoidOrTanh },
};
