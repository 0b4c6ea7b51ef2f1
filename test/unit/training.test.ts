// The training loop on real TF.js (cpu backend, tiny data): masks hold under
// Adam, memory stays flat, the model learns, early stop is tracked.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { weightVariables } from '../../src/engine/models/inspect.js';
import { toTensors, trainModel, learningRateAt, RunCancelled, type TrainConfig } from '../../src/engine/training/train.js';
import type { Dataset } from '../../src/engine/types.js';

/** Two Gaussian blobs per class in 8 dims: learnable in a few hundred steps. */
function blobs(n: number, seed: number): { x: Float32Array; y: Int32Array; n: number } {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const x = new Float32Array(n * 8);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y[i] = c;
    for (let d = 0; d < 8; d++) x[i * 8 + d] = (d % 3 === c ? 1 : 0) + (rnd() - 0.5) * 0.8;
  }
  return { x, y, n };
}

function dataset(): Dataset {
  return { reference: 'test:blobs', name: 'blobs', sha256: '', inputShape: [8], numClasses: 3, train: blobs(600, 1), validation: blobs(90, 2), test: blobs(150, 3) };
}

function mlp(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.dense({ name: 'fc1', units: 16, activation: 'relu', inputShape: [8], kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.dense({ name: 'out', units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
}

const cfg: TrainConfig = {
  optimizer: 'adam',
  learningRate: 0.01,
  momentum: 0.9,
  lrSchedule: 'constant',
  warmupIterations: 0,
  batchSize: 30,
  iterations: 200,
  startIteration: 0,
  evalEvery: 20,
  seed: 7,
};

before(async () => {
  await tf.setBackend('cpu');
});

describe('trainModel', () => {
  test('learns, tracks early stop, and masked weights stay exactly zero under Adam', async () => {
    const model = mlp();
    const data = toTensors(dataset());
    const mask = { 'fc1/kernel': new Float32Array(8 * 16).map((_, i) => (i % 3 === 0 ? 0 : 1)) };
    const progress: number[] = [];
    const m = await trainModel(model, data, mask, cfg, { onProgress: (p) => progress.push(p.step), progressEveryMs: 0 });
    assert.ok(m.finalTestAccuracy > 0.9, `accuracy ${m.finalTestAccuracy}`);
    assert.ok(m.earlyStopIteration > 0 && m.earlyStopIteration <= 200, "m.earlyStopIteration > 0 && m.earlyStopIteration <= 200");
    assert.equal(m.curve.length, 11); // iterations 0, 20, …, 200
    assert.equal(progress.at(-1), 200);
    const w = weightVariables(model).get('fc1/kernel')!.read().dataSync();
    let zeros = 0;
    for (let i = 0; i < w.length; i++) {
      if (mask['fc1/kernel'][i] === 0) assert.ok(w[i] === 0, `pruned weight ${i} moved to ${w[i]}`); // -0 counts as zero
      else if (w[i] === 0) zeros++;
    }
    assert.equal(zeros, 0, 'survivors are trained, not zeroed');
    data.dispose();
    model.dispose();
  });

  test('memory is flat across 100 steps', async () => {
    const model = mlp();
    const data = toTensors(dataset());
    const mask = { 'fc1/kernel': new Float32Array(8 * 16).fill(1) };
    await trainModel(model, data, mask, { ...cfg, iterations: 5, evalEvery: 5 });
    const before = tf.memory();
    await trainModel(model, data, mask, { ...cfg, iterations: 100, evalEvery: 25, lrSchedule: 'cosine' });
    const after = tf.memory();
    assert.equal(after.numTensors, before.numTensors);
    assert.equal(after.numBytes, before.numBytes);
    data.dispose();
    model.dispose();
  });

  test('capture fires at the rewind iteration; abort stops the loop', async () => {
    const model = mlp();
    const data = toTensors(dataset());
    let capturedAt = -1;
    let step = 0;
    const ac = new AbortController();
    await assert.rejects(
      trainModel(model, data, null, cfg, {
        signal: ac.signal,
        progressEveryMs: 0,
        capture: { iteration: 10, fn: () => (capturedAt = step) },
        onProgress: (p) => {
          step = p.step;
          if (p.step >= 50) ac.abort();
        },
      }),
      RunCancelled,
    );
    assert.ok(capturedAt >= 0 && capturedAt <= 10, "capturedAt >= 0 && capturedAt <= 10");
    data.dispose();
    model.dispose();
  });

  test('learning-rate schedules', () => {
    assert.equal(learningRateAt({ ...cfg, lrSchedule: 'cosine' }, 100), 0.005);
    assert.equal(learningRateAt({ ...cfg, lrSchedule: 'step' }, 160), 0.01 * 0.01);
    assert.equal(learningRateAt({ ...cfg, warmupIterations: 10 }, 4), 0.005);
  });
});
