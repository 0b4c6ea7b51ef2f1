// Fast paths for multilayer perceptrons (LeNet): instead of TF.js kernels,
// a plain MLP is trained by one of two engines with the same loss (softmax
// cross-entropy), the same update rules as TF.js's Adam/SGD/momentum, the same
// data order, evaluation schedule and metrics as the TF.js loop in train.ts:
// - simd (mlp-simd.ts): dense layers on our WebAssembly SIMD kernels, a few
//   calls per layer and step instead of dozens of TF.js kernels, skipping zero
//   inputs and ReLU-silenced units;
// - csr (mlp-csr.ts): late pruning rounds, compressed rows of the surviving
//   weights only (same WebAssembly module), so a step's work shrinks with the
//   density.
// TICKETSMITH_MLP picks one (simd, csr, or tfjs to keep TF.js kernels);
// unset, mlpPath chooses by backend and density.
import * as tf from '@tensorflow/tfjs';
import type { Mask, Split, WeightMap } from '../types.js';
import type { TrainingMetrics } from '../sink.js';
import { getWeightMap, setWeightMap } from '../models/inspect.js';
import { mulberry32, shuffleInPlace } from '../rng.js';
import { globalDensity } from '../pruning/mask.js';
import { simdKernelsAvailable } from '../../runtime/simd/mlp-kernels.js';
import { learningRateAt, RunCancelled, trainingClock, type TrainCallbacks, type TrainConfig } from './train.js';
import { csrEngine } from './mlp-csr.js';
import { simdEngine } from './mlp-simd.js';

export interface DenseConfig {
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
 * hidden layers; a linear or softmax output, never ReLU, so the engines read
 * `activation === 'relu'` as a hidden ReLU), or null if the model is anything else.
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
    if (!((!last && act === 'relu') || act === 'linear' || (last && act === 'softmax'))) return null;
    if (cfg.kernelRegularizer || cfg.biasRegularizer || cfg.kernelConstraint || cfg.activityRegularizer) return null;
    dense.push({ ...cfg, name: layer.name });
  }
  if (dense.length === 0) return null;
  const outShape = model.outputs[0]!.shape;
  const inShape = model.inputs[0]!.shape;
  if (model.inputs.length !== 1 || model.outputs.length !== 1 || outShape.length !== 2 || inShape.some((d, i) => i > 0 && d === null)) return null;
  return dense;
}

/** Density at or below which the csr engine beats the simd one (measured by scripts/bench-train). */
export const CSR_DENSITY_THRESHOLD = 0.2;

export type MlpPath = 'simd' | 'csr';
const PATHS = ['simd', 'csr', 'tfjs'] as const;

/**
 * Whether plain MLPs take an MLP engine on this TF.js backend by default: on
 * wasm, cpu and native CPU TensorFlow, where the simd engine was measured
 * faster than the backend's own kernels (LeNet-300-100, batch 60: 17,161 vs
 * 3,669 examples/s on tfjs-node, scripts/bench-train). Not on CUDA, which
 * was not measured.
 */
export function mlpEnginesByDefault(backend: string): boolean {
  return backend === 'wasm' || backend === 'cpu' || backend === 'tensorflow';
}

/**
 * The engine that trains `model` under `mask`, or null for the TF.js loop:
 * only plain MLPs qualify, by default only where mlpEnginesByDefault says.
 */
export function mlpPath(model: tf.LayersModel, mask: Mask | null, backend: string): MlpPath | null {
  const forced = process.env.TICKETSMITH_MLP;
  if (forced !== undefined && forced !== '' && !(PATHS as readonly string[]).includes(forced)) {
    throw new Error(`TICKETSMITH_MLP must be one of ${PATHS.join(', ')}; got '${forced}'`);
  }
  if (forced === 'tfjs') return null;
  const layers = mlpLayers(model);
  if (!layers) return null;
  // Both engines run on the WebAssembly SIMD kernels (every Node since 16.4 has them).
  if (!simdKernelsAvailable()) return null;
  if (forced === 'simd' || forced === 'csr') return forced;
  if (!mlpEnginesByDefault(backend)) return null;
  // A mask that leaves some layer out prunes nothing there: dense path.
  const sparse = mask !== null && layers.every((l) => mask[`${l.name}/kernel`]) && globalDensity(mask) <= CSR_DENSITY_THRESHOLD;
  return sparse ? 'csr' : 'simd';
}

/**
 * One engine's state and passes. `input` and `outputGrad` are buffers of the
 * engine's largest batch: the driver writes a batch's inputs, runs forward,
 * writes dZ of the output layer for that forward, then backward and update.
 */
export interface MlpEngine {
  readonly input: Float32Array;
  readonly outputGrad: Float32Array;
  /** Logits of the first `batch` rows of `input` (a view, valid until the next forward). */
  forward(batch: number): Float32Array;
  backward(batch: number): void;
  /** One optimiser step at learning rate `lr` from the last backward's gradients. */
  update(lr: number): void;
  /** Live views of every trained tensor, in a fixed order (snapshots copy them). */
  parameters(): Float32Array[];
  /** Kernels and biases as dense weights, zeros where pruned. */
  weightMap(): WeightMap;
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

export interface MlpData {
  train: Split;
  validation: Split;
  test: Split;
}

/** Train an MLP under `mask` on engine `path`; same contract as trainModel. */
export async function trainMlp(
  model: tf.LayersModel,
  data: MlpData,
  mask: Mask | null,
  cfg: TrainConfig,
  cb: TrainCallbacks = {},
  path: MlpPath = 'simd',
): Promise<TrainingMetrics> {
  const cfgs = mlpLayers(model);
  if (!cfgs) throw new Error(`model '${model.name}' is not a plain MLP`);
  const evalBatch = 1000;
  const maxBatch = Math.max(cfg.batchSize, evalBatch);
  const weights = getWeightMap(model);
  const engine = path === 'simd' ? simdEngine(cfgs, weights, mask, cfg, maxBatch) : csrEngine(cfgs, weights, mask, cfg, maxBatch);
  const inSize = engine.input.length / maxBatch;
  const classes = engine.outputGrad.length / maxBatch;
  const labels = new Int32Array(cfg.batchSize);
  const snapshot = () => engine.parameters().map((p) => Float32Array.from(p));
  const restore = (s: Float32Array[]) => engine.parameters().forEach((p, i) => p.set(s[i]!));

  const evaluate = (s: Split) => {
    let loss = 0;
    let correct = 0;
    for (let start = 0; start < s.n; start += evalBatch) {
      const size = Math.min(evalBatch, s.n - start);
      engine.input.set(s.x.subarray(start * inSize, (start + size) * inSize));
      const r = softmaxCe(engine.forward(size), s.y, start, size, classes, null);
      loss += r.loss;
      correct += r.correct;
    }
    return { loss: loss / Math.max(1, s.n), accuracy: correct / Math.max(1, s.n) };
  };

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
    setWeightMap(model, engine.weightMap());
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
      engine.input.set(data.train.x.subarray(idx * inSize, (idx + 1) * inSize), b * inSize);
      labels[b] = data.train.y[idx]!;
    }
    softmaxCe(engine.forward(bs), labels, 0, bs, classes, engine.outputGrad);
    engine.backward(bs);
    engine.update(learningRateAt(cfg, it));

    const done = it + 1;
    if (cb.capture && cb.capture.iteration === done) capture();
    const isEval = done % cfg.evalEvery === 0 || done === cfg.iterations;
    if (isEval) lastLoss = evalPoint(done);
    await clock.after(done, isEval, lastLoss);
  }
  const metrics = clock.stop(`mlp-${path}`);
  const final = evaluate(data.test);
  let earlyStop = final;
  if (best.iteration !== cfg.iterations) {
    const current = snapshot();
    restore(best.weights);
    earlyStop = evaluate(data.test);
    restore(current);
  }
  setWeightMap(model, engine.weightMap());
  return metrics({ final, earlyStop, best, curve });
}
