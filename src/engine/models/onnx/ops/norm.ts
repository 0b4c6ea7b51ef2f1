// BatchNormalization in eval mode on the channel axis.
import * as tf from '@tensorflow/tfjs';
import { attrFloat, attrInt, type NodeCtx, type OpFamily } from '../context.js';

function batchNorm(c: NodeCtx): void {
  const { a, x, refuse } = c;
  if (attrInt(a, 'training_mode', 0) !== 0) return refuse('is in training mode; export the model in eval mode');
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => c.constAt(i, ['scale', 'B', 'mean', 'var'][i - 1]!));
  if (x.nhwc) return refuse('normalises an NHWC tensor on axis 1, which is not its channel axis');
  const channels = x.dims[0]!;
  const ws = [scale!, bias!, mean!, variance!].map((v) => c.keep(tf.tensor(Float32Array.from(v.data as Float32Array), [channels])));
  const layer = tf.layers.batchNormalization({ axis: -1, epsilon: attrFloat(a, 'epsilon', 1e-5), name: c.name() });
  return c.set({ ...x, t: c.cv.apply(layer, x.t, ws) });
}

export const normOps: OpFamily = { BatchNormalization: { convert: batchNorm } };
