// Typed wrappers over the conv-net module's non-conv kernels (cnn/layers.c
// and mlp.c's dense kernels that cnn.c includes): pooling,
// global average pooling, batch normalisation, residual add, ReLU masks,
// buffer sums and dense layers. The engine calls these,
// never the raw exports. Pointers are byte offsets into the kernels' shared
// memory; `n` images (or rows) start at the pointers given, so a thread runs
// its share of a batch by offsetting them. Gradients are overwritten.
// This file does not allocate, schedule threads or know about layers' graphs.
import type { CnnExports } from '../../../../runtime/simd/cnn-kernels.js';

/** A pooling layer's geometry, TF's: input H x W x C, windows PH x PW, strides, padding above / left, output OH x OW. */
export interface PoolShape {
  H: number;
  W: number;
  C: number;
  PH: number;
  PW: number;
  sh: number;
  sw: number;
  pt: number;
  pl: number;
  OH: number;
  OW: number;
}

/** TF's pool geometry for 'same' (output ceil(in / stride), padding split with the odd one below / right) or 'valid'. */
export function poolShape(
  input: [number, number, number],
  o: { pool: [number, number]; strides: [number, number]; padding: 'same' | 'valid' },
): PoolShape {
  const [H, W, C] = input;
  const [PH, PW] = o.pool;
  const [sh, sw] = o.strides;
  const side = (size: number, p: number, s: number): [number, number] => {
    if (o.padding === 'valid') return [Math.floor((size - p) / s) + 1, 0];
    const out = Math.ceil(size / s);
    return [out, Math.floor(Math.max((out - 1) * s + p - size, 0) / 2)];
  };
  const [OH, pt] = side(H, PH, sh);
  const [OW, pl] = side(W, PW, sw);
  if (OH < 1 || OW < 1) throw new Error(`a ${PH}x${PW} 'valid' pool does not fit a ${H}x${W} input`);
  return { H, W, C, PH, PW, sh, sw, pt, pl, OH, OW };
}

/** Floats of one image's pooled output (also the i32 count of its argmax). */
export function poolOutFloats(s: PoolShape): number {
  return s.OH * s.OW * s.C;
}

/**
 * Max pooling of n images x into out; argmax (i32, n * OH * OW * C) gets each
 * output's position in its window, the first of tied ones as TF.js picks it.
 */
export function maxPoolForward(k: CnnExports, s: PoolShape, n: number, x: number, out: number, argmax: number): void {
  k.max_pool_forward(x, n, s.H, s.W, s.C, s.PH, s.PW, s.sh, s.sw, s.pt, s.pl, s.OH, s.OW, out, argmax);
}

/** dx = the max pool's input gradient from dout and argmax, times (xRelu > 0) where xRelu (the pool's input, a ReLU output) is given (0: none). */
export function maxPoolBackward(k: CnnExports, s: PoolShape, n: number, dout: number, argmax: number, dx: number, xRelu: number): void {
  k.max_pool_backward(dout, argmax, n, s.H, s.W, s.C, s.PH, s.PW, s.sh, s.sw, s.pt, s.pl, s.OH, s.OW, dx, xRelu);
}

/** Average pooling (padding not counted, as TF). */
export function avgPoolForward(k: CnnExports, s: PoolShape, n: number, x: number, out: number): void {
  k.avg_pool_forward(x, n, s.H, s.W, s.C, s.PH, s.PW, s.sh, s.sw, s.pt, s.pl, s.OH, s.OW, out);
}

/**
 * dx = the true gradient of avgPoolForward, times (xRelu > 0) where given.
 * (TF.js's cpu avgPoolGrad divides by the whole window even where 'same'
 * padding cut it; this divides by the pixels the forward pass averaged.)
 */
export function avgPoolBackward(k: CnnExports, s: PoolShape, n: number, dout: number, dx: number, xRelu: number): void {
  k.avg_pool_backward(dout, n, s.H, s.W, s.C, s.PH, s.PW, s.sh, s.sw, s.pt, s.pl, s.OH, s.OW, dx, xRelu);
}

/** out [n, C] = the mean over each image's hw pixels of x [n, hw, C]. */
export function globalAvgPoolForward(k: CnnExports, hw: number, C: number, n: number, x: number, out: number): void {
  k.global_avg_pool_forward(x, hw, C, n, out);
}

/** dx [n, hw, C] = dout [n, C] / hw, times (xRelu > 0) where given. */
export function globalAvgPoolBackward(k: CnnExports, hw: number, C: number, n: number, dout: number, dx: number, xRelu: number): void {
  k.global_avg_pool_backward(dout, hw, C, n, dx, xRelu);
}

// Batch normalisation over rows (n * H * W, or n after a dense layer) of C
// channels, as tfjs-layers' BatchNormalization computes it in training: batch
// mean and biased variance (tf.moments), invstd = 1 / sqrt(variance + eps)
// (the layer's epsilon, 1e-3 by default). Threads split the rows:
//   bnSums (each thread's rows) -> sumInto the partials -> bnStats -> bnForwardTrain (each thread's rows)
//   bnGradSums (each) -> sumInto -> bnGradInput (each), with the totals and the total row count.

/**
 * Per-channel partial sums of (x - shift) and (x - shift)^2 over these rows (overwritten).
 * shift (C floats, 0: none) should be close to the channel means, the moving
 * means say: the variance then comes without cancellation; bnStats takes the same shift.
 */
export function bnSums(k: CnnExports, rows: number, C: number, x: number, sum: number, sumsq: number, shift = 0): void {
  k.bn_sums(x, rows, C, shift, sum, sumsq);
}

/** mean, biased variance (variance 0: not wanted) and invstd of `count` rows from the summed bnSums partials. */
export function bnStats(k: CnnExports, C: number, count: number, sum: number, sumsq: number, eps: number, mean: number, variance: number, invstd: number, shift = 0): void {
  k.bn_stats(C, count, sum, sumsq, shift, eps, mean, variance, invstd);
}

/** The moving statistics' update of tfjs-layers in training: moving -= (moving - batch) * (1 - momentum). */
export function bnMoving(k: CnnExports, C: number, mean: number, variance: number, momentum: number, movingMean: number, movingVariance: number): void {
  k.bn_moving(C, mean, variance, momentum, movingMean, movingVariance);
}

/** out = act(gamma (x - mean) invstd + beta) with the batch statistics; gamma 0: ones, beta 0: zeros. */
export function bnForwardTrain(k: CnnExports, rows: number, C: number, x: number, mean: number, invstd: number, gamma: number, beta: number, out: number, relu: boolean): void {
  k.bn_forward_train(x, rows, C, mean, invstd, gamma, beta, out, relu ? 1 : 0);
}

/** Floats of scratch bnForwardInfer needs. */
export function bnInferScratchFloats(C: number): number {
  return C;
}

/** Inference: out = act(gamma (x - mean) / sqrt(variance + eps) + beta) with the moving statistics. */
export function bnForwardInfer(k: CnnExports, rows: number, C: number, x: number, mean: number, variance: number, eps: number, gamma: number, beta: number, out: number, relu: boolean, scratch: number): void {
  k.bn_forward_infer(x, rows, C, mean, variance, eps, gamma, beta, out, relu ? 1 : 0, scratch);
}

/** Partial parameter gradients over these rows (overwritten): dgamma = sum of dout * xhat, dbeta = sum of dout. */
export function bnGradSums(k: CnnExports, rows: number, C: number, x: number, dout: number, mean: number, invstd: number, dgammaPart: number, dbetaPart: number): void {
  k.bn_grad_sums(x, dout, rows, C, mean, invstd, dgammaPart, dbetaPart);
}

/**
 * dx of these rows through the batch statistics, from the TOTAL dgamma and
 * dbeta over all `count` rows; times (xRelu > 0) where given. gamma 0: ones.
 */
export function bnGradInput(k: CnnExports, rows: number, count: number, C: number, x: number, dout: number, mean: number, invstd: number, gamma: number, dgamma: number, dbeta: number, dx: number, xRelu: number): void {
  k.bn_grad_input(x, dout, rows, count, C, mean, invstd, gamma, dgamma, dbeta, dx, xRelu);
}

/** out = act(a + b) over count floats (a residual join). */
export function addForward(k: CnnExports, count: number, a: number, b: number, out: number, relu: boolean): void {
  k.add_forward(a, b, out, count, relu ? 1 : 0);
}

/** d *= (act > 0) in place. */
export function reluMask(k: CnnExports, count: number, act: number, d: number): void {
  k.relu_mask(act, d, count);
}

/** dst += src over count floats. */
export function sumInto(k: CnnExports, dst: number, src: number, count: number): void {
  k.sum_into(dst, src, count);
}

// Dense layers (mlp.c's kernels), kernel [inSize, outSize]. They skip zero
// inputs (ReLU outputs), keeping the dense maths' results.

/** Floats of scratch (two arrays of max(n, inSize)) the dense wrappers need for n rows. */
export function denseScratchFloats(inSize: number, n: number): number {
  return 2 * Math.max(n, inSize);
}

/** out [n, outSize] = act(x w + bias); bias 0: none. */
export function denseForward(k: CnnExports, n: number, inSize: number, outSize: number, x: number, w: number, bias: number, out: number, relu: boolean, scratch: number): void {
  const half = Math.max(n, inSize);
  k.dense_forward(x, n, inSize, w, bias, out, outSize, relu ? 1 : 0, scratch, scratch + half * 4);
}

/** dw = x^T dz, db = column sums of dz (db 0: none); both overwritten. */
export function denseGradWeights(k: CnnExports, n: number, inSize: number, outSize: number, x: number, dz: number, dw: number, db: number, scratch: number): void {
  const half = Math.max(n, inSize);
  k.dense_grad_weights(x, n, inSize, dz, outSize, dw, db, scratch, scratch + half * 4);
}

/** dx = dz w^T, zero where xRelu (the layer's input, a ReLU output; 0: none) is not positive. */
export function denseGradInput(k: CnnExports, n: number, inSize: number, outSize: number, dz: number, w: number, dx: number, xRelu: number): void {
  k.dense_grad_input(dz, n, outSize, w, inSize, xRelu, xRelu ? 1 : 0, dx);
}
