// Our Conv2D kernels (src/runtime/simd/cnn/conv.c) against TF.js's wasm
// backend (1 thread, with Ticketsmith's kernel overrides, as training uses
// it) on Conv-2's two conv layers: a batch of 32x32 images, 3x3 stride 1
// 'same', 3 -> 64 on dense inputs, then 64 -> 64 on ReLU outputs (50% zero)
// with a max-pool's output gradient (75% zero). Milliseconds per forward
// (bias + ReLU fused), weight gradient (with bias) and input gradient (the
// input's ReLU fused), the ratio TF.js / ours (> 1: ours faster) and GFLOP/s
// counted as the dense convolution (2 * n * OH * OW * KH * KW * C * O).
//
// --more adds ResNet-20's shapes (16/32/64 channels, stride 2, 1x1) on ReLU
// inputs and gradients without zeros (out of a BatchNorm), and Conv-6's
// 256 -> 256 on 8x8 with a 75%-zero gradient.
//
// --builds compares the kernels' two builds instead of ours with TF.js: the
// plain-SIMD build and the relaxed-SIMD one (fused multiply-adds), on one
// memory, interleaved, best of the CPU milliseconds of each (steadier than
// wall time on a shared machine), and their largest relative difference.
//
//   npx tsx scripts/bench-conv-kernels.ts [--batch 60] [--reps 2] [--more] [--builds]
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { CnnKernels, attach, cnnBuild, type CnnExports } from '../src/runtime/simd/cnn-kernels.js';
import { convForward, convGradInput, convGradWeights, convScratchFloats, convShape } from '../src/engine/training/cnn/kernels/conv.js';
import { mulberry32 } from '../src/engine/rng.js';

const args = process.argv.slice(2);
const num = (name: string, def: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const batch = num('batch', 60);
const reps = num('reps', 2);

function values(n: number, zeros: number, next: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() < zeros ? 0 : next() * 2 - 1;
  return out;
}

/** Best of `reps` timed runs after one warm-up, in ms. */
function time(f: () => void): number {
  f();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    f();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

interface Layer { name: string; input: [number, number, number]; filters: number; k: number; stride: number; xZeros: number; doutZeros?: number }
const layers: Layer[] = [
  { name: 'conv1 3->64', input: [32, 32, 3], filters: 64, k: 3, stride: 1, xZeros: 0 },
  { name: 'conv2 64->64', input: [32, 32, 64], filters: 64, k: 3, stride: 1, xZeros: 0.5 },
];
if (args.includes('--more')) {
  layers.push(
    { name: 'r20 16->16', input: [32, 32, 16], filters: 16, k: 3, stride: 1, xZeros: 0.5, doutZeros: 0 },
    { name: 'r20 16->32/2', input: [32, 32, 16], filters: 32, k: 3, stride: 2, xZeros: 0.5, doutZeros: 0 },
    { name: 'r20 1x1 /2', input: [32, 32, 16], filters: 32, k: 1, stride: 2, xZeros: 0.5, doutZeros: 0 },
    { name: 'r20 32->32', input: [16, 16, 32], filters: 32, k: 3, stride: 1, xZeros: 0.5, doutZeros: 0 },
    { name: 'r20 64->64', input: [8, 8, 64], filters: 64, k: 3, stride: 1, xZeros: 0.5, doutZeros: 0 },
    { name: 'c6 256->256', input: [8, 8, 256], filters: 256, k: 3, stride: 1, xZeros: 0.5 },
  );
}

/** CPU milliseconds of the best of `reps` runs after one warm-up (this process runs nothing else meanwhile). */
function cpuTime(f: () => void): number {
  f();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    f();
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1000);
  }
  return best;
}

if (args.includes('--builds')) {
  console.log(`batch ${batch}, best of ${reps} (CPU ms); the kernels' plain-SIMD build vs the relaxed-SIMD build`);
  console.log('layer         pass      plain ms   relaxed ms   plain/relaxed   max rel diff');
  let plainSum = 0, relaxedSum = 0;
  for (const l of layers) {
    const s = convShape(l.input, { filters: l.filters, kernel: [l.k, l.k], strides: [l.stride, l.stride], padding: 'same' });
    const next = mulberry32(1);
    const inputs = batch * s.H * s.W * s.C, outputs = batch * s.OH * s.OW * s.O, weights = l.k * l.k * s.C * s.O;
    const mem = new CnnKernels(cnnBuild('plain')!);
    const relaxed = attach(mem.memory, mem.allocStack(), cnnBuild('relaxed')!);
    const p = {
      x: mem.alloc(inputs), w: mem.alloc(weights), b: mem.alloc(s.O), out: mem.alloc(outputs), dout: mem.alloc(outputs),
      dw: mem.alloc(weights), db: mem.alloc(s.O), dx: mem.alloc(inputs), scratch: mem.alloc(convScratchFloats(s, batch)),
    };
    mem.f32(p.x, inputs).set(values(inputs, l.xZeros, next));
    mem.f32(p.w, weights).set(values(weights, 0, next));
    mem.f32(p.b, s.O).set(values(s.O, 0, next));
    mem.f32(p.dout, outputs).set(values(outputs, l.doutZeros ?? 0.75, next));
    const passes: Array<[string, (k: CnnExports) => void, number, number]> = [
      ['forward', (k) => convForward(k, s, batch, p.x, p.w, p.b, p.out, true, p.scratch), p.out, outputs],
      ['dW + db', (k) => convGradWeights(k, s, batch, p.x, p.dout, p.dw, p.db, p.scratch), p.dw, weights],
      ['dX', (k) => convGradInput(k, s, batch, p.dout, p.w, p.dx, l.xZeros > 0 ? p.x : 0, p.scratch), p.dx, inputs],
    ];
    for (const [pass, run, at, count] of passes) {
      run(mem.k);
      const a = Float32Array.from(mem.f32(at, count));
      run(relaxed);
      const b = mem.f32(at, count);
      let diff = 0, most = 0;
      for (let i = 0; i < count; i++) {
        diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
        most = Math.max(most, Math.abs(a[i]!));
      }
      let plain = Infinity, fused = Infinity;
      for (let r = 0; r < 3; r++) {
        plain = Math.min(plain, cpuTime(() => run(mem.k)));
        fused = Math.min(fused, cpuTime(() => run(relaxed)));
      }
      plainSum += plain;
      relaxedSum += fused;
      console.log(`${l.name.padEnd(13)} ${pass.padEnd(8)} ${plain.toFixed(1).padStart(9)} ${fused.toFixed(1).padStart(12)} ${(plain / fused).toFixed(2).padStart(14)}x ${(diff / Math.max(most, 1e-30)).toExponential(1).padStart(14)}`);
    }
  }
  console.log(`all passes: plain ${plainSum.toFixed(1)} ms, relaxed ${relaxedSum.toFixed(1)} ms, ${(plainSum / relaxedSum).toFixed(2)}x`);
  process.exit(0);
}

await initBackend({ prefer: 'wasm', wasmThreads: 1 });
console.log(`batch ${batch}, best of ${reps}; TF.js ${tf.getBackend()} backend, 1 thread`);
console.log('layer         pass      ours ms   tfjs ms   tfjs/ours   ours GFLOP/s   tfjs GFLOP/s');
for (const l of layers) {
  const s = convShape(l.input, { filters: l.filters, kernel: [l.k, l.k], strides: [l.stride, l.stride], padding: 'same' });
  const next = mulberry32(1);
  const inputs = batch * s.H * s.W * s.C, outputs = batch * s.OH * s.OW * s.O, weights = l.k * l.k * s.C * s.O;
  const x = values(inputs, l.xZeros, next);
  const w = values(weights, 0, next);
  const b = values(s.O, 0, next);
  const dout = values(outputs, l.doutZeros ?? 0.75, next);
  const mem = new CnnKernels();
  const p = {
    x: mem.alloc(inputs), w: mem.alloc(weights), b: mem.alloc(s.O), out: mem.alloc(outputs), dout: mem.alloc(outputs),
    dw: mem.alloc(weights), db: mem.alloc(s.O), dx: mem.alloc(inputs), scratch: mem.alloc(convScratchFloats(s, batch)),
  };
  mem.f32(p.x, inputs).set(x);
  mem.f32(p.w, weights).set(w);
  mem.f32(p.b, s.O).set(b);
  mem.f32(p.dout, outputs).set(dout);
  const X = tf.tensor4d(x, [batch, s.H, s.W, s.C]);
  const Wt = tf.tensor4d(w, [l.k, l.k, s.C, s.O]);
  const B = tf.tensor1d(b);
  const D = tf.tensor4d(dout, [batch, s.OH, s.OW, s.O]);
  const run = (f: () => tf.Tensor | tf.Tensor[]) => () => tf.tidy(() => {
    const r = f();
    for (const t of Array.isArray(r) ? r : [r]) t.dataSync();
  });
  const passes: Array<[string, () => void, () => void]> = [
    ['forward', () => convForward(mem.k, s, batch, p.x, p.w, p.b, p.out, true, p.scratch),
      run(() => tf.fused.conv2d({ x: X, filter: Wt, strides: l.stride, pad: 'same', bias: B, activation: 'relu' }))],
    ['dW + db', () => convGradWeights(mem.k, s, batch, p.x, p.dout, p.dw, p.db, p.scratch),
      run(() => tf.grads((ww: tf.Tensor, bb: tf.Tensor) => tf.conv2d(X, ww as tf.Tensor4D, l.stride, 'same').add(bb))([Wt, B], D))],
    ['dX', () => convGradInput(mem.k, s, batch, p.dout, p.w, p.dx, l.xZeros > 0 ? p.x : 0, p.scratch),
      run(() => {
        const dx = tf.grad((xx: tf.Tensor) => tf.conv2d(xx as tf.Tensor4D, Wt, l.stride, 'same'))(X, D);
        return l.xZeros > 0 ? dx.mul(X.greater(0)) : dx;
      })],
  ];
  const gflop = (2 * batch * s.OH * s.OW * l.k * l.k * s.C * s.O) / 1e9;
  for (const [pass, ours, theirs] of passes) {
    const a = time(ours), t = time(theirs);
    console.log(`${l.name.padEnd(13)} ${pass.padEnd(8)} ${a.toFixed(1).padStart(8)} ${t.toFixed(1).padStart(9)} ${(t / a).toFixed(2).padStart(10)}x ${(gflop / a * 1e3).toFixed(1).padStart(13)} ${(gflop / t * 1e3).toFixed(1).padStart(14)}`);
  }
  tf.dispose([X, Wt, B, D]);
}
