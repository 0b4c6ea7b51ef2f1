// Gemm and MatMul on [N, features] as a Dense layer (alpha, beta and transB folded into the weights).
import * as tf from '@tensorflow/tfjs';
import { attrFloat, attrInt, product, type NodeCtx, type OpFamily } from '../context.js';
import type { ConstValue } from '../parse.js';

function dense(c: NodeCtx): void {
  const { a, x, op, refuse } = c;
  if (!(x.dims.length === 1 || x.squeezed)) return refuse(`multiplies a tensor of ONNX shape [N, ${x.dims.join(', ')}]; only [N, features] inputs are supported`);
  const features = x.dims[0]!;
  const b = c.constAt(1, 'B');
  if (b.dims.length !== 2) return refuse(`has a rank-${b.dims.length} B; a matrix is expected`);
  const gemm = op === 'Gemm';
  const transA = gemm ? attrInt(a, 'transA', 0) : 0;
  if (transA) return refuse('has transA=1 on its input, which a Dense layer cannot express');
  const transB = gemm ? attrInt(a, 'transB', 0) : 0;
  const alpha = gemm ? attrFloat(a, 'alpha', 1) : 1;
  const beta = gemm ? attrFloat(a, 'beta', 1) : 1;
  const [k, units] = transB ? [b.dims[1]!, b.dims[0]!] : [b.dims[0]!, b.dims[1]!];
  if (k !== features) return refuse(`has B of shape ${JSON.stringify(b.dims)} (transB ${transB}) for ${features} input features`);
  let bias: ConstValue | null = gemm && c.ins[2] ? c.constAt(2, 'C') : null;
  if (bias && product(bias.dims) !== units && product(bias.dims) !== 1) return refuse(`has C of shape ${JSON.stringify(bias.dims)}; a bias of ${units} values (or a scalar) is supported`);
  if (!bias) bias = c.biasAfter(units);
  const kernel = c.keep(tf.tidy(() => {
    const t = tf.tensor(b.data as Float32Array, b.dims);
    return tf.mul(transB ? tf.transpose(t) : t, alpha);
  }));
  const weights = [kernel];
  if (bias) {
    const cc = bias;
    const scale = gemm && c.ins[2] ? beta : 1;
    weights.push(c.keep(tf.tidy(() => tf.mul(tf.broadcastTo(tf.reshape(tf.tensor(cc.data as Float32Array, cc.dims), [-1]), [units]), scale))));
  }
  const y = c.cv.apply(tf.layers.dense({ units, useBias: bias !== null, kernelInitializer: 'zeros', name: c.name() }), x.t, weights);
  return c.set({ kind: 'tensor', t: y, dims: [units], squeezed: false });
}

export const denseOps: OpFamily = { Gemm: { convert: dense }, MatMul: { convert: dense } };
