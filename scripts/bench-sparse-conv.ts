// Sparse vs dense conv kernels on Conv-2's layers (CIFAR shape, 3x3 'same'),
// one thread, at several densities: median milliseconds of each pass (forward,
// weight gradient, input gradient) for a slice of images, and the ratio dense /
// sparse measured in the same run (inputs ~50% zero as ReLU outputs, output
// gradients ~75% zero as after a max pool unless --dout-zeros says otherwise;
// the first layer's input has no zeros). Where each pass's ratio crosses 1 sets
// ops.ts's per-pass break-evens (sparseConvPasses). The
// same for Conv-2's dense head (16384 -> 256, inputs ~50% zero as pooled
// ReLU outputs, output gradients without zeros) sets SPARSE_DENSE_DENSITY.
//   node --import tsx scripts/bench-sparse-conv.ts [--n 30] [--reps 5] [--densities 0.05,0.1,0.2,0.3,0.5] [--dout-zeros 0.75]
import { CnnKernels } from '../src/runtime/simd/cnn-kernels.js';
import { convForward, convGradInput, convGradWeights, convScratchFloats, convShape } from '../src/engine/training/cnn/kernels/conv.js';
import {
  sparseConvForward, sparseConvGradInput, sparseConvGradWeights, sparseConvLists, sparseConvScratchFloats, sparseDenseBackward, sparseDenseForward, sparseDenseLists,
  sparseDenseScratchFloats,
} from '../src/engine/training/cnn/kernels/sparse.js';
import { denseForward, denseGradInput, denseGradWeights, denseScratchFloats } from '../src/engine/training/cnn/kernels/layers.js';
import { mulberry32 } from '../src/engine/rng.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const n = Number(arg('n', '30'));
const reps = Number(arg('reps', '5'));
const densities = arg('densities', '0.05,0.1,0.2,0.3,0.5').split(',').map(Number);
/** Zero fraction of the conv layers' output gradients: 0.75 behind a 2x2 max pool, about 0.5 behind a ReLU alone. */
const doutZeros = Number(arg('dout-zeros', '0.75'));
const layers = [
  { name: 'conv 3->64 32x32', input: [32, 32, 3] as [number, number, number], filters: 64, xZeros: 0 },
  { name: 'conv 64->64 32x32', input: [32, 32, 64] as [number, number, number], filters: 64, xZeros: 0.5 },
];
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const next = mulberry32(1);
/** Times `dense` and `sparse` interleaved (so load changes hit both alike; the first round warms up) and prints their medians and ratio. */
function report(name: string, d: number, dense: () => void, sparse: () => void): void {
  const td: number[] = [];
  const ts: number[] = [];
  for (let r = 0; r < reps + 1; r++) {
    let t0 = performance.now();
    dense();
    if (r) td.push(performance.now() - t0);
    t0 = performance.now();
    sparse();
    if (r) ts.push(performance.now() - t0);
  }
  const a = median(td);
  const b = median(ts);
  console.log(`${name.padEnd(26)}${d.toFixed(2).padStart(7)}${a.toFixed(1).padStart(10)}${b.toFixed(1).padStart(11)}${(a / b).toFixed(2).padStart(14)}`);
}
console.log(`images ${n}, median of ${reps}, output gradients ${doutZeros} zero; ms of one pass, one thread`);
console.log(`${'layer'.padEnd(26)}density  dense ms  sparse ms  dense/sparse`);
for (const l of layers) {
  const s = convShape(l.input, { filters: l.filters, kernel: [3, 3], strides: [1, 1], padding: 'same' });
  const mem = new CnnKernels();
  const nx = n * s.H * s.W * s.C;
  const ny = n * s.OH * s.OW * s.O;
  const nw = 9 * s.C * s.O;
  const fill = (count: number, zeros: number): number => {
    const p = mem.alloc(count);
    const v = mem.f32(p, count);
    for (let i = 0; i < count; i++) v[i] = next() < zeros ? 0 : next();
    return p;
  };
  const x = fill(nx, l.xZeros);
  const dout = fill(ny, doutZeros);
  const w = mem.alloc(nw);
  const bias = fill(s.O, 0);
  const out = mem.alloc(ny);
  const dw = mem.alloc(nw);
  const db = mem.alloc(s.O);
  const dx = mem.alloc(nx);
  const scratch = mem.alloc(Math.max(convScratchFloats(s, n), sparseConvScratchFloats(s)));
  for (const d of densities) {
    const mask = Float32Array.from({ length: nw }, () => (next() < d ? 1 : 0));
    const wv = mem.f32(w, nw);
    for (let i = 0; i < nw; i++) wv[i] = mask[i]! * (next() - 0.5);
    const lists = sparseConvLists(s, mask, (c) => mem.alloc(c), (o, c) => mem.i32(o, c));
    // Each pass on its own: the engine picks the cheaper kernel per pass (ops.ts).
    report(`${l.name} fwd`, d, () => convForward(mem.k, s, n, x, w, bias, out, true, scratch), () => sparseConvForward(mem.k, s, lists, n, x, w, bias, out, true, scratch));
    report(`${l.name} dw`, d, () => convGradWeights(mem.k, s, n, x, dout, dw, db, scratch), () => sparseConvGradWeights(mem.k, s, lists, n, x, dout, dw, db, scratch));
    if (l.xZeros) report(`${l.name} dx`, d, () => convGradInput(mem.k, s, n, dout, w, dx, x, scratch), () => sparseConvGradInput(mem.k, s, lists, n, dout, w, dx, x, scratch));
  }
}

{
  const inSize = 16384;
  const outSize = 256;
  const mem = new CnnKernels();
  const fill = (count: number, zeros: number): number => {
    const p = mem.alloc(count);
    const v = mem.f32(p, count);
    for (let i = 0; i < count; i++) v[i] = next() < zeros ? 0 : next();
    return p;
  };
  const nw = inSize * outSize;
  const x = fill(n * inSize, 0.5);
  const dz = fill(n * outSize, 0);
  const bias = fill(outSize, 0);
  const w = mem.alloc(nw);
  const out = mem.alloc(n * outSize);
  const dw = mem.alloc(nw);
  const db = mem.alloc(outSize);
  const dx = mem.alloc(n * inSize);
  const scratch = mem.alloc(Math.max(denseScratchFloats(inSize, n), sparseDenseScratchFloats(inSize, outSize, n)));
  const wv = mem.f32(w, nw);
  for (const d of densities) {
    const mask = Float32Array.from({ length: nw }, () => (next() < d ? 1 : 0));
    for (let i = 0; i < nw; i++) wv[i] = mask[i]! * (next() - 0.5);
    const lists = sparseDenseLists(inSize, outSize, mask, (c) => mem.alloc(c), (o, c) => mem.i32(o, c));
    const dense = (): void => {
      denseForward(mem.k, n, inSize, outSize, x, w, bias, out, true, scratch);
      denseGradWeights(mem.k, n, inSize, outSize, x, dz, dw, db, scratch);
      denseGradInput(mem.k, n, inSize, outSize, dz, w, dx, x);
    };
    const sparse = (): void => {
      sparseDenseForward(mem.k, lists, n, inSize, outSize, x, w, bias, out, true, scratch);
      sparseDenseBackward(mem.k, lists, n, inSize, outSize, x, dz, w, dw, db, true, true, scratch)(dx);
    };
    report('dense 16384->256', d, dense, sparse);
  }
}
