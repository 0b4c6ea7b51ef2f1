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
import type { TrainingLoop, TrialKind } from '../sink.js';
import { createModel } from '../models/registry.js';
import { CIFAR_INPUT } from '../models/common.js';
import { getWeightMap, prunableWeights, weightVariables } from '../models/inspect.js';
import { globalDensity, onesMask } from '../pruning/mask.js';
import { pruneToDensity } from '../pruning/magnitude.js';
import { shuffleMask } from '../pruning/random.js';
import { childSeed, mulberry32 } from '../rng.js';
import { sharedFloat32, sharedInt32 } from '../data/shared.js';
import { toTensors, trainConfigFor, trainModel, RunCancelled, type TrainConfig, type TrainingLoopChoice } from './train.js';
import { cnnEngine, cnnPath } from './cnn/index.js';
import { softmaxCe } from './engine-stepper.js';
import { computeThreads } from '../../runtime/backend.js';
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

/**
 * Issue 12's larger conv nets on CIFAR's shape: the paper's Conv-4 and Conv-6
 * (Adam 3e-4) and ResNet-20 (the paper trains it with SGD; Adam here, like
 * every other row, so the rows compare one optimiser).
 */
export const CONV_BENCH_MODELS: Readonly<Record<string, BenchModel>> = {
  'conv-4': { name: 'conv-4', inputShape: [...CIFAR_INPUT], numClasses: 10, learningRate: 3e-4, warmupSteps: 2, zeroFraction: 0 },
  'conv-6': { name: 'conv-6', inputShape: [...CIFAR_INPUT], numClasses: 10, learningRate: 3e-4, warmupSteps: 2, zeroFraction: 0 },
  'resnet-20': { name: 'resnet-20', inputShape: [...CIFAR_INPUT], numClasses: 10, learningRate: 1e-3, warmupSteps: 2, zeroFraction: 0 },
};

/** Every benchmarked model, in the order the reports list them. */
export const ALL_BENCH_MODELS: Readonly<Record<string, BenchModel>> = { ...BENCH_MODELS, ...CONV_BENCH_MODELS };

export function benchModel(name: string): BenchModel {
  const m = ALL_BENCH_MODELS[name];
  if (!m) throw new Error(`no benchmark settings for model '${name}'; known: ${Object.keys(ALL_BENCH_MODELS).join(', ')}`);
  return m;
}

function randomSplit(n: number, size: number, numClasses: number, zeroFraction: number, next: () => number): Split {
  // Shared, as loaded datasets are: a trial pool's workers then hold one copy.
  const x = sharedFloat32(n * size);
  for (let i = 0; i < x.length; i++) x[i] = next() < zeroFraction ? 0 : next();
  const y = sharedInt32(n);
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
  /**
   * Which loop trainModel took, as the run records it (TrainingMetrics.trainingLoop): TF.js kernels, an MLP
   * engine (simd: dense LeNet on wasm/cpu; csr: late rounds), or whatever loop trainModel picks for the model.
   */
  path: TrainingLoop;
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
  let path: TrainingLoop | undefined;
  const data = toTensors(ds);
  const maxSteps = Math.max(1, opts.maxSteps);
  const cfg = benchConfig(spec, bs, warmup + maxSteps + 1, seed, loop);
  const stop = new AbortController();
  const stepMs: number[] = [];
  let t0 = 0;
  let last = 0;
  try {
    const metrics = await trainModel(model, data, mask, cfg, {
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
    path = metrics.trainingLoop;
  } catch (err) {
    if (!(err instanceof RunCancelled)) throw err;
  }
  try {
    // A stopped run returns no metrics: a run of 0 iterations (one evaluation of a batch, no step) on the same
    // model, mask and loop choice names the loop trainModel takes, as a pruning round would record it.
    path ??= (await trainModel(model, data, mask, { ...cfg, iterations: 0 })).trainingLoop;
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
    path: path ?? 'tfjs',
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

export interface RssOptions {
  model: string;
  batchSize: number;
  /** Pruning rounds (round r keeps 0.8^r of each layer's weights, as IMP's default rate would, unless `densities` says). */
  rounds: number;
  /** Fraction of weights each round keeps (length `rounds`); default 0.8^r. */
  densities?: number[];
  /** Training steps of each trial. */
  steps: number;
  /** Worker threads of the trial pool: 3 trains a round's ticket and both controls side by side. */
  parallelism: number;
  /** Training examples; validation and test get `evalExamples` each. Default CIFAR-10's 45,000 / 5,000. */
  examples?: number;
  evalExamples?: number;
  backend?: string;
  seed?: number;
  loop?: TrainingLoopChoice;
}

export interface RssResult {
  model: string;
  rounds: number;
  stepsPerTrial: number;
  parallelism: number;
  examples: number;
  evalExamples: number;
  trials: number;
  /** Fraction of weights each round kept. */
  densities?: number[];
  /** Peak resident set of this process, worker threads included (process.resourceUsage().maxRSS). */
  peakRssBytes: number;
  /** The peak so far after each round: whether it still climbs or has settled. */
  peakByRound?: number[];
  seconds: number;
  /**
   * What ran: the compiled build (dist/, as the service and the CLI run), or
   * the TypeScript sources through tsx, whose loader and transformed modules
   * cost every thread more (about 90 MB a pool worker, 55 MB the main thread).
   */
  code?: 'compiled' | 'tsx';
  /** glibc's MALLOC_ARENA_MAX the process ran with (null: glibc's default, up to 8 arenas a core). */
  mallocArenaMax?: string | null;
}

/**
 * The peak memory of an IMP job with controls: every round's ticket, random
 * reinit and random structure trained side by side on the engine's trial
 * WorkerPool (each thread holds the dataset and its own backend, as in a run),
 * evaluating at the start and end of each trial. Run it in a process of its
 * own: maxRSS is the process's high-water mark, whatever ran before.
 */
export async function measureImpRss(opts: RssOptions): Promise<RssResult> {
  const spec = benchModel(opts.model);
  const seed = opts.seed ?? 1;
  const examples = opts.examples ?? 45_000;
  const evalExamples = opts.evalExamples ?? 5_000;
  const ds = syntheticDataset(spec.inputShape, spec.numClasses, examples, evalExamples, seed, spec.zeroFraction);
  const source: ModelSource = { zoo: spec.name, inputShape: spec.inputShape, numClasses: spec.numClasses, seed };
  const model = createModel(spec.name, source);
  const fresh = createModel(spec.name, { ...source, seed: childSeed(seed, 'reinit') });
  const cfg = benchConfig(spec, opts.batchSize, opts.steps, seed, opts.loop);
  const started = performance.now();
  const pool = new WorkerPool(opts.parallelism, ds, source, opts.backend);
  let trials = 0;
  const densities = opts.densities ?? Array.from({ length: opts.rounds }, (_, r) => 0.8 ** r);
  if (densities.length !== opts.rounds) throw new Error(`measureImpRss: ${densities.length} densities for ${opts.rounds} rounds`);
  const peakByRound: number[] = [];
  try {
    for (let r = 0; r < opts.rounds; r++) {
      const jobs = roundJobs(model, fresh, densities[r]!, cfg, seed).map((j) => ({ ...j, round: r }));
      await Promise.all(jobs.map((j) => pool.run(j, {})));
      trials += jobs.length;
      peakByRound.push(process.resourceUsage().maxRSS * 1024);
    }
  } finally {
    await pool.dispose();
    model.dispose();
    fresh.dispose();
  }
  return {
    model: spec.name,
    rounds: opts.rounds,
    stepsPerTrial: opts.steps,
    parallelism: opts.parallelism,
    examples,
    evalExamples,
    trials,
    densities,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    peakByRound,
    seconds: (performance.now() - started) / 1000,
    code: import.meta.url.endsWith('.js') ? 'compiled' : 'tsx',
  };
}

/** Where one training step's time goes: milliseconds per layer and pass ('forward', 'input gradient', ...). */
export type StepProfile = { layer: string; pass: string; ms: number }[];

/** One training loop's StepProfile of a model on a backend, and its whole step timed the same way. */
export interface LoopProfile {
  /** The loop profiled ('tfjs', or an engine's TrainingLoop name). */
  loop: string;
  backend: string;
  model: string;
  batchSize: number;
  /** Runs each part was timed over (the median is kept), after one untimed run. */
  repeats: number;
  profile: StepProfile;
  /** Median of whole steps of the same loop, for the sum of the parts to be read against. */
  stepMs?: number;
  /** How the parts were timed. */
  method: string;
}

export interface ProfileOptions {
  model: string;
  batchSize: number;
  repeats?: number;
  seed?: number;
  /** Fraction of prunable weights kept (default 1: the dense round). */
  density?: number;
}

/** Median milliseconds of `fn` over `repeats` runs after one untimed run; each run's tensors are freed. */
function timeMs(fn: () => tf.TensorContainer, repeats: number): number {
  const times: number[] = [];
  for (let i = 0; i <= repeats; i++) {
    const t0 = performance.now();
    const out = tf.tidy(fn);
    const t1 = performance.now();
    tf.dispose(out);
    if (i > 0) times.push(t1 - t0);
  }
  return median(times);
}

const TFJS_PROFILE_METHOD =
  'each sequential layer alone on its input from a forward pass of one batch (training mode), kernels run synchronously on this backend: ' +
  "forward = layer.apply; weight gradient = tf.variableGrads of sum(output × a fixed random output gradient) over the layer's weights, " +
  'less the forward and the sum/multiply; input gradient = the same over the weights and the input, less the weight-gradient run ' +
  "(so the activation's gradient counts once, in the weight gradient where the layer has weights); layers up to the first with weights get " +
  'no input gradient in training, and none is listed; optimiser update = Adam applyGradients on the layer\'s weights with the mask multiplications ' +
  'of the TF.js step (gradients and weights); loss = softmax cross-entropy and its gradient; batch gather = the indexed gather of a batch.';

/**
 * StepProfile of the TF.js loop (tfjs.ts's step) on the current backend, for
 * a Sequential zoo model (LeNet, Conv-2/4/6): the step cut into its layers'
 * forward passes, gradients and optimiser updates, each timed alone (see
 * TFJS_PROFILE_METHOD). The parts are timed apart, so their sum differs from
 * a whole step by what TF.js shares or overlaps; `stepMs` gives the whole.
 */
export async function profileTfjsStep(opts: ProfileOptions): Promise<LoopProfile> {
  const spec = benchModel(opts.model);
  const bs = opts.batchSize;
  const repeats = Math.max(1, opts.repeats ?? 5);
  const seed = opts.seed ?? 1;
  const model = createModel(spec.name, { inputShape: spec.inputShape, numClasses: spec.numClasses, seed });
  if (!(model instanceof tf.Sequential)) {
    model.dispose();
    throw new Error(`${spec.name}: the TF.js step profile takes a Sequential model`);
  }
  const ds = syntheticDataset(spec.inputShape, spec.numClasses, bs * 4, bs, seed, spec.zeroFraction);
  const data = toTensors(ds);
  const mask = benchMask(model, opts.density ?? 1);
  const vars = weightVariables(model);
  const masks = new Map(Object.entries(mask).map(([name, m]) => {
    const v = vars.get(name)!.read() as tf.Variable;
    return [v, tf.tensor(m, v.shape)] as const;
  }));
  // One Adam per layer: TF.js optimisers keep their moments by position in the gradient list.
  const optimizers: tf.Optimizer[] = [];
  const profile: StepProfile = [];
  const next = mulberry32(seed);
  const random = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next() - 0.5), shape);
  const keep: tf.Tensor[] = [];
  try {
    const idx = tf.tensor1d(Int32Array.from({ length: bs }, (_, i) => i), 'int32');
    keep.push(idx);
    profile.push({ layer: 'input', pass: 'batch gather', ms: timeMs(() => [data.train.x.gather(idx), data.train.y.gather(idx)], repeats) });
    let x = data.train.x.gather(idx);
    keep.push(x);
    let needsInputGradient = false;
    model.layers.forEach((layer, i) => {
      const out = tf.tidy(() => layer.apply(x, { training: true }) as tf.Tensor);
      keep.push(out);
      const dy = random(out.shape);
      keep.push(dy);
      const name = layer.name;
      const weights = layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
      const input = x;
      const forward = timeMs(() => layer.apply(input, { training: true }) as tf.Tensor, repeats);
      profile.push({ layer: name, pass: 'forward', ms: forward });
      const overhead = timeMs(() => tf.grad((o: tf.Tensor) => o.mul(dy).sum())(out), repeats);
      const weightRun = weights.length > 0 ? timeMs(() => tf.variableGrads(() => (layer.apply(input, { training: true }) as tf.Tensor).mul(dy).sum() as tf.Scalar, weights).grads, repeats) : forward + overhead;
      if (weights.length > 0) profile.push({ layer: name, pass: 'weight gradient', ms: Math.max(0, weightRun - forward - overhead) });
      // Backprop stops at the first layer with weights: layers before it get no input gradient in training.
      if (needsInputGradient) {
        const xVar = tf.variable(input, true, `profile_x_${i}`);
        keep.push(xVar);
        const bothRun = timeMs(() => tf.variableGrads(() => (layer.apply(xVar, { training: true }) as tf.Tensor).mul(dy).sum() as tf.Scalar, [...weights, xVar]).grads, repeats);
        profile.push({ layer: name, pass: 'input gradient', ms: Math.max(0, bothRun - weightRun) });
      }
      if (weights.length > 0) {
        const grads = Object.fromEntries(weights.map((w) => [w.name, random(w.shape)]));
        keep.push(...Object.values(grads));
        const optimizer = tf.train.adam(spec.learningRate);
        optimizers.push(optimizer);
        const update = () => {
          const g = weights.map((w) => ({ name: w.name, tensor: masks.has(w) ? grads[w.name]!.mul(masks.get(w)!) : grads[w.name]! }));
          optimizer.applyGradients(g);
          for (const w of weights) if (masks.has(w)) w.assign(w.mul(masks.get(w)!));
          return [];
        };
        profile.push({ layer: name, pass: 'optimiser update', ms: timeMs(update, repeats) });
      }
      needsInputGradient ||= weights.length > 0;
      x = out;
    });
    const yb = data.train.y.gather(idx);
    keep.push(yb);
    const logits = x;
    profile.push({ layer: 'loss', pass: 'forward + gradient', ms: timeMs(() => tf.grad((l: tf.Tensor) => tf.losses.softmaxCrossEntropy(yb, l) as tf.Scalar)(logits), repeats) });
  } finally {
    tf.dispose(keep);
    tf.dispose([...masks.values()]);
    for (const o of optimizers) o.dispose();
    data.dispose();
    model.dispose();
  }
  const whole = await measureTraining({ model: spec.name, batchSize: bs, maxSteps: repeats, seconds: 1e9, seed, loop: 'tfjs' });
  return { loop: 'tfjs', backend: tf.getBackend(), model: spec.name, batchSize: bs, repeats, profile, stepMs: whole.medianStepMs, method: TFJS_PROFILE_METHOD };
}

const CNN_PROFILE_METHOD =
  "whole training steps of the conv engine (cnnEngine with profiling), after one untimed step: each node's forward pass, its weight " +
  "gradient (with the node's own backward bookkeeping) and the input gradient it writes, timed on the calling thread's slice of the batch " +
  "(so waits for the other threads count where a node ends in a barrier or the pass ends), averaged over the steps; optimiser update = " +
  'summing the threads\' gradients and the masked Adam pass, each thread on its share of every tensor (timed on the calling thread); loss = softmax cross-entropy and its gradient in JS.';

/** StepProfile of the conv engine (loop 'cnn-simd') training a zoo conv net, or null where the engine does not train it. */
export async function profileCnnStep(opts: ProfileOptions): Promise<LoopProfile | null> {
  const spec = benchModel(opts.model);
  const bs = opts.batchSize;
  const repeats = Math.max(1, opts.repeats ?? 5);
  const seed = opts.seed ?? 1;
  const model = createModel(spec.name, { inputShape: spec.inputShape, numClasses: spec.numClasses, seed });
  try {
    const graph = cnnPath(model, tf.getBackend(), 'cnn-simd');
    if (!graph) return null;
    const ds = syntheticDataset(spec.inputShape, spec.numClasses, bs * 4, bs, seed, spec.zeroFraction);
    const cfg = benchConfig(spec, bs, repeats + 1, seed, 'cnn-simd');
    const engine = cnnEngine(graph, getWeightMap(model), benchMask(model, opts.density ?? 1), cfg, bs, Math.max(1, Math.min(computeThreads(), bs)), { profile: true });
    const size = ds.train.x.length / ds.train.n;
    const labels = ds.train.y.subarray(0, bs);
    let lossMs = 0;
    const steps: number[] = [];
    let before: StepProfile = [];
    try {
      for (let i = 0; i <= repeats; i++) {
        if (i === 1) before = engine.profile!();
        const t0 = performance.now();
        engine.input.set(ds.train.x.subarray(0, bs * size));
        const logits = engine.forward(bs, true);
        const t1 = performance.now();
        softmaxCe(logits, labels, 0, bs, spec.numClasses, engine.outputGrad);
        if (i > 0) lossMs += performance.now() - t1;
        engine.backward(bs);
        engine.update(cfg.learningRate);
        if (i > 0) steps.push(performance.now() - t0);
      }
      const after = engine.profile!();
      const profile: StepProfile = after.map((r, i) => ({ ...r, ms: (r.ms - (before[i]?.ms ?? 0)) / repeats }));
      profile.push({ layer: 'loss', pass: 'forward + gradient', ms: lossMs / repeats });
      return { loop: 'cnn-simd', backend: tf.getBackend(), model: spec.name, batchSize: bs, repeats, profile, stepMs: median(steps), method: CNN_PROFILE_METHOD };
    } finally {
      engine.dispose?.();
    }
  } finally {
    model.dispose();
  }
}

/**
 * The step profilers `bench --profile` runs, by loop. An engine adds its own
 * (its StepProfile from inside its step); each returns null where it does not
 * train the model on this backend.
 */
export const STEP_PROFILERS: Record<string, (o: ProfileOptions) => Promise<LoopProfile | null>> = {
  tfjs: profileTfjsStep,
  'cnn-simd': profileCnnStep,
};

/**
 * Loops' profiles side by side: one row per (layer, pass) in the order first
 * seen, a column of milliseconds and share of the parts' sum per loop, then
 * the sum of the parts and the whole step as measured.
 */
export function formatStepProfiles(profiles: readonly LoopProfile[], markdown = false): string {
  if (profiles.length === 0) return 'no step profile';
  const keys: Array<[string, string]> = [];
  for (const p of profiles) {
    for (const r of p.profile) if (!keys.some(([l, s]) => l === r.layer && s === r.pass)) keys.push([r.layer, r.pass]);
  }
  const totals = profiles.map((p) => p.profile.reduce((t, r) => t + r.ms, 0));
  const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const cell = (p: LoopProfile, total: number, layer: string, pass: string) => {
    const rows = p.profile.filter((r) => r.layer === layer && r.pass === pass);
    if (rows.length === 0) return '-';
    const t = rows.reduce((a, r) => a + r.ms, 0);
    return `${ms(t)} (${total > 0 ? ((100 * t) / total).toFixed(0) : '0'}%)`;
  };
  const head = ['layer', 'pass', ...profiles.map((p) => `${p.loop} on ${p.backend}, ms`)];
  const rows = keys.map(([layer, pass]) => [layer, pass, ...profiles.map((p, i) => cell(p, totals[i]!, layer, pass))]);
  rows.push(['all', 'sum of the parts', ...totals.map(ms)]);
  rows.push(['all', 'whole step, measured', ...profiles.map((p) => (p.stepMs === undefined ? '-' : ms(p.stepMs)))]);
  if (markdown) {
    return [head, head.map((_, i) => (i < 2 ? '---' : '---:')), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
