// Conv (plain and depthwise, OIHW kernels transposed to HWIO) and zero Pad.
import * as tf from '@tensorflow/tfjs';
import { attrFloat, attrInt, attrInts, attrString, checkWindow, convPads, samePads, type Converter, type NodeCtx, type OpFamily } from '../context.js';

/** 'same' when TF's same padding is exactly these pads (and dilation 1), else explicit ZeroPadding2D + 'valid'. */
function padFor(cv: Converter, x: tf.SymbolicTensor, pads: number[], hw: number[], k: number[], s: number[], d: number[], base: string): { input: tf.SymbolicTensor; padding: 'same' | 'valid' } {
  if (pads.every((q) => q === 0)) return { input: x, padding: 'valid' };
  const same = [0, 1].map((i) => samePads(hw[i]!, k[i]!, s[i]!, d[i]!));
  if (d.every((v) => v === 1) && pads[0] === same[0]![0] && pads[2] === same[0]![1] && pads[1] === same[1]![0] && pads[3] === same[1]![1]) {
    return { input: x, padding: 'same' };
  }
  const layer = tf.layers.zeroPadding2d({ padding: [[pads[0]!, pads[2]!], [pads[1]!, pads[3]!]], name: cv.layerName(`${base}_pad`) });
  return { input: cv.apply(layer, x), padding: 'valid' };
}

function conv(c: NodeCtx): void {
  const { a, x, refuse, cv } = c;
  const w = c.constAt(1, 'weight');
  const t4 = c.as4(x);
  if (w.dims.length !== 4) return refuse(`has a rank-${w.dims.length} weight; only 2-D convolutions are supported`);
  const [cout, cinPerGroup, kh, kw] = w.dims as [number, number, number, number];
  const [cin, h, wd] = x.dims as [number, number, number];
  const group = attrInt(a, 'group', 1);
  const strides = attrInts(a, 'strides') ?? [1, 1];
  const dil = attrInts(a, 'dilations') ?? [1, 1];
  const pads = convPads(a, [h, wd], [kh, kw], strides, dil, refuse);
  const outHW = checkWindow([h, wd], pads, [kh, kw], strides, dil, refuse);
  if ((strides[0]! > 1 || strides[1]! > 1) && (dil[0]! > 1 || dil[1]! > 1)) return refuse('has both strides and dilations above 1, which TF.js convolutions do not support');
  const depthwise = group > 1 && group === cin && cinPerGroup === 1 && cout % cin === 0;
  if (group !== 1 && !depthwise) return refuse(`is a grouped convolution (group ${group} of ${cin} input channels); only group 1 and depthwise (group = input channels) are supported`);
  if (!depthwise && cinPerGroup !== cin) return refuse(`has a weight for ${cinPerGroup} input channels but its input has ${cin}`);
  const bias = c.ins[2] ? c.constAt(2, 'bias') : c.biasAfter(cout);
  const base = c.name();
  const { input: padded, padding } = padFor(cv, t4, pads, [h, wd], [kh, kw], strides, dil, base);
  const kernel = c.keep(tf.tidy(() => {
    const t = tf.tensor(w.data as Float32Array, w.dims);
    return depthwise ? tf.transpose(tf.reshape(t, [cin, cout / cin, kh, kw]), [2, 3, 0, 1]) : tf.transpose(t, [2, 3, 1, 0]);
  }));
  const weights = bias ? [kernel, c.keep(tf.tensor(Float32Array.from(bias.data as Float32Array), [cout]))] : [kernel];
  const common = { kernelSize: [kh, kw] as [number, number], strides: strides as [number, number], padding, dilationRate: dil as [number, number], useBias: bias !== null, name: base };
  const layer = depthwise
    ? tf.layers.depthwiseConv2d({ ...common, depthMultiplier: cout / cin, depthwiseInitializer: 'zeros' })
    : tf.layers.conv2d({ ...common, filters: cout, kernelInitializer: 'zeros' });
  const y = cv.apply(layer, padded, weights);
  return c.set({ kind: 'tensor', t: y, dims: [cout, outHW[0]!, outHW[1]!], squeezed: false });
}

/** Pad's pads as 8 numbers (begins, then ends of N, C, H, W). */
function padAmounts(c: NodeCtx): number[] {
  const pads = c.opset < 11 ? attrInts(c.a, 'pads') ?? [] : Array.from(c.constAt(1, 'pads').data as ArrayLike<number>);
  // Opset 18's optional `axes` input says which axes `pads` covers (begins, then ends); spread it over all four.
  if (!(c.opset >= 18 && c.ins[3])) return pads;
  const axes = Array.from(c.constAt(3, 'axes').data as ArrayLike<number>).map((v) => (v < 0 ? v + 4 : v));
  const full = new Array<number>(8).fill(0);
  axes.forEach((ax, i) => {
    full[ax] = pads[i] ?? 0;
    full[ax + 4] = pads[i + axes.length] ?? 0;
  });
  return full;
}

function pad(c: NodeCtx): void {
  const { a, x, refuse } = c;
  const mode = attrString(a, 'mode', 'constant');
  const pads = padAmounts(c);
  const value = c.opset < 11 ? attrFloat(a, 'value', 0) : c.ins[2] ? c.constAt(2, 'constant_value').data[0]! : 0;
  if (mode !== 'constant' || value !== 0) return refuse(`pads in mode '${mode}' with value ${value}; only zero padding is supported`);
  if (pads.length !== 8 || pads[0] || pads[1] || pads[4] || pads[5] || pads.some((q) => q < 0)) return refuse(`has pads ${JSON.stringify(pads)}; only non-negative padding of H and W of an NCHW tensor is supported`);
  const t4 = c.as4(x);
  const y = c.cv.apply(tf.layers.zeroPadding2d({ padding: [[pads[2]!, pads[6]!], [pads[3]!, pads[7]!]], name: c.name() }), t4);
  return c.set({ kind: 'tensor', t: y, dims: [x.dims[0]!, x.dims[1]! + pads[2]! + pads[6]!, x.dims[2]! + pads[3]! + pads[7]!], squeezed: false });
}

export const convOps: OpFamily = { Conv: { convert: conv }, Pad: { convert: pad } };
