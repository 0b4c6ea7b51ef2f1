// Loader of the WebAssembly SIMD MLP kernels (mlp.c, embedded in
// mlp-wasm.gen.ts). Each MlpKernels owns one WebAssembly memory (a WasmArena:
// allocate every buffer, then take views). The module comes in two builds of
// the same source: plain SIMD, and relaxed SIMD (fused multiply-adds), taken
// where the engine compiles it (simdBuilds, as the conv kernels do).
import { WASM_BASE64, WASM_RELAXED_BASE64 } from './mlp-wasm.gen.js';
import { WasmArena, simdBuilds, type SimdBuild } from './arena.js';

export interface MlpExports {
  __heap_base: WebAssembly.Global;
  dense_forward(x: number, batch: number, inSize: number, w: number, bias: number, out: number, outSize: number, relu: number, idx: number, val: number): void;
  dense_grad_weights(x: number, batch: number, inSize: number, dz: number, outSize: number, dw: number, db: number, idx: number, val: number): void;
  dense_grad_input(dz: number, batch: number, outSize: number, w: number, inSize: number, a: number, relu: number, da: number): void;
  // The same results with the kernel read once per call (dense_* take these above DENSE_FM_MIN_BYTES of kernel).
  dense_forward_fm(x: number, batch: number, inSize: number, w: number, bias: number, out: number, outSize: number, relu: number, idx: number, val: number): void;
  dense_grad_weights_fm(x: number, batch: number, inSize: number, dz: number, outSize: number, dw: number, db: number, idx: number, val: number): void;
  dense_grad_input_fm(dz: number, batch: number, outSize: number, w: number, inSize: number, a: number, relu: number, da: number): void;
  adam(p: number, g: number, m: number, v: number, mask: number, n: number, lr: number, b1: number, b2: number, eps: number, c1: number, c2: number): void;
  sgd(p: number, g: number, m: number, mask: number, n: number, lr: number, mom: number): void;
  to_feature_major(src: number, rows: number, cols: number, dst: number, lanes: number): void;
  from_feature_major(src: number, rows: number, cols: number, dst: number, lanes: number): void;
  csr_forward(aT: number, lanes: number, inSize: number, row: number, col: number, val: number, bias: number, outT: number, outSize: number, relu: number): void;
  csr_backward(aT: number, lanes: number, inSize: number, row: number, col: number, val: number, dzT: number, outSize: number, gval: number, gb: number, daT: number, relu: number): void;
}

const builds = simdBuilds(WASM_BASE64, WASM_RELAXED_BASE64);

/** One build of the kernels, or null where this engine cannot compile it. */
export function mlpBuild(build: SimdBuild): WebAssembly.Module | null {
  return builds.build(build);
}

/** The build the engine runs: relaxed where it compiles, unless TICKETSMITH_RELAXED_SIMD=0; else plain (null: no SIMD at all). */
export function mlpBuildInUse(): SimdBuild | null {
  return builds.inUse();
}

export function simdKernelsAvailable(): boolean {
  return builds.module() !== null;
}

export class MlpKernels extends WasmArena {
  readonly k: MlpExports;

  /** `mod`: a build of the kernels (mlpBuild), default the one the engine runs. */
  constructor(mod: WebAssembly.Module | null = builds.module()) {
    if (!mod) throw new Error('this WebAssembly engine does not support 128-bit SIMD');
    const memory = new WebAssembly.Memory({ initial: 2 });
    const k = new WebAssembly.Instance(mod, { env: { memory } }).exports as unknown as MlpExports;
    super(memory, k.__heap_base.value as number);
    this.k = k;
  }
}

export interface WasmOptimiser {
  /** Whether step needs second-moment buffers (v). */
  readonly needsV: boolean;
  /** One update of n parameters at byte offset p from gradients g (zeroed where mask is 0, if a mask is given). */
  step(p: number, g: number, m: number, v: number, mask: number, n: number, lr: number): void;
  /** Once per training step, after every tensor's update. */
  tick(): void;
}

/** TF.js's Adam (epsilon 1e-7), SGD or momentum update rule on the kernels' memory. */
export function wasmOptimiser(k: MlpExports, cfg: { optimizer: 'adam' | 'sgd' | 'momentum'; momentum: number }): WasmOptimiser {
  const b1 = 0.9;
  const b2 = 0.999;
  let acc1 = b1;
  let acc2 = b2;
  if (cfg.optimizer === 'adam') {
    return {
      needsV: true,
      step: (p, g, m, v, mask, n, lr) => k.adam(p, g, m, v, mask, n, lr, b1, b2, 1e-7, 1 - acc1, 1 - acc2),
      tick() {
        acc1 *= b1;
        acc2 *= b2;
      },
    };
  }
  const mom = cfg.optimizer === 'momentum' ? cfg.momentum : 0;
  return { needsV: false, step: (p, g, m, _v, mask, n, lr) => k.sgd(p, g, m, mask, n, lr, mom), tick() {} };
}
