// Typed wrappers over the sparse Conv2D kernels (src/runtime/simd/cnn/sparse.c):
// a stride-1, non-depthwise conv layer whose kernel is mostly pruned trains
// only its surviving weights. sparseConvLists builds the survivor lists once
// (masks are fixed during a training) into the kernels' memory; the passes
// take them with the usual geometry. Pointers are byte offsets into the
// CnnKernels memory; every call runs `n` images starting there.
import type { CnnExports } from '../../../../runtime/simd/cnn-kernels.js';
import type { ConvShape } from './conv.js';

/** Whether the sparse kernels handle this geometry: stride 1, not depthwise. */
export function sparseConvFits(s: ConvShape): boolean {
  return !s.depthwise && s.sh === 1 && s.sw === 1;
}

/** Where a layer's survivor lists live (byte offsets of i32 arrays; see sparse.c's header). */
export interface SparseConvLists {
  /** Survivors by output channel: ostart [O + 1], pairs (input-plane offset, weight index). */
  ostart: number;
  fent: number;
  /** Survivors by input channel: cstart [C + 1], pairs (output-gradient offset, weight index). */
  cstart: number;
  bent: number;
  /** Surviving weights. */
  count: number;
}

const round4 = (v: number): number => (v + 3) & ~3;
/** Channels whose result planes sparse.c makes before writing them out together (its SPARSE_BLOCK). */
const SPARSE_BLOCK = 16;

/**
 * Floats of scratch one thread needs for any of the three passes (independent
 * of `n`); sparse.c's sparse_conv_scratch_floats computes the same (a test
 * holds them equal).
 */
export function sparseConvScratchFloats(s: ConvShape): number {
  const Wp = s.OW + s.KW - 1;
  const P = (s.OH + s.KH - 1) * Wp;
  const gap = (s.KH - 1) * Wp + s.KW - 1;
  const S = s.OH * Wp + gap;
  return round4(s.C * P + s.KW + 4) + round4(gap + s.O * S + 4) + SPARSE_BLOCK * round4(P + 4) + round4(2 * s.KH * s.KW * Math.max(s.C, s.O) + 4);
}

/**
 * Builds the survivor lists of a [KH, KW, C, O] kernel under `mask` (nonzero =
 * kept) in memory taken from `alloc` (i32 counts), written through `i32`.
 */
export function sparseConvLists(
  s: ConvShape,
  mask: ArrayLike<number>,
  alloc: (count: number) => number,
  i32: (offset: number, count: number) => Int32Array,
): SparseConvLists {
  const { C, KH, KW, O, OH, OW } = s;
  const Wp = OW + KW - 1;
  const P = (OH + KH - 1) * Wp;
  const gap = (KH - 1) * Wp + KW - 1;
  const S = OH * Wp + gap;
  const byO: number[][] = Array.from({ length: O }, () => []);
  const byC: number[][] = Array.from({ length: C }, () => []);
  let count = 0;
  for (let kh = 0; kh < KH; kh++)
    for (let kw = 0; kw < KW; kw++)
      for (let c = 0; c < C; c++)
        for (let o = 0; o < O; o++) {
          const wi = ((kh * KW + kw) * C + c) * O + o;
          if (mask[wi] === 0) continue;
          count++;
          byO[o]!.push(c * P + kh * Wp + kw, wi);
          byC[c]!.push(gap + o * S - (kh * Wp + kw), wi);
        }
  const write = (lists: number[][]): [number, number] => {
    const startAt = alloc(lists.length + 1);
    const entAt = alloc(Math.max(2 * count, 1));
    const start = i32(startAt, lists.length + 1);
    const ent = i32(entAt, Math.max(2 * count, 1));
    let at = 0;
    lists.forEach((l, i) => {
      start[i] = at / 2;
      ent.set(l, at);
      at += l.length;
    });
    start[lists.length] = at / 2;
    return [startAt, entAt];
  };
  const [ostart, fent] = write(byO);
  const [cstart, bent] = write(byC);
  return { ostart, fent, cstart, bent, count };
}

const geometry = (s: ConvShape): [number, number, number, number, number, number, number, number, number, number] => [s.H, s.W, s.C, s.KH, s.KW, s.O, s.pt, s.pl, s.OH, s.OW];

/** out[n, OH, OW, O] = act(conv(x, w) + bias) over the survivors only; bias 0 = none; relu fuses max(0, .). */
export function sparseConvForward(k: CnnExports, s: ConvShape, l: SparseConvLists, n: number, x: number, w: number, bias: number, out: number, relu: boolean, scratch: number): void {
  k.sparse_conv_forward(n, ...geometry(s), x, w, bias, out, relu ? 1 : 0, l.ostart, l.fent, scratch);
}

/** dw [KH, KW, C, O] (survivors' gradients, pruned entries 0) and db [O] (0 = none) from x and dout; both overwritten. */
export function sparseConvGradWeights(k: CnnExports, s: ConvShape, l: SparseConvLists, n: number, x: number, dout: number, dw: number, db: number, scratch: number): void {
  k.sparse_conv_grad_weights(n, ...geometry(s), x, dout, dw, db, l.ostart, l.fent, scratch);
}

/** dx [n, H, W, C] (overwritten) from dout and the surviving weights; xRelu (0 = none): dx *= (xRelu > 0). */
export function sparseConvGradInput(k: CnnExports, s: ConvShape, l: SparseConvLists, n: number, dout: number, w: number, dx: number, xRelu: number, scratch: number): void {
  k.sparse_conv_grad_input(n, ...geometry(s), dout, w, dx, xRelu, l.cstart, l.bent, scratch);
}

/** Where a dense layer's survivor lists live: row [in + 1] starts, flat [count] indices i * out + j (i32 byte offsets). */
export interface SparseDenseLists {
  row: number;
  flat: number;
  count: number;
}

/** Lanes per feature for a slice of `n` examples: whole SIMD vectors. */
const lanes = (n: number): number => round4(n);

/** Floats of scratch one thread needs for a dense layer's sparse passes over `n` examples (input, output and input gradient, feature-major). */
export function sparseDenseScratchFloats(inSize: number, outSize: number, n: number): number {
  return (2 * inSize + outSize) * lanes(n);
}

/** Builds the survivor lists of an [in, out] kernel under `mask` (nonzero = kept), by input row, in memory from `alloc`. */
export function sparseDenseLists(
  inSize: number,
  outSize: number,
  mask: ArrayLike<number>,
  alloc: (count: number) => number,
  i32: (offset: number, count: number) => Int32Array,
): SparseDenseLists {
  let count = 0;
  for (let f = 0; f < inSize * outSize; f++) if (mask[f] !== 0) count++;
  const row = alloc(inSize + 1);
  const flat = alloc(Math.max(count, 1));
  const r = i32(row, inSize + 1);
  const fl = i32(flat, Math.max(count, 1));
  let at = 0;
  for (let i = 0; i < inSize; i++) {
    r[i] = at;
    for (let j = 0, f = i * outSize; j < outSize; j++, f++) if (mask[f] !== 0) fl[at++] = f;
  }
  r[inSize] = at;
  return { row, flat, count };
}

/** Floats of a kept feature-major copy of a slice's input (the `xT` of sparseDenseForward / sparseDenseBackward). */
export function sparseDenseInputFloats(inSize: number, n: number): number {
  return inSize * lanes(n);
}

/**
 * out[n, outSize] = act(x w + bias) over the survivors (bias 0 = none); x [n, inSize] row-major.
 * With `xT` (sparseDenseInputFloats), x's feature-major copy is made there and kept for sparseDenseBackward.
 */
export function sparseDenseForward(
  k: CnnExports, l: SparseDenseLists, n: number, inSize: number, outSize: number, x: number, w: number, bias: number, out: number, relu: boolean, scratch: number, xT = 0,
): void {
  const s = lanes(n);
  const aT = xT || scratch;
  const outT = scratch + 4 * inSize * s;
  k.to_feature_major(x, n, inSize, aT, s);
  k.csr_flat_forward(aT, s, inSize, l.row, l.flat, w, bias, outT, outSize, relu ? 1 : 0);
  k.from_feature_major(outT, n, outSize, out, s);
}

/**
 * The survivors' gradients into dw at their places in the dense [in, out]
 * array (other entries untouched) and db [out] (0 = none), both overwritten,
 * from x and dz; with `inputGrad`, also the input's gradient, which
 * `writeInputGrad(dst)` then copies to dst [n, inSize] (zero where
 * `xRelu`: x is a ReLU output and is zero). With `xT`, x's feature-major copy
 * is read from there (sparseDenseForward made it on the same slice) instead
 * of transposing x again.
 */
export function sparseDenseBackward(
  k: CnnExports, l: SparseDenseLists, n: number, inSize: number, outSize: number, x: number, dz: number, w: number, dw: number, db: number,
  inputGrad: boolean, xRelu: boolean, scratch: number, xT = 0,
): (dst: number) => void {
  const s = lanes(n);
  const aT = xT || scratch;
  const dzT = scratch + 4 * inSize * s;
  const daT = dzT + 4 * outSize * s;
  if (!xT) k.to_feature_major(x, n, inSize, aT, s);
  k.to_feature_major(dz, n, outSize, dzT, s);
  k.csr_flat_backward(aT, s, inSize, l.row, l.flat, w, dzT, outSize, dw, db, inputGrad ? daT : 0, xRelu ? 1 : 0);
  return (dst) => k.from_feature_major(daT, n, inSize, dst, s);
}
