// Training-throughput measurements behind `ticketsmith bench` and
// scripts/bench-train.ts: examples/s of our own training loop (trainModel with
// a mask, as a pruning round runs it) on whatever TF.js backend this process
// has, and the speed-up of running a round's trials on a WorkerPool. Data is
// synthetic so the benchmark runs offline; dense kernels do not care about
// pixel values, but the MLP engines skip zero inputs, so LeNet's images
// carry MNIST's share of zeros. Backend selection and child processes live in
// src/bench/ (plan.ts, worker.ts).
import * as tf from '@tensorflow/tfjs';
import type { Dataset, Mask, Split } from '../types.js';
import type { TrialKind } from '../sink.js';
import { createModel } from '../models/registry.js';
import { CIFAR_INPUT } from '../models/common.js';
import { getWeightMap, prunableWeights } from '../models/inspect.js';
import { globalDensity, onesMask } from '../pruning/mask.js';
import { pruneToDensity } from '../pruning/magnitude.js';
import { shuffleMask } from '../pruning/random.js';
import { childSeed, mulberry32 } from '../rng.js';
import { toTensors, trainConfigFor, trainModel, RunCancelled, type TrainConfig, type TrainingLoopChoice } from './train.js';
import { mlpPath } from './mlp.js';
import { TrialRunner, WorkerPool, type ModelSource, type TrialExecutor, type TrialJob } from './trial.js';

/** The Lottery Ticket paper's settings for the two benchmarked zoo models. */
export interface BenchModel {
  name: string;
  inputShape: number[];
  numClasses: number;
  /** Adam learning rate of the paper (does not change speed, keeps the loop realistic). */
  learningRate: number;
  /** Steps excluded from timing: first calls allocate, compile and fill caches. */
  warmupSteps: number;
  /**
   * Fraction of input pixels that are exactly 0: MNIST's are 81% zeros, and
   * the MLP engines skip zero inputs, so LeNet's synthetic images have
   * MNIST's share; CIFAR images (Conv-2) have none.
   */
  zeroFraction: number;
}

export const BENCH_MODELS: Readonly<Record<string, BenchModel>> = {
  'lenet-300-100': { name: 'lenet-300-100', inputShape: [28, 28, 1], numClasses: 10, learningRate: 1.2e-3, warmupSteps: 10, zeroFraction: 0.81 },
  'conv-2': { name: 'conv-2', inputShape: [...CIFAR_INPUT], numClasses: 10, learningRate: 2e-4, warmupSteps: 2, zeroFraction: 0 },
};

export function benchModel(name: string): BenchModel {
  const m = BENCH_MODELS[name];
  if (!m) throw new Error(`no benchmark settings for model '${name}'; known: ${Object.keys(BENCH_MODELS).join(', ')}`);
  return m;
}

function randomSplit(n: number, size: number, numClasses: number, zeroFraction: number, next: () => number): Split {
  const x = new Float32Array(n * size);
  for (let i = 0; i < x.length; i++) x[i] = next() < zeroFraction ? 0 : next();
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = Math.floor(next() * numClasses);
  return { x, y, n };
}

/**
 * Random images (pixels 0 with probability `zeroFraction`, else uniform in
 * [0, 1)) with random labels. Validation and test hold `evalSize` examples
 * (one batch in the benchmark) so the evaluations trainModel always runs cost
 * next to nothing.
 */
export function syntheticDataset(
  inputShape: number[],
  numClasses: number,
  n: number,
  evalSize: number,
  seed: number,
  zeroFraction = 0,
): Dataset {
  const size = inputShape.reduce((a, b) => a * b, 1);
  const next = mulberry32(seed);
  return {
    reference: `synthetic:${inputShape.join('x')}`,
    name: 'synthetic',
    sha256: '',
    inputShape: [...inputShape],
    numClasses,
    train: randomSplit(n, size, numClasses, zeroFraction, next),
    validation: randomSplit(evalSize, size, numClasses, zeroFraction, next),
    test: randomSplit(evalSize, size, numClasses, zeroFraction, next),
  };
}

/** A mask keeping `density` of each prunable layer by magnitude (1 = the all-ones mask of round 0). */
export function benchMask(model: tf.LayersModel, density: number): Mask {
  const prunable = prunableWeights(model);
  const ones = onesMask(prunable);
  if (density >= 1) return ones;
  const w = getWeightMap(model);
  const weights: Record<string, Float32Array> = {};
  for (const p of prunable) weights[p.name] = w[p.name]!.values;
  return pruneToDensity(weights, ones, prunable.map((p) => p.name), density, 'layerwise');
}

export interface ThroughputOptions {
  model: string;
  batchSize: number;
  /** Measured steps at most (warm-up not counted). */
  maxSteps: number;
  /** Stop measuring after this many seconds of measured steps (at least one step is measured). */
  seconds: number;
  /** Default: the model's BenchModel.warmupSteps; at least 1. */
  warmupSteps?: number;
  /** Fraction of prunable weights kept (1 = dense). */
  density?: number;
  /** Training examples to draw batches from (default 20 batches). */
  examples?: number;
  seed?: number;
  /** Called after every step, warm-up included (`step` counts from 1). */
  onStep?: (info: StepInfo) => void;
  /** Keep TF.js kernels even where trainModel would take an MLP engine (loop 'tfjs'; wins over `loop`). */
  tfjsLoop?: boolean;
  /** The training loop (the engine config's; TICKETSMITH_MLP for the CLI); default 'auto'. */
  loop?: TrainingLoopChoice;
  /** Fraction of zero input pixels; default the model's BenchModel.zeroFraction. */
  zeroFraction?: number;
}

export interface StepInfo {
  step: number;
  warmup: boolean;
  /** Measured steps so far. */
  measured: number;
  /** Seconds of measured steps so far. */
  elapsedSeconds: number;
}

export interface ThroughputResult {
  model: string;
  batchSize: number;
  /** Actual fraction of prunable weights alive under the mask. */
  density: number;
  /** Fraction of zero input pixels in the synthetic data. */
  zeroFraction: number;
  /** Which loop trainModel took: TF.js kernels, or an MLP engine (simd: dense LeNet on wasm/cpu; csr: late rounds). */
  path: 'tfjs' | 'mlp-simd' | 'mlp-csr';
  warmupSteps: number;
  steps: number;
  seconds: number;
  /** batchSize × steps / seconds. */
  examplesPerSecond: number;
  /** Median step time: tells steady state from noise on a shared machine. */
  medianStepMs: number;
}

/** The paper's Adam at a constant rate for `iterations` steps, evaluating only at the end. */
function benchConfig(spec: BenchModel, batchSize: number, iterations: number, seed: number, loop: TrainingLoopChoice = 'auto'): TrainConfig {
  const settings = { optimizer: 'adam', learningRate: spec.learningRate, momentum: 0, lrSchedule: 'constant', warmupIterations: 0, batchSize, evalEvery: iterations } as const;
  return trainConfigFor(settings, iterations, seed, loop);
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Trains `opts.model` with trainModel on the current backend and times the
 * steps after warm-up. Timing is taken at the per-step progress callback, so
 * trainModel's evaluations (before the first and after the last step) fall
 * outside it: the last step is run but never timed, because the final
 * evaluation precedes its callback.
 */
export async function measureTraining(opts: ThroughputOptions): Promise<ThroughputResult> {
  const spec = benchModel(opts.model);
  const warmup = Math.max(1, opts.warmupSteps ?? spec.warmupSteps);
  const bs = opts.batchSize;
  const seed = opts.seed ?? 1;
  const zeroFraction = opts.zeroFraction ?? spec.zeroFraction;
  const ds = syntheticDataset(spec.inputShape, spec.numClasses, opts.examples ?? bs * 20, bs, seed, zeroFraction);
  const model = createModel(spec.name, { inputShape: spec.inputShape, numClasses: spec.numClasses, seed });
  const mask = benchMask(model, opts.density ?? 1);
  const loop = opts.tfjsLoop ? 'tfjs' : (opts.loop ?? 'auto');
  const engine = mlpPath(model, mask, tf.getBackend(), loop);
  const path = engine ? (`mlp-${engine}` as const) : 'tfjs';
  const data = toTensors(ds);
  const maxSteps = Math.max(1, opts.maxSteps);
  const cfg = benchConfig(spec, bs, warmup + maxSteps + 1, seed, loop);
  const stop = new AbortController();
  const stepMs: number[] = [];
  let t0 = 0;
  let last = 0;
  try {
    await trainModel(model, data, mask, cfg, {
      signal: stop.signal,
      progressEveryMs: 0,
      onProgress: ({ step }) => {
        const now = performance.now();
        if (step === warmup) t0 = now;
        if (step > warmup && step <= warmup + maxSteps) {
          stepMs.push(now - last);
          if ((now - t0) / 1000 >= opts.seconds) stop.abort();
        }
        last = now;
        if (step <= warmup + maxSteps) {
          opts.onStep?.({ step, warmup: step <= warmup, measured: stepMs.length, elapsedSeconds: step > warmup ? (now - t0) / 1000 : 0 });
        }
      },
    });
  } catch (err) {
    if (!(err instanceof RunCancelled)) throw err;
  } finally {
    data.dispose();
    model.dispose();
  }
  const seconds = stepMs.reduce((a, b) => a + b, 0) / 1000;
  return {
    model: spec.name,
    batchSize: bs,
    density: globalDensity(mask),
    zeroFraction,
    path,
    warmupSteps: warmup,
    steps: stepMs.length,
    seconds,
    examplesPerSecond: (stepMs.length * bs) / Math.max(seconds, 1e-9),
    medianStepMs: median(stepMs),
  };
}

export interface ParallelOptions {
  model: string;
  batchSize: number;
  /** Training steps of each trial. */
  steps: number;
  /** Worker threads of the pool. */
  parallelism: number;
  /** Backend each pool thread initialises (the sequential runner uses this process's). */
  backend?: string;
  density?: number;
  seed?: number;
  /** Sequential and pool timings alternate this many times (default 1). */
  repeats?: number;
  /** The training loop of every trial; default 'auto'. */
  loop?: TrainingLoopChoice;
}

export interface ExecutorTiming {
  seconds: number;
  /** Examples of all trials together per wall-clock second. */
  examplesPerSecond: number;
}

export interface ParallelResult {
  model: string;
  trials: TrialKind[];
  stepsPerTrial: number;
  repeats: number;
  parallelism: number;
  sequential: ExecutorTiming;
  pool: ExecutorTiming;
  /** pool / sequential examples per second. */
  speedup: number;
  /** Best possible speed-up for equal trials: trials / ceil(trials / parallelism). */
  idealSpeedup: number;
}

/** A round's three trials (ticket, random reinit, random structure) as the engine builds them. */
export function roundJobs(model: tf.LayersModel, fresh: tf.LayersModel, density: number, cfg: TrainConfig, seed: number): TrialJob[] {
  const mask = benchMask(model, density);
  const shuffled = shuffleMask(mask, childSeed(seed, 'shuffle'));
  const init = getWeightMap(model);
  const reinit = getWeightMap(fresh);
  return [
    { round: 0, trial: 'ticket', start: init, mask, cfg },
    { round: 0, trial: 'reinit', start: reinit, mask, cfg },
    { round: 0, trial: 'shuffle', start: init, mask: shuffled, cfg },
  ];
}

async function timeJobs(exec: TrialExecutor, jobs: TrialJob[]): Promise<number> {
  const t0 = performance.now();
  await Promise.all(jobs.map((j) => exec.run(j, {})));
  return (performance.now() - t0) / 1000;
}

/**
 * Times a round's ticket and its two controls run one after another in this
 * thread (TrialRunner) and side by side on a WorkerPool, alternating the two
 * `repeats` times so that drifting load from other processes hits both alike.
 * Each executor first runs a short warm-up trial per slot, so thread start-up,
 * backend initialisation and the data upload are not timed; per-trial work the
 * engine really does (setting weights, evaluations, reading weights back) is.
 */
export async function measureParallelTrials(opts: ParallelOptions): Promise<ParallelResult> {
  const spec = benchModel(opts.model);
  const seed = opts.seed ?? 1;
  const bs = opts.batchSize;
  const repeats = Math.max(1, opts.repeats ?? 1);
  const ds = syntheticDataset(spec.inputShape, spec.numClasses, bs * 20, bs, seed, spec.zeroFraction);
  const source: ModelSource = { zoo: spec.name, inputShape: spec.inputShape, numClasses: spec.numClasses, seed };
  const model = createModel(spec.name, source);
  const fresh = createModel(spec.name, { ...source, seed: childSeed(seed, 'reinit') });
  const cfg = (steps: number) => benchConfig(spec, bs, steps, seed, opts.loop);
  const jobs = roundJobs(model, fresh, opts.density ?? 1, cfg(opts.steps), seed);
  const warmJobs = roundJobs(model, fresh, opts.density ?? 1, cfg(spec.warmupSteps), seed);
  model.dispose();
  fresh.dispose();
  const examples = repeats * jobs.length * opts.steps * bs;

  const runner = new TrialRunner(ds, source);
  const pool = new WorkerPool(opts.parallelism, ds, source, opts.backend);
  let sequential = 0;
  let parallel = 0;
  try {
    await runner.run(warmJobs[0]!, {});
    await Promise.all(warmJobs.slice(0, opts.parallelism).map((j) => pool.run(j, {})));
    for (let r = 0; r < repeats; r++) {
      sequential += await timeJobs(runner, jobs);
      parallel += await timeJobs(pool, jobs);
    }
  } finally {
    await runner.dispose();
    await pool.dispose();
  }
  const seq = { seconds: sequential, examplesPerSecond: examples / sequential };
  const par = { seconds: parallel, examplesPerSecond: examples / parallel };
  return {
    model: spec.name,
    trials: jobs.map((j) => j.trial),
    stepsPerTrial: opts.steps,
    repeats,
    parallelism: opts.parallelism,
    sequential: seq,
    pool: par,
    speedup: par.examplesPerSecond / seq.examplesPerSecond,
    idealSpeedup: jobs.length / Math.ceil(jobs.length / opts.parallelism),
  };
}
