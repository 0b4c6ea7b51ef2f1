// The TF.js training loop: a hand-written step (variableGrads + optimiser)
// with the mask re-applied after every update, so pruned weights stay exactly
// zero (also under Adam's moments, because their gradients are masked too).
// Data lives on the backend as tensors made once; batches are gathered by a
// shuffled index, and nothing is read back to JS inside the loop except at
// evaluation points.
import * as tf from '@tensorflow/tfjs';
import type { Dataset, Mask, Split } from '../types.js';
import type { TrainingLoop, TrainingMetrics } from '../sink.js';
import { mulberry32 as rng, shuffleInPlace } from '../rng.js';
import { weightVariables } from '../models/inspect.js';
import { mlpPath, trainMlp } from './mlp.js';

export interface TrainConfig {
  optimizer: 'adam' | 'sgd' | 'momentum';
  learningRate: number;
  momentum: number;
  lrSchedule: 'constant' | 'cosine' | 'step';
  warmupIterations: number;
  batchSize: number;
  /** Total iterations T of the schedule. */
  iterations: number;
  /** Iteration to start from (late resetting continues the schedule from k). */
  startIteration: number;
  evalEvery: number;
  /** Seed of the data order. */
  seed: number;
}

/** The training settings of a run spec, for `iterations` iterations from 0 with data order `seed`. */
export function trainConfigFor(
  spec: Pick<TrainConfig, 'optimizer' | 'learningRate' | 'momentum' | 'lrSchedule' | 'warmupIterations' | 'batchSize' | 'evalEvery'>,
  iterations: number,
  seed: number,
): TrainConfig {
  const { optimizer, learningRate, momentum, lrSchedule, warmupIterations, batchSize, evalEvery } = spec;
  return { optimizer, learningRate, momentum, lrSchedule, warmupIterations, batchSize, evalEvery, iterations, startIteration: 0, seed };
}

export interface ProgressInfo {
  step: number;
  totalSteps: number;
  examplesPerSecond: number;
  etaSeconds: number;
  validationLoss?: number;
}

export interface TrainCallbacks {
  signal?: AbortSignal;
  /** Called at most every `progressEveryMs` (default 500 ms) and at each evaluation. */
  onProgress?: (p: ProgressInfo) => void;
  progressEveryMs?: number;
  /** Called once when `iteration` steps have been taken (0 = before the first step). */
  capture?: { iteration: number; fn: () => void };
}

export class RunCancelled extends Error {
  constructor() {
    super('run cancelled');
    this.name = 'RunCancelled';
  }
}

interface SplitTensors {
  x: tf.Tensor;
  y: tf.Tensor2D;
  labels: tf.Tensor1D;
  n: number;
}

export interface TrainData {
  train: SplitTensors;
  validation: SplitTensors;
  test: SplitTensors;
  /** The arrays the tensors were made from (the MLP engines train on these directly). */
  source: { train: Split; validation: Split; test: Split };
  dispose(): void;
}

function splitTensors(s: Split, shape: number[], numClasses: number): SplitTensors {
  const labels = tf.tensor1d(s.y, 'int32');
  const y = tf.tidy(() => tf.oneHot(labels, numClasses).toFloat() as tf.Tensor2D);
  return { x: tf.tensor(s.x, [s.n, ...shape]), y, labels, n: s.n };
}

/** Upload a dataset to the backend once; dispose when the run ends. */
export function toTensors(ds: Dataset): TrainData {
  const train = splitTensors(ds.train, ds.inputShape, ds.numClasses);
  const validation = splitTensors(ds.validation, ds.inputShape, ds.numClasses);
  const test = splitTensors(ds.test, ds.inputShape, ds.numClasses);
  return {
    train,
    validation,
    test,
    source: { train: ds.train, validation: ds.validation, test: ds.test },
    dispose() {
      for (const s of [train, validation, test]) tf.dispose([s.x, s.y, s.labels]);
    },
  };
}

function outputIsSoftmax(model: tf.LayersModel): boolean {
  const last = model.layers[model.layers.length - 1]!;
  const cfg = last.getConfig() as { activation?: string };
  return cfg.activation === 'softmax' || last.getClassName() === 'Softmax';
}

function lossFn(model: tf.LayersModel): (y: tf.Tensor, out: tf.Tensor) => tf.Scalar {
  if (outputIsSoftmax(model)) {
    return (y, p) => tf.metrics.categoricalCrossentropy(y, p).mean() as tf.Scalar;
  }
  return (y, logits) => tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
}

/** Mean loss and accuracy over a split, in batches, read back once. */
export function evaluate(model: tf.LayersModel, s: SplitTensors, batchSize = 1000): { loss: number; accuracy: number } {
  const loss = lossFn(model);
  const [lossSum, correct] = tf.tidy(() => {
    let lossSum: tf.Tensor = tf.scalar(0);
    let correct: tf.Tensor = tf.scalar(0);
    for (let start = 0; start < s.n; start += batchSize) {
      const size = Math.min(batchSize, s.n - start);
      const x = s.x.slice(start, size);
      const y = s.y.slice(start, size);
      const out = model.predict(x) as tf.Tensor;
      lossSum = lossSum.add(loss(y, out).mul(size));
      correct = correct.add(out.argMax(-1).equal(s.labels.slice(start, size)).sum());
    }
    return [lossSum, correct];
  });
  const l = (lossSum.dataSync()[0] ?? 0) / Math.max(1, s.n);
  const c = (correct.dataSync()[0] ?? 0) / Math.max(1, s.n);
  tf.dispose([lossSum, correct]);
  return { loss: l, accuracy: c };
}

function makeOptimizer(cfg: TrainConfig): tf.Optimizer {
  if (cfg.optimizer === 'adam') return tf.train.adam(cfg.learningRate);
  if (cfg.optimizer === 'momentum') return tf.train.momentum(cfg.learningRate, cfg.momentum);
  return tf.train.sgd(cfg.learningRate);
}

/** Learning rate at iteration t of T. */
export function learningRateAt(cfg: TrainConfig, t: number): number {
  let lr = cfg.learningRate;
  if (cfg.lrSchedule === 'cosine') lr *= 0.5 * (1 + Math.cos((Math.PI * t) / cfg.iterations));
  else if (cfg.lrSchedule === 'step') lr *= t >= 0.75 * cfg.iterations ? 0.01 : t >= 0.5 * cfg.iterations ? 0.1 : 1;
  if (cfg.warmupIterations > 0 && t < cfg.warmupIterations) lr *= (t + 1) / cfg.warmupIterations;
  return lr;
}

function setLearningRate(opt: tf.Optimizer, lr: number): void {
  // SGD and momentum cache the rate in a scalar behind setLearningRate; Adam reads the field each step.
  const o = opt as unknown as { setLearningRate?: (lr: number) => void; learningRate: number };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Progress and pacing shared by both training loops: reports at most every
 * `progressEveryMs` and at evaluations, and yields to the event loop every
 * ~50 ms so timers, signals and I/O run during long trainings.
 */
export function trainingClock(cfg: TrainConfig, batchSize: number, cb: TrainCallbacks) {
  const totalSteps = cfg.iterations - cfg.startIteration;
  const everyMs = cb.progressEveryMs ?? 500;
  const started = performance.now();
  let lastReport = started;
  let lastYield = started;
  return {
    async after(done: number, isEval: boolean, validationLoss: number): Promise<void> {
      const now = performance.now();
      if (cb.onProgress && (isEval || now - lastReport >= everyMs)) {
        lastReport = now;
        const step = done - cfg.startIteration;
        const eps = (step * batchSize) / ((now - started) / 1000);
        cb.onProgress({ step, totalSteps, examplesPerSecond: eps, etaSeconds: ((totalSteps - step) * batchSize) / Math.max(eps, 1e-9), validationLoss });
      }
      if (now - lastYield > 50) {
        lastYield = now;
        await yieldToLoop();
      }
    },
    /** The training's metrics, timed from the start to this call (before the final test evaluations). */
    stop(trainingLoop: TrainingLoop): (r: {
      final: { loss: number; accuracy: number };
      earlyStop: { accuracy: number };
      best: { loss: number; iteration: number };
      curve: Array<[number, number, number]>;
    }) => TrainingMetrics {
      const trainSeconds = (performance.now() - started) / 1000;
      const examplesPerSecond = (totalSteps * batchSize) / Math.max(trainSeconds, 1e-9);
      return ({ final, earlyStop, best, curve }) => ({
        finalTestAccuracy: final.accuracy,
        finalTestLoss: final.loss,
        earlyStopIteration: best.iteration,
        earlyStopTestAccuracy: earlyStop.accuracy,
        earlyStopValidationLoss: best.loss,
        curve,
        trainSeconds,
        examplesPerSecond,
        trainingLoop,
      });
    },
  };
}

/**
 * Train `model` in place from `cfg.startIteration` to `cfg.iterations` with
 * `mask` enforced; returns final and early-stop metrics.
 */
export async function trainModel(
  model: tf.LayersModel,
  data: TrainData,
  mask: Mask | null,
  cfg: TrainConfig,
  cb: TrainCallbacks = {},
): Promise<TrainingMetrics> {
  const fast = mlpPath(model, mask, tf.getBackend());
  if (fast) return trainMlp(model, data.source, mask, cfg, cb, fast);
  const vars = weightVariables(model);
  const trainable = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const maskTensors = new Map<tf.Variable, tf.Tensor>();
  if (mask) {
    for (const [name, m] of Object.entries(mask)) {
      const v = vars.get(name)?.read() as tf.Variable | undefined;
      if (!v) throw new Error(`mask names weight '${name}', which the model does not have`);
      if (v.size !== m.length) throw new Error(`mask for '${name}' has ${m.length} entries, weight has ${v.size}`);
      const t = tf.tensor(m, v.shape);
      maskTensors.set(v, t);
      const masked = tf.tidy(() => v.mul(t));
      v.assign(masked);
      masked.dispose();
    }
  }
  const optimizer = makeOptimizer(cfg);
  const loss = lossFn(model);
  const n = data.train.n;
  const bs = Math.min(cfg.batchSize, n);
  const next = rng(cfg.seed);
  let order = new Int32Array(0);
  let cursor = 0;
  const nextBatch = (): tf.Tensor1D => {
    if (cursor + bs > order.length) {
      order = shuffleInPlace(Int32Array.from({ length: n }, (_, i) => i), next);
      cursor = 0;
    }
    const idx = tf.tensor1d(order.subarray(cursor, cursor + bs), 'int32');
    cursor += bs;
    return idx;
  };
  // Replay the data order of the skipped iterations so a rewound run sees the
  // same batches as the original from k on.
  for (let i = 0; i < cfg.startIteration; i++) {
    if (cursor + bs > order.length) {
      order = shuffleInPlace(Int32Array.from({ length: n }, (_, j) => j), next);
      cursor = 0;
    }
    cursor += bs;
  }

  const curve: Array<[number, number, number]> = [];
  let best = { loss: Infinity, iteration: cfg.startIteration };
  const snap: { best: tf.Tensor[] | null } = { best: null };
  const snapshotBest = () => {
    if (snap.best) tf.dispose(snap.best);
    snap.best = model.weights.map((w) => w.read().clone());
  };
  const evalPoint = (iteration: number) => {
    const v = evaluate(model, data.validation);
    curve.push([iteration, v.loss, v.accuracy]);
    if (v.loss < best.loss) {
      best = { loss: v.loss, iteration };
      snapshotBest();
    }
    return v;
  };

  const clock = trainingClock(cfg, bs, cb);
  let lastLoss = Infinity;
  const constantLr = cfg.lrSchedule === 'constant' && cfg.warmupIterations === 0;
  if (cb.capture && cb.capture.iteration === cfg.startIteration) cb.capture.fn();
  try {
    lastLoss = evalPoint(cfg.startIteration).loss;
    for (let it = cfg.startIteration; it < cfg.iterations; it++) {
      if (cb.signal?.aborted) throw new RunCancelled();
      if (!constantLr) setLearningRate(optimizer, learningRateAt(cfg, it));
      tf.tidy(() => {
        const idx = nextBatch();
        const xb = data.train.x.gather(idx);
        const yb = data.train.y.gather(idx);
        const { grads } = tf.variableGrads(() => loss(yb, model.apply(xb, { training: true }) as tf.Tensor), trainable);
        for (const [v, m] of maskTensors) {
          const g = grads[v.name];
          if (g) grads[v.name] = g.mul(m);
        }
        optimizer.applyGradients(grads);
        for (const [v, m] of maskTensors) v.assign(v.mul(m));
      });
      const done = it + 1;
      if (cb.capture && cb.capture.iteration === done) cb.capture.fn();
      const isEval = done % cfg.evalEvery === 0 || done === cfg.iterations;
      if (isEval) lastLoss = evalPoint(done).loss;
      await clock.after(done, isEval, lastLoss);
    }
    const metrics = clock.stop('tfjs');
    const final = evaluate(model, data.test);
    let earlyStop = final;
    if (snap.best && best.iteration !== cfg.iterations) {
      const current = model.weights.map((w) => w.read().clone());
      model.setWeights(snap.best);
      earlyStop = evaluate(model, data.test);
      model.setWeights(current);
      tf.dispose(current);
    }
    return metrics({ final, earlyStop, best, curve });
  } finally {
    if (snap.best) tf.dispose(snap.best);
    tf.dispose([...maskTensors.values()]);
    optimizer.dispose();
    // tfjs 4.22's MomentumOptimizer.dispose() forgets the learning-rate scalar it inherits from SGD.
    (optimizer as unknown as { c?: tf.Tensor }).c?.dispose();
  }
}
