// How the conv-net module's non-conv kernels (engine/training/cnn/kernels/
// layers.ts) compare with TF.js on the same work, in one process: a Conv-2
// (CIFAR shape, batch 60) max pool forward + backward, a ResNet-sized batch
// norm forward + backward in training, global average pooling, and one Adam
// step over Conv-2's parameters (fused table call vs one mlp.c adam call per
// tensor vs tf.train.adam). Prints median milliseconds and ratios; a few
// seconds in all.
//   node --import tsx scripts/bench-cnn-layers.ts [--backend wasm|cpu] [--threads N]
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { CnnKernels } from '../src/runtime/simd/cnn-kernels.js';
import type { MlpExports } from '../src/runtime/simd/mlp-kernels.js';
import { mulberry32 } from '../src/engine/rng.js';
import * as L from '../src/engine/training/cnn/kernels/layers.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

function median(fn: () => void, reps = 9): number {
  fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    fn();
    t.push(performance.now() - s);
  }
  return t.sort((a, b) => a - b)[reps >> 1]!;
}

function random(n: number, next: () => number, relu = false): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = next() * 2 - 1;
    a[i] = relu ? Math.max(v, 0) : v;
  }
  return a;
}

const rows: Array<[string, number, number]> = [];
function row(what: string, ours: number, theirs: number): void {
  rows.push([what, ours, theirs]);
}

async function main(): Promise<void> {
  const info = await initBackend({ prefer: arg('backend', 'wasm'), wasmThreads: Number(arg('threads', '1')) });
  const next = mulberry32(1);
  const mem = new CnnKernels();
  const n = 60;

  // Max pool 2x2 / 2 after Conv-2's second conv: 60 x 32 x 32 x 64, a ReLU output.
  {
    const s = L.poolShape([32, 32, 64], { pool: [2, 2], strides: [2, 2], padding: 'valid' });
    const x = random(n * 32 * 32 * 64, next, true);
    const dout = random(n * L.poolOutFloats(s), next);
    const p = { x: mem.alloc(x.length), out: mem.alloc(dout.length), am: mem.alloc(dout.length), dout: mem.alloc(dout.length), dx: mem.alloc(x.length) };
    mem.f32(p.x, x.length).set(x);
    mem.f32(p.dout, dout.length).set(dout);
    const ours = median(() => {
      L.maxPoolForward(mem.k, s, n, p.x, p.out, p.am);
      L.maxPoolBackward(mem.k, s, n, p.dout, p.am, p.dx, p.x);
    });
    const X = tf.tensor4d(x, [n, 32, 32, 64]);
    const DY = tf.tensor4d(dout, [n, s.OH, s.OW, 64]);
    const theirs = median(() =>
      tf.tidy(() => {
        const g = tf.grad((t) => tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid'))(X, DY);
        g.mul(X.greater(0)).dataSync();
      }),
    );
    row('max pool 2x2 60x32x32x64, forward + backward (ReLU mask)', ours, theirs);
  }

  // Batch norm in training on 60 x 16 x 16 x 32 (ResNet-20's middle stage), fused ReLU.
  {
    const C = 32;
    const count = n * 16 * 16;
    const x = random(count * C, next);
    const dout = random(count * C, next);
    const a = (k: number) => mem.alloc(k);
    const p = { x: a(x.length), out: a(x.length), dout: a(x.length), dx: a(x.length), sum: a(C), sq: a(C), mean: a(C), vr: a(C), inv: a(C), dg: a(C), db: a(C), gamma: a(C), beta: a(C) };
    mem.f32(p.x, x.length).set(x);
    mem.f32(p.dout, x.length).set(dout);
    mem.f32(p.gamma, C).fill(1);
    const ours = median(() => {
      L.bnSums(mem.k, count, C, p.x, p.sum, p.sq);
      L.bnStats(mem.k, C, count, p.sum, p.sq, 1e-3, p.mean, p.vr, p.inv);
      L.bnForwardTrain(mem.k, count, C, p.x, p.mean, p.inv, p.gamma, p.beta, p.out, true);
      L.bnGradSums(mem.k, count, C, p.x, p.dout, p.mean, p.inv, p.dg, p.db);
      L.bnGradInput(mem.k, count, count, C, p.x, p.dout, p.mean, p.inv, p.gamma, p.dg, p.db, p.dx, 0);
    });
    const X = tf.tensor4d(x, [n, 16, 16, C]);
    const DY = tf.tensor4d(dout, [n, 16, 16, C]);
    const G = tf.ones([C]);
    const B = tf.zeros([C]);
    const theirs = median(() =>
      tf.tidy(() => {
        const f = (t: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const m = tf.moments(t, [0, 1, 2]);
          return tf.relu(tf.batchNorm(t, m.mean, m.variance, b, g, 1e-3));
        };
        const gs = tf.grads((t, g, b) => f(t, g, b))([X, G, B], DY);
        for (const g of gs) g.dataSync();
      }),
    );
    row('batch norm 60x16x16x32, training forward + backward', ours, theirs);
  }

  // Global average pooling at ResNet-20's end: 60 x 8 x 8 x 64.
  {
    const x = random(n * 64 * 64, next, true);
    const dout = random(n * 64, next);
    const p = { x: mem.alloc(x.length), out: mem.alloc(n * 64), dout: mem.alloc(n * 64), dx: mem.alloc(x.length) };
    mem.f32(p.x, x.length).set(x);
    mem.f32(p.dout, dout.length).set(dout);
    const ours = median(() => {
      L.globalAvgPoolForward(mem.k, 64, 64, n, p.x, p.out);
      L.globalAvgPoolBackward(mem.k, 64, 64, n, p.dout, p.dx, p.x);
    });
    const X = tf.tensor4d(x, [n, 8, 8, 64]);
    const DY = tf.tensor2d(dout, [n, 64]);
    const theirs = median(() =>
      tf.tidy(() => {
        tf.grad((t) => tf.mean(t, [1, 2]))(X, DY).mul(X.greater(0)).dataSync();
      }),
    );
    row('global average pool 60x8x8x64, forward + backward', ours, theirs);
  }

  // One Adam step over Conv-2's (CIFAR) parameters, two masked.
  {
    const sizes = [3 * 3 * 3 * 64, 64, 3 * 3 * 64 * 64, 64, 16 * 16 * 64 * 256, 256, 256 * 256, 256, 256 * 10, 10];
    const params: L.ParamRow[] = sizes.map((k, i) => {
      const r = { p: mem.alloc(k), g: mem.alloc(k), m: mem.alloc(k), v: mem.alloc(k), mask: i % 2 === 0 && i < 6 ? mem.alloc(k) : 0, n: k };
      mem.f32(r.g, k).set(random(k, next));
      if (r.mask) mem.f32(r.mask, k).fill(1);
      return r;
    });
    const table = mem.alloc(L.paramTableInts(params.length));
    L.paramTable(mem, table, params);
    const fused = median(() => L.adamAll(mem.k, table, params.length, 1e-3, 0.9, 0.999, 1e-7, 0.1, 0.001));
    // cnn.c includes mlp.c, so its adam is exported too.
    const mlp = mem.k as unknown as MlpExports;
    const perTensor = median(() => {
      for (const r of params) mlp.adam(r.p, r.g, r.m, r.v, r.mask, r.n, 1e-3, 0.9, 0.999, 1e-7, 0.1, 0.001);
    });
    const vars = sizes.map((k) => tf.variable(tf.zeros([k])));
    const grads = sizes.map((k) => tf.tensor1d(random(k, next)));
    const opt = tf.train.adam(1e-3, 0.9, 0.999, 1e-7);
    const named = vars.map((v, i) => ({ name: v.name, tensor: grads[i]! }));
    const theirs = median(() => {
      opt.applyGradients(named);
      vars[0]!.dataSync();
    });
    row(`Adam over Conv-2's ${(sizes.reduce((a, b) => a + b, 0) / 1e6).toFixed(2)}M parameters (tf: tf.train.adam)`, fused, theirs);
    row('  the same, fused table call vs one mlp.c adam call per tensor', fused, perTensor);
  }

  console.log(`TF.js backend ${info.name} (${arg('threads', '1')} thread(s)); ours single-threaded; median of 9, ms`);
  console.log('| work | ours | TF.js | speed-up |');
  console.log('|---|---:|---:|---:|');
  for (const [what, ours, theirs] of rows) console.log(`| ${what} | ${ours.toFixed(2)} | ${theirs.toFixed(2)} | ${(theirs / ours).toFixed(2)}x |`);
}

await main();
