// The native TensorFlow backend (@tensorflow/tfjs-node, built by `npm run
// native-backend`; .ci/run builds it before the tests): it is chosen
// automatically, Ticketsmith's overrides on it (Step, the Relu gradient as one
// ReluGrad op, the folded Adam) give what the stock kernels give within 1e-5,
// and a masked conv net trains on it with pruned weights exactly 0. Every test
// is skipped, with the reason, where tfjs-node is not installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/runtime/backend.js';
import { installNativeKernelOverrides, uninstallNativeKernelOverrides } from '../../src/runtime/kernels/native.js';
import { FoldedAdam } from '../../src/engine/training/adam-folded.js';
import { evaluate, tfjsStepper, toTensors } from '../../src/engine/training/tfjs.js';
import { trainModel, type TrainingLoopChoice } from '../../src/engine/training/train.js';
import { computeThreads, defaultWasmThreads } from '../../src/runtime/backend.js';
import type { Dataset, Split } from '../../src/engine/types.js';

const PKG = '@tensorflow/tfjs-node';
const skip = await import(PKG).then(
  () => false as const,
  (err: Error) => `${PKG} is not installed (npm run native-backend builds it): ${err.message.split('\n')[0]}`,
);
if (skip === false) await initBackend({ prefer: 'tensorflow' });

/** Seeded uniform [-1, 1) values. */
function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** Runs `f` with the stock kernels, then with the overrides; returns both results as arrays. */
function stockAndOurs(f: () => tf.Tensor[]): [Float32Array[], Float32Array[]] {
  const run = () => tf.tidy(f).map((t) => { const d = t.dataSync() as Float32Array; t.dispose(); return d; });
  uninstallNativeKernelOverrides();
  let stock: Float32Array[];
  try {
    stock = run();
  } finally {
    installNativeKernelOverrides();
  }
  return [stock, run()];
}

test('without TICKETSMITH_BACKEND the native backend is chosen', { skip }, async () => {
  const env = { ...process.env };
  delete env.TICKETSMITH_BACKEND;
  const script = `const m = await import(${JSON.stringify(fileURLToPath(new URL('../../src/runtime/backend.ts', import.meta.url)))});
    const info = await m.initBackend(); const tf = await import('@tensorflow/tfjs');
    console.log('RESULT' + JSON.stringify({ name: info.name, active: tf.getBackend() }));`;
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env, timeout: 60_000 }, (err, stdout) =>
      err ? reject(err) : resolve(stdout)),
  );
  const line = out.split('\n').find((l) => l.startsWith('RESULT'));
  assert.deepEqual(JSON.parse(line!.slice(6)), { name: 'tensorflow', active: 'tensorflow' });
});

test('Step on the native backend: 1 above 0, 0 at and below 0, NaN kept; leaky alpha as stock', { skip }, () => {
  const values = [-2, -0, 0, 1e-30, 3, NaN, Infinity, -Infinity];
  const [stock, ours] = stockAndOurs(() => [tf.step(tf.tensor1d(values)), tf.step(tf.tensor1d(values), 0.25)]);
  assert.deepEqual(Array.from(ours[0]!), [0, 0, 0, 1, 1, NaN, 1, 0]);
  assert.deepEqual(Array.from(ours[0]!), Array.from(stock[0]!));
  assert.deepEqual(Array.from(ours[1]!), Array.from(stock[1]!));
});

test('ReLU gradients (plain, fused conv2d, fused matMul) equal the stock ones within 1e-5', { skip }, () => {
  const x = rand(3 * 7 * 5 * 4, 1);
  const w = rand(3 * 3 * 4 * 6, 2);
  const b = rand(6, 3);
  const a = rand(5 * 9, 4);
  const k = rand(9 * 7, 5);
  const [stock, ours] = stockAndOurs(() => {
    const xt = tf.tensor4d(x, [3, 7, 5, 4]);
    const [dReluX] = tf.grads((t: tf.Tensor) => tf.relu(t).mul(t).sum())([xt]);
    const conv = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
      tf.fused.conv2d({ x: xi as tf.Tensor4D, filter: wi as tf.Tensor4D, strides: 1, pad: 'same', bias: bi, activation: 'relu' }).square().sum(),
    )([xt, tf.tensor4d(w, [3, 3, 4, 6]), tf.tensor1d(b)]);
    const mm = tf.grads((ai: tf.Tensor, ki: tf.Tensor) =>
      tf.fused.matMul({ a: ai as tf.Tensor2D, b: ki as tf.Tensor2D, activation: 'relu' }).square().sum(),
    )([tf.tensor2d(a, [5, 9]), tf.tensor2d(k, [9, 7])]);
    return [dReluX!, ...conv, ...mm];
  });
  assert.equal(ours.length, 6);
  assert.ok(ours[0]!.some((v) => v === 0), 'the ReLU is off somewhere');
  ours.forEach((o, i) => {
    const scale = Math.max(1, ...Array.from(stock[i]!, Math.abs));
    assert.ok(maxDiff(o, stock[i]!) <= 1e-5 * scale, `gradient ${i}: max diff ${maxDiff(o, stock[i]!)}`);
    assert.ok(o.some((v) => v !== 0), `gradient ${i} is not all zero`);
  });
});

test('FoldedAdam follows tf.train.adam within 1e-5 over 6 steps, with a learning-rate change', { skip }, () => {
  const init = rand(40, 7);
  const run = (make: () => { applyGradients(g: tf.NamedTensorMap): void; dispose(): void; learningRate: number }) => {
    const p = tf.variable(tf.tensor2d(init, [8, 5]));
    const q = tf.variable(tf.tensor1d(init.slice(0, 3)));
    const opt = make();
    for (let step = 0; step < 6; step++) {
      if (step === 3) opt.learningRate = 0.003;
      tf.tidy(() => {
        const g = tf.tensor2d(rand(40, 100 + step), [8, 5]).mul(step % 2 === 0 ? 1 : 1e-3);
        opt.applyGradients({ [p.name]: g, [q.name]: tf.tensor1d(rand(3, 200 + step)) });
      });
    }
    const out = [p.dataSync().slice() as Float32Array, q.dataSync().slice() as Float32Array];
    opt.dispose();
    tf.dispose([p, q]);
    return out;
  };
  const stock = run(() => tf.train.adam(0.01) as unknown as FoldedAdam);
  const ours = run(() => new FoldedAdam(0.01));
  assert.ok(maxDiff(ours[0]!, stock[0]!) <= 1e-5, `p: ${maxDiff(ours[0]!, stock[0]!)}`);
  assert.ok(maxDiff(ours[1]!, stock[1]!) <= 1e-5, `q: ${maxDiff(ours[1]!, stock[1]!)}`);
  assert.ok(maxDiff(ours[0]!, init) > 1e-3, 'the parameters moved');
});

test('a masked conv net trains on the native stepper: loss falls, pruned weights stay exactly 0', { skip }, () => {
  const split = (n: number, seed: number): Split => {
    const x = rand(n * 8 * 8 * 2, seed);
    const y = Int32Array.from({ length: n }, (_, i) => (x[i * 128]! + x[i * 128 + 37]! > 0 ? 1 : 0));
    return { x, y, n };
  };
  const ds: Dataset = {
    reference: 'synthetic', name: 'synthetic', sha256: '', inputShape: [8, 8, 2], numClasses: 2,
    train: split(64, 11), validation: split(16, 12), test: split(16, 13),
  } as Dataset;
  const model = tf.sequential({ layers: [
    tf.layers.conv2d({ inputShape: [8, 8, 2], filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv' }),
    tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 2, name: 'out' }),
  ] });
  const mask = { 'conv/kernel': Float32Array.from(rand(3 * 3 * 2 * 6, 21), (v) => (v > 0 ? 1 : 0)) };
  const data = toTensors(ds);
  const stepper = tfjsStepper(model, data, mask, {
    optimizer: 'adam', learningRate: 0.01, momentum: 0, lrSchedule: 'constant', warmupIterations: 0,
    batchSize: 16, iterations: 40, startIteration: 0, evalEvery: 40, seed: 1,
  });
  try {
    const before = evaluate(model, data.train).loss;
    for (let i = 0; i < 40; i++) stepper.step(Int32Array.from({ length: 16 }, (_, j) => (i * 16 + j) % 64), 0.01);
    const after = evaluate(model, data.train).loss;
    assert.ok(after < before, `train loss ${before} -> ${after}`);
    const kernel = model.getLayer('conv').getWeights()[0]!.dataSync();
    const pruned = mask['conv/kernel'].reduce((n, m) => n + (m === 0 ? 1 : 0), 0);
    assert.ok(pruned > 0);
    mask['conv/kernel'].forEach((m, i) => { if (m === 0) assert.ok(kernel[i] === 0, `pruned weight ${i} = ${kernel[i]}`); });
  } finally {
    stepper.dispose();
    data.dispose();
    model.dispose();
  }
});

test("a conv net on 'tensorflow' trains on the conv engine by default on every core and records it; TICKETSMITH_MLP=tfjs's loop records tfjs", { skip }, async () => {
  // cnnEngineByDefault('tensorflow'): on native TF the conv engine measured as fast as the TF.js loop for
  // Conv-2 and faster for ResNet-20 (scripts/bench-native-loops.ts), so trainModel takes it there.
  const split = (n: number, seed: number): Split => {
    const x = rand(n * 8 * 8 * 2, seed);
    return { x, y: Int32Array.from({ length: n }, (_, i) => (x[i * 128]! > 0 ? 1 : 0)), n };
  };
  const ds = {
    reference: 'synthetic', name: 'synthetic', sha256: '', inputShape: [8, 8, 2], numClasses: 2,
    train: split(48, 31), validation: split(16, 32), test: split(16, 33),
  } as Dataset;
  const run = async (loop: TrainingLoopChoice) => {
    const model = tf.sequential({ layers: [
      tf.layers.conv2d({ inputShape: [8, 8, 2], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 2, name: 'out' }),
    ] });
    const mask = { 'conv/kernel': Float32Array.from(rand(3 * 3 * 2 * 4, 41), (v) => (v > 0 ? 1 : 0)) };
    const data = toTensors(ds);
    try {
      const metrics = await trainModel(model, data, mask, {
        optimizer: 'adam', learningRate: 0.01, momentum: 0, lrSchedule: 'constant', warmupIterations: 0,
        batchSize: 16, iterations: 6, startIteration: 0, evalEvery: 6, seed: 1, loop,
      });
      const kernel = model.getLayer('conv').getWeights()[0]!.dataSync();
      mask['conv/kernel'].forEach((m, i) => { if (m === 0) assert.ok(kernel[i] === 0, `${loop}: pruned weight ${i} = ${kernel[i]}`); });
      return metrics.trainingLoop;
    } finally {
      data.dispose();
      model.dispose();
    }
  };
  assert.equal(tf.getBackend(), 'tensorflow');
  assert.equal(await run('auto'), 'cnn-simd');
  assert.equal(await run('tfjs'), 'tfjs');
  // The engine's worker threads: every core (up to defaultWasmThreads' cap) unless TICKETSMITH_WASM_THREADS says otherwise.
  if (!process.env.TICKETSMITH_WASM_THREADS) assert.equal(computeThreads(), defaultWasmThreads(true));
});
