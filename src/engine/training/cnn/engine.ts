// The conv engine: a conv net's weights, activations, gradients and optimiser
// state in one shared WebAssembly memory (CnnKernels), trained by our SIMD
// kernels (src/runtime/simd/cnn.c) node by node (ops.ts), with the same loss
// (softmax cross-entropy on the logits) and the same update rules as TF.js's
// Adam/SGD/momentum. Masks zero pruned gradients inside the optimiser pass, so
// pruned weights stay exactly zero. A batch is split into slices, one per
// thread (threads.ts runs the slices of the other threads); every kernel of a
// slice writes only that slice's rows and that thread's gradient buffers, and
// the per-thread gradients are summed in a fixed order, so results do not
// depend on timing.
import type { Mask, WeightMap } from '../../types.js';
import type { TrainConfig } from '../config.js';
import { takeKernels, type CnnKernels } from '../../../runtime/simd/cnn-kernels.js';
import { adamAll, bnMoving, paramTable, paramTableInts, sgdAll, sumInto } from './kernels/layers.js';
import type { CnnGraph, CnnNode } from './graph.js';
import { OPS } from './ops.js';
import { ptr, type EngineState, type NodeBuffers, type Param, type Slice } from './state.js';

/** Slots per node in a timings array: forward, weight gradient (with the node's own bookkeeping), input gradient. */
export const TIMING_SLOTS = 3;

/**
 * Runs one pass of one slice: every node in order (forward) or reverse order
 * (backward). With `timings` (TIMING_SLOTS per node), adds each node's
 * milliseconds: forward; backward less its input gradients; input gradients.
 */
export function runSlice(e: EngineState, pass: 'forward' | 'backward', s: Slice, barrier: () => void, timings?: Float64Array): void {
  const nodes = e.graph.nodes;
  if (pass === 'forward') {
    for (const node of nodes) {
      const t0 = timings ? performance.now() : 0;
      OPS[node.kind].forward(e, node, s, barrier);
      if (timings) timings[node.index * TIMING_SLOTS] += performance.now() - t0;
    }
    return;
  }
  const written = new Uint8Array(nodes.length);
  for (let i = nodes.length - 1; i > 0; i--) {
    const node = nodes[i]!;
    const t0 = timings ? performance.now() : 0;
    let inputMs = 0;
    OPS[node.kind].backward(e, node, s, barrier, (input: CnnNode, write: (dst: number) => void) => {
      const t1 = timings ? performance.now() : 0;
      // The first consumer (in backward order) writes a tensor's gradient; later ones add theirs.
      const size = input.size;
      if (!written[input.index]) {
        written[input.index] = 1;
        write(ptr(e.buf[input.index]!.grad, size, s.first));
      } else {
        const tmp = ptr(e.tmp, size, s.first);
        write(tmp);
        sumInto(e.k, ptr(e.buf[input.index]!.grad, size, s.first), tmp, s.n * size);
      }
      if (timings) inputMs += performance.now() - t1;
    });
    if (timings) {
      timings[node.index * TIMING_SLOTS + 1] += performance.now() - t0 - inputMs;
      timings[node.index * TIMING_SLOTS + 2] += inputMs;
    }
  }
}

/** Allocates everything for training `graph` from `weights` under `mask` with `cfg`'s optimiser, on this thread's kept memory if it has one (takeKernels). */
export function buildState(graph: CnnGraph, weights: WeightMap, mask: Mask | null, maxBatch: number, threads: number, adam: boolean): EngineState & { mem: CnnKernels } {
  const mem = takeKernels();
  const k = mem.k;
  const params = new Map<number, Param[]>();
  const buf: NodeBuffers[] = [];
  // The gradient buffer for sums is needed only where a tensor feeds two nodes (residual nets), as large as the largest such tensor.
  let widest = 0;
  for (const node of graph.nodes) {
    if (node.consumers.length > 1) widest = Math.max(widest, node.size);
    if (node.kind === 'flatten') {
      // A flatten of NHWC rows is the same memory read as a vector.
      const src = buf[node.inputs[0]!]!;
      buf.push({ act: src.act, grad: src.grad, extra: {} });
      continue;
    }
    const act = mem.alloc(maxBatch * node.size);
    const grad = node.kind === 'input' ? 0 : mem.alloc(maxBatch * node.size);
    buf.push({ act, grad, extra: {} });
  }
  const state: EngineState & { mem: CnnKernels } = { k, mem, graph, buf, params, maxBatch, threads, tmp: widest > 0 ? mem.alloc(maxBatch * widest) : 0, training: true, batch: 0, gradStride: 0 };
  for (const node of graph.nodes) params.set(node.index, OPS[node.kind].params?.(node, weights, mask, (count) => mem.alloc(count), threads, adam) ?? []);
  // Every thread's gradients of all trainable tensors in one region per thread, `gradStride` floats apart, so the
  // fused optimiser (adamAll/sgdAll) adds thread t's gradient at g + t * gradStride as it reads thread 0's.
  const trainable = [...params.values()].flat().filter((p) => p.trainable);
  const offsets = trainable.map((p) => p.count);
  let stride = 0;
  for (let i = 0; i < offsets.length; i++) {
    const at = stride;
    stride += (offsets[i]! + 3) & ~3;
    offsets[i] = at;
  }
  state.gradStride = stride;
  const region = mem.alloc(threads * stride);
  trainable.forEach((p, i) => {
    p.g = Array.from({ length: threads }, (_, t) => region + (t * stride + offsets[i]!) * 4);
  });
  for (const p of [...params.values()].flat()) {
    const values = mem.f32(p.p, p.count);
    values.set(weights[p.key]!.values);
    if (p.mask) {
      const m = mem.f32(p.mask, p.count);
      m.set(mask![p.key]!);
      for (let i = 0; i < p.count; i++) values[i]! *= m[i]!;
    }
  }
  // Ops allocate once parameters and masks are in place (a sparse conv builds its survivor lists from its mask).
  for (const node of graph.nodes) OPS[node.kind].allocate?.(state, node, (count) => mem.alloc(count));
  return state;
}

/** After a training forward: BatchNorm's moving statistics move toward the batch's (thread 0's copy of them). */
export function afterForward(e: EngineState): void {
  for (const node of e.graph.nodes) {
    if (node.kind !== 'bn') continue;
    const ex = e.buf[node.index]!.extra;
    const ps = e.params.get(node.index)!;
    const moving = (name: string) => ps.find((p) => p.key === `${node.layer}/${name}`)!.p;
    bnMoving(e.k, node.shape.at(-1)!, ex.mean0!, ex.variance0!, node.config.momentum as number, moving('moving_mean'), moving('moving_variance'));
  }
}

/** Per-thread scratch: the largest any node asks for a slice of `n` images. */
export function scratchFloats(graph: CnnGraph, n: number): number {
  let most = 0;
  for (const node of graph.nodes) most = Math.max(most, OPS[node.kind].scratch?.(graph, node, n) ?? 0);
  return most;
}

/**
 * What the fused optimiser (cnn/optim.c's adamAll / sgdAll) runs, as plain
 * data every thread can hold: one table of rows per thread, row t of a tensor
 * being thread t's share of its floats (a run of them, a multiple of 16 long),
 * so the threads update disjoint parts of every tensor at once. Each float
 * adds the threads' gradients in thread order and takes mlp.c's adam / sgd
 * arithmetic to the bit, whichever thread updates it, so results do not
 * depend on the thread count's split of the update.
 */
export interface OptimiserPlan {
  kind: 'adam' | 'sgd';
  /** SGD's momentum (0: plain SGD). */
  momentum: number;
  /** Per thread: its table's byte offset and row count. */
  tables: number[];
  rows: number[];
  split: { threads: number; stride: number };
}

/** The step's scalars: the learning rate and Adam's bias corrections 1 - b1^t, 1 - b2^t (1 for SGD). */
export interface OptimiserStep {
  lr: number;
  c1: number;
  c2: number;
}

const ADAM_B1 = 0.9;
const ADAM_B2 = 0.999;
const ADAM_EPS = 1e-7;

/** Runs thread `thread`'s share of one update. */
export function runOptimiserShare(k: EngineState['k'], plan: OptimiserPlan, thread: number, s: OptimiserStep): void {
  if (plan.kind === 'adam') adamAll(k, plan.tables[thread]!, plan.rows[thread]!, s.lr, ADAM_B1, ADAM_B2, ADAM_EPS, s.c1, s.c2, plan.split);
  else sgdAll(k, plan.tables[thread]!, plan.rows[thread]!, s.lr, plan.momentum, plan.split);
}

/**
 * Thread t's run of n floats: [start, end), starts a multiple of 16 (a 64-byte
 * cache line, so no two threads write one line; runs of empty length where n
 * is small).
 */
export function optimiserShare(n: number, threads: number, t: number): { start: number; end: number } {
  const chunk = Math.ceil(n / threads / 16) * 16;
  return { start: Math.min(n, t * chunk), end: Math.min(n, (t + 1) * chunk) };
}

/**
 * The optimiser of an engine: its plan (the per-thread tables, allocated
 * here) and `next`, which gives each step's scalars and advances Adam's
 * bias corrections.
 */
export function optimiser(e: EngineState & { mem: CnnKernels }, cfg: Pick<TrainConfig, 'optimizer' | 'momentum'>) {
  const trainable = [...e.params.values()].flat().filter((p) => p.trainable);
  const tables: number[] = [];
  const rows: number[] = [];
  for (let t = 0; t < e.threads; t++) {
    const table = e.mem.alloc(paramTableInts(trainable.length));
    const at = (base: number, start: number) => (base === 0 ? 0 : base + start * 4);
    const share = trainable.map((p) => {
      const { start, end } = optimiserShare(p.count, e.threads, t);
      return { p: at(p.p, start), g: at(p.g[0]!, start), m: at(p.m, start), v: at(p.v, start), mask: at(p.mask, start), n: end - start };
    });
    tables.push(table);
    rows.push(paramTable(e.mem, table, share));
  }
  const plan: OptimiserPlan = {
    kind: cfg.optimizer === 'adam' ? 'adam' : 'sgd',
    momentum: cfg.optimizer === 'momentum' ? cfg.momentum : 0,
    tables,
    rows,
    split: { threads: e.threads, stride: e.gradStride },
  };
  let acc1 = ADAM_B1;
  let acc2 = ADAM_B2;
  return {
    plan,
    next(lr: number): OptimiserStep {
      if (plan.kind !== 'adam') return { lr, c1: 1, c2: 1 };
      const s = { lr, c1: 1 - acc1, c2: 1 - acc2 };
      acc1 *= ADAM_B1;
      acc2 *= ADAM_B2;
      return s;
    },
  };
}
