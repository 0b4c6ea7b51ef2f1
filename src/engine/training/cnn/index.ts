// The conv engine's entry: which models it trains (cnnGraph), and a stepper
// training a copy of a model's weights on it (cnnStepper), driven by the
// shared engine stepper (../engine-stepper.ts) inside the one training loop.
import * as tf from '@tensorflow/tfjs';
import type { Mask, WeightMap } from '../../types.js';
import type { TrainConfig, TrainingLoopChoice } from '../config.js';
import type { Stepper } from '../stepper.js';
import { getWeightMap, setWeightMap } from '../../models/inspect.js';
import { computeThreads } from '../../../runtime/backend.js';
import { cnnKernelsAvailable, cnnModule } from '../../../runtime/simd/cnn-kernels.js';
import { engineStepper, type EngineData, type TrainableEngine } from '../engine-stepper.js';
import { compileGraph, type CnnGraph } from './graph.js';
import { afterForward, buildState, optimiser, runSlice, scratchFloats } from './engine.js';
import { sliceBounds, type EngineState, type Slice } from './state.js';
import { CTL, CTL_INTS, SliceWorkers, barrierOn } from './threads.js';

export { compileGraph, type CnnGraph } from './graph.js';

/**
 * Backends on which conv nets take the conv engine by default: where it was
 * measured faster than the backend's own kernels (scripts/bench-train).
 */
export function cnnEngineByDefault(backend: string): boolean {
  return backend === 'wasm' || backend === 'cpu';
}

/**
 * The graph of `model` if the conv engine trains it with `loop` on
 * `backend`, else null (TF.js kernels): `auto` where cnnEngineByDefault
 * says, `cnn-simd` on any backend; only models compileGraph accepts.
 */
export function cnnPath(model: tf.LayersModel, backend: string, loop: TrainingLoopChoice = 'auto'): CnnGraph | null {
  if (loop !== 'cnn-simd' && !(loop === 'auto' && cnnEngineByDefault(backend))) return null;
  if (!cnnKernelsAvailable()) return null;
  const g = compileGraph(model);
  return typeof g === 'string' ? null : g;
}

/** Examples per evaluation chunk: activations of conv nets are large, so chunks stay small. */
const EVAL_CHUNK = 100;

/** Per-thread buffers of a slice (scratch and the dense kernels' index/value lists). */
function sliceBuffers(e: EngineState, scratch: number): Omit<Slice, 'first' | 'n'>[] {
  return Array.from({ length: e.threads }, (_, thread) => ({ thread, scratch: e.mem.alloc(scratch) }));
}

/** A conv engine training `graph` from `weights` under `mask`, on `threads` slices of each batch (1: this thread only). */
export function cnnEngine(graph: CnnGraph, weights: WeightMap, mask: Mask | null, cfg: TrainConfig, maxBatch: number, threads: number): TrainableEngine & { state: EngineState } {
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
            memory: mem.memory, module: cnnModule(), stack: stacks[i]!, graph, buf, params: [...state.params.entries()],
            maxBatch, threads, tmp: state.tmp, ctl: ctlAt, thread: s.thread, scratch: s.scratch,
          })),
        )
      : null;
  let started = false;
  const barrier = threads > 1 ? barrierOn(ctl, threads) : () => {};
  const pass = (kind: 'forward' | 'backward', batch: number, training: boolean) => {
    state.training = training;
    state.batch = batch;
    if (workers && !started) {
      workers.ready();
      started = true;
    }
    workers?.start(kind, batch, training);
    try {
      runSlice(state, kind, { ...slices[0]!, ...sliceBounds(batch, threads, 0) }, barrier);
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
      opt.reduce();
    },
    update: (lr) => opt.step(lr),
    parameters: () => all.map((p) => mem.f32(p.p, p.count)),
    weightMap() {
      const map: WeightMap = {};
      for (const p of all) map[p.key] = { shape: [...p.shape], values: Float32Array.from(mem.f32(p.p, p.count)) };
      return map;
    },
    dispose: () => workers?.dispose(),
  };
}

/** A stepper training a copy of `model`'s weights on the conv engine; sync() writes them back. */
export function cnnStepper(model: tf.LayersModel, graph: CnnGraph, data: EngineData, mask: Mask | null, cfg: TrainConfig): Stepper<Float32Array[]> {
  const maxBatch = Math.max(cfg.batchSize, EVAL_CHUNK);
  const weights = getWeightMap(model);
  const engine = cnnEngine(graph, weights, mask, cfg, maxBatch, Math.max(1, Math.min(computeThreads(), cfg.batchSize)));
  // 'cnn-sparse' where a conv layer trains on its surviving weights only (below ops.ts's SPARSE_CONV_DENSITY).
  const loop = engine.state.buf.some((b) => b.extra.sparse) ? 'cnn-sparse' : 'cnn-simd';
  return engineStepper(engine, data, { loop, batchSize: cfg.batchSize, maxBatch, sync: (w) => setWeightMap(model, w) });
}
