// Measured inference latency: positive medians over the requested repeats,
// and a model with 16x fewer multiply-adds measures faster when the two take
// turns on the same backend.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/runtime/backend.js';
import { compareLatency, latencyProfile, measureLatency } from '../../src/engine/filter/latency.js';

before(async () => {
  await initBackend();
});

function convNet(filters: number): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [16, 16, 16], filters, kernelSize: 3, padding: 'same', activation: 'relu' }));
  m.add(tf.layers.globalAveragePooling2d({}));
  m.add(tf.layers.dense({ units: 2 }));
  return m;
}

test('measureLatency and latencyProfile report medians of real forward passes', async () => {
  const m = convNet(8);
  const before = tf.memory().numTensors;
  const s = await measureLatency(m, 4, { warmup: 1, minRepeats: 5, minSeconds: 0 });
  assert.equal(s.repeats, 5);
  assert.equal(s.batch, 4);
  assert.ok(s.medianMs > 0 && s.minMs > 0 && s.minMs <= s.medianMs, "s.medianMs > 0 && s.minMs > 0 && s.minMs <= s.medianMs");
  const p = await latencyProfile(m, { minRepeats: 2, minSeconds: 0 });
  assert.deepEqual(p.samples.map((x) => x.batch), [1, 64]);
  assert.ok(p.batch1Ms > 0 && p.batch64Ms > 0, "p.batch1Ms > 0 && p.batch64Ms > 0");
  assert.equal(tf.memory().numTensors, before, 'inputs and outputs are disposed');
  m.dispose();
});

test('a 16x narrower conv is faster at batch 64 (interleaved)', async () => {
  const wide = convNet(128);
  const narrow = convNet(8);
  const [w, n] = await compareLatency([wide, narrow], 64, 3);
  assert.equal(w!.repeats, 3);
  assert.ok(w!.medianMs > 2 * n!.medianMs, `wide ${w!.medianMs} ms vs narrow ${n!.medianMs} ms`);
  wide.dispose();
  narrow.dispose();
});
