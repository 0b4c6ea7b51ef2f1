// Typed wrappers over the Conv2D kernels (src/runtime/simd/cnn/conv.c): the
// geometry TF uses for 'same' / 'valid' padding, the scratch each thread
// needs, and the forward pass and both gradients of a conv or depthwise conv
// (multiplier 1) layer on NHWC float32 buffers. Pointers are byte offsets
// into the CnnKernels memory; every call runs `n` images starting there.
import type { CnnExports } from '../../../../runtime/simd/cnn-kernels.js';

export interface ConvShape {
  H: number;
  W: number;
  C: number;
  KH: number;
  KW: number;
  /** Output channels (depthwise: C). */
  O: number;
  sh: number;
  sw: number;
  /** Padding before the first row / column. */
  pt: number;
  pl: number;
  OH: number;
  OW: number;
  depthwise: boolean;
}

/** TF's geometry for 'same' / 'valid' padding (same: pad total = max((OH-1)*sh + KH - H, 0), top = floor(total/2)). */
export function convShape(
  input: [number, number, number],
  o: { filters: number; kernel: [number, number]; strides: [number, number]; padding: 'same' | 'valid'; depthwise?: boolean },
): ConvShape {
  const [H, W, C] = input;
  const [KH, KW] = o.kernel;
  const [sh, sw] = o.strides;
  const depthwise = o.depthwise ?? false;
  let OH: number, OW: number, pt: number, pl: number;
  if (o.padding === 'same') {
    OH = Math.ceil(H / sh);
    OW = Math.ceil(W / sw);
    pt = Math.floor(Math.max((OH - 1) * sh + KH - H, 0) / 2);
    pl = Math.floor(Math.max((OW - 1) * sw + KW - W, 0) / 2);
  } else {
    OH = Math.ceil((H - KH + 1) / sh);
    OW = Math.ceil((W - KW + 1) / sw);
    pt = 0;
    pl = 0;
  }
  if (OH < 1 || OW < 1) throw new Error(`a ${KH}x${KW} kernel does not fit a ${H}x${W} input with 'valid' padding`);
  return { H, W, C, KH, KW, O: depthwise ? C : o.filters, sh, sw, pt, pl, OH, OW, depthwise };
}

function geometry(s: ConvShape): [number, number, number, number, number, number, number, number, number, number, number, number] {
  return [s.H, s.W, s.C, s.KH, s.KW, s.O, s.sh, s.sw, s.pt, s.pl, s.OH, s.OW];
}

const round4 = (v: number): number => (v + 3) & ~3;

/**
 * Floats of scratch one thread needs for any of the three passes. The
 * kernels work an image at a time, so `n` does not change it; conv.c's
 * conv_scratch_floats computes the same (a test holds them equal).
 */
export function convScratchFloats(s: ConvShape, _n = 1): number {
  const T = s.KH * s.KW;
  const Hp = Math.max((s.OH - 1) * s.sh + s.KH, s.pt + s.H);
  const Wp = Math.max((s.OW - 1) * s.sw + s.KW, s.pl + s.W);
  const pad = round4(Hp * Wp * s.C);
  if (s.depthwise) return pad;
  const blocks = s.O > 32 ? Math.ceil(s.O / 32) : 0;
  const sparse = 5 * round4(s.H * s.W * s.C) + 2 * round4(s.H * s.W) + 5 * round4(T) + blocks * 32 * T * s.C;
  const forward = Math.max(sparse, pad + Math.ceil(s.O / 8) * 8 * T * s.C);
  const O4 = round4(s.O);
  const gradWeights = Math.max(pad + 2 * round4(s.OH * s.OW * s.O) + round4(s.O + 1) + round4(s.O * T * s.C), pad + round4(s.OH * s.OW * O4) + T * s.C * O4);
  let gradInput = pad + 2 * round4(s.OH * s.OW * s.O) + round4(s.OH * s.OW) + round4(s.O * T * (s.C + 31));
  if (s.sh === 1 && s.sw === 1) {
    // The dense input gradient: a forward conv over the output gradient padded by KH - 1 - pt, KW - 1 - pl.
    const fHp = Math.max(s.H - 1 + s.KH, s.KH - 1 - s.pt + s.OH);
    const fWp = Math.max(s.W - 1 + s.KW, s.KW - 1 - s.pl + s.OW);
    gradInput = Math.max(gradInput, round4(fHp * fWp * s.O) + Math.ceil(s.C / 8) * 8 * T * s.O + round4(T * s.O * s.C));
  }
  return Math.max(forward, gradWeights, gradInput);
}

/** out[n, OH, OW, O] = act(conv(x[n, H, W, C], w) + bias); bias 0 = none; relu fuses max(0, .). */
export function convForward(k: CnnExports, s: ConvShape, n: number, x: number, w: number, bias: number, out: number, relu: boolean, scratch: number): void {
  k.conv_forward(n, ...geometry(s), s.depthwise ? 1 : 0, x, w, bias, out, relu ? 1 : 0, scratch);
}

/** dw [KH, KW, C, O] (depthwise [KH, KW, C, 1]) and db [O] (0 = none) from x and dout [n, OH, OW, O]; both overwritten. */
export function convGradWeights(k: CnnExports, s: ConvShape, n: number, x: number, dout: number, dw: number, db: number, scratch: number): void {
  k.conv_grad_weights(n, ...geometry(s), s.depthwise ? 1 : 0, x, dout, dw, db, scratch);
}

/** dx [n, H, W, C] (overwritten) from dout and w; xRelu (0 = none) is the layer's input read as a ReLU output: dx *= (xRelu > 0). */
export function convGradInput(k: CnnExports, s: ConvShape, n: number, dout: number, w: number, dx: number, xRelu: number, scratch: number): void {
  k.conv_grad_input(n, ...geometry(s), s.depthwise ? 1 : 0, dout, w, dx, xRelu, scratch);
}
