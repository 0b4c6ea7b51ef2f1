// Loader of the conv-net kernels (cnn.c and its parts in cnn/, embedded in
// cnn-wasm.gen.ts). The module runs on a shared WebAssembly.Memory: one
// CnnKernels owns it and allocates every buffer; `attach` instantiates the
// same module on that memory in another thread (a worker given the memory
// and module), with a stack of its own, so threads run kernels side by side
// on disjoint parts of the same buffers. Each thread keeps the memory of its
// last engine for the next one (takeKernels / keepKernels): a worker running
// trial after trial holds one memory, not one per trial until V8 collects it.
// The module comes in two builds of the same sources: plain SIMD, and
// relaxed SIMD (fused multiply-adds), taken where the engine accepts it.
import { WASM_BASE64, WASM_RELAXED_BASE64 } from './cnn-wasm.gen.js';
import { WasmArena, simdBuilds, type SimdBuild } from './arena.js';

/** The kernels' exports; each part of cnn.c documents its functions' arguments. */
export interface CnnExports {
  __heap_base: WebAssembly.Global;
  __stack_pointer: WebAssembly.Global;
  // cnn/conv.c: g = n, H, W, C, KH, KW, O, sh, sw, pt, pl, OH, OW, depthwise (see conv.ts)
  conv_scratch_floats(H: number, W: number, C: number, KH: number, KW: number, O: number, sh: number, sw: number,
    pt: number, pl: number, OH: number, OW: number, depthwise: number): number;
  conv_forward(n: number, H: number, W: number, C: number, KH: number, KW: number, O: number, sh: number, sw: number,
    pt: number, pl: number, OH: number, OW: number, depthwise: number,
    x: number, w: number, bias: number, out: number, relu: number, scratch: number): void;
  conv_grad_weights(n: number, H: number, W: number, C: number, KH: number, KW: number, O: number, sh: number, sw: number,
    pt: number, pl: number, OH: number, OW: number, depthwise: number,
    x: number, dout: number, dw: number, db: number, scratch: number): void;
  conv_grad_input(n: number, H: number, W: number, C: number, KH: number, KW: number, O: number, sh: number, sw: number,
    pt: number, pl: number, OH: number, OW: number, depthwise: number,
    dout: number, w: number, dx: number, xRelu: number, scratch: number): void;
  // layers slice: cnn/layers.c, cnn/optim.c and the dense kernels of mlp.c (wrapped by engine/training/cnn/kernels/layers.ts)
  max_pool_forward(x: number, n: number, H: number, W: number, C: number, PH: number, PW: number, sh: number, sw: number, pt: number, pl: number, OH: number, OW: number, out: number, argmax: number): void;
  max_pool_backward(dout: number, argmax: number, n: number, H: number, W: number, C: number, PH: number, PW: number, sh: number, sw: number, pt: number, pl: number, OH: number, OW: number, dx: number, xRelu: number): void;
  avg_pool_forward(x: number, n: number, H: number, W: number, C: number, PH: number, PW: number, sh: number, sw: number, pt: number, pl: number, OH: number, OW: number, out: number): void;
  avg_pool_backward(dout: number, n: number, H: number, W: number, C: number, PH: number, PW: number, sh: number, sw: number, pt: number, pl: number, OH: number, OW: number, dx: number, xRelu: number): void;
  global_avg_pool_forward(x: number, hw: number, C: number, n: number, out: number): void;
  global_avg_pool_backward(dout: number, hw: number, C: number, n: number, dx: number, xRelu: number): void;
  bn_sums(x: number, rows: number, C: number, shift: number, sum: number, sumsq: number): void;
  bn_stats(C: number, count: number, sum: number, sumsq: number, shift: number, eps: number, mean: number, variance: number, invstd: number): void;
  bn_moving(C: number, mean: number, variance: number, momentum: number, movingMean: number, movingVariance: number): void;
  bn_forward_train(x: number, rows: number, C: number, mean: number, invstd: number, gamma: number, beta: number, out: number, relu: number): void;
  bn_forward_infer(x: number, rows: number, C: number, mean: number, variance: number, eps: number, gamma: number, beta: number, out: number, relu: number, scratch: number): void;
  bn_grad_sums(x: number, dout: number, rows: number, C: number, mean: number, invstd: number, dgamma: number, dbeta: number): void;
  bn_grad_input(x: number, dout: number, rows: number, count: number, C: number, mean: number, invstd: number, gamma: number, dgamma: number, dbeta: number, dx: number, xRelu: number): void;
  add_forward(a: number, b: number, out: number, count: number, relu: number): void;
  relu_mask(act: number, d: number, count: number): void;
  sum_into(dst: number, src: number, count: number): void;
  adam_all(table: number, count: number, threads: number, gstride: number, lr: number, b1: number, b2: number, eps: number, c1: number, c2: number): void;
  sgd_all(table: number, count: number, threads: number, gstride: number, lr: number, mom: number): void;
  dense_forward(x: number, batch: number, inSize: number, w: number, bias: number, out: number, outSize: number, relu: number, idx: number, val: number): void;
  dense_grad_weights(x: number, batch: number, inSize: number, dz: number, outSize: number, dw: number, db: number, idx: number, val: number): void;
  dense_grad_input(dz: number, batch: number, outSize: number, w: number, inSize: number, a: number, relu: number, da: number): void;
  // sparse slice: cnn/sparse.c (stride-1 Conv2D on its surviving weights; wrapped by engine/training/cnn/kernels/sparse.ts)
  sparse_conv_scratch_floats(C: number, KH: number, KW: number, O: number, OH: number, OW: number): number;
  sparse_conv_forward(n: number, H: number, W: number, C: number, KH: number, KW: number, O: number, pt: number, pl: number, OH: number, OW: number,
    x: number, w: number, bias: number, out: number, relu: number, ostart: number, fent: number, scratch: number): void;
  sparse_conv_grad_weights(n: number, H: number, W: number, C: number, KH: number, KW: number, O: number, pt: number, pl: number, OH: number, OW: number,
    x: number, dout: number, dw: number, db: number, ostart: number, fent: number, scratch: number): void;
  sparse_conv_grad_input(n: number, H: number, W: number, C: number, KH: number, KW: number, O: number, pt: number, pl: number, OH: number, OW: number,
    dout: number, w: number, dx: number, xRelu: number, cstart: number, bent: number, scratch: number): void;
  // sparse dense layers: cnn/csr.c over mlp.c's feature-major transposes (wrapped by engine/training/cnn/kernels/sparse.ts)
  to_feature_major(src: number, rows: number, cols: number, dst: number, s: number): void;
  from_feature_major(src: number, rows: number, cols: number, dst: number, s: number): void;
  csr_flat_forward(aT: number, s: number, inSize: number, row: number, flat: number, w: number, bias: number, outT: number, outSize: number, relu: number): void;
  csr_flat_backward(aT: number, s: number, inSize: number, row: number, flat: number, w: number, dzT: number, outSize: number,
    gw: number, gb: number, daT: number, relu: number): void;
}

const builds = simdBuilds(WASM_BASE64, WASM_RELAXED_BASE64);

export type CnnBuild = SimdBuild;

/**
 * One build of the kernels, or null where this engine cannot compile it
 * (simdBuilds: relaxed SIMD may need a V8 flag, which it sets).
 * The relaxed build fuses each multiply-add of the conv kernels (one
 * rounding instead of two, as TF's and PyTorch's FMA kernels do) where the
 * CPU has FMA: ResNet-20's conv passes ran 1.3x-1.4x faster than the plain
 * build's, Conv-2's forward 1.4x (scripts/bench-conv-kernels.ts --builds).
 */
export function cnnBuild(build: CnnBuild): WebAssembly.Module | null {
  return builds.build(build);
}

/** The build the engine runs: relaxed where it compiles, unless TICKETSMITH_RELAXED_SIMD=0; else plain (null: no SIMD at all). */
export function cnnBuildInUse(): CnnBuild | null {
  return builds.inUse();
}

const wasmModule = (): WebAssembly.Module | null => builds.module();

/** Bytes of stack each thread gets (the module is linked with a 64 KiB stack; kernels use little). */
export const STACK_BYTES = 65536;
/** The shared memory's ceiling in 64 KiB pages (4 GiB, wasm32's limit). */
const MAX_PAGES = 65536;
/** Bytes the kernels' memory can hold. */
export const MAX_BYTES = MAX_PAGES * 65536;

export function cnnKernelsAvailable(): boolean {
  return wasmModule() !== null;
}

export function cnnModule(): WebAssembly.Module {
  const mod = wasmModule();
  if (!mod) throw new Error('this WebAssembly engine does not support 128-bit SIMD');
  return mod;
}

/** The module instantiated on `memory`, its stack pointer set to the top of the stack at byte `stack` (STACK_BYTES long). */
export function attach(memory: WebAssembly.Memory, stack: number | null, mod: WebAssembly.Module = cnnModule()): CnnExports {
  const k = new WebAssembly.Instance(mod, { env: { memory } }).exports as unknown as CnnExports;
  if (stack !== null) k.__stack_pointer.value = stack + STACK_BYTES;
  return k;
}

export class CnnKernels extends WasmArena {
  readonly k: CnnExports;

  /** `mod`: a build of the kernels (cnnBuild), default the one the engine runs; other threads attach the same build. */
  constructor(readonly mod: WebAssembly.Module = cnnModule()) {
    const memory = new WebAssembly.Memory({ initial: 2, maximum: MAX_PAGES, shared: true });
    const k = attach(memory, null, mod);
    super(memory, k.__heap_base.value as number);
    this.k = k;
  }

  /** A stack for one more thread (call before the last alloc of views). */
  allocStack(): number {
    return this.alloc(STACK_BYTES / 4);
  }
}

/** The memory this thread's last engine gave back (keepKernels), for the next engine. */
let kept: CnnKernels | null = null;

/**
 * Kernels on a memory for a new engine: the one this thread kept, reset
 * (its allocations zeroed afresh, grown only when a bigger engine needs it),
 * else a new one.
 */
export function takeKernels(): CnnKernels {
  // A kept memory runs the build it was made with: kept only while that is still the build in use.
  const mem = kept !== null && kept.mod === cnnModule() ? kept : new CnnKernels();
  kept = null;
  mem.reset();
  return mem;
}

/**
 * Gives an engine's memory back for the next engine of this thread. Only
 * once nothing uses it any more: no view of it is read again and no other
 * thread runs kernels on it. Of two given back, the larger is kept.
 */
export function keepKernels(mem: CnnKernels): void {
  if (kept === null || mem.memory.buffer.byteLength >= kept.memory.buffer.byteLength) kept = mem;
}
