// A trial is one training of one model from given weights under a given mask
// (the ticket, or one of its controls). Trials of a round are independent, so
// they can run side by side: in this thread (TrialRunner) or on a pool of
// worker threads, each with its own TF.js backend (WorkerPool), to use every
// core. Inputs and outputs are plain data so they cross threads unchanged;
// the dataset's arrays cross shared, and a job's and a result's weight arrays
// are moved (transferred), not copied.
import * as tf from '@tensorflow/tfjs';
import { Worker } from 'node:worker_threads';
import type { Dataset, Mask, WeightMap } from '../types.js';
import type { TrainingMetrics, TrialKind } from '../sink.js';
import { createModel } from '../models/registry.js';
import { getWeightMap, setWeightMap } from '../models/inspect.js';
import { shareDataset } from '../data/shared.js';
import { cnnPlan, cnnPlanTakesEngine, type CnnPlan } from './cnn/index.js';
import { toTensors, trainModel, trainWeights, RunCancelled, type ProgressInfo, type TrainConfig, type TrainData } from './train.js';

/** How to build the architecture: a zoo name, or a Layers topology (uploaded models). */
export type ModelSource =
  | { zoo: string; inputShape: number[]; numClasses: number; seed: number }
  | { topology: unknown };

export interface TrialJob {
  round: number;
  trial: TrialKind;
  start: WeightMap;
  mask: Mask;
  cfg: TrainConfig;
  /** Snapshot the weights after this many iterations (the late-resetting point). */
  captureAt?: number;
}

export interface TrialResult {
  metrics: TrainingMetrics;
  weights: WeightMap;
  captured?: WeightMap;
}

export interface TrialExecutor {
  readonly parallelism: number;
  run(job: TrialJob, opts: { signal?: AbortSignal; onProgress?: (p: ProgressInfo) => void }): Promise<TrialResult>;
  dispose(): Promise<void>;
}

export async function buildModel(source: ModelSource): Promise<tf.LayersModel> {
  if ('zoo' in source) return createModel(source.zoo, source);
  return tf.models.modelFromJSON({ modelTopology: source.topology } as tf.io.ModelJSON);
}

/**
 * The conv engine's plan of the model `source` builds (null where the engine
 * cannot train it), read from a model built on TF.js's plain-JS CPU backend
 * and disposed: its weights were garbage-collected JS arrays there, not
 * memory of the thread's backend (on WASM, a heap that never shrinks). Only
 * for a thread where nothing else uses TF.js meanwhile (a pool worker): the
 * backend is switched while the model is built.
 */
async function planOffBackend(source: ModelSource): Promise<CnnPlan | null> {
  const backend = tf.getBackend();
  if (backend !== 'cpu') await tf.setBackend('cpu');
  try {
    const model = await buildModel(source);
    try {
      return cnnPlan(model);
    } finally {
      model.dispose();
    }
  } finally {
    if (backend !== 'cpu') await tf.setBackend(backend);
  }
}

/** Runs trials one at a time in the calling thread, reusing one model and one upload of the data. */
export class TrialRunner implements TrialExecutor {
  readonly parallelism = 1;
  private data: TrainData | null = null;
  private model: tf.LayersModel | null = null;
  /** The conv engine's plan of the model, once read (modelFree runners only). */
  private plan: Promise<CnnPlan | null> | null = null;
  /** Trials share one model, so they take turns (each awaits the one before). */
  private queue: Promise<unknown> = Promise.resolve();

  /**
   * `modelFree` (pool workers): a trial the conv engine trains starts from
   * its job's weights and returns the engine's, and no TF.js model is built
   * for it (nor its weights put on the backend); other trials train a model
   * as before.
   */
  constructor(
    private readonly dataset: Dataset,
    private readonly source: ModelSource,
    private readonly o: { modelFree?: boolean } = {},
  ) {}

  run(job: TrialJob, opts: { signal?: AbortSignal; onProgress?: (p: ProgressInfo) => void } = {}): Promise<TrialResult> {
    const turn = this.queue.then(() => this.runNow(job, opts));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async runNow(job: TrialJob, opts: { signal?: AbortSignal; onProgress?: (p: ProgressInfo) => void }): Promise<TrialResult> {
    const plan = this.o.modelFree ? await (this.plan ??= planOffBackend(this.source)) : null;
    if (plan && cnnPlanTakesEngine(plan, tf.getBackend(), job.cfg.loop, job.cfg.batchSize) && fitsPlan(plan, job.start)) {
      let captured: WeightMap | undefined;
      const { metrics, weights } = await trainWeights(plan, job.start, this.dataset, job.mask, job.cfg, {
        signal: opts.signal,
        onProgress: opts.onProgress,
        capture: job.captureAt === undefined ? undefined : { iteration: job.captureAt, fn: (w) => (captured = w) },
      });
      return { metrics, weights, captured };
    }
    this.model ??= await buildModel(this.source);
    this.data ??= toTensors(this.dataset);
    const model = this.model;
    setWeightMap(model, job.start, { requireAll: true });
    let captured: WeightMap | undefined;
    const metrics = await trainModel(model, this.data, job.mask, job.cfg, {
      signal: opts.signal,
      onProgress: opts.onProgress,
      capture: job.captureAt === undefined ? undefined : { iteration: job.captureAt, fn: () => (captured = getWeightMap(model)) },
    });
    return { metrics, weights: getWeightMap(model), captured };
  }

  async dispose(): Promise<void> {
    this.data?.dispose();
    this.model?.dispose();
    this.data = this.model = null;
  }
}

/** Whether `start` holds exactly the planned model's weights, shaped as there (else the model path reports what is wrong with it). */
function fitsPlan(plan: CnnPlan, start: WeightMap): boolean {
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  return (
    plan.weightShapes.length === Object.keys(start).length &&
    plan.weightShapes.every(([n, shape]) => start[n] !== undefined && same(start[n].shape, shape) && start[n].values.length === start[n].shape.reduce((a, b) => a * b, 1))
  );
}

/**
 * A copy of `job` whose start weights and mask are views on one new
 * ArrayBuffer, for postMessage to move to a worker in its transfer list:
 * one copy here instead of structured clone's two (into the message, out of
 * it in the worker), and one large allocation instead of many that the
 * allocator's arenas keep after they are freed. The caller's arrays stay its
 * own (a round's trials share them).
 */
export function movableJob(job: TrialJob): { job: TrialJob; buffer: ArrayBuffer } {
  let floats = 0;
  for (const w of Object.values(job.start)) floats += w.values.length;
  for (const m of Object.values(job.mask)) floats += m.length;
  const buffer = new ArrayBuffer(floats * 4);
  let at = 0;
  const copy = (src: Float32Array): Float32Array => {
    const view = new Float32Array(buffer, at * 4, src.length);
    view.set(src);
    at += src.length;
    return view;
  };
  const start: WeightMap = {};
  for (const [name, w] of Object.entries(job.start)) start[name] = { shape: w.shape, values: copy(w.values) };
  const mask: Mask = {};
  for (const [name, m] of Object.entries(job.mask)) mask[name] = copy(m);
  return { job: { ...job, start, mask }, buffer };
}

/**
 * The buffers of `result`'s weight arrays that postMessage can move to the
 * pool instead of copying: those each array has to itself (a worker's
 * results are fresh copies; the check keeps a view on a shared or a larger
 * buffer from being detached under its other users).
 */
export function movableBuffers(result: TrialResult): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const { values: a } of [...Object.values(result.weights), ...Object.values(result.captured ?? {})]) {
    if (a.buffer instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) buffers.add(a.buffer);
  }
  return [...buffers];
}

type ToWorker =
  | { type: 'init'; dataset: Dataset; source: ModelSource; backend?: string }
  | { type: 'run'; id: number; job: TrialJob }
  | { type: 'abort'; id: number };

export type FromWorker =
  | { type: 'ready'; backend: string }
  | { type: 'progress'; id: number; progress: ProgressInfo }
  | { type: 'done'; id: number; result: TrialResult }
  | { type: 'error'; id: number; name: string; message: string };

interface Slot {
  worker: Worker;
  busy: boolean;
  ready: Promise<void>;
}

/**
 * A fixed pool of worker threads, each holding the architecture once and all
 * of them one dataset: its arrays are on SharedArrayBuffers, which postMessage
 * shares instead of copying.
 */
export class WorkerPool implements TrialExecutor {
  /** The dataset the workers hold: the caller's where its arrays were shared already, else a shared copy. */
  readonly dataset: Dataset;
  private readonly slots: Slot[] = [];
  private readonly waiting: Array<(s: Slot) => void> = [];
  private nextId = 1;
  private readonly handlers = new Map<number, (m: FromWorker) => void>();
  private disposed = false;
  /** The uncaught error each dead worker died of, named in the failure of the trial it was running. */
  private readonly deaths = new WeakMap<Worker, Error>();

  constructor(
    readonly parallelism: number,
    dataset: Dataset,
    private readonly source: ModelSource,
    private readonly backend?: string,
  ) {
    this.dataset = shareDataset(dataset);
    for (let i = 0; i < parallelism; i++) {
      const slot = { busy: false } as Slot;
      this.start(slot);
      this.slots.push(slot);
    }
  }

  /**
   * Starts a worker in `slot`. A worker that dies after it was ready (an
   * uncaught error, a crash of native code, the thread's memory limit) fails
   * the trial it was running, and a new worker takes its place, so the pool
   * keeps its size and never hands out a dead thread. One that fails to
   * start is not replaced: every trial given to its slot fails with why.
   */
  private start(slot: Slot): void {
    const worker = new Worker(new URL('./trial-worker-boot.mjs', import.meta.url), { execArgv: [] });
    let started = false;
    const ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          started = true;
          resolve();
        } else if (m.type === 'error' && m.id === 0) reject(new Error(`trial worker failed to start: ${m.message}`));
        else this.handlers.get((m as { id: number }).id)?.(m);
      });
      worker.on('error', (err) => {
        this.deaths.set(worker, err);
        reject(err);
      });
      worker.once('exit', (code) => {
        reject(new Error(`trial worker exited with code ${code} before it was ready`));
        if (started && !this.disposed) this.start(slot);
      });
    });
    ready.catch(() => undefined);
    slot.worker = worker;
    slot.ready = ready;
    worker.postMessage({ type: 'init', dataset: this.dataset, source: this.source, backend: this.backend } satisfies ToWorker);
  }

  private async acquire(): Promise<Slot> {
    const free = this.slots.find((s) => !s.busy);
    const slot = free ?? (await new Promise<Slot>((resolve) => this.waiting.push(resolve)));
    slot.busy = true;
    try {
      await slot.ready;
    } catch (err) {
      this.release(slot);
      throw err;
    }
    return slot;
  }

  private release(slot: Slot): void {
    const next = this.waiting.shift();
    if (next) next(slot);
    else slot.busy = false;
  }

  async run(job: TrialJob, opts: { signal?: AbortSignal; onProgress?: (p: ProgressInfo) => void } = {}): Promise<TrialResult> {
    if (opts.signal?.aborted) throw new RunCancelled();
    const slot = await this.acquire();
    const id = this.nextId++;
    try {
      // Cancelled while it waited for a thread: the worker never sees it.
      if (opts.signal?.aborted) throw new RunCancelled();
      return await new Promise<TrialResult>((resolve, reject) => {
        // Copied first: if that fails (memory), nothing is left registered.
        const moved = movableJob(job);
        const worker = slot.worker;
        const onAbort = () => worker.postMessage({ type: 'abort', id } satisfies ToWorker);
        const onExit = (code: number) => {
          this.handlers.delete(id);
          opts.signal?.removeEventListener('abort', onAbort);
          const died = this.deaths.get(worker);
          const why = died ? `: ${died.message}` : '';
          reject(new Error(`trial worker exited with code ${code} while it ran ${job.trial} of round ${job.round}${why}`));
        };
        this.handlers.set(id, (m) => {
          if (m.type === 'progress') return opts.onProgress?.(m.progress);
          this.handlers.delete(id);
          worker.off('exit', onExit);
          opts.signal?.removeEventListener('abort', onAbort);
          if (m.type === 'done') resolve(m.result);
          else if (m.type === 'error') reject(m.name === 'RunCancelled' ? new RunCancelled() : new Error(m.message));
        });
        worker.once('exit', onExit);
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        worker.postMessage({ type: 'run', id, job: moved.job } satisfies ToWorker, [moved.buffer]);
      });
    } finally {
      this.release(slot);
    }
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
