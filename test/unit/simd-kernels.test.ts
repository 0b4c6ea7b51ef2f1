// The WebAssembly SIMD MLP kernels (src/runtime/simd/mlp.c) compute what the
// reference TF.js `cpu` backend computes for a dense layer's forward pass,
// weight and bias gradients and input gradient, for dense kernels and for the
// surviving weights of pruned ones in compressed rows, on shapes that exercise every
// vector and scalar tail, with zeros in the inputs; and the embedded binary
// was built from the committed C source. Every kernel test runs on both
// builds of the module: the one the engine runs (relaxed SIMD, fused
// multiply-adds, on this Node) and the plain-SIMD fallback.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { MlpKernels, mlpBuild, mlpBuildInUse } from '../../src/runtime/simd/mlp-kernels.js';
import { SOURCE_SHA256 } from '../../src/runtime/simd/mlp-wasm.gen.js';
import { mulberry32 } from '../../src/engine/rng.js';

before(async () => {
  await tf.setBackend('cpu');
});

test('the embedded wasm was built from the committed mlp.c (rebuild: bash scripts/build-simd.sh)', () => {
  const src = readFileSync(new URL('../../src/runtime/simd/mlp.c', import.meta.url));
  assert.equal(createHash('sha256').update(src).digest('hex'), SOURCE_SHA256);
});

test('the MLP engine runs the relaxed-SIMD build on this Node (fused multiply-adds), the plain build with TICKETSMITH_RELAXED_SIMD=0, and both compile', () => {
  assert.ok(mlpBuild('plain'));
  assert.ok(mlpBuild('relaxed'), 'Node 20+ compiles relaxed SIMD once --experimental-wasm-relaxed-simd is set');
  assert.equal(mlpBuildInUse(), 'relaxed');
  const before = process.env.TICKETSMITH_RELAXED_SIMD;
  process.env.TICKETSMITH_RELAXED_SIMD = '0';
  try {
    assert.equal(mlpBuildInUse(), 'plain');
  } finally {
    if (before === undefined) delete process.env.TICKETSMITH_RELAXED_SIMD;
    else process.env.TICKETSMITH_RELAXED_SIMD = before;
  }
});

/** The build a test runs: the engine's (no suffix: the names tests had before the plain build) or the plain fallback. */
type Build = 'default' | 'plain';
const builds: Array<[Build, string]> = [
  ['default', ''],
  ['plain', ' (plain SIMD build)'],
];
const kernels = (build: Build) => (build === 'plain' ? new MlpKernels(mlpBuild('plain')) : new MlpKernels());

/** Uniform [-1, 1) values, each zero with probability `zeros`. */
function values(n: number, zeros: number, next: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() < zeros ? 0 : next() * 2 - 1;
  return out;
}

/** Within 1e-4; relative: within 1e-4 of max(1, max |expected|) (sums of thousands of terms round apart by more). */
function assertClose(actual: Float32Array, expected: Float32Array, what: string, relative = false): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < actual.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
    if (relative) scale = Math.max(scale, Math.abs(expected[i]!));
  }
  assert.ok(worst <= 1e-4 * scale, `${what}: max |difference| ${worst} (largest |value| ${scale})`);
}

/**
 * The cpu backend's dense layer: forward act(x w + bias), weight, bias and
 * input gradients from dz, the input gradient masked by x > 0 when `relu`
 * (x read as the output of a ReLU below).
 */
function reference(x: Float32Array, w: Float32Array, bias: Float32Array | null, dz: Float32Array, batch: number, inSize: number, outSize: number, relu: boolean): Float32Array[] {
  return tf.tidy(() => {
    const X = tf.tensor2d(x, [batch, inSize]);
    const W = tf.tensor2d(w, [inSize, outSize]);
    const DZ = tf.tensor2d(dz, [batch, outSize]);
    let y = X.matMul(W);
    if (bias) y = y.add(tf.tensor1d(bias));
    if (relu) y = y.relu();
    let dx = DZ.matMul(W, false, true);
    if (relu) dx = dx.mul(X.greater(0).toFloat());
    return [y, X.matMul(DZ, true, false), DZ.sum(0), dx].map((t) => t.dataSync() as Float32Array);
  });
}

// [batch, in, out]: outputs below, at and above the 4- and 32-wide blocks.
const shapes: Array<[number, number, number]> = [
  [1, 1, 1],
  [3, 7, 5],
  [8, 33, 37],
  [5, 64, 32],
  [60, 784, 300],
  [17, 100, 10],
  [2, 3, 67],
];

/**
 * Runs the three dense kernels on x (read as a ReLU output below when `relu`)
 * and dz and compares forward, weight, bias and input gradients with the cpu backend.
 */
function checkDense(build: Build, batch: number, inSize: number, outSize: number, relu: boolean, x: Float32Array, next: () => number, which: 'dense' | 'fm' = 'dense', relative = false): void {
  const w = values(inSize * outSize, 0, next);
  const bias = relu ? values(outSize, 0, next) : null;
  const dz = values(batch * outSize, 0.2, next);
  const mem = kernels(build);
  const ptr = {
    x: mem.alloc(x.length),
    w: mem.alloc(w.length),
    b: bias ? mem.alloc(outSize) : 0,
    out: mem.alloc(batch * outSize),
    dz: mem.alloc(dz.length),
    dw: mem.alloc(w.length),
    db: mem.alloc(outSize),
    da: mem.alloc(x.length),
    idx: mem.alloc(Math.max(batch, inSize)),
    val: mem.alloc(Math.max(batch, inSize)),
  };
  mem.f32(ptr.x, x.length).set(x);
  mem.f32(ptr.w, w.length).set(w);
  if (bias) mem.f32(ptr.b, outSize).set(bias);
  mem.f32(ptr.dz, dz.length).set(dz);
  // The input gradient is masked by the *input's* ReLU: treat x as a ReLU output.
  // Garbage in the outputs on the way in: every kernel overwrites them.
  for (const p of [ptr.out, ptr.dw, ptr.da]) mem.f32(p, p === ptr.out ? batch * outSize : p === ptr.dw ? w.length : x.length).fill(7);
  const k = mem.k;
  if (which === 'fm') {
    k.dense_forward_fm(ptr.x, batch, inSize, ptr.w, ptr.b, ptr.out, outSize, relu ? 1 : 0, ptr.idx, ptr.val);
    k.dense_grad_weights_fm(ptr.x, batch, inSize, ptr.dz, outSize, ptr.dw, ptr.db, ptr.idx, ptr.val);
    k.dense_grad_input_fm(ptr.dz, batch, outSize, ptr.w, inSize, ptr.x, relu ? 1 : 0, ptr.da);
  } else {
    k.dense_forward(ptr.x, batch, inSize, ptr.w, ptr.b, ptr.out, outSize, relu ? 1 : 0, ptr.idx, ptr.val);
    k.dense_grad_weights(ptr.x, batch, inSize, ptr.dz, outSize, ptr.dw, ptr.db, ptr.idx, ptr.val);
    k.dense_grad_input(ptr.dz, batch, outSize, ptr.w, inSize, ptr.x, relu ? 1 : 0, ptr.da);
  }

  const [out, dw, db, da] = reference(x, w, bias, dz, batch, inSize, outSize, relu);
  assertClose(mem.f32(ptr.out, batch * outSize), out!, 'forward', relative);
  assertClose(mem.f32(ptr.dw, w.length), dw!, 'weight gradient', relative);
  assertClose(mem.f32(ptr.db, outSize), db!, 'bias gradient', relative);
  assertClose(mem.f32(ptr.da, x.length), da!, 'input gradient', relative);
}

for (const [build, suffix] of builds) for (const [batch, inSize, outSize] of shapes) {
  for (const relu of [true, false]) {
    test(`dense layer ${batch}x${inSize} -> ${outSize}${relu ? ' + ReLU' : ''}: forward and gradients equal the cpu backend${suffix}`, () => {
      const next = mulberry32(batch * 1000 + inSize * 10 + outSize + (relu ? 1 : 0));
      const x = values(batch * inSize, 0.5, next);
      checkDense(build, batch, inSize, outSize, relu, x, next);
    });
  }
}

// The kernels pick a path per call from the inputs' zeros (mlp.c,
// DENSE_BLOCKED_COST and DENSE_BLOCKED_MIN_LIVE): inputs without zeros and with
// 30% zeros go four rows at a time, 50% zeros one row at a time (the input
// gradient still blocked), 80% zeros one row at a time everywhere; zeros that
// every example shares (like MNIST's borders) go four rows at a time over the
// features that are not. Shapes with row and column tails, batch 1 and 4.
const denseShapes: Array<[number, number, number]> = [
  [1, 9, 13],
  [4, 8, 8],
  [5, 13, 19],
  [7, 30, 44],
  [13, 6, 3],
  [60, 784, 300],
  [61, 300, 101],
];
const inputKinds: Array<[string, (batch: number, inSize: number, next: () => number) => Float32Array]> = [
  ['without zeros', (b, n, next) => values(b * n, 0, next)],
  ['30% zeros', (b, n, next) => values(b * n, 0.3, next)],
  ['50% zeros', (b, n, next) => values(b * n, 0.5, next)],
  ['80% zeros', (b, n, next) => values(b * n, 0.8, next)],
  [
    'the same half of the features zero in every example',
    (b, n, next) => {
      const x = values(b * n, 0, next);
      for (let r = 0; r < b; r++) for (let i = 0; i < n; i += 2) x[r * n + i] = 0;
      return x;
    },
  ],
];
for (const [build, suffix] of builds) for (const [batch, inSize, outSize] of denseShapes) {
  for (const [kind, make] of inputKinds) {
    for (const relu of [true, false]) {
      test(`dense layer ${batch}x${inSize} -> ${outSize}${relu ? ' + ReLU' : ''}, inputs ${kind}: forward and gradients equal the cpu backend${suffix}`, () => {
        const next = mulberry32(3 + batch * 1000 + inSize * 10 + outSize + (relu ? 1 : 0));
        // A ReLU output is never negative: x read as one has its negatives at 0 (abs keeps the zeros where they were made).
        const x = make(batch, inSize, next).map((v) => (relu ? Math.abs(v) : v));
        checkDense(build, batch, inSize, outSize, relu, x, next);
      });
    }
  }
}

// The kernel-read-once paths (mlp.c, dense_*_fm) on their own, on shapes
// with tails of every block: features past multiples of 16 and of the block
// of w rows, examples past multiples of 4 and of the 128-example tiles (200),
// batch 1; inputs without zeros (four features at a time in the weight
// gradient), with 50% and 80% zeros (few live units: the input gradient's
// live-only dot products).
const fmShapes: Array<[number, number, number]> = [
  [1, 1, 1],
  [1, 70, 9],
  [3, 17, 5],
  [7, 33, 37],
  [30, 300, 256],
  [200, 45, 70],
  [133, 130, 3],
];
for (const [build, suffix] of builds) for (const [batch, inSize, outSize] of fmShapes) {
  for (const [kind, make] of inputKinds.slice(0, 4)) {
    for (const relu of [true, false]) {
      test(`dense layer ${batch}x${inSize} -> ${outSize}${relu ? ' + ReLU' : ''}, inputs ${kind}, kernel read once (dense_*_fm): forward and gradients equal the cpu backend${suffix}`, () => {
        const next = mulberry32(5 + batch * 1000 + inSize * 10 + outSize + (relu ? 1 : 0));
        const x = make(batch, inSize, next).map((v) => (relu ? Math.abs(v) : v));
        checkDense(build, batch, inSize, outSize, relu, x, next, 'fm');
      });
    }
  }
}

// dense_* on both sides of DENSE_FM_MIN_BYTES (4 MiB of kernel): Conv-2's fc1
// (16384 -> 256, 16 MiB, a half-zero max-pool output) at a thread's share of
// a batch of 60 and at batch 1, an odd width just above the threshold, and
// one just below it. Outputs are sums of thousands of terms: within 1e-4 relative to the largest.
const bigShapes: Array<[number, number, number]> = [
  [30, 16384, 256],
  [1, 16384, 256],
  [7, 4099, 257],
  [9, 4095, 255],
];
for (const [build, suffix] of builds) for (const [batch, inSize, outSize] of bigShapes) {
  test(`dense layer ${batch}x${inSize} -> ${outSize} + ReLU, inputs 50% zeros: forward and gradients equal the cpu backend${suffix}`, () => {
    const next = mulberry32(9 + batch * 1000 + inSize * 10 + outSize);
    const x = values(batch * inSize, 0.5, next).map(Math.abs);
    checkDense(build, batch, inSize, outSize, true, x, next, 'dense', true);
  });
}

for (const [build, suffix] of builds) for (const [batch, inSize, outSize] of shapes) {
  for (const relu of [true, false]) {
    test(`sparse (CSR, feature-major) layer ${batch}x${inSize} -> ${outSize}${relu ? ' + ReLU below' : ''}: forward and gradients equal the cpu backend on the masked kernel${suffix}`, () => {
      const next = mulberry32(7 + batch * 1000 + inSize * 10 + outSize + (relu ? 1 : 0));
      const x = values(batch * inSize, 0.5, next);
      const w = values(inSize * outSize, 0.8, next);
      const bias = relu ? values(outSize, 0, next) : null;
      const dz = values(batch * outSize, 0.2, next);
      const row = new Int32Array(inSize + 1);
      const col: number[] = [];
      const val: number[] = [];
      for (let i = 0; i < inSize; i++) {
        for (let j = 0; j < outSize; j++) {
          if (w[i * outSize + j] === 0) continue;
          col.push(j);
          val.push(w[i * outSize + j]!);
        }
        row[i + 1] = col.length;
      }
      const nnz = col.length;
      const lanes = (batch + 3) & ~3;
      const mem = kernels(build);
      const ptr = {
        x: mem.alloc(x.length),
        xT: mem.alloc(lanes * inSize),
        row: mem.alloc(inSize + 1),
        col: mem.alloc(nnz),
        val: mem.alloc(nnz),
        b: bias ? mem.alloc(outSize) : 0,
        outT: mem.alloc(lanes * outSize),
        out: mem.alloc(batch * outSize),
        dz: mem.alloc(dz.length),
        dzT: mem.alloc(lanes * outSize),
        gval: mem.alloc(nnz),
        db: mem.alloc(outSize),
        daT: mem.alloc(lanes * inSize),
        da: mem.alloc(x.length),
      };
      mem.f32(ptr.x, x.length).set(x);
      mem.i32(ptr.row, inSize + 1).set(row);
      mem.i32(ptr.col, nnz).set(col);
      mem.f32(ptr.val, nnz).set(val);
      if (bias) mem.f32(ptr.b, outSize).set(bias);
      mem.f32(ptr.dz, dz.length).set(dz);
      // Lanes past the batch hold garbage on the way in: the kernels must zero or ignore them.
      mem.f32(ptr.xT, lanes * inSize).fill(7);
      mem.f32(ptr.dzT, lanes * outSize).fill(7);
      mem.k.to_feature_major(ptr.x, batch, inSize, ptr.xT, lanes);
      mem.k.csr_forward(ptr.xT, lanes, inSize, ptr.row, ptr.col, ptr.val, ptr.b, ptr.outT, outSize, relu ? 1 : 0);
      mem.k.from_feature_major(ptr.outT, batch, outSize, ptr.out, lanes);
      mem.k.to_feature_major(ptr.dz, batch, outSize, ptr.dzT, lanes);
      mem.k.csr_backward(ptr.xT, lanes, inSize, ptr.row, ptr.col, ptr.val, ptr.dzT, outSize, ptr.gval, ptr.db, ptr.daT, relu ? 1 : 0);
      mem.k.from_feature_major(ptr.daT, batch, inSize, ptr.da, lanes);

      const [out, dw, db, da] = reference(x, w, bias, dz, batch, inSize, outSize, relu);
      const gval = mem.f32(ptr.gval, nnz);
      const expectedG = new Float32Array(nnz);
      for (let i = 0, s = 0; i < inSize; i++) for (; s < row[i + 1]!; s++) expectedG[s] = dw![i * outSize + col[s]!]!;
      assertClose(mem.f32(ptr.out, batch * outSize), out!, 'forward');
      assertClose(gval, expectedG, 'survivor gradients');
      assertClose(mem.f32(ptr.db, outSize), db!, 'bias gradient');
      assertClose(mem.f32(ptr.da, x.length), da!, 'input gradient');
    });
  }
}

for (const [build, suffix] of builds) test(`adam and sgd kernels follow the TF.js update rules and keep masked weights at zero${suffix}`, () => {
  const n = 37;
  const next = mulberry32(5);
  const p0 = values(n, 0, next);
  const g = values(n, 0, next);
  const mask = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : 1));
  for (let i = 0; i < n; i++) p0[i]! *= mask[i]!;
  const mem = kernels(build);
  const ptr = { p: mem.alloc(n), g: mem.alloc(n), m: mem.alloc(n), v: mem.alloc(n), mask: mem.alloc(n) };
  mem.f32(ptr.p, n).set(p0);
  mem.f32(ptr.g, n).set(g);
  mem.f32(ptr.mask, n).set(mask);
  const lr = 0.01;
  // Two Adam steps with the same gradient, against tf.train.adam.
  mem.k.adam(ptr.p, ptr.g, ptr.m, ptr.v, ptr.mask, n, lr, 0.9, 0.999, 1e-7, 1 - 0.9, 1 - 0.999);
  mem.k.adam(ptr.p, ptr.g, ptr.m, ptr.v, ptr.mask, n, lr, 0.9, 0.999, 1e-7, 1 - 0.81, 1 - 0.999 * 0.999);
  const v = tf.variable(tf.tensor1d(p0));
  const opt = tf.train.adam(lr, 0.9, 0.999, 1e-7);
  const masked = tf.tensor1d(g).mul(tf.tensor1d(mask));
  for (let s = 0; s < 2; s++) opt.applyGradients([{ name: v.name, tensor: masked }]);
  const got = mem.f32(ptr.p, n);
  assertClose(got, v.dataSync() as Float32Array, 'adam');
  for (let i = 0; i < n; i += 3) assert.ok(got[i] === 0, `masked weight ${i} moved to ${got[i]}`);
  // Momentum: m = 0.9 m + g; p -= lr m, twice.
  mem.f32(ptr.p, n).set(p0);
  mem.f32(ptr.m, n).fill(0);
  mem.k.sgd(ptr.p, ptr.g, ptr.m, 0, n, lr, 0.9);
  mem.k.sgd(ptr.p, ptr.g, ptr.m, 0, n, lr, 0.9);
  const expected = p0.map((p, i) => p - lr * g[i]! - lr * (0.9 * g[i]! + g[i]!));
  assertClose(mem.f32(ptr.p, n), expected, 'momentum');
  tf.dispose([v, masked]);
  opt.dispose();
});
