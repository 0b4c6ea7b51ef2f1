// The WebAssembly SIMD Conv2D kernels (src/runtime/simd/cnn/conv.c, wrapped
// by src/engine/training/cnn/kernels/conv.ts) compute what TF.js's `cpu`
// backend computes for a conv or depthwise conv layer: the forward pass with
// bias and ReLU fused, the weight and bias gradients, and the input gradient
// with the input's ReLU fused; on odd sizes, strides 1 and 2, 'same' and
// 'valid' padding, 1x1 kernels and batch 1, with inputs ~50% zero and output
// gradients ~75% zero (the zeros the kernels skip); in the build the engine
// runs (relaxed SIMD's fused multiply-adds where Node takes them) and in the
// plain-SIMD fallback. Also: the embedded binary was built from the
// committed sources.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { CnnKernels, cnnBuild, cnnBuildInUse } from '../../src/runtime/simd/cnn-kernels.js';
import { convForward, convGradInput, convGradWeights, convScratchFloats, convShape, type ConvShape } from '../../src/engine/training/cnn/kernels/conv.js';
import { assertClose, randomValues } from '../fixtures/close.js';
import { mulberry32 } from '../../src/engine/rng.js';

before(async () => {
  await tf.setBackend('cpu');
});

// The embedded binary's hash (cnn.c, cnn/ and the files it includes from outside) is checked in cnn-layers.test.ts.

interface Case {
  n: number;
  input: [number, number, number];
  filters: number;
  kernel: [number, number];
  strides: [number, number];
  padding: 'same' | 'valid';
  depthwise?: boolean;
  /** Fraction of zero inputs (default: 0.5 with ReLU, else 0). */
  xZeros?: number;
  /** Fraction of zero output gradients (default: 0.75 with ReLU, else 0.1). */
  doutZeros?: number;
}

/** The cpu backend's layer: act(conv(x, w) + b), and dW, db, dX of sum(conv(x, w) + b) * dout, dX masked by x > 0 if `relu`. */
function reference(c: Case, s: ConvShape, x: Float32Array, w: Float32Array, b: Float32Array, dout: Float32Array, relu: boolean): Float32Array[] {
  return tf.tidy(() => {
    const X = tf.tensor4d(x, [c.n, ...c.input]);
    const Wt = tf.tensor4d(w, [s.KH, s.KW, s.C, s.depthwise ? 1 : s.O]);
    const B = tf.tensor1d(b);
    const D = tf.tensor4d(dout, [c.n, s.OH, s.OW, s.O]);
    const conv = (xx: tf.Tensor4D, ww: tf.Tensor4D): tf.Tensor4D =>
      s.depthwise ? tf.depthwiseConv2d(xx, ww, c.strides, c.padding) : tf.conv2d(xx, ww, c.strides, c.padding);
    const f = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor): tf.Tensor => conv(xx as tf.Tensor4D, ww as tf.Tensor4D).add(bb);
    let y = f(X, Wt, B);
    if (relu) y = y.relu();
    const [dx, dw, db] = tf.grads(f)([X, Wt, B], D);
    const dxm = relu ? dx!.mul(X.greater(0).toFloat()) : dx!;
    return [y, dw!, db!, dxm].map((t) => t.dataSync() as Float32Array);
  });
}

const cases: Case[] = [
  { n: 2, input: [8, 8, 16], filters: 16, kernel: [3, 3], strides: [1, 1], padding: 'same' },
  { n: 1, input: [7, 9, 5], filters: 7, kernel: [3, 3], strides: [1, 1], padding: 'same' },
  { n: 3, input: [9, 7, 3], filters: 37, kernel: [3, 3], strides: [2, 2], padding: 'same' },
  { n: 2, input: [10, 10, 6], filters: 11, kernel: [3, 3], strides: [2, 2], padding: 'valid' },
  { n: 2, input: [9, 8, 13], filters: 66, kernel: [3, 3], strides: [1, 1], padding: 'valid' },
  { n: 2, input: [8, 8, 16], filters: 32, kernel: [1, 1], strides: [2, 2], padding: 'same' },
  { n: 1, input: [5, 6, 9], filters: 3, kernel: [1, 1], strides: [1, 1], padding: 'valid' },
  { n: 2, input: [12, 11, 1], filters: 6, kernel: [5, 5], strides: [1, 1], padding: 'valid' },
  { n: 2, input: [11, 10, 4], filters: 5, kernel: [5, 3], strides: [1, 2], padding: 'same' },
  { n: 1, input: [8, 8, 64], filters: 64, kernel: [3, 3], strides: [1, 1], padding: 'same' },
  { n: 1, input: [6, 6, 40], filters: 130, kernel: [3, 3], strides: [1, 1], padding: 'same' },
  // A kernel big enough (O * KH * KW * C > 65536) that the input gradient splits C into blocks of 32, with a tail of 8.
  { n: 1, input: [7, 6, 72], filters: 110, kernel: [3, 3], strides: [2, 1], padding: 'same' },
  // MNIST-like first layer (80% zero pixels): the weight gradient skips zero inputs rather than zero gradients.
  { n: 2, input: [14, 13, 1], filters: 40, kernel: [3, 3], strides: [1, 1], padding: 'same', xZeros: 0.8 },
  // Inputs mostly zero, stride 1, 8+ channels in and 16 - 64 out: the forward pass walks lists of nonzero inputs (elsewhere a dense tile).
  { n: 2, input: [8, 9, 16], filters: 24, kernel: [3, 3], strides: [1, 1], padding: 'same', xZeros: 0.7 },
  { n: 1, input: [9, 7, 9], filters: 40, kernel: [3, 3], strides: [1, 1], padding: 'valid', xZeros: 0.8 },
  // Output gradients without zeros (out of a BatchNorm, as in ResNets): both gradients take the dense register-blocked
  // GEMMs, the input gradient at stride 1 as a forward conv of the output gradient with the kernel turned 180 degrees.
  { n: 3, input: [10, 9, 16], filters: 16, kernel: [3, 3], strides: [1, 1], padding: 'same', doutZeros: 0 },
  { n: 1, input: [7, 5, 13], filters: 18, kernel: [3, 3], strides: [1, 1], padding: 'same', doutZeros: 0 },
  { n: 2, input: [9, 8, 7], filters: 5, kernel: [3, 3], strides: [1, 1], padding: 'valid', doutZeros: 0 },
  { n: 1, input: [6, 7, 3], filters: 21, kernel: [5, 3], strides: [1, 1], padding: 'same', doutZeros: 0 },
  { n: 2, input: [9, 7, 16], filters: 32, kernel: [3, 3], strides: [2, 2], padding: 'same', doutZeros: 0 },
  { n: 2, input: [8, 8, 16], filters: 32, kernel: [1, 1], strides: [2, 2], padding: 'same', doutZeros: 0 },
  { n: 2, input: [9, 9, 8], filters: 0, kernel: [3, 3], strides: [1, 1], padding: 'same', depthwise: true },
  { n: 1, input: [7, 8, 5], filters: 0, kernel: [3, 3], strides: [2, 2], padding: 'same', depthwise: true },
  { n: 2, input: [8, 7, 6], filters: 0, kernel: [5, 5], strides: [2, 1], padding: 'valid', depthwise: true },
];

test('the engine runs the relaxed-SIMD build on this Node (fused multiply-adds), the plain build with TICKETSMITH_RELAXED_SIMD=0, and both compile', () => {
  assert.ok(cnnBuild('plain'));
  assert.ok(cnnBuild('relaxed'), 'Node 20+ compiles relaxed SIMD once --experimental-wasm-relaxed-simd is set');
  const before = process.env.TICKETSMITH_RELAXED_SIMD;
  try {
    // Whatever the environment running the tests says.
    delete process.env.TICKETSMITH_RELAXED_SIMD;
    assert.equal(cnnBuildInUse(), 'relaxed');
    process.env.TICKETSMITH_RELAXED_SIMD = '0';
    assert.equal(cnnBuildInUse(), 'plain');
  } finally {
    if (before === undefined) delete process.env.TICKETSMITH_RELAXED_SIMD;
    else process.env.TICKETSMITH_RELAXED_SIMD = before;
  }
});

for (const [build, suffix] of [['default', ''], ['plain', ' (plain SIMD build)']] as const) {
  for (const c of cases) {
    for (const relu of [false, true]) {
      const name = `${c.depthwise ? 'depthwise ' : ''}conv ${c.n}x${c.input.join('x')} ${c.kernel.join('x')}${c.depthwise ? '' : ` -> ${c.filters}`} stride ${c.strides.join('x')} ${c.padding}${relu ? ' + ReLU' : ''}`;
      test(`${name}: forward and gradients equal the cpu backend${suffix}`, () => {
        const s = convShape(c.input, c);
        const next = mulberry32(c.n * 7919 + c.input[0] * 131 + c.input[2] * 17 + c.filters + s.KH + s.sw + (relu ? 1 : 0));
        const inputs = c.n * s.H * s.W * s.C;
        const outputs = c.n * s.OH * s.OW * s.O;
        const weights = s.KH * s.KW * s.C * (s.depthwise ? 1 : s.O);
        // A ReLU layer's input is a ReLU output (~50% zero); its output gradient has been through a max-pool (~75% zero).
        const x = randomValues(inputs, c.xZeros ?? (relu ? 0.5 : 0), next);
        const w = randomValues(weights, 0, next);
        const b = randomValues(s.O, 0, next);
        const dout = randomValues(outputs, c.doutZeros ?? (relu ? 0.75 : 0.1), next);
        const mem = build === 'plain' ? new CnnKernels(cnnBuild('plain')!) : new CnnKernels();
        const scratchFloats = convScratchFloats(s, c.n);
        assert.equal(scratchFloats, mem.k.conv_scratch_floats(s.H, s.W, s.C, s.KH, s.KW, s.O, s.sh, s.sw, s.pt, s.pl, s.OH, s.OW, s.depthwise ? 1 : 0));
        const p = {
          x: mem.alloc(inputs), w: mem.alloc(weights), b: mem.alloc(s.O), out: mem.alloc(outputs), dout: mem.alloc(outputs),
          dw: mem.alloc(weights), db: mem.alloc(s.O), dx: mem.alloc(inputs), scratch: mem.alloc(scratchFloats),
        };
        mem.f32(p.x, inputs).set(x);
        mem.f32(p.w, weights).set(w);
        mem.f32(p.b, s.O).set(b);
        mem.f32(p.dout, outputs).set(dout);
        // Stale values in the outputs and scratch must not leak into the results.
        mem.f32(p.dw, weights).fill(7);
        mem.f32(p.db, s.O).fill(7);
        mem.f32(p.dx, inputs).fill(7);
        mem.f32(p.scratch, scratchFloats).fill(NaN);
        convForward(mem.k, s, c.n, p.x, p.w, p.b, p.out, relu, p.scratch);
        mem.f32(p.scratch, scratchFloats).fill(NaN);
        convGradWeights(mem.k, s, c.n, p.x, p.dout, p.dw, p.db, p.scratch);
        mem.f32(p.scratch, scratchFloats).fill(NaN);
        convGradInput(mem.k, s, c.n, p.dout, p.w, p.dx, relu ? p.x : 0, p.scratch);

        const [out, dw, db, dx] = reference(c, s, x, w, b, dout, relu);
        assertClose(mem.f32(p.out, outputs), out!, 'forward');
        assertClose(mem.f32(p.dw, weights), dw!, 'weight gradient');
        assertClose(mem.f32(p.db, s.O), db!, 'bias gradient');
        assertClose(mem.f32(p.dx, inputs), dx!, 'input gradient');
      });
    }
  }
}

test('conv geometry follows TF: same-padding splits the total with the smaller half first, valid needs the window to fit', () => {
  assert.deepEqual(convShape([32, 32, 3], { filters: 64, kernel: [3, 3], strides: [1, 1], padding: 'same' }),
    { H: 32, W: 32, C: 3, KH: 3, KW: 3, O: 64, sh: 1, sw: 1, pt: 1, pl: 1, OH: 32, OW: 32, depthwise: false });
  // 8 wide, stride 2, 3x3: total pad max(3*2 + 3 - 8, 0) = 1, so 0 before and 1 after.
  const s = convShape([8, 8, 16], { filters: 32, kernel: [3, 3], strides: [2, 2], padding: 'same' });
  assert.deepEqual([s.OH, s.OW, s.pt, s.pl], [4, 4, 0, 0]);
  const v = convShape([10, 9, 6], { filters: 11, kernel: [3, 3], strides: [2, 2], padding: 'valid' });
  assert.deepEqual([v.OH, v.OW, v.pt, v.pl], [4, 4, 0, 0]);
  assert.equal(convShape([7, 7, 5], { filters: 9, kernel: [3, 3], strides: [1, 1], padding: 'same', depthwise: true }).O, 5);
  assert.throws(() => convShape([2, 2, 1], { filters: 1, kernel: [3, 3], strides: [1, 1], padding: 'valid' }));
});
