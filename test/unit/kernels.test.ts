// Ticketsmith's WASM kernel overrides must compute what the reference `cpu`
// backend computes (gradients of real convolutions, pools, dense layers),
// must not leak WASM memory, and must install idempotently.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/runtime/backend.js';
import { installWasmKernelOverrides, installedWasmOverrides, wasmKernelOverrides } from '../../src/runtime/kernels/registry.js';
import { matMulPlan } from '../../src/runtime/kernels/batch-matmul.js';
import { stockKernel } from '../../src/runtime/kernels/wasm-call.js';

type Backend = 'wasm' | 'cpu';
type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

/** Deterministic uniform [-1, 1) values (mulberry32). */
function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

const size = (shape: number[]): number => shape.reduce((p, d) => p * d, 1);

async function on<T>(backend: Backend, f: () => T): Promise<T> {
  assert.ok(await tf.setBackend(backend), "await tf.setBackend(backend)");
  return f();
}

/** max |a - b| relative to the reference's scale (at least 1). */
function assertClose(actual: Float32Array, expected: Float32Array, what: string, tol = 1e-4): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  assert.ok(Number.isFinite(worst) && worst <= tol * scale, `${what}: max |wasm - cpu| = ${worst} (scale ${scale})`);
}

/** d/dx and d/dW of sum(conv2d(x, W) * r), so dy = r is arbitrary and known. */
function convGrads(xs: number[], ws: number[], strides: number | [number, number], pad: Pad, seed: number) {
  const x = rand(size(xs), seed);
  const w = rand(size(ws), seed + 1);
  return () =>
    tf.tidy(() => {
      const xt = tf.tensor4d(x, xs as [number, number, number, number]);
      const wt = tf.tensor4d(w, ws as [number, number, number, number]);
      const y = tf.conv2d(xt, wt, strides, pad);
      const r = tf.tensor(rand(y.size, seed + 2), y.shape);
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad).mul(r).sum(),
      )([xt, wt]);
      return [dx!.dataSync() as Float32Array, dw!.dataSync() as Float32Array];
    });
}

before(async () => {
  const info = await initBackend({ prefer: 'wasm' });
  assert.equal(info.name, 'wasm');
});

describe('Conv2DBackpropFilter and Conv2DBackpropInput on wasm equal cpu', () => {
  const cases: { x: number[]; w: number[]; s: number | [number, number]; pad: Pad }[] = [
    { x: [1, 7, 7, 1], w: [3, 3, 1, 3], s: 1, pad: 'same' },
    { x: [4, 8, 6, 3], w: [3, 2, 3, 8], s: 2, pad: 'same' },
    { x: [4, 9, 9, 8], w: [2, 3, 8, 1], s: 2, pad: 'valid' }, // last input row unused: crop path
    { x: [1, 6, 7, 3], w: [1, 1, 3, 8], s: 2, pad: 'valid' },
    { x: [4, 5, 5, 8], w: [5, 5, 8, 3], s: 1, pad: 'valid' },
    { x: [4, 8, 8, 3], w: [3, 3, 3, 8], s: [1, 2], pad: 'same' },
    { x: [2, 6, 6, 3], w: [3, 3, 3, 4], s: 1, pad: [[0, 0], [2, 1], [0, 2], [0, 0]] },
    // Padding wider than the kernel: backprop-input falls back to the stock kernel.
    { x: [2, 5, 5, 3], w: [2, 2, 3, 4], s: 1, pad: [[0, 0], [3, 3], [1, 1], [0, 0]] },
  ];
  cases.forEach((c, i) => {
    test(`x ${c.x} W ${c.w} strides ${c.s} pad ${JSON.stringify(c.pad)}`, async () => {
      const run = convGrads(c.x, c.w, c.s, c.pad, 100 + i * 7);
      const [dxW, dwW] = await on('wasm', run);
      const [dxC, dwC] = await on('cpu', run);
      assertClose(dwW, dwC, 'dW');
      assertClose(dxW, dxC, 'dx');
    });
  });

  test('NCHW data: both kernels equal cpu when called directly', async () => {
    const [xs, ws, strides] = [[2, 3, 7, 6], [3, 3, 3, 5], 2] as const;
    const info = tf.backend_util.computeConv2DInfo([...xs], [...ws], strides, 1, 'same', undefined, false, 'channelsFirst');
    const x = rand(size([...xs]), 800);
    const w = rand(size([...ws]), 801);
    const dy = rand(size(info.outShape), 802);
    const run = () =>
      tf.tidy(() => {
        const common = { strides, pad: 'same', dataFormat: 'NCHW' };
        const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.tensor(x, [...xs]), dy: tf.tensor(dy, info.outShape) }, { ...common, filterShape: [...ws] } as never) as tf.Tensor;
        const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy: tf.tensor(dy, info.outShape), filter: tf.tensor(w, [...ws]) }, { ...common, inputShape: [...xs] } as never) as tf.Tensor;
        return [dw.dataSync() as Float32Array, dx.dataSync() as Float32Array];
      });
    const [dwW, dxW] = await on('wasm', run);
    const [dwC, dxC] = await on('cpu', run);
    assertClose(dwW, dwC, 'dW (NCHW)');
    assertClose(dxW, dxC, 'dx (NCHW)');
  });

  test('Conv2DBackpropFilter honours a forward dilation (checked against direct summation)', async () => {
    const [n, h, wd, ci, co, kh, kw, dil] = [2, 9, 8, 3, 4, 3, 2, 2];
    const x = rand(n * h * wd * ci, 5);
    const info = tf.backend_util.computeConv2DInfo([n, h, wd, ci], [kh, kw, ci, co], 1, dil, 'same');
    const dy = rand(size(info.outShape), 6);
    const got = await on('wasm', () =>
      tf.tidy(() => {
        const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [kh, kw, ci, co], dilations: dil };
        return (
          tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.tensor(x, [n, h, wd, ci]), dy: tf.tensor(dy, info.outShape) }, attrs as never) as tf.Tensor
        ).dataSync() as Float32Array;
      }),
    );
    const want = new Float32Array(kh * kw * ci * co);
    const { top, left } = info.padInfo;
    for (let a = 0; a < kh; a++)
      for (let b = 0; b < kw; b++)
        for (let c = 0; c < ci; c++)
          for (let o = 0; o < co; o++) {
            let s = 0;
            for (let m = 0; m < n; m++)
              for (let p = 0; p < info.outHeight; p++)
                for (let q = 0; q < info.outWidth; q++) {
                  const r = p + a * dil - top;
                  const t = q + b * dil - left;
                  if (r < 0 || r >= h || t < 0 || t >= wd) continue;
                  s += x[((m * h + r) * wd + t) * ci + c]! * dy[((m * info.outHeight + p) * info.outWidth + q) * co + o]!;
                }
            want[((a * kw + b) * ci + c) * co + o] = s;
          }
    assertClose(got, want, 'dW (dilation 2)');
  });
});

describe('MaxPoolGrad on wasm equals cpu, ties included', () => {
  const cases: { x: number[]; f: number; s: number; pad: 'same' | 'valid' }[] = [
    { x: [4, 8, 8, 3], f: 2, s: 2, pad: 'valid' },
    { x: [1, 7, 5, 8], f: 3, s: 2, pad: 'same' },
    { x: [4, 6, 6, 1], f: 3, s: 1, pad: 'same' }, // overlapping windows
  ];
  cases.forEach((c, i) => {
    test(`x ${c.x} pool ${c.f} stride ${c.s} ${c.pad}`, async () => {
      // ReLU-like input: many exact zeros, so many windows hold tied maxima.
      const x = rand(size(c.x), 300 + i).map((v) => Math.max(0, v));
      const run = () =>
        tf.tidy(() => {
          const xt = tf.tensor4d(x, c.x as [number, number, number, number]);
          const y = tf.maxPool(xt, c.f, c.s, c.pad);
          const r = tf.tensor(rand(y.size, 400 + i), y.shape);
          return tf.grad((a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, c.f, c.s, c.pad).mul(r).sum())(xt).dataSync() as Float32Array;
        });
      assertClose(await on('wasm', run), await on('cpu', run), 'dx', 1e-6);
    });
  });

  test('a window of equal values routes its gradient to the first element, like cpu', async () => {
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor4d([1, 1, 1, 1], [1, 2, 2, 1]);
        return tf.grad((a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid').mul(5).sum())(x).dataSync() as Float32Array;
      });
    assert.deepEqual([...(await on('wasm', run))], [5, 0, 0, 0]);
    assert.deepEqual([...(await on('cpu', run))], [5, 0, 0, 0]);
  });

  test('an all-negative window routes its gradient to its maximum (the stock kernel does not)', async () => {
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor4d([-3, -1, -2, -1], [1, 2, 2, 1]);
        return tf.grad((a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid').mul(5).sum())(x).dataSync() as Float32Array;
      });
    assert.deepEqual([...(await on('wasm', run))], [0, 5, 0, 0]);
    assert.deepEqual([...(await on('cpu', run))], [0, 5, 0, 0]);
  });
});

describe('Sum on wasm equals cpu', () => {
  const cases: { shape: number[]; axis: number[]; keepDims: boolean }[] = [
    { shape: [4, 5, 6, 8], axis: [0, 1, 2], keepDims: false }, // conv bias gradient
    { shape: [4, 5, 6, 8], axis: [2, 0, 1], keepDims: true },
    { shape: [7, 3], axis: [0], keepDims: false }, // dense bias gradient
    { shape: [4, 5, 6], axis: [1], keepDims: false }, // not leading: stock kernel
    { shape: [4, 5, 6], axis: [0, 1, 2], keepDims: false }, // all axes: stock kernel
  ];
  cases.forEach((c, i) => {
    test(`shape ${c.shape} axis ${c.axis} keepDims ${c.keepDims}`, async () => {
      const x = rand(size(c.shape), 500 + i);
      const run = () => tf.tidy(() => {
        const y = tf.sum(tf.tensor(x, c.shape), c.axis, c.keepDims);
        return { shape: y.shape, values: y.dataSync() as Float32Array };
      });
      const w = await on('wasm', run);
      const cp = await on('cpu', run);
      assert.deepEqual(w.shape, cp.shape);
      assertClose(w.values, cp.values, 'sum');
    });
  });

  test('hand-checked: [[1,2],[3,4],[5,6]] summed over rows is [9, 12]', async () => {
    const y = await on('wasm', () => tf.tidy(() => [...tf.sum(tf.tensor2d([[1, 2], [3, 4], [5, 6]]), 0).dataSync()]));
    assert.deepEqual(y, [9, 12]);
  });
});

describe('BatchMatMul on wasm equals cpu', () => {
  const cases: { a: number[]; b: number[]; tA: boolean; tB: boolean }[] = [
    { a: [3, 64], b: [3, 8], tA: true, tB: false }, // dense dW = x^T dy
    { a: [2, 8], b: [64, 8], tA: false, tB: true }, // dense dx = dy W^T
    { a: [5, 4], b: [6, 5], tA: true, tB: true },
    { a: [1, 6, 5], b: [6, 3], tA: true, tB: false },
    { a: [2, 6, 5], b: [2, 6, 3], tA: true, tB: false }, // batch 2: stock kernel
    { a: [7, 5], b: [5, 3], tA: false, tB: false }, // plain, small B: stock kernel
    { a: [2, 64], b: [64, 64], tA: false, tB: false }, // plain, large B: swapped
    { a: [1, 3, 40], b: [40, 33], tA: false, tB: false }, // plain, rank 3, large B: swapped
  ];
  cases.forEach((c, i) => {
    test(`a ${c.a} b ${c.b} transposeA ${c.tA} transposeB ${c.tB}`, async () => {
      const a = rand(size(c.a), 600 + i);
      const b = rand(size(c.b), 700 + i);
      const run = () => tf.tidy(() => {
        const y = tf.matMul(tf.tensor(a, c.a), tf.tensor(b, c.b), c.tA, c.tB);
        return { shape: y.shape, values: y.dataSync() as Float32Array };
      });
      const w = await on('wasm', run);
      const cp = await on('cpu', run);
      assert.deepEqual(w.shape, cp.shape);
      assertClose(w.values, cp.values, 'matMul');
    });
  });

  test('cost model: a dense layer packs the small operand', () => {
    assert.equal(matMulPlan([3, 64], [3, 8], true, false), 'direct');
    assert.equal(matMulPlan([2, 8], [64, 8], false, true), 'swapped');
    assert.equal(matMulPlan([60, 256], [16384, 256], false, true), 'swapped');
    assert.equal(matMulPlan([60, 16384], [60, 256], true, false), 'direct');
    // A wide layer's forward pass: transposing the weights beats packing them.
    assert.equal(matMulPlan([32, 16384], [16384, 256], false, false), 'swapped');
    assert.equal(matMulPlan([7, 5], [5, 3], false, false), 'direct');
    assert.equal(matMulPlan([2, 64], [64, 64], false, false), 'swapped');
  });

  test('hand-checked: [[1,2],[3,4]]^T [[1],[1]] = [[4],[6]]', async () => {
    const y = await on('wasm', () => tf.tidy(() => [...tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[1], [1]]), true).dataSync()]));
    assert.deepEqual(y, [4, 6]);
  });
});

/** A small conv net (conv, strided conv, pool, dense) built from fixed weights. */
function smallNet(seed: number) {
  const shapes: Record<string, number[]> = {
    c1: [3, 3, 3, 4], b1: [4], c2: [3, 2, 4, 6], b2: [6], d1: [2 * 2 * 6, 8], e1: [8], d2: [8, 3], e2: [3],
  };
  const values = Object.fromEntries(Object.entries(shapes).map(([k, s], i) => [k, rand(size(s), seed + i).map((v) => v * 0.5)]));
  const x = rand(4 * 9 * 9 * 3, seed + 50);
  const labels = [0, 2, 1, 2];
  return () => {
    const vars = Object.fromEntries(
      Object.entries(shapes).map(([k, s]) => [k, tf.tidy(() => tf.variable(tf.tensor(values[k]!, s), true, `${k}_${seed}_${tf.getBackend()}`))]),
    );
    const v = (k: string) => vars[k]! as tf.Tensor;
    const result = tf.tidy(() => {
      const xt = tf.tensor4d(x, [4, 9, 9, 3]);
      const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 3);
      const { value, grads } = tf.variableGrads(() => {
        let h = tf.relu(tf.conv2d(xt, v('c1') as tf.Tensor4D, 1, 'same').add(v('b1'))) as tf.Tensor4D;
        h = tf.relu(tf.conv2d(h, v('c2') as tf.Tensor4D, 2, 'same').add(v('b2'))) as tf.Tensor4D;
        h = tf.maxPool(h, 2, 2, 'valid');
        const f = h.reshape([4, -1]);
        const d = tf.relu(tf.matMul(f, v('d1')).add(v('e1')));
        return tf.losses.softmaxCrossEntropy(y, tf.matMul(d, v('d2')).add(v('e2'))) as tf.Scalar;
      });
      return { loss: value.dataSync()[0]!, grads: Object.fromEntries(Object.keys(shapes).map((k) => [k, grads[k + `_${seed}_${tf.getBackend()}`]!.dataSync() as Float32Array])) };
    });
    Object.values(vars).forEach((t) => t.dispose());
    return result;
  };
}

describe('whole-network gradients', () => {
  test('a small conv net has the same loss and gradients on wasm and cpu', async () => {
    const run = smallNet(900);
    const w = await on('wasm', run);
    const c = await on('cpu', run);
    assert.ok(Math.abs(w.loss - c.loss) < 1e-5, `loss ${w.loss} vs ${c.loss}`);
    for (const k of Object.keys(c.grads)) assertClose(w.grads[k]!, c.grads[k]!, `grad ${k}`);
  });

  test('training steps leave no tensors or WASM buffers behind', async () => {
    await on('wasm', () => undefined);
    const run = smallNet(910);
    run(); // first run creates lazily-built state (kernel setup, XNNPACK operators of live tensors)
    const before = tf.memory();
    for (let i = 0; i < 3; i++) run();
    const after = tf.memory();
    assert.equal(after.numTensors, before.numTensors);
    assert.equal(after.numDataBuffers, before.numDataBuffers);
    assert.equal(after.numBytes, before.numBytes);
  });
});

describe('GatherV2 on wasm equals cpu', () => {
  const cases: { shape: number[]; indices: number[]; axis: number; dtype: 'float32' | 'int32' }[] = [
    { shape: [50, 28, 28, 1], indices: [3, 49, 0, 3, 17], axis: 0, dtype: 'float32' }, // a mini-batch of images
    { shape: [10, 7], indices: [9, 0, 5], axis: 0, dtype: 'int32' },
    { shape: [6], indices: [5, 5, 1], axis: 0, dtype: 'float32' }, // scalar rows
    { shape: [4, 6, 3], indices: [2, 0], axis: 1, dtype: 'float32' }, // other axis: stock kernel
  ];
  cases.forEach((c, i) => {
    test(`shape ${c.shape} axis ${c.axis} ${c.dtype}`, async () => {
      const x = rand(size(c.shape), 700 + i).map((v) => (c.dtype === 'int32' ? Math.round(v * 100) : v));
      const run = () => tf.tidy(() => {
        const y = tf.gather(tf.tensor(x, c.shape, c.dtype), tf.tensor1d(c.indices, 'int32'), c.axis);
        return { shape: y.shape, values: Float32Array.from(y.dataSync()) };
      });
      const w = await on('wasm', run);
      const cp = await on('cpu', run);
      assert.deepEqual(w.shape, cp.shape);
      assertClose(w.values, cp.values, 'gather', 0);
    });
  });

  test('hand-checked rows, and an index out of range is an error', async () => {
    const y = await on('wasm', () => tf.tidy(() => [...tf.gather(tf.tensor2d([[1, 2], [3, 4], [5, 6]]), tf.tensor1d([2, 0], 'int32')).dataSync()]));
    assert.deepEqual(y, [5, 6, 1, 2]);
    const before = tf.memory().numTensors;
    await assert.rejects(on('wasm', () => tf.tidy(() => tf.gather(tf.tensor2d([[1, 2]]), tf.tensor1d([1], 'int32')).dataSync())), /index 1 is not in \[0, 0\]/);
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
  });
});

describe('registry', () => {
  test('installs every override once and keeps the displaced stock kernels', () => {
    installWasmKernelOverrides();
    installWasmKernelOverrides();
    const names = wasmKernelOverrides.map((k) => k.kernelName).sort();
    assert.deepEqual(installedWasmOverrides().sort(), names);
    assert.deepEqual(names, ['BatchMatMul', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'GatherV2', 'MaxPoolGrad', 'Sum']);
    for (const name of ['BatchMatMul', 'Conv2DBackpropInput', 'GatherV2', 'MaxPoolGrad', 'Sum']) {
      const stock = stockKernel(name);
      assert.ok(stock !== undefined, `${name} stock kernel kept`);
      assert.ok(!wasmKernelOverrides.includes(stock), `${name} stock kernel is not an override`);
    }
    // Stock wasm 4.22 has no Conv2DBackpropFilter: nothing to keep.
    assert.equal(stockKernel('Conv2DBackpropFilter'), undefined);
  });
});
