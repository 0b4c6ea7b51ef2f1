// The sparse Conv2D kernels (src/runtime/simd/cnn/sparse.c, wrapped by
// src/engine/training/cnn/kernels/sparse.ts) compute what the dense conv
// kernels (already tested against TF.js in cnn-conv.test.ts) compute with the
// mask applied to the kernel: the forward pass with bias and ReLU, the
// weight gradient on the survivors (pruned entries exactly 0), the bias
// gradient, and the input gradient with the input's ReLU fused; on odd sizes,
// 'same' and 'valid' padding, 1x1 and 5x3 kernels, batch 1, and densities
// from 0 to 1. The sparse dense-layer kernels (cnn/csr.c) likewise equal
// mlp.c's dense kernels under the mask, in slices narrower and wider than
// the 32 lanes kept in registers, with inputs whose features are zero in
// every example (skipped) and with ReLU fused on either side. Every case runs
// in the build the engine takes (relaxed SIMD where Node compiles it) and in
// the plain-SIMD fallback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CnnKernels, cnnBuild } from '../../src/runtime/simd/cnn-kernels.js';
import { convForward, convGradInput, convGradWeights, convScratchFloats, convShape } from '../../src/engine/training/cnn/kernels/conv.js';
import {
  sparseConvFits, sparseConvForward, sparseConvGradInput, sparseConvGradWeights, sparseConvLists, sparseConvScratchFloats, sparseDenseBackward, sparseDenseForward,
  sparseDenseInputFloats, sparseDenseLists, sparseDenseScratchFloats,
} from '../../src/engine/training/cnn/kernels/sparse.js';
import { denseForward, denseGradInput, denseGradWeights, denseScratchFloats } from '../../src/engine/training/cnn/kernels/layers.js';
import { sparseConvPasses } from '../../src/engine/training/cnn/ops.js';
import { assertClose, randomValues } from '../fixtures/close.js';
import { mulberry32 } from '../../src/engine/rng.js';

/** Copies `a` into fresh memory of `mem`; returns its byte offset. */
function put(mem: CnnKernels, a: Float32Array): number {
  const p = mem.alloc(a.length);
  mem.f32(p, a.length).set(a);
  return p;
}

const cases: Array<{ n: number; input: [number, number, number]; filters: number; kernel: [number, number]; padding: 'same' | 'valid'; density: number }> = [
  { n: 2, input: [8, 8, 16], filters: 24, kernel: [3, 3], padding: 'same', density: 0.1 },
  { n: 1, input: [7, 9, 3], filters: 5, kernel: [3, 3], padding: 'same', density: 0.3 },
  { n: 3, input: [9, 6, 4], filters: 33, kernel: [5, 3], padding: 'valid', density: 0.05 },
  { n: 2, input: [5, 5, 6], filters: 7, kernel: [1, 1], padding: 'same', density: 0.5 },
  { n: 2, input: [6, 7, 8], filters: 9, kernel: [2, 4], padding: 'same', density: 1 },
  { n: 1, input: [4, 4, 2], filters: 3, kernel: [3, 3], padding: 'same', density: 0 },
  // More input channels than one 16-plane block, the last block partial.
  { n: 2, input: [7, 6, 20], filters: 12, kernel: [3, 3], padding: 'same', density: 0.1 },
  { n: 1, input: [6, 9, 37], filters: 6, kernel: [3, 2], padding: 'valid', density: 0.2 },
];

/** The kernels' builds every case runs in: the engine's default, and plain SIMD. */
const builds = [
  { suffix: '', kernels: () => new CnnKernels() },
  { suffix: ' (plain SIMD build)', kernels: () => new CnnKernels(cnnBuild('plain')!) },
];

for (const { suffix, kernels } of builds) for (const c of cases) {
  for (const relu of [false, true]) {
    const name = `${c.n}x${c.input.join('x')} -> ${c.filters} ${c.kernel.join('x')} ${c.padding} at ${c.density * 100}% weights${relu ? ' with ReLU' : ''}${suffix}`;
    test(`the sparse conv kernels equal the dense ones under the mask: ${name}`, () => {
      const next = mulberry32(c.n * 1000 + c.filters + (relu ? 7 : 0));
      const s = convShape(c.input, { filters: c.filters, kernel: c.kernel, strides: [1, 1], padding: c.padding });
      assert.ok(sparseConvFits(s));
      const mem = kernels();
      const nx = c.n * s.H * s.W * s.C;
      const ny = c.n * s.OH * s.OW * s.O;
      const nw = s.KH * s.KW * s.C * s.O;
      const mask = Float32Array.from({ length: nw }, () => (next() < c.density ? 1 : 0));
      const w = randomValues(nw, 0, next).map((v, i) => v * mask[i]!);
      const x = randomValues(nx, relu ? 0.5 : 0, next).map((v) => (relu ? Math.max(v, 0) : v));
      const dout = randomValues(ny, 0.5, next);
      const b = randomValues(s.O, 0, next);
      const at = (a: Float32Array): number => put(mem, a);
      const X = at(x);
      const Wt = at(w);
      const B = at(b);
      const D = at(dout);
      const lists = sparseConvLists(s, mask, (count) => mem.alloc(count), (o, count) => mem.i32(o, count));
      assert.equal(lists.count, mask.reduce((a, m) => a + m, 0));
      assert.equal(sparseConvScratchFloats(s), mem.k.sparse_conv_scratch_floats(s.C, s.KH, s.KW, s.O, s.OH, s.OW));
      const scratch = mem.alloc(Math.max(convScratchFloats(s, c.n), sparseConvScratchFloats(s)));
      const out = [mem.alloc(ny), mem.alloc(ny)];
      const dw = [mem.alloc(nw), mem.alloc(nw)];
      const db = [mem.alloc(s.O), mem.alloc(s.O)];
      const dx = [mem.alloc(nx), mem.alloc(nx)];
      // Stale values in the outputs must be overwritten.
      for (const p of [...out, ...dw, ...db, ...dx]) mem.f32(p, 1).fill(123);
      convForward(mem.k, s, c.n, X, Wt, B, out[0]!, relu, scratch);
      sparseConvForward(mem.k, s, lists, c.n, X, Wt, B, out[1]!, relu, scratch);
      convGradWeights(mem.k, s, c.n, X, D, dw[0]!, db[0]!, scratch);
      sparseConvGradWeights(mem.k, s, lists, c.n, X, D, dw[1]!, db[1]!, scratch);
      convGradInput(mem.k, s, c.n, D, Wt, dx[0]!, relu ? X : 0, scratch);
      sparseConvGradInput(mem.k, s, lists, c.n, D, Wt, dx[1]!, relu ? X : 0, scratch);
      assertClose(mem.f32(out[1]!, ny), mem.f32(out[0]!, ny), 'forward', 1e-5);
      const dense = mem.f32(dw[0]!, nw).map((v, i) => v * mask[i]!);
      const sparse = mem.f32(dw[1]!, nw);
      assertClose(sparse, dense, 'weight gradient', 1e-5);
      mask.forEach((m, i) => m === 0 && assert.ok(Object.is(sparse[i], 0), `dw[${i}] pruned but ${sparse[i]}`));
      assertClose(mem.f32(db[1]!, s.O), mem.f32(db[0]!, s.O), 'bias gradient', 1e-5);
      assertClose(mem.f32(dx[1]!, nx), mem.f32(dx[0]!, nx), 'input gradient', 1e-5);
    });
  }
}

test('the sparse kernels take stride-1 convs only, not depthwise ones', () => {
  assert.equal(sparseConvFits(convShape([8, 8, 4], { filters: 4, kernel: [3, 3], strides: [2, 2], padding: 'same' })), false);
  assert.equal(sparseConvFits(convShape([8, 8, 4], { filters: 4, kernel: [3, 3], strides: [1, 1], padding: 'same', depthwise: true })), false);
  assert.equal(sparseConvFits(convShape([8, 8, 4], { filters: 4, kernel: [3, 3], strides: [1, 1], padding: 'valid' })), true);
});

test('each pass of a conv layer takes the sparse kernel only below its own break-even', () => {
  const first = convShape([32, 32, 3], { filters: 64, kernel: [3, 3], strides: [1, 1], padding: 'same' });
  const second = convShape([32, 32, 64], { filters: 64, kernel: [3, 3], strides: [1, 1], padding: 'same' });
  const at = (g: typeof first, density: number, doutZeros: number) => {
    const count = g.KH * g.KW * g.C * g.O;
    return sparseConvPasses(g, Math.round(density * count), count, doutZeros);
  };
  assert.deepEqual(at(first, 0.1, 0.5), { forward: true, weights: true, input: true });
  // Behind a 2x2 max pool (75% zero output gradients) the dense input gradient, which skips them, wins from 15%.
  assert.deepEqual(at(second, 0.17, 0.75), { forward: true, weights: true, input: false });
  assert.deepEqual(at(second, 0.1, 0.75), { forward: true, weights: true, input: true });
  assert.deepEqual(at(second, 0.17, 0.5), { forward: true, weights: true, input: true });
  assert.deepEqual(at(second, 0.3, 0), { forward: false, weights: false, input: false });
  assert.deepEqual(at(second, 0, 0), { forward: false, weights: false, input: false });
  const strided = convShape([32, 32, 64], { filters: 64, kernel: [3, 3], strides: [2, 2], padding: 'same' });
  assert.deepEqual(at(strided, 0.05, 0), { forward: false, weights: false, input: false });
});

const denseCases: Array<{ n: number; inSize: number; outSize: number; density: number; zeroFeatures: number }> = [
  { n: 30, inSize: 70, outSize: 33, density: 0.1, zeroFeatures: 0.3 },
  { n: 1, inSize: 9, outSize: 5, density: 0.3, zeroFeatures: 0 },
  { n: 33, inSize: 41, outSize: 17, density: 0.05, zeroFeatures: 0.2 },
  { n: 5, inSize: 64, outSize: 10, density: 1, zeroFeatures: 0.5 },
  { n: 32, inSize: 16, outSize: 8, density: 0, zeroFeatures: 0 },
];

for (const { suffix, kernels } of builds) for (const c of denseCases) {
  for (const relu of [false, true]) {
    const name = `${c.n} x ${c.inSize} -> ${c.outSize} at ${c.density * 100}% weights, ${c.zeroFeatures * 100}% features zero${relu ? ', ReLU both sides' : ''}${suffix}`;
    test(`the sparse dense kernels equal the dense ones under the mask: ${name}`, () => {
      const next = mulberry32(c.n * 1000 + c.inSize + (relu ? 7 : 0));
      const mem = kernels();
      const nx = c.n * c.inSize;
      const ny = c.n * c.outSize;
      const nw = c.inSize * c.outSize;
      const mask = Float32Array.from({ length: nw }, () => (next() < c.density ? 1 : 0));
      const w = randomValues(nw, 0, next).map((v, i) => v * mask[i]!);
      const dead = Array.from({ length: c.inSize }, () => next() < c.zeroFeatures);
      const x = randomValues(nx, relu ? 0.5 : 0, next).map((v, i) => (dead[i % c.inSize] ? 0 : relu ? Math.max(v, 0) : v));
      const dout = randomValues(ny, 0.5, next);
      const b = randomValues(c.outSize, 0, next);
      const at = (a: Float32Array): number => put(mem, a);
      const X = at(x);
      const Wt = at(w);
      const B = at(b);
      const D = at(dout);
      const lists = sparseDenseLists(c.inSize, c.outSize, mask, (count) => mem.alloc(count), (o, count) => mem.i32(o, count));
      assert.equal(lists.count, mask.reduce((a, m) => a + m, 0));
      const scratch = mem.alloc(Math.max(denseScratchFloats(c.inSize, c.n), sparseDenseScratchFloats(c.inSize, c.outSize, c.n)));
      const out = [mem.alloc(ny), mem.alloc(ny)];
      const dw = [mem.alloc(nw), mem.alloc(nw)];
      const db = [mem.alloc(c.outSize), mem.alloc(c.outSize)];
      const dx = [mem.alloc(nx), mem.alloc(nx)];
      // Stale values in the outputs must be overwritten (dw's pruned entries are left alone: the engine's start at 0).
      for (const p of [...out, dw[0]!, ...db, ...dx]) mem.f32(p, 1).fill(123);
      denseForward(mem.k, c.n, c.inSize, c.outSize, X, Wt, B, out[0]!, relu, scratch);
      sparseDenseForward(mem.k, lists, c.n, c.inSize, c.outSize, X, Wt, B, out[1]!, relu, scratch);
      denseGradWeights(mem.k, c.n, c.inSize, c.outSize, X, D, dw[0]!, db[0]!, scratch);
      denseGradInput(mem.k, c.n, c.inSize, c.outSize, D, Wt, dx[0]!, relu ? X : 0);
      const copy = sparseDenseBackward(mem.k, lists, c.n, c.inSize, c.outSize, X, D, Wt, dw[1]!, db[1]!, true, relu, scratch);
      copy(dx[1]!);
      assertClose(mem.f32(out[1]!, ny), mem.f32(out[0]!, ny), 'forward', 1e-5);
      const dense = mem.f32(dw[0]!, nw).map((v, i) => v * mask[i]!);
      const sparse = mem.f32(dw[1]!, nw);
      assertClose(sparse, dense, 'weight gradient', 1e-5);
      mask.forEach((m, i) => m === 0 && assert.ok(Object.is(sparse[i], 0), `dw[${i}] pruned but ${sparse[i]}`));
      assertClose(mem.f32(db[1]!, c.outSize), mem.f32(db[0]!, c.outSize), 'bias gradient', 1e-5);
      assertClose(mem.f32(dx[1]!, nx), mem.f32(dx[0]!, nx), 'input gradient', 1e-5);
      // Without an input gradient the weight gradients are the same.
      mem.f32(dw[1]!, nw).fill(0);
      sparseDenseBackward(mem.k, lists, c.n, c.inSize, c.outSize, X, D, Wt, dw[1]!, 0, false, relu, scratch);
      assertClose(mem.f32(dw[1]!, nw), dense, 'weight gradient without the input gradient', 1e-5);
      // With the input's feature-major copy kept from the forward pass, the backward pass reads it, not x (here zeros).
      const xT = mem.alloc(sparseDenseInputFloats(c.inSize, c.n));
      sparseDenseForward(mem.k, lists, c.n, c.inSize, c.outSize, X, Wt, B, out[1]!, relu, scratch, xT);
      assertClose(mem.f32(out[1]!, ny), mem.f32(out[0]!, ny), 'forward keeping its input', 1e-5);
      mem.f32(dw[1]!, nw).fill(0);
      sparseDenseBackward(mem.k, lists, c.n, c.inSize, c.outSize, at(new Float32Array(nx)), D, Wt, dw[1]!, db[1]!, true, relu, scratch, xT)(dx[1]!);
      assertClose(mem.f32(dw[1]!, nw), dense, 'weight gradient from the kept input', 1e-5);
      assertClose(mem.f32(dx[1]!, nx), mem.f32(dx[0]!, nx), 'input gradient from the kept input', 1e-5);
    });
  }
}
