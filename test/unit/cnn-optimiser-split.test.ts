// The conv engine's optimiser update runs on every thread, each on its share
// of every tensor (engine.ts's OptimiserPlan): the shares cover each float
// exactly once, and the update they make together is the one-table update
// (cnn/optim.c summing the threads' gradients) to the bit, masks included;
// an engine's update on its worker threads equals its shares run in turn.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { cnnEngine, compileGraph } from '../../src/engine/training/cnn/index.js';
import { buildState, optimiser, optimiserShare, runOptimiserShare } from '../../src/engine/training/cnn/engine.js';
import { adamAll, paramTable, paramTableInts, sgdAll } from '../../src/engine/training/cnn/kernels/layers.js';
import { getWeightMap } from '../../src/engine/models/inspect.js';
import { benchMask } from '../../src/engine/training/bench.js';
import { mulberry32 } from '../../src/engine/rng.js';
import { keepKernels } from '../../src/runtime/simd/cnn-kernels.js';
import type { TrainConfig } from '../../src/engine/training/config.js';

before(async () => {
  await tf.setBackend('cpu');
});

test('the threads\' shares of a tensor cover each float once, in runs starting at multiples of 16', () => {
  for (const threads of [1, 2, 3, 5]) {
    for (const n of [0, 1, 3, 4, 5, 7, 8, 9, 17, 64, 1001]) {
      let next = 0;
      for (let t = 0; t < threads; t++) {
        const { start, end } = optimiserShare(n, threads, t);
        assert.equal(start, next, `n ${n}, ${threads} threads: thread ${t} starts where thread ${t - 1} ended`);
        assert.ok(end >= start && end <= n);
        assert.ok(start === n || start % 16 === 0, `n ${n}, thread ${t}: start ${start}`);
        next = end;
      }
      assert.equal(next, n, `n ${n}, ${threads} threads: the shares reach the end`);
    }
  }
});

/** A small conv net, its graph, weights and a 50% mask. Odd sizes: tensors of 3, 21 and 7 * 13 floats split unevenly over 3 threads. */
function smallNet() {
  const L = tf.layers;
  const model = tf.sequential({ layers: [
    L.conv2d({ inputShape: [5, 5, 3], filters: 7, kernelSize: 1, activation: 'relu' }),
    L.flatten(), L.dense({ units: 13, activation: 'relu' }), L.dense({ units: 3 }),
  ] });
  const g = compileGraph(model);
  if (typeof g === 'string') throw new Error(g);
  return { model, g, weights: getWeightMap(model), mask: benchMask(model, 0.5) };
}

for (const optimizer of ['adam', 'momentum', 'sgd'] as const) {
  test(`${optimizer}: the threads' shares of an update, run one after another, equal the one-table update to the bit, pruned weights staying 0`, () => {
    const { model, g, weights, mask } = smallNet();
    const threads = 3;
    const state = buildState(g, weights, mask, 6, threads, optimizer === 'adam');
    try {
      const trainable = [...state.params.values()].flat().filter((p) => p.trainable);
      const next = mulberry32(11);
      // Every thread's gradients random; Adam's moments and momentum nonzero.
      for (const p of trainable) {
        for (let t = 0; t < threads; t++) state.mem.f32(p.g[t]!, p.count).forEach((_, i, a) => (a[i] = next() - 0.5));
        if (p.m) state.mem.f32(p.m, p.count).forEach((_, i, a) => (a[i] = (next() - 0.5) * 0.01));
        if (p.v) state.mem.f32(p.v, p.count).forEach((_, i, a) => (a[i] = next() * 0.01));
        // As in training, a pruned weight's moments are 0 (only its gradient is not).
        if (p.mask) {
          const m = state.mem.f32(p.mask, p.count);
          for (const x of [p.m, p.v]) if (x) state.mem.f32(x, p.count).forEach((_, i, a) => m[i] === 0 && (a[i] = 0));
        }
      }
      const snapshot = () => trainable.flatMap((p) => [p.p, p.m, p.v].filter((x) => x !== 0).map((x) => Float32Array.from(state.mem.f32(x, p.count))));
      const restore = (s: Float32Array[]) => {
        let i = 0;
        for (const p of trainable) for (const x of [p.p, p.m, p.v].filter((y) => y !== 0)) state.mem.f32(x, p.count).set(s[i++]!);
      };
      const start = snapshot();
      const cfg = { optimizer, momentum: 0.9 };
      const opt = optimiser(state, cfg);
      assert.equal(opt.plan.tables.length, threads);
      // Two steps (Adam's bias corrections move), each thread's share in turn.
      const steps = [opt.next(0.01), opt.next(0.01)];
      for (const s of steps) for (let t = threads - 1; t >= 0; t--) runOptimiserShare(state.k, opt.plan, t, s);
      const split = snapshot();
      // The same two steps over one table of whole tensors.
      restore(start);
      const table = state.mem.alloc(paramTableInts(trainable.length));
      const rows = paramTable(state.mem, table, trainable.map((p) => ({ p: p.p, g: p.g[0]!, m: p.m, v: p.v, mask: p.mask, n: p.count })));
      const whole = { threads, stride: state.gradStride };
      for (const s of steps) {
        if (optimizer === 'adam') adamAll(state.k, table, rows, s.lr, 0.9, 0.999, 1e-7, s.c1, s.c2, whole);
        else sgdAll(state.k, table, rows, s.lr, optimizer === 'momentum' ? 0.9 : 0, whole);
      }
      const one = snapshot();
      assert.equal(split.length, one.length);
      split.forEach((a, i) => assert.ok(Buffer.from(a.buffer).equals(Buffer.from(one[i]!.buffer)), `tensor part ${i} differs`));
      // The update changed something, and every pruned weight is still exactly 0.
      assert.ok(split.some((a, i) => !Buffer.from(a.buffer).equals(Buffer.from(start[i]!.buffer))));
      let pruned = 0;
      for (const p of trainable) {
        if (!p.mask) continue;
        const m = state.mem.f32(p.mask, p.count);
        const w = state.mem.f32(p.p, p.count);
        for (let i = 0; i < p.count; i++) if (m[i] === 0) (pruned++, assert.ok(w[i] === 0, `${p.key}[${i}] pruned but ${w[i]}`));
      }
      assert.ok(pruned > 0, 'the mask pruned some weights');
    } finally {
      keepKernels(state.mem);
      model.dispose();
    }
  });
}

test('an engine of 3 threads updates on its worker threads exactly as its shares run in turn on one thread', () => {
  const { model, g, weights, mask } = smallNet();
  const cfg: TrainConfig = { optimizer: 'adam', learningRate: 0.01, momentum: 0, lrSchedule: 'constant', warmupIterations: 0, batchSize: 6, iterations: 2, startIteration: 0, evalEvery: 2, seed: 1 };
  const engine = cnnEngine(g, weights, mask, cfg, 6, 3);
  // The reference: the same state in another memory, its shares run in turn on this thread.
  const ref = buildState(g, weights, mask, 6, 3, true);
  const refOpt = optimiser(ref, cfg);
  try {
    const trained = (st: typeof ref | typeof engine.state) => [...st.params.values()].flat().filter((p) => p.trainable);
    const a = trained(engine.state);
    const b = trained(ref);
    assert.equal(a.length, b.length);
    for (let step = 0; step < 2; step++) {
      const next = mulberry32(20 + step);
      a.forEach((p, i) => {
        for (let t = 0; t < 3; t++) {
          const grads = Float32Array.from({ length: p.count }, () => next() - 0.5);
          engine.state.mem.f32(p.g[t]!, p.count).set(grads);
          ref.mem.f32(b[i]!.g[t]!, p.count).set(grads);
        }
      });
      engine.update(0.01);
      const s = refOpt.next(0.01);
      for (let t = 0; t < 3; t++) runOptimiserShare(ref.k, refOpt.plan, t, s);
    }
    a.forEach((p, i) => {
      for (const f of ['p', 'm', 'v'] as const) {
        const x = engine.state.mem.f32(p[f], p.count);
        const y = ref.mem.f32(b[i]![f], p.count);
        assert.ok(Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength)), `${p.key} ${f} differs`);
      }
    });
    // Each thread's share of the largest tensor moved some unpruned weight.
    const big = a.reduce((x, y) => (y.count > x.count ? y : x));
    const w = engine.state.mem.f32(big.p, big.count);
    const m = mask[big.key]!;
    const w0 = weights[big.key]!.values;
    for (let t = 0; t < 3; t++) {
      const { start, end } = optimiserShare(big.count, 3, t);
      let moved = 0;
      for (let j = start; j < end; j++) if (m[j] !== 0 && w[j] !== w0[j]) moved++;
      assert.ok(moved > 0, `${big.key}: thread ${t}'s share [${start}, ${end}) did not move`);
    }
  } finally {
    engine.dispose?.();
    keepKernels(ref.mem);
    model.dispose();
  }
});
