// MaxPool and AveragePool (no padding, TF's 'same', or counted zero padding), and global averages
// (GlobalAveragePool, ReduceMean over the spatial axes), which leave ONNX's [N, C, 1, 1] "squeezed" as [N, C].
import * as tf from '@tensorflow/tfjs';
import { attrInt, attrInts, checkWindow, convPads, samePads, type NodeCtx, type OpFamily } from '../context.js';

/** The pool's padding as TF.js expresses it: the (maybe zero-padded) source and 'valid' or 'same'. */
function poolPadding(c: NodeCtx, t4: tf.SymbolicTensor, pads: number[], k: number[], strides: number[], base: string): { src: tf.SymbolicTensor; padding: 'valid' | 'same' } {
  const [h, wd] = c.x.dims.slice(1) as [number, number];
  if (pads.every((q) => q === 0)) return { src: t4, padding: 'valid' };
  if (c.op === 'AveragePool' && attrInt(c.a, 'count_include_pad', 0) === 1) {
    return { src: c.cv.apply(tf.layers.zeroPadding2d({ padding: [[pads[0]!, pads[2]!], [pads[1]!, pads[3]!]], name: c.cv.layerName(`${base}_pad`) }), t4), padding: 'valid' };
  }
  const same = [0, 1].map((i) => samePads([h, wd][i]!, k[i]!, strides[i]!, 1));
  const isSame = pads[0] === same[0]![0] && pads[2] === same[0]![1] && pads[1] === same[1]![0] && pads[3] === same[1]![1];
  if (isSame) return { src: t4, padding: 'same' };
  return c.refuse(`has pads ${JSON.stringify(pads)}, which TF.js pooling cannot express (only none or TF's 'same')`);
}

function pool(c: NodeCtx): void {
  const { a, x, refuse } = c;
  const t4 = c.as4(x);
  const [ch, h, wd] = x.dims as [number, number, number];
  const k = attrInts(a, 'kernel_shape') ?? refuse('has no kernel_shape');
  const strides = attrInts(a, 'strides') ?? [1, 1];
  if ((attrInts(a, 'dilations') ?? [1, 1]).some((d) => d !== 1)) return refuse('has dilations, which TF.js pooling does not support');
  if (attrInt(a, 'storage_order', 0) !== 0) return refuse('uses storage_order 1');
  const pads = convPads(a, [h, wd], k, strides, [1, 1], refuse);
  const outHW = checkWindow([h, wd], pads, k, strides, [1, 1], refuse);
  if (attrInt(a, 'ceil_mode', 0) === 1) {
    const ceil = [0, 1].map((i) => Math.ceil(([h, wd][i]! + pads[i]! + pads[i + 2]! - k[i]!) / strides[i]!) + 1);
    if (ceil[0] !== outHW[0] || ceil[1] !== outHW[1]) return refuse('uses ceil_mode 1 where it changes the output size');
  }
  const base = c.name();
  const { src, padding } = poolPadding(c, t4, pads, k, strides, base);
  const cfg = { poolSize: k as [number, number], strides: strides as [number, number], padding, name: base };
  const y = c.cv.apply(c.op === 'MaxPool' ? tf.layers.maxPooling2d(cfg) : tf.layers.averagePooling2d(cfg), src);
  return c.set({ kind: 'tensor', t: y, dims: [ch, outHW[0]!, outHW[1]!], squeezed: false });
}

/** ReduceMean's keepdims, refused unless it averages exactly the spatial axes. */
function reduceMeanKeepdims(c: NodeCtx): number {
  const { a, x, refuse } = c;
  // From opset 18 the axes are an input (a constant here), no longer an attribute.
  const given = c.opset >= 18 ? (c.ins[1] ? Array.from(c.constAt(1, 'axes').data as ArrayLike<number>) : null) : attrInts(a, 'axes');
  const axes = (given ?? []).map((v) => (v < 0 ? v + 4 : v)).sort();
  // Spatial axes are [2, 3] of NCHW, [1, 2] of an NHWC tensor.
  const spatial = x.nhwc ? '1,2' : '2,3';
  if (axes.join() !== spatial) return refuse(`averages over axes ${JSON.stringify(given ?? 'all')}; only the spatial axes [${spatial.replace(',', ', ')}] are supported`);
  const keepdims = attrInt(a, 'keepdims', 1);
  if (x.nhwc && keepdims) return refuse('averages an NHWC tensor keeping its dims; use keepdims 0');
  return keepdims;
}

function globalAverage(c: NodeCtx): void {
  const { x } = c;
  if (x.squeezed) return c.set(x);
  const keepdims = c.op === 'ReduceMean' ? reduceMeanKeepdims(c) : 1;
  const channels = x.nhwc ? x.dims[2]! : x.dims[0]!;
  const y = c.cv.apply(tf.layers.globalAveragePooling2d({ name: c.name() }), x.nhwc ? x.t : c.as4(x));
  return c.set({ kind: 'tensor', t: y, dims: keepdims ? [channels, 1, 1] : [channels], squeezed: keepdims === 1 });
}

export const poolOps: OpFamily = {
  AveragePool: { convert: pool },
  GlobalAveragePool: { convert: globalAverage },
  MaxPool: { convert: pool },
  ReduceMean: { convert: globalAverage },
};
