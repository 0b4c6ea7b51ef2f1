// Sparse fast path for late pruning rounds of multilayer perceptrons (LeNet):
// masks on dense kernels save no work, so once a round is sparse enough the
// net is trained here instead, in plain JavaScript over compressed rows (CSR)
// holding only the surviving weights. Work per step then scales with the
// number of survivors (and skips zero inputs, most MNIST pixels), and the
// optimiser touches only surviving weights, so pruned weights stay exactly
// zero by construction. Same loss (softmax cross-entropy), same optimisers
// (TF.js's Adam/SGD/momentum update rules), same data order, same evaluation
// schedule and metrics as the TF.js loop in train.ts.
import * as tf from '@tensorflow/tfjs';
import type { Mask, Split } from '../types.js';
import type { TrainingMetrics } from '../sink.js';
import { getWeightMap, setWeightMap } from '../models/inspect.js';
import { mulberry32, shuffleInPlace } from '../rng.js';
import { learningRateAt, RunCancelled, trainingClock, type TrainCallbacks, type TrainConfig } from './train.js';

interface SparseLayer {
  name: string;
  inSize: number;
  outSize: number;
  relu: boolean;
  rowPtr: Int32Array;
  col: Int32Array;
  /** Flat index (row * outSize + col) of each survivor in the dense kernel. */
  flat: Int32Array;
  val: Float32Array;
  bias: Float32Array | null;
  // optimiser state
  mVal: Float32Array;
  vVal: Float32Array;
  mBias: Float32Array | null;
  vBias: Float32Array | null;
}

interface DenseConfig {
  name: string;
  units: number;
  activation?: string;
  useBias?: boolean;
  kernelRegularizer?: unknown;
  biasRegularizer?: unknown;
  kernelConstraint?: unknown;
  activityRegularizer?: unknown;
}

/**
 * The Dense layers of a plain MLP (optional Flatten first; ReLU or linear
 * hidden layers; a linear or softmax output), or null if the model is anything else.
 */
export function mlpLayers(model: tf.LayersModel): DenseConfig[] | null {
  const dense: DenseConfig[] = [];
  for (const [i, layer] of model.layers.entries()) {
    const cls = layer.getClassName();
    if (cls === 'InputLayer' || (cls === 'Flatten' && dense.length === 0)) continue;
    if (cls !== 'Dense') return null;
    const cfg = layer.getConfig() as unknown as DenseConfig;
    const last = i === model.layers.length - 1;
    const act = cfg.activation ?? 'linear';
    if (!(act === 'relu' || act === 'linear' || (last && act === 'softmax'))) return null;
    if (cfg.kernelRegularizer || cfg.biasRegularizer || cfg.kernelConstraint || cfg.activityRegularizer) return null;
    dense.push({ ...cfg, name: layer.name });
  }
  if (dense.length === 0) return null;
  const outShape = model.outputs[0]!.shape;
  const inShape = model.inputs[0]!.shape;
  if (model.inputs.length !== 1 || model.outputs.length !== 1 || outShape.length !== 2 || inShape.some((d, i) => i > 0 && d === null)) return null;
  return dense;
}

/** Density at or below which the sparse path beats the dense one (measured by scripts/bench-train). */
export const SPARSE_DENSITY_THRESHOLD = 0.2;

export function sparsePathApplies(model: tf.LayersModel, mask: Mask | null, backend: string): boolean {
  if (process.env.TICKETSMITH_SPARSE === '0' || !mask) return false;
  // Native TensorFlow and CUDA run dense kernels fast enough that this path would not pay.
  if (backend !== 'wasm' && backend !== 'cpu' && process.env.TICKETSMITH_SPARSE !== '1') return false;
  const layers = mlpLayers(model);
  if (!layers) return false;
  let alive = 0;
  let total = 0;
  for (const l of layers) {
    const m = mask[`${l.name}/kernel`];
    if (!m) return false;
    for (let i = 0; i < m.length; i++) alive += m[i]!;
    total += m.length;
  }
  const threshold = process.env.TICKETSMITH_SPARSE === '1' ? 1 : SPARSE_DENSITY_THRESHOLD;
  return alive / total <= threshold;
}

function buildLayers(model: tf.LayersModel, mask: Mask): SparseLayer[] {
  const cfgs = mlpLayers(model)!;
  const w = getWeightMap(model);
  return cfgs.map((cfg, li) => {
    const kernel = w[`${cfg.name}/kernel`]!;
    const [inSize, outSize] = kernel.shape as [number, number];
    const m = mask[`${cfg.name}/kernel`]!;
    const rowPtr = new Int32Array(inSize + 1);
    let nnz = 0;
    for (let i = 0; i < inSize; i++) {
      for (let j = 0; j < outSize; j++) if (m[i * outSize + j] !== 0) nnz++;
      rowPtr[i + 1] = nnz;
    }
    const col = new Int32Array(nnz);
    const flat = new Int32Array(nnz);
    const val = new Float32Array(nnz);
    let k = 0;
    for (let i = 0; i < inSize; i++) {
      for (let j = 0; j < outSize; j++) {
        const f = i * outSize + j;
        if (m[f] !== 0) {
          col[k] = j;
          flat[k] = f;
          val[k] = kernel.values[f]!;
          k++;
        }
      }
    }
    const b = w[`${cfg.name}/bias`];
    const bias = b ? Float32Array.from(b.values) : null;
    return {
      name: cfg.name,
      inSize,
      outSize,
      relu: li < cfgs.length - 1 && cfg.activation === 'relu',
      rowPtr,
      col,
      flat,
      val,
      bias,
      mVal: new Float32Array(nnz),
      vVal: new Float32Array(nnz),
      mBias: bias ? new Float32Array(bias.length) : null,
      vBias: bias ? new Float32Array(bias.length) : null,
    };
  });
}

/** a (batch × in) · W_sparse + bias → out (batch × outSize); ReLU if the layer has it. */
function forwardLayer(l: SparseLayer, a: Float32Array, batch: number, out: Float32Array): void {
  const { inSize, outSize, rowPtr, col, val, bias } = l;
  for (let b = 0; b < batch; b++) {
    const o = b * outSize;
    if (bias) for (let j = 0; j < outSize; j++) out[o + j] = bias[j]!;
    else out.fill(0, o, o + outSize);
    const ai = b * inSize;
    for (let i = 0; i < inSize; i++) {
      const x = a[ai + i]!;
      if (x === 0) continue;
      for (let k = rowPtr[i]!, end = rowPtr[i + 1]!; k < end; k++) out[o + col[k]!] += x * val[k]!;
    }
    if (l.relu) for (let j = 0; j < outSize; j++) if (out[o + j]! < 0) out[o + j] = 0;
  }
}

/** Softmax cross-entropy of logits (batch × C) against labels: mean loss, correct count, and dZ = (p − y)/batch. */
function softmaxCe(logits: Float32Array, labels: Int32Array, offset: number, batch: number, c: number, dz: Float32Array | null) {
  let loss = 0;
  let correct = 0;
  for (let b = 0; b < batch; b++) {
    const o = b * c;
    let max = -Infinity;
    let arg = 0;
    for (let j = 0; j < c; j++) {
      if (logits[o + j]! > max) {
        max = logits[o + j]!;
        arg = j;
      }
    }
    let sum = 0;
    for (let j = 0; j < c; j++) sum += Math.exp(logits[o + j]! - max);
    const y = labels[offset + b]!;
    loss += Math.log(sum) - (logits[o + y]! - max);
    if (arg === y) correct++;
    if (dz) for (let j = 0; j < c; j++) dz[o + j] = (Math.exp(logits[o + j]! - max) / sum - (j === y ? 1 : 0)) / batch;
  }
  return { loss, correct };
}

interface Optimiser {
  step(params: Float32Array, grads: Float32Array, m: Float32Array, v: Float32Array, lr: number): void;
  tick(): void;
}

/** The update rules of tf.train.adam / sgd / momentum (epsilon 1e-7, as TF.js float32). */
function makeOptimiser(cfg: TrainConfig): Optimiser {
  if (cfg.optimizer === 'adam') {
    const b1 = 0.9;
    const b2 = 0.999;
    const eps = 1e-7;
    let acc1 = b1;
    let acc2 = b2;
    return {
      step(p, g, m, v, lr) {
        const c1 = 1 - acc1;
        const c2 = 1 - acc2;
        for (let i = 0; i < p.length; i++) {
          const gi = g[i]!;
          const mi = b1 * m[i]! + (1 - b1) * gi;
          const vi = b2 * v[i]! + (1 - b2) * gi * gi;
          m[i] = mi;
          v[i] = vi;
          p[i] = p[i]! - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
        }
      },
      tick() {
        acc1 *= b1;
        acc2 *= b2;
      },
    };
  }
  const mom = cfg.optimizer === 'momentum' ? cfg.momentum : 0;
  return {
    step(p, g, m, _v, lr) {
      for (let i = 0; i < p.length; i++) {
        if (mom > 0) {
          m[i] = mom * m[i]! + g[i]!;
          p[i] = p[i]! - lr * m[i]!;
        } else p[i] = p[i]! - lr * g[i]!;
      }
    },
    tick() {},
  };
}

/** Write the sparse weights back into the model's dense kernels (zeros elsewhere). */
function writeBack(model: tf.LayersModel, layers: SparseLayer[]): void {
  const map: Parameters<typeof setWeightMap>[1] = {};
  for (const l of layers) {
    const values = new Float32Array(l.inSize * l.outSize);
    for (let k = 0; k < l.val.length; k++) values[l.flat[k]!] = l.val[k]!;
    map[`${l.name}/kernel`] = { shape: [l.inSize, l.outSize], values };
    if (l.bias) map[`${l.name}/bias`] = { shape: [l.outSize], values: Float32Array.from(l.bias) };
  }
  setWeightMap(model, map);
}

export interface SparseData {
  train: Split;
  validation: Split;
  test: Split;
}

/** Train an MLP under `mask` on the sparse path; same contract as trainModel. */
export async function trainSparseMlp(
  model: tf.LayersModel,
  data: SparseData,
  mask: Mask,
  cfg: TrainConfig,
  cb: TrainCallbacks = {},
): Promise<TrainingMetrics> {
  const layers = buildLayers(model, mask);
  const inSize = layers[0]!.inSize;
  const classes = layers.at(-1)!.outSize;
  const maxBatch = Math.max(cfg.batchSize, 1000);
  const acts = layers.map((l) => new Float32Array(maxBatch * l.outSize));
  const deltas = layers.map((l) => new Float32Array(maxBatch * l.outSize));
  const gVal = layers.map((l) => new Float32Array(l.val.length));
  const gBias = layers.map((l) => new Float32Array(l.outSize));
  const xb = new Float32Array(cfg.batchSize * inSize);
  const yb = new Int32Array(cfg.batchSize);
  const opt = makeOptimiser(cfg);

  const forward = (x: Float32Array, batch: number) => {
    let a = x;
    layers.forEach((l, i) => {
      forwardLayer(l, a, batch, acts[i]!);
      a = acts[i]!;
    });
    return a;
  };
  const evaluate = (s: Split) => {
    let loss = 0;
    let correct = 0;
    for (let start = 0; start < s.n; start += 1000) {
      const size = Math.min(1000, s.n - start);
      const logits = forward(s.x.subarray(start * inSize, (start + size) * inSize), size);
      const r = softmaxCe(logits, s.y, start, size, classes, null);
      loss += r.loss;
      correct += r.correct;
    }
    return { loss: loss / Math.max(1, s.n), accuracy: correct / Math.max(1, s.n) };
  };
  const snapshot = () => layers.map((l) => ({ val: Float32Array.from(l.val), bias: l.bias ? Float32Array.from(l.bias) : null }));
  const restore = (s: ReturnType<typeof snapshot>) =>
    layers.forEach((l, i) => {
      l.val.set(s[i]!.val);
      if (l.bias) l.bias.set(s[i]!.bias!);
    });

  // The same data order as the TF.js loop (same generator, same skips for a rewound start).
  const n = data.train.n;
  const bs = Math.min(cfg.batchSize, n);
  const next = mulberry32(cfg.seed);
  let order = new Int32Array(0);
  let cursor = 0;
  const advance = () => {
    if (cursor + bs > order.length) {
      order = shuffleInPlace(Int32Array.from({ length: n }, (_, i) => i), next);
      cursor = 0;
    }
    const at = cursor;
    cursor += bs;
    return at;
  };
  for (let i = 0; i < cfg.startIteration; i++) advance();

  const curve: Array<[number, number, number]> = [];
  let best = { loss: Infinity, iteration: cfg.startIteration, weights: snapshot() };
  const evalPoint = (iteration: number) => {
    const v = evaluate(data.validation);
    curve.push([iteration, v.loss, v.accuracy]);
    if (v.loss < best.loss) best = { loss: v.loss, iteration, weights: snapshot() };
    return v.loss;
  };
  const capture = () => {
    writeBack(model, layers);
    cb.capture!.fn();
  };

  const clock = trainingClock(cfg, bs, cb);
  if (cb.capture && cb.capture.iteration === cfg.startIteration) capture();
  let lastLoss = evalPoint(cfg.startIteration);
  for (let it = cfg.startIteration; it < cfg.iterations; it++) {
    if (cb.signal?.aborted) throw new RunCancelled();
    const at = advance();
    for (let b = 0; b < bs; b++) {
      const idx = order[at + b]!;
      xb.set(data.train.x.subarray(idx * inSize, (idx + 1) * inSize), b * inSize);
      yb[b] = data.train.y[idx]!;
    }
    const logits = forward(xb, bs);
    softmaxCe(logits, yb, 0, bs, classes, deltas.at(-1)!);
    // Backward: gradients of survivors and biases only.
    for (let li = layers.length - 1; li >= 0; li--) {
      const l = layers[li]!;
      const dz = deltas[li]!;
      const a = li === 0 ? xb : acts[li - 1]!;
      const gv = gVal[li]!.fill(0);
      const gb = gBias[li]!.fill(0);
      const prev = li > 0 ? deltas[li - 1]! : null;
      if (prev) prev.fill(0, 0, bs * l.inSize);
      const { rowPtr, col, val, inSize: I, outSize: O } = l;
      for (let b = 0; b < bs; b++) {
        const o = b * O;
        for (let j = 0; j < O; j++) gb[j] += dz[o + j]!;
        const ai = b * I;
        for (let i = 0; i < I; i++) {
          const x = a[ai + i]!;
          // A zero input adds nothing to any weight gradient; after a ReLU it also blocks dA.
          if (x === 0) continue;
          let s = 0;
          for (let k = rowPtr[i]!, end = rowPtr[i + 1]!; k < end; k++) {
            const d = dz[o + col[k]!]!;
            gv[k] += x * d;
            s += val[k]! * d;
          }
          if (prev) prev[ai + i] = s;
        }
      }
      // prev now holds dA masked by (a > 0), i.e. dZ of the layer below through its ReLU.
      if (prev && !layers[li - 1]!.relu) {
        // A linear hidden layer passes gradients for zero activations too.
        for (let b = 0; b < bs; b++) {
          const ai = b * I;
          for (let i = 0; i < I; i++) {
            if (a[ai + i] !== 0) continue;
            let s = 0;
            for (let k = rowPtr[i]!, end = rowPtr[i + 1]!; k < end; k++) s += val[k]! * dz[b * O + col[k]!]!;
            prev[ai + i] = s;
          }
        }
      }
    }
    const lr = learningRateAt(cfg, it);
    layers.forEach((l, i) => {
      opt.step(l.val, gVal[i]!, l.mVal, l.vVal, lr);
      if (l.bias) opt.step(l.bias, gBias[i]!, l.mBias!, l.vBias!, lr);
    });
    opt.tick();

    const done = it + 1;
    if (cb.capture && cb.capture.iteration === done) capture();
    const isEval = done % cfg.evalEvery === 0 || done === cfg.iterations;
    if (isEval) lastLoss = evalPoint(done);
    await clock.after(done, isEval, lastLoss);
  }
  const metrics = clock.stop();
  const final = evaluate(data.test);
  let earlyStop = final;
  if (best.iteration !== cfg.iterations) {
    const current = snapshot();
    restore(best.weights);
    earlyStop = evaluate(data.test);
    restore(current);
  }
  writeBack(model, layers);
  return metrics({ final, earlyStop, best, curve });
}
