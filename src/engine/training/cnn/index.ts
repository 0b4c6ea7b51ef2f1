// The conv engine's entry: which models it trains (cnnGraph), and a stepper
// training a copy of a model's weights on it (cnnStepper), driven by the
// shared engine stepper (../engine-stepper.ts) inside the one training loop.
import * as tf from '@tensorflow/tfjs';
import type { Mask, WeightMap } from '../../types.js';
import type { TrainConfig, TrainingLoopChoice } from '../config.js';
import type { Stepper } from '../stepper.js';
import { setWeightMap, weightVariables } from '../../models/inspect.js';
import { computeThreads } from '../../../runtime/backend.js';
import { MAX_BYTES, STACK_BYTES, cnnKernelsAvailable, keepKernels } from '../../../runtime/simd/cnn-kernels.js';
import { engineStepper, type EngineData, type TrainableEngine } from '../engine-stepper.js';
import { compileGraph, type CnnGraph } from './graph.js';
import { afterForward, buildState, optimiser, runOptimiserShare, runSlice, scratchFloats, TIMING_SLOTS } from './engine.js';
import { sliceBounds, type EngineState, type Slice } from './state.js';
import { sparseDenseInputFloats } from './kernels/sparse.js';
import { CTL, CTL_INTS, SliceWorkers, barrierOn, readStep, writeStep } from './threads.js';

export { compileGraph, type CnnGraph } from './graph.js';

/**
 * Backends on which conv nets take the conv engine by default: where it was
 * measured faster than the backend's own kernels (scripts/bench-train).
 * Native TF ('tensorflow') too: there, on 2 cores, batch 60, the engine on
 * every core ran Conv-2 at 0.87x-1.35x the TF.js loop on TF's kernels
 * (median of five comparisons 1.05x: scripts/bench-native-loops.ts and
 * bench-train) and ResNet-20 at 1.24x and 1.29x; TF's oneDNN conv forward is
 * about 2x the engine's, the engine wins the conv and pooling gradients and
 * Adam. It also trains pruned conv layers on their survivors ('cnn-sparse'),
 * which TF's kernels never do. Not 'tensorflow-gpu': GPU kernels are another
 * matter, unmeasured.
 */
export function cnnEngineByDefault(backend: string): boolean {
  return backend === 'wasm' || backend === 'cpu' || backend === 'tensorflow';
}

/**
 * The graph of `model` if the conv engine trains it with `loop` on
 * `backend`, else null (TF.js kernels): `auto` where cnnEngineByDefault
 * says, `cnn-simd` on any backend; only models compileGraph accepts, and
 * with `auto`, only those whose batches of `batchSize` fit the engine's
 * memory (cnnMaxBatch); a forced engine fails on those in cnnStepper.
 */
export function cnnPath(model: tf.LayersModel, backend: string, loop: TrainingLoopChoice = 'auto', batchSize = 1): CnnGraph | null {
  if (!engineLoop(backend, loop)) return null;
  const g = compileGraph(model);
  if (typeof g === 'string') return null;
  return fits(g, weightFloats(model), loop, batchSize) ? g : null;
}

/**
 * Plain MLPs have the MLP engines (mlp.ts), which run on one thread. Where
 * the conv engine has more than one thread and enough inputs are nonzero, it
 * trains a dense MLP round faster: every thread takes a slice of the batch
 * and a share of the update. LeNet-300-100, batch 60, 2 threads of this
 * 2-core machine, ms a step, conv engine vs simd MLP engine: inputs without
 * zeros 1.25-1.42 vs 1.70-1.82; half zeros (Fashion-MNIST has about half)
 * 1.44-1.46 vs 1.93-1.99; 65% zeros 1.34-1.36 vs 1.67-1.70; MNIST's 81%,
 * which the MLP engine skips one input row at a time, 1.22 vs 1.15. So
 * inputs with at least this share nonzero take the conv engine.
 */
export const MLP_ON_CNN_MIN_NONZERO = 0.3;

/** The share of nonzero floats among (up to) the first 256 training inputs. */
export function nonzeroShare(data: EngineData): number {
  const { x, n } = data.train;
  if (n === 0) return 0;
  const size = x.length / n;
  const end = Math.min(n, 256) * size;
  let nz = 0;
  for (let i = 0; i < end; i++) if (x[i] !== 0) nz++;
  return end === 0 ? 0 : nz / end;
}

/**
 * The conv engine's graph of the plain MLP `model` where trainModel trains it
 * there instead of on an MLP engine, else null: with loop 'cnn-simd' (forced)
 * wherever the engine can train it; with 'auto' only a dense round
 * (the caller asks only then) on inputs MLP_ON_CNN_MIN_NONZERO says, with
 * two threads or more.
 */
export function cnnPathForMlp(model: tf.LayersModel, data: EngineData, backend: string, loop: TrainingLoopChoice, batchSize: number): CnnGraph | null {
  if (!engineLoop(backend, loop)) return null;
  if (loop === 'auto' && (threadsFor(batchSize) < 2 || nonzeroShare(data) < MLP_ON_CNN_MIN_NONZERO)) return null;
  const g = compileGraph(model, { plainMlp: true });
  if (typeof g === 'string') return null;
  return fits(g, weightFloats(model), loop, batchSize) ? g : null;
}

/** Whether `loop` on `backend` takes the conv engine for a model it can train. */
const engineLoop = (backend: string, loop: TrainingLoopChoice): boolean =>
  (loop === 'cnn-simd' || (loop === 'auto' && cnnEngineByDefault(backend))) && cnnKernelsAvailable();

/** `auto` takes the engine only where the batches fit its memory; a forced engine fails on those in the stepper. */
const fits = (g: CnnGraph, weights: number, loop: TrainingLoopChoice, batchSize: number): boolean =>
  loop !== 'auto' || cnnMaxBatch(g, weights, batchSize, threadsFor(batchSize)) !== null;

/**
 * What the conv engine needs of a model, read once from a built one as plain
 * data, so that a trial worker can train on the engine without holding the
 * model (nor its weights on the backend): the graph, the weight count, the
 * model's name and its weights' names and shapes in the model's order
 * (getWeightMap's).
 */
export interface CnnPlan {
  graph: CnnGraph;
  weightFloats: number;
  name: string;
  weightShapes: Array<[string, number[]]>;
}

/** The plan of `model`, or null where the engine cannot train it (compileGraph says why). */
export function cnnPlan(model: tf.LayersModel): CnnPlan | null {
  const graph = compileGraph(model);
  if (typeof graph === 'string') return null;
  return { graph, weightFloats: weightFloats(model), name: model.name, weightShapes: [...weightVariables(model)].map(([n, v]) => [n, [...v.shape] as number[]]) };
}

/** Whether trainModel would train the planned model on the conv engine with `loop` on `backend` (cnnPath's choice). */
export function cnnPlanTakesEngine(plan: CnnPlan, backend: string, loop: TrainingLoopChoice = 'auto', batchSize = 1): boolean {
  return engineLoop(backend, loop) && fits(plan.graph, plan.weightFloats, loop, batchSize);
}

/** One profiled part of a step: a node's (layer's) pass and its milliseconds. */
export interface StepProfileRow {
  layer: string;
  pass: string;
  ms: number;
}

const PROFILED_PASSES = ['forward', 'weight gradient', 'input gradient'] as const;

/**
 * Fewest examples per evaluation chunk. Evaluation runs in chunks of the
 * training batch (at least this many): every activation buffer is sized for
 * the largest chunk, and chunks of 100 instead of Conv-2's 60 cost a trial
 * engine 58 MiB more (230 vs 172 MiB) for an evaluation measured 5-15%
 * faster (600 CIFAR-shaped images on 2 threads of a loaded 2-core machine).
 */
const EVAL_CHUNK_MIN = 32;

const threadsFor = (batchSize: number): number => Math.max(1, Math.min(computeThreads(), batchSize));
const weightFloats = (model: tf.LayersModel): number => model.countParams();

/**
 * Bytes the engine allocates for `graph` (with `weights` floats of weights)
 * in batches of up to `maxBatch` over `threads` threads: an upper bound of
 * buildState's and cnnEngine's allocations (activations and their
 * gradients, argmax, the shared gradient buffer, per-thread scratch and
 * stacks, sparse dense layers' kept inputs, every parameter with a gradient per thread, Adam's two
 * moments and a mask, and the optimiser's table per thread).
 */
export function cnnEngineBytes(graph: CnnGraph, weights: number, maxBatch: number, threads: number): number {
  let perImage = 0;
  let widest = 0;
  let bnExtras = 0;
  let keptInputs = 0;
  for (const n of graph.nodes) {
    widest = Math.max(widest, n.size);
    if (n.kind === 'bn') bnExtras += 11 * n.shape.at(-1)! * threads;
    // A dense layer that trains sparse keeps each thread's feature-major input from forward to backward.
    if (n.kind === 'dense') keptInputs += threads * sparseDenseInputFloats(graph.nodes[n.inputs[0]!]!.size, Math.ceil(maxBatch / threads));
    if (n.kind === 'flatten') continue;
    perImage += n.size * (n.kind === 'input' ? 1 : n.kind === 'maxpool' ? 3 : 2);
  }
  // The optimiser's table per thread: a row of 6 ints per trained tensor (at most 4 a node: kernel, bias, gamma, beta).
  const optTables = threads * 6 * 4 * graph.nodes.length;
  const floats = maxBatch * (perImage + widest) + threads * scratchFloats(graph, Math.ceil(maxBatch / threads)) + weights * (5 + threads) + bnExtras + keptInputs + optTables;
  // Per weight: value, Adam's m and v, mask, a gradient per thread, and room for sparse layers' survivor lists (under 20% of a layer: two ints each in a conv, one and a row start in a dense).
  // Alignment (16 bytes an allocation) and the control block: well within a MiB.
  return 4 * floats + threads * STACK_BYTES + (1 << 20);
}

/**
 * The batch the engine's buffers hold (training batches of `batchSize`,
 * evaluation in chunks of as many, or EVAL_CHUNK_MIN when those fit too), or null when even
 * `batchSize` examples would not fit wasm32's 4 GiB memory.
 */
export function cnnMaxBatch(graph: CnnGraph, weights: number, batchSize: number, threads: number): number | null {
  for (const b of [Math.max(batchSize, EVAL_CHUNK_MIN), batchSize]) if (cnnEngineBytes(graph, weights, b, threads) <= MAX_BYTES) return b;
  return null;
}

/** Per-thread buffers of a slice (scratch and the dense kernels' index/value lists). */
function sliceBuffers(e: EngineState, scratch: number): Omit<Slice, 'first' | 'n'>[] {
  return Array.from({ length: e.threads }, (_, thread) => ({ thread, scratch: e.mem.alloc(scratch) }));
}

/** A conv engine training `graph` from `weights` under `mask`, on `threads` slices of each batch (1: this thread only). */
export function cnnEngine(
  graph: CnnGraph,
  weights: WeightMap,
  mask: Mask | null,
  cfg: TrainConfig,
  maxBatch: number,
  threads: number,
  o: { profile?: boolean } = {},
): TrainableEngine & { state: EngineState; profile?: () => StepProfileRow[] } {
  const state = buildState(graph, weights, mask, maxBatch, threads, cfg.optimizer === 'adam');
  const { mem, buf } = state;
  const perThread = Math.ceil(maxBatch / threads);
  const slices = sliceBuffers(state, scratchFloats(graph, perThread));
  const ctlAt = mem.alloc(CTL_INTS);
  const stacks = slices.slice(1).map(() => mem.allocStack());
  const opt = optimiser(state, cfg);
  // Every buffer is allocated: views from here on stay valid.
  const ctl = mem.i32(ctlAt, CTL_INTS);
  const workers =
    threads > 1
      ? new SliceWorkers(
          ctl,
          slices.slice(1).map((s, i) => ({
            memory: mem.memory, module: mem.mod, stack: stacks[i]!, graph, buf, params: [...state.params.entries()],
            maxBatch, threads, tmp: state.tmp, ctl: ctlAt, thread: s.thread, scratch: s.scratch, opt: opt.plan,
          })),
        )
      : null;
  let started = false;
  let disposed = false;
  // Profiling times the calling thread's slice of each node (its waits for the other threads included) and the optimiser.
  const timings = o.profile ? new Float64Array(graph.nodes.length * TIMING_SLOTS) : undefined;
  let updateMs = 0;
  const barrier = threads > 1 ? barrierOn(ctl, threads) : () => {};
  const pass = (kind: 'forward' | 'backward' | 'update', batch: number, training: boolean, lr = 0) => {
    if (kind !== 'update') {
      state.training = training;
      state.batch = batch;
    }
    if (workers && !started) {
      workers.ready();
      started = true;
    }
    const step = kind === 'update' ? opt.next(lr) : null;
    if (step && workers) writeStep(ctl, step);
    workers?.start(kind, batch, training);
    try {
      if (step) runOptimiserShare(state.k, opt.plan, 0, workers ? readStep(ctl) : step);
      else runSlice(state, kind as 'forward' | 'backward', { ...slices[0]!, ...sliceBounds(batch, threads, 0) }, barrier, kind === 'backward' || training ? timings : undefined);
    } catch (err) {
      // Release workers waiting at a barrier for this thread.
      Atomics.store(ctl, CTL.FAILED, 1);
      Atomics.notify(ctl, CTL.GENERATION);
      throw err;
    }
    workers?.finish();
  };
  const input = mem.f32(buf[0]!.act, maxBatch * graph.nodes[0]!.size);
  const last = graph.nodes.at(-1)!;
  const logits = mem.f32(buf[last.index]!.act, maxBatch * last.size);
  const outputGrad = mem.f32(buf[last.index]!.grad, maxBatch * last.size);
  const all = [...state.params.values()].flat();
  return {
    state,
    input,
    outputGrad,
    forward(batch, training) {
      pass('forward', batch, training);
      if (training) afterForward(state);
      return logits;
    },
    backward(batch) {
      pass('backward', batch, true);
    },
    update(lr) {
      // Every thread updates its share of each tensor (engine.ts's OptimiserPlan), adding the threads' gradients as it reads them.
      const t0 = timings ? performance.now() : 0;
      pass('update', state.batch, state.training, lr);
      if (timings) updateMs += performance.now() - t0;
    },
    parameters: () => all.map((p) => mem.f32(p.p, p.count)),
    weightMap() {
      const map: WeightMap = {};
      for (const p of all) map[p.key] = { shape: [...p.shape], values: Float32Array.from(mem.f32(p.p, p.count)) };
      return map;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      // The memory serves this thread's next engine, unless a worker thread may still be on it.
      if (workers ? workers.dispose() : true) keepKernels(mem);
    },
    ...(timings
      ? {
          /** Milliseconds per node and pass summed since the engine was built (training passes only). */
          profile: () => [
            ...graph.nodes.flatMap((n) =>
              PROFILED_PASSES.map((pass, slot) => ({ layer: n.layer, pass, ms: timings[n.index * TIMING_SLOTS + slot]! })).filter((r) => r.ms > 0),
            ),
            { layer: 'all', pass: 'optimiser update', ms: updateMs },
          ],
        }
      : {}),
  };
}

/** A stepper training a copy of `model`'s weights on the conv engine; sync() writes them back. */
export function cnnStepper(model: tf.LayersModel, graph: CnnGraph, data: EngineData, mask: Mask | null, cfg: TrainConfig): Stepper<Float32Array[]> {
  // The engine copies the weights into its own memory: it reads the backend's arrays (dataSync) instead of a copy of each.
  const weights: WeightMap = {};
  for (const [name, v] of weightVariables(model)) weights[name] = { shape: [...v.read().shape], values: v.read().dataSync() as Float32Array };
  return cnnWeightsStepper({ graph, weightFloats: weightFloats(model), name: model.name }, weights, data, mask, cfg, (w) => setWeightMap(model, w));
}

/**
 * A stepper training `weights` (copied into the engine's memory) of the
 * model `plan` describes on the conv engine; sync() hands `sync` a fresh
 * copy of the engine's weights.
 */
export function cnnWeightsStepper(
  plan: Pick<CnnPlan, 'graph' | 'weightFloats' | 'name'>,
  weights: WeightMap,
  data: EngineData,
  mask: Mask | null,
  cfg: TrainConfig,
  sync: (w: WeightMap) => void,
): Stepper<Float32Array[]> {
  const { graph } = plan;
  const threads = threadsFor(cfg.batchSize);
  const maxBatch = cnnMaxBatch(graph, plan.weightFloats, cfg.batchSize, threads);
  if (maxBatch === null) {
    const gib = (cnnEngineBytes(graph, plan.weightFloats, cfg.batchSize, threads) / 2 ** 30).toFixed(1);
    throw new Error(`conv engine: ${plan.name} in batches of ${cfg.batchSize} needs about ${gib} GiB, more than WebAssembly's 4 GiB; use smaller batches or the TF.js loop (loop 'tfjs', TICKETSMITH_MLP=tfjs)`);
  }
  const engine = cnnEngine(graph, weights, mask, cfg, maxBatch, threads);
  // 'cnn-sparse' where a conv or dense layer trains on its surviving weights only (below ops.ts's SPARSE_CONV_DENSITY / SPARSE_DENSE_DENSITY).
  const loop = engine.state.buf.some((b) => b.extra.sparse) ? 'cnn-sparse' : 'cnn-simd';
  return engineStepper(engine, data, { loop, batchSize: cfg.batchSize, maxBatch, sync });
}
