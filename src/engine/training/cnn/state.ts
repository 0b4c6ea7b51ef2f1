// The conv engine's state as plain data every thread shares: where each
// node's tensors live in the shared memory, the parameters, and one thread's
// slice of a batch. The engine (engine.ts) builds it; ops (ops.ts) and the
// slice workers (slice-worker.ts) read it.
import type { CnnExports } from '../../../runtime/simd/cnn-kernels.js';
import type { WasmArena } from '../../../runtime/simd/arena.js';
import type { CnnGraph } from './graph.js';

/** One thread's share of a batch and its private buffers. */
export interface Slice {
  /** First image of the slice and its number of images. */
  first: number;
  n: number;
  /** This thread's index (its gradient buffers are `Param.g[thread]`). */
  thread: number;
  /** This thread's scratch, as large as the largest any node asks for (scratchFloats). */
  scratch: number;
}

/** Where a node's tensors live (byte offsets; 0 = none). */
export interface NodeBuffers {
  act: number;
  grad: number;
  /** Per-node extras the op allocated (argmax, statistics, ...). */
  extra: Record<string, number>;
}

export interface EngineState {
  readonly k: CnnExports;
  readonly mem: WasmArena;
  readonly graph: CnnGraph;
  readonly buf: NodeBuffers[];
  /** Parameters by node index. */
  readonly params: Map<number, Param[]>;
  readonly maxBatch: number;
  readonly threads: number;
  /** A gradient buffer the size of the largest tensor read twice, for sums into those (shared by slices: disjoint rows); 0 where none is. */
  readonly tmp: number;
  /** Whether the current pass trains (batch statistics) or evaluates (moving statistics). */
  training: boolean;
  /** Images in the current pass (all slices). */
  batch: number;
  /** Floats between thread t's and thread t + 1's gradient of a tensor (Param.g[t + 1] - Param.g[t]). */
  gradStride: number;
}

export function ptr(base: number, floatsPerImage: number, first: number): number {
  return base + first * floatsPerImage * 4;
}

/** Splits `batch` images into one slice per thread: sizes differ by at most one. */
export function sliceBounds(batch: number, threads: number, t: number): { first: number; n: number } {
  const base = Math.floor(batch / threads);
  const extra = batch % threads;
  const first = t * base + Math.min(t, extra);
  return { first, n: base + (t < extra ? 1 : 0) };
}


/** One tensor the engine holds for a node: trained (kernel, bias, gamma, beta) or state (moving statistics). */
export interface Param {
  /** Weight-map name, e.g. `conv1/kernel`. */
  key: string;
  shape: number[];
  count: number;
  p: number;
  /** Gradient buffers, one per thread (trainable only), EngineState.gradStride floats apart. */
  g: number[];
  m: number;
  v: number;
  /** 0 when nothing is pruned. */
  mask: number;
  trainable: boolean;
}
