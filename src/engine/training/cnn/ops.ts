// What the conv engine does for each kind of node (a registry keyed by
// NodeKind): which parameters it trains, what it allocates, and its forward
// and backward pass over one slice of a batch, as calls into the kernels'
// wrappers (kernels/conv.ts, kernels/layers.ts). Conventions: a node's `grad`
// holds the loss gradient with respect to its output before its fused ReLU;
// a node writing the gradient of an input that has a fused ReLU masks it by
// that input's output (> 0), so the producer finds its own convention.
import type { Mask, WeightMap } from '../../types.js';
import { convGradInput, convForward, convGradWeights, convScratchFloats, convShape, type ConvShape } from './kernels/conv.js';
import {
  addForward, bnForwardInfer, bnForwardTrain, bnGradInput, bnGradSums, bnInferScratchFloats, bnStats, bnSums, denseForward, denseGradInput,
  denseGradWeights, denseScratchFloats, globalAvgPoolBackward, globalAvgPoolForward, maxPoolBackward, maxPoolForward, poolShape, reluMask, sumInto,
  type PoolShape,
} from './kernels/layers.js';
import {
  sparseConvFits, sparseConvForward, sparseConvGradInput, sparseConvGradWeights, sparseConvLists, sparseConvScratchFloats, sparseDenseBackward, sparseDenseForward,
  sparseDenseInputFloats, sparseDenseLists, sparseDenseScratchFloats, type SparseConvLists, type SparseDenseLists,
} from './kernels/sparse.js';
import { asPair, type CnnGraph, type CnnNode, type NodeKind } from './graph.js';
import { ptr, type EngineState, type Param, type Slice } from './state.js';

type Alloc = (count: number) => number;
/** Writes the gradient of `input` (through `write(dst)`), summing where the input has several readers. */
export type Emit = (input: CnnNode, write: (dst: number) => void) => void;

export interface Op {
  params?(node: CnnNode, weights: WeightMap, mask: Mask | null, alloc: Alloc, threads: number, adam: boolean): Param[];
  allocate?(e: EngineState, node: CnnNode, alloc: Alloc): void;
  scratch?(graph: CnnGraph, node: CnnNode, n: number): number;
  forward(e: EngineState, node: CnnNode, s: Slice, barrier: () => void): void;
  backward(e: EngineState, node: CnnNode, s: Slice, barrier: () => void, emit: Emit): void;
}

/** Allocates and fills the parameter `key` (masked where `mask` prunes it). */
function param(key: string, weights: WeightMap, mask: Mask | null, alloc: Alloc, _threads: number, adam: boolean, trainable = true): Param | null {
  const w = weights[key];
  if (!w) return null;
  const count = w.values.length;
  const m = mask?.[key];
  const masked = trainable && m !== undefined && m.some((x) => x === 0);
  const p: Param = {
    key, shape: w.shape, count, trainable,
    p: alloc(count),
    // Per-thread gradients: buildState places them in one strided region once every tensor is known (the fused optimiser reads them there).
    g: [],
    m: trainable ? alloc(count) : 0,
    v: trainable && adam ? alloc(count) : 0,
    mask: masked ? alloc(count) : 0,
  };
  return p;
}

/** The input node of `node` (its first). */
const inputOf = (e: EngineState, node: CnnNode): CnnNode => e.graph.nodes[node.inputs[0]!]!;
const actAt = (e: EngineState, n: CnnNode, s: Slice): number => ptr(e.buf[n.index]!.act, n.size, s.first);
const gradAt = (e: EngineState, n: CnnNode, s: Slice): number => ptr(e.buf[n.index]!.grad, n.size, s.first);
/** The xRelu argument for writing the gradient of `input`: its output if it has a fused ReLU. */
const reluOf = (e: EngineState, input: CnnNode, s: Slice): number => (input.relu ? actAt(e, input, s) : 0);
const byKey = (e: EngineState, node: CnnNode, suffix: string): Param | undefined => e.params.get(node.index)!.find((p) => p.key === `${node.layer}/${suffix}`);

function convGeometry(e: { graph: CnnGraph }, node: CnnNode): ConvShape {
  const c = node.config;
  const input = e.graph.nodes[node.inputs[0]!]!.shape as [number, number, number];
  const depthwise = c.depthMultiplier !== undefined;
  return convShape(input, {
    filters: depthwise ? input[2] : (c.filters as number),
    kernel: asPair(c.kernelSize),
    strides: asPair(c.strides ?? 1),
    padding: c.padding as 'same' | 'valid',
    depthwise,
  });
}

function poolGeometry(e: { graph: CnnGraph }, node: CnnNode): PoolShape {
  const c = node.config;
  const input = e.graph.nodes[node.inputs[0]!]!.shape as [number, number, number];
  const pool = asPair(c.poolSize);
  return poolShape(input, { pool, strides: asPair(c.strides ?? pool), padding: c.padding as 'same' | 'valid' });
}

const kernelKey = (node: CnnNode): string => (node.config.depthMultiplier !== undefined ? 'depthwise_kernel' : 'kernel');

/**
 * Below this fraction of surviving weights a stride-1 conv layer's forward
 * pass and weight gradient run on its survivors only (kernels/sparse.ts)
 * instead of the dense kernels, which skip zero activations but not zero
 * weights. Pruned weights are exactly 0, so either kernel gives the same
 * maths and each pass takes the cheaper one (sparseConvPasses). Measured per
 * pass on Conv-2's layers (scripts/bench-sparse-conv.ts, 30 images, one
 * thread): forward 1.6x (3->64) and 4x (64->64) faster at 10%, 1.1x and 1.6x
 * at 30%; weight gradient 1.7x and 2.8x at 10%, 1.3x and 1.2x at 30%.
 */
export const SPARSE_CONV_DENSITY = 0.2;
/**
 * The dense input gradient skips zero output gradients (about 75% behind a
 * 2x2 max pool, half behind a ReLU) and the sparse one does not, so its
 * break-even scales with the output gradient's nonzero fraction: sparse
 * below this many surviving weights per nonzero (and below
 * SPARSE_CONV_DENSITY). Measured on the 64->64 layer with 75% zeros: 1.9x
 * at 10%, 1.0x at 20%, 0.67x at 30%; with 50% zeros 1.3x at 20%.
 */
export const SPARSE_CONV_INPUT_GRAD_PER_NONZERO = 0.6;

/** Which passes of a conv layer run on its survivors; none where the sparse kernels do not fit or nothing survives. */
export interface SparseConvPasses {
  forward: boolean;
  weights: boolean;
  input: boolean;
}

/**
 * The cheaper kernel per pass for a layer of geometry `g` keeping `kept` of
 * `count` weights, whose output gradient is about `doutZeros` zero.
 */
export function sparseConvPasses(g: ConvShape, kept: number, count: number, doutZeros: number): SparseConvPasses {
  const none = { forward: false, weights: false, input: false };
  if (!sparseConvFits(g) || kept === 0) return none;
  const density = kept / count;
  const below = density < SPARSE_CONV_DENSITY;
  return {
    forward: below,
    weights: below,
    input: density < Math.min(SPARSE_CONV_DENSITY, SPARSE_CONV_INPUT_GRAD_PER_NONZERO * (1 - doutZeros)),
  };
}

/**
 * About how much of a node's output gradient is zero: behind max pools only,
 * all but one per window; else half where its ReLU is fused (the gradient is
 * masked by its output); else none.
 */
function outputGradZeros(graph: CnnGraph, node: CnnNode): number {
  const pools = node.consumers.map((i) => graph.nodes[i]!);
  if (pools.length > 0 && pools.every((p) => p.kind === 'maxpool')) {
    const window = Math.min(...pools.map((p) => asPair(p.config.poolSize).reduce((a, b) => a * b, 1)));
    return 1 - 1 / window;
  }
  return node.relu ? 0.5 : 0;
}

/** The survivor lists of a conv node and the passes that take them, or null (dense). */
export function sparseLists(e: EngineState, node: CnnNode): (SparseConvLists & SparseConvPasses) | null {
  const x = e.buf[node.index]!.extra;
  return x.sparse
    ? { ostart: x.ostart!, fent: x.fent!, cstart: x.cstart!, bent: x.bent!, count: x.sparse, forward: x.sparseForward === 1, weights: x.sparseWeights === 1, input: x.sparseInput === 1 }
    : null;
}

const conv: Op = {
  params(node, weights, mask, alloc, threads, adam) {
    return [param(`${node.layer}/${kernelKey(node)}`, weights, mask, alloc, threads, adam), param(`${node.layer}/bias`, weights, mask, alloc, threads, adam)].filter((p): p is Param => p !== null);
  },
  allocate(e, node, alloc) {
    const w = byKey(e, node, kernelKey(node))!;
    const g = convGeometry(e, node);
    if (!w.mask || !sparseConvFits(g)) return;
    const m = e.mem.f32(w.mask, w.count);
    let kept = 0;
    for (let i = 0; i < w.count; i++) if (m[i] !== 0) kept++;
    const passes = sparseConvPasses(g, kept, w.count, outputGradZeros(e.graph, node));
    // A layer on the network's input writes no input gradient.
    if (inputOf(e, node).kind === 'input') passes.input = false;
    if (!passes.forward && !passes.weights && !passes.input) return;
    const lists = sparseConvLists(g, Float32Array.from(m), alloc, (at, count) => e.mem.i32(at, count));
    Object.assign(e.buf[node.index]!.extra, {
      sparse: lists.count, ostart: lists.ostart, fent: lists.fent, cstart: lists.cstart, bent: lists.bent,
      sparseForward: Number(passes.forward), sparseWeights: Number(passes.weights), sparseInput: Number(passes.input),
    });
  },
  scratch: (graph, node, n) => {
    const g = convGeometry({ graph }, node);
    return Math.max(convScratchFloats(g, n), sparseConvFits(g) ? sparseConvScratchFloats(g) : 0);
  },
  forward(e, node, s) {
    const w = byKey(e, node, kernelKey(node))!;
    const b = byKey(e, node, 'bias');
    const lists = sparseLists(e, node);
    const g = convGeometry(e, node);
    const x = actAt(e, inputOf(e, node), s);
    if (lists?.forward) sparseConvForward(e.k, g, lists, s.n, x, w.p, b?.p ?? 0, actAt(e, node, s), node.relu, s.scratch);
    else convForward(e.k, g, s.n, x, w.p, b?.p ?? 0, actAt(e, node, s), node.relu, s.scratch);
  },
  backward(e, node, s, _barrier, emit) {
    const g = convGeometry(e, node);
    const input = inputOf(e, node);
    const w = byKey(e, node, kernelKey(node))!;
    const b = byKey(e, node, 'bias');
    const x = actAt(e, input, s);
    const dout = gradAt(e, node, s);
    const lists = sparseLists(e, node);
    if (lists?.weights) sparseConvGradWeights(e.k, g, lists, s.n, x, dout, w.g[s.thread]!, b?.g[s.thread] ?? 0, s.scratch);
    else convGradWeights(e.k, g, s.n, x, dout, w.g[s.thread]!, b?.g[s.thread] ?? 0, s.scratch);
    if (input.kind === 'input') return;
    if (lists?.input) emit(input, (dst) => sparseConvGradInput(e.k, g, lists, s.n, dout, w.p, dst, reluOf(e, input, s), s.scratch));
    else emit(input, (dst) => convGradInput(e.k, g, s.n, dout, w.p, dst, reluOf(e, input, s), s.scratch));
  },
};

const maxpool: Op = {
  allocate(e, node, alloc) {
    e.buf[node.index]!.extra.argmax = alloc(e.maxBatch * node.size);
  },
  forward(e, node, s) {
    const argmax = ptr(e.buf[node.index]!.extra.argmax!, node.size, s.first);
    maxPoolForward(e.k, poolGeometry(e, node), s.n, actAt(e, inputOf(e, node), s), actAt(e, node, s), argmax);
  },
  backward(e, node, s, _barrier, emit) {
    const input = inputOf(e, node);
    if (input.kind === 'input') return;
    const argmax = ptr(e.buf[node.index]!.extra.argmax!, node.size, s.first);
    emit(input, (dst) => maxPoolBackward(e.k, poolGeometry(e, node), s.n, gradAt(e, node, s), argmax, dst, reluOf(e, input, s)));
  },
};

const gap: Op = {
  forward(e, node, s) {
    const input = inputOf(e, node);
    globalAvgPoolForward(e.k, input.shape[0]! * input.shape[1]!, node.size, s.n, actAt(e, input, s), actAt(e, node, s));
  },
  backward(e, node, s, _barrier, emit) {
    const input = inputOf(e, node);
    if (input.kind === 'input') return;
    emit(input, (dst) => globalAvgPoolBackward(e.k, input.shape[0]! * input.shape[1]!, node.size, s.n, gradAt(e, node, s), dst, reluOf(e, input, s)));
  },
};

/**
 * BatchNorm: rows are pixels (or examples), channels the last axis. In
 * training, statistics are over the whole batch: each thread sums its rows
 * (shifted by the moving mean, against cancellation), waits for the others,
 * and reduces every thread's partials itself in the same order into its own
 * copy of mean and invstd; the engine updates the moving statistics once the
 * pass is over (bnAfterForward).
 */
const bn: Op = {
  params(node, weights, mask, alloc, threads, adam) {
    const trained = ['gamma', 'beta'].map((k) => param(`${node.layer}/${k}`, weights, mask, alloc, threads, adam));
    const state = ['moving_mean', 'moving_variance'].map((k) => param(`${node.layer}/${k}`, weights, mask, alloc, threads, adam, false));
    return [...trained, ...state].filter((p): p is Param => p !== null);
  },
  allocate(e, node, alloc) {
    const C = node.shape.at(-1)!;
    const x = e.buf[node.index]!.extra;
    for (let t = 0; t < e.threads; t++) {
      // Per thread: partial sums, their totals, its copy of the statistics, and gradient partials where gamma/beta are absent.
      for (const name of ['sum', 'sumsq', 'sumTotal', 'sumsqTotal', 'mean', 'variance', 'invstd', 'dg', 'db', 'dgTotal', 'dbTotal']) x[`${name}${t}`] = alloc(C);
    }
  },
  scratch: (_graph, node) => bnInferScratchFloats(node.shape.at(-1)!),
  forward(e, node, s, barrier) {
    const C = node.shape.at(-1)!;
    const rows = s.n * (node.size / C);
    const x = actAt(e, inputOf(e, node), s);
    const out = actAt(e, node, s);
    const ex = e.buf[node.index]!.extra;
    const gamma = byKey(e, node, 'gamma')?.p ?? 0;
    const beta = byKey(e, node, 'beta')?.p ?? 0;
    const eps = node.config.epsilon as number;
    const movMean = byKey(e, node, 'moving_mean')!.p;
    if (!e.training) {
      bnForwardInfer(e.k, rows, C, x, movMean, byKey(e, node, 'moving_variance')!.p, eps, gamma, beta, out, node.relu, s.scratch);
      return;
    }
    const t = s.thread;
    bnSums(e.k, rows, C, x, ex[`sum${t}`]!, ex[`sumsq${t}`]!, movMean);
    barrier();
    const sum = totals(e, ex, 'sum', t, C);
    const sumsq = totals(e, ex, 'sumsq', t, C);
    bnStats(e.k, C, e.batch * (node.size / C), sum, sumsq, eps, ex[`mean${t}`]!, ex[`variance${t}`]!, ex[`invstd${t}`]!, movMean);
    bnForwardTrain(e.k, rows, C, x, ex[`mean${t}`]!, ex[`invstd${t}`]!, gamma, beta, out, node.relu);
  },
  backward(e, node, s, barrier, emit) {
    const C = node.shape.at(-1)!;
    const rows = s.n * (node.size / C);
    const input = inputOf(e, node);
    const x = actAt(e, input, s);
    const dout = gradAt(e, node, s);
    const ex = e.buf[node.index]!.extra;
    const t = s.thread;
    const gammaP = byKey(e, node, 'gamma');
    const betaP = byKey(e, node, 'beta');
    // Partials go straight into this thread's parameter gradients (the optimiser update adds the threads' as it reads them).
    const dgPart = gammaP?.g[t] ?? ex[`dg${t}`]!;
    const dbPart = betaP?.g[t] ?? ex[`db${t}`]!;
    bnGradSums(e.k, rows, C, x, dout, ex[`mean${t}`]!, ex[`invstd${t}`]!, dgPart, dbPart);
    if (input.kind === 'input') return;
    barrier();
    const dg = totals(e, ex, 'dg', t, C, gammaP?.g);
    const db = totals(e, ex, 'db', t, C, betaP?.g);
    const count = e.batch * (node.size / C);
    emit(input, (dst) => bnGradInput(e.k, rows, count, C, x, dout, ex[`mean${t}`]!, ex[`invstd${t}`]!, gammaP?.p ?? 0, dg, db, dst, reluOf(e, input, s)));
  },
};

/** Thread t's own total of every thread's partial `name` (C floats; `from` overrides where the partials live), summed in thread order. */
function totals(e: EngineState, ex: Record<string, number>, name: string, t: number, C: number, from?: number[]): number {
  const dst = ex[`${name}Total${t}`]!;
  const part = (i: number) => from?.[i] ?? ex[`${name}${i}`]!;
  e.mem.f32(dst, C).set(e.mem.f32(part(0), C));
  for (let i = 1; i < e.threads; i++) sumInto(e.k, dst, part(i), C);
  return dst;
}

const add: Op = {
  forward(e, node, s) {
    const [a, b] = node.inputs.map((i) => e.graph.nodes[i]!);
    addForward(e.k, s.n * node.size, actAt(e, a!, s), actAt(e, b!, s), actAt(e, node, s), node.relu);
  },
  backward(e, node, s, _barrier, emit) {
    const count = s.n * node.size;
    const dout = gradAt(e, node, s);
    const view = e.mem.f32(0, e.mem.memory.buffer.byteLength / 4);
    for (const i of node.inputs) {
      const input = e.graph.nodes[i]!;
      if (input.kind === 'input') continue;
      emit(input, (dst) => {
        view.copyWithin(dst / 4, dout / 4, dout / 4 + count);
        if (input.relu) reluMask(e.k, count, actAt(e, input, s), dst);
      });
    }
  },
};

/** A flatten shares its input's buffers (engine.ts): nothing to do. */
const flatten: Op = { forward() {}, backward() {} };
const input: Op = { forward() {}, backward() {} };

/**
 * Below this fraction of surviving weights a dense layer trains on its
 * survivors only (kernels/sparse.ts over cnn/csr.c) instead of the dense
 * kernels. Measured on Conv-2's 16384 -> 256 head, 30 images a thread
 * (scripts/bench-sparse-conv.ts, one run on a loaded machine): forward and
 * both gradients 2.3-2.5x faster at 5-10%, 1.9x at 20%, 1.3x at 30%, 0.9x at
 * 50%; 25% keeps a margin below the break-even.
 */
export const SPARSE_DENSE_DENSITY = 0.25;

/** The survivor lists of a dense node that takes the sparse kernels, or null (dense). */
function denseLists(e: EngineState, node: CnnNode): SparseDenseLists | null {
  const x = e.buf[node.index]!.extra;
  return x.sparse ? { row: x.row!, flat: x.flat!, count: x.sparse } : null;
}

/** Where thread `s.thread` keeps a sparse dense node's input in feature-major order from its forward pass to its backward pass. */
const keptInput = (e: EngineState, node: CnnNode, s: Slice): number => {
  const x = e.buf[node.index]!.extra;
  return x.xT! + s.thread * x.xTBytes!;
};

const dense: Op = {
  params(node, weights, mask, alloc, threads, adam) {
    return [param(`${node.layer}/kernel`, weights, mask, alloc, threads, adam), param(`${node.layer}/bias`, weights, mask, alloc, threads, adam)].filter((p): p is Param => p !== null);
  },
  allocate(e, node, alloc) {
    const w = byKey(e, node, 'kernel')!;
    if (!w.mask) return;
    const m = e.mem.f32(w.mask, w.count);
    let kept = 0;
    for (let i = 0; i < w.count; i++) if (m[i] !== 0) kept++;
    if (kept === 0 || kept >= SPARSE_DENSE_DENSITY * w.count) return;
    const [inSize, outSize] = w.shape as [number, number];
    const lists = sparseDenseLists(inSize, outSize, Float32Array.from(m), alloc, (at, count) => e.mem.i32(at, count));
    // Each thread's feature-major copy of its slice's input, kept from the forward pass for the backward one (scratch is shared between nodes).
    const floats = sparseDenseInputFloats(inSize, Math.ceil(e.maxBatch / e.threads));
    Object.assign(e.buf[node.index]!.extra, { sparse: lists.count, row: lists.row, flat: lists.flat, xT: alloc(e.threads * floats), xTBytes: 4 * floats });
  },
  scratch: (graph, node, n) => {
    const inSize = graph.nodes[node.inputs[0]!]!.size;
    return Math.max(denseScratchFloats(inSize, n), sparseDenseScratchFloats(inSize, node.size, n));
  },
  forward(e, node, s) {
    const input = inputOf(e, node);
    const w = byKey(e, node, 'kernel')!;
    const bias = byKey(e, node, 'bias')?.p ?? 0;
    const lists = denseLists(e, node);
    if (lists) sparseDenseForward(e.k, lists, s.n, input.size, node.size, actAt(e, input, s), w.p, bias, actAt(e, node, s), node.relu, s.scratch, keptInput(e, node, s));
    else denseForward(e.k, s.n, input.size, node.size, actAt(e, input, s), w.p, bias, actAt(e, node, s), node.relu, s.scratch);
  },
  backward(e, node, s, _barrier, emit) {
    const input = inputOf(e, node);
    const w = byKey(e, node, 'kernel')!;
    const b = byKey(e, node, 'bias');
    const x = actAt(e, input, s);
    const dout = gradAt(e, node, s);
    const lists = denseLists(e, node);
    if (lists) {
      // One pass over the survivors gives both gradients; the input's is copied out where emit says.
      const hasInput = input.kind !== 'input';
      const copy = sparseDenseBackward(e.k, lists, s.n, input.size, node.size, x, dout, w.p, w.g[s.thread]!, b?.g[s.thread] ?? 0, hasInput, input.relu, s.scratch, keptInput(e, node, s));
      if (hasInput) emit(input, copy);
      return;
    }
    denseGradWeights(e.k, s.n, input.size, node.size, x, dout, w.g[s.thread]!, b?.g[s.thread] ?? 0, s.scratch);
    if (input.kind !== 'input') emit(input, (dst) => denseGradInput(e.k, s.n, input.size, node.size, dout, w.p, dst, reluOf(e, input, s)));
  },
};

export const OPS: Readonly<Record<NodeKind, Op>> = { input, conv, maxpool, gap, bn, add, flatten, dense };
