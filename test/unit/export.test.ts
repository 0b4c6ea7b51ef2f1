// Compressed ticket export and weight checkpoints: exact round trips and a
// real size reduction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compressTicket, decompressTicket, float16ToFloat32, float32ToFloat16 } from '../../src/engine/export.js';
import { decodeWeights, encodeWeights, packWeights, unpackWeights } from '../../src/engine/checkpoint.js';

function sparseLayer(n: number, density: number) {
  const values = new Float32Array(n);
  const mask = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if ((i * 7919) % 100 < density * 100) {
      mask[i] = 1;
      values[i] = Math.sin(i) * 0.1;
    }
  }
  return { values, mask };
}

test('compressed export restores dense weights exactly and is smaller', () => {
  const a = sparseLayer(10_000, 0.2);
  const weights = { 'fc1/kernel': { shape: [100, 100], values: a.values }, 'fc1/bias': { shape: [100], values: new Float32Array(100).fill(0.5) } };
  const bytes = compressTicket(weights, { 'fc1/kernel': a.mask });
  const dense = 4 * 10_100;
  // 10,000/8 bitmask + 2,000 floats + 100 dense floats + header
  assert.ok(bytes.length < dense / 4, `compressed ${bytes.length} vs dense ${dense}`);
  const back = decompressTicket(bytes);
  assert.deepEqual([...back.weights['fc1/kernel']!.values], [...a.values]);
  assert.deepEqual([...back.weights['fc1/bias']!.values], [...weights['fc1/bias'].values]);
  assert.deepEqual([...back.mask['fc1/kernel']!], [...a.mask]);
});

test('float16 export halves the values and stays within half precision', () => {
  const a = sparseLayer(4_000, 0.5);
  const w = { k: { shape: [4_000], values: a.values } };
  const f32 = compressTicket(w, { k: a.mask });
  const f16 = compressTicket(w, { k: a.mask }, { float16: true });
  assert.ok(f16.length < f32.length * 0.6, "f16.length < f32.length * 0.6");
  const back = decompressTicket(f16).weights.k!.values;
  for (let i = 0; i < a.values.length; i++) assert.ok(Math.abs(back[i]! - a.values[i]!) <= Math.abs(a.values[i]!) * 1e-3 + 1e-7, "Math.abs(back[i]! - a.values[i]!) <= Math.abs(a.values[i]!) * 1e-3 + 1e-7");
  assert.equal(float16ToFloat32(float32ToFloat16(1)), 1);
  assert.equal(float16ToFloat32(float32ToFloat16(-2.5)), -2.5);
  assert.equal(float32ToFloat16(65504), 0x7bff);
  assert.equal(float16ToFloat32(float32ToFloat16(1e6)), Infinity);
});

test('truncated export is an error, not garbage', () => {
  const a = sparseLayer(1000, 0.3);
  const bytes = compressTicket({ k: { shape: [1000], values: a.values } }, { k: a.mask });
  assert.throws(() => decompressTicket(bytes.subarray(0, bytes.length - 10)), /truncated/);
  assert.throws(() => decompressTicket(new Uint8Array(20)), /bad magic/);
});

test('weight checkpoints round-trip bit-exact', () => {
  const w = { 'a/kernel': { shape: [2, 3], values: Float32Array.from([1, -2, 3.5, 0, -0, 1e-30]) }, 'a/bias': { shape: [3], values: Float32Array.from([7, 8, 9]) } };
  const { bin, json } = encodeWeights(w);
  assert.equal(bin.length, 9 * 4);
  assert.deepEqual(decodeWeights(bin, json), w);
  assert.deepEqual(unpackWeights(packWeights(w)), w);
});
