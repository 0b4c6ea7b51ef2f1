// Loader of the WebAssembly SIMD MLP kernels (mlp.c, embedded in
// mlp-wasm.gen.ts). Each MlpKernels owns one WebAssembly memory: callers
// allocate every buffer first (alloc), then take views (f32/i32), which stay
// valid because the memory never grows after the last alloc.
import { WASM_BASE64 } from './mlp-wasm.gen.js';

export interface MlpExports {
  __heap_base: WebAssembly.Global;
  dense_forward(x: number, batch: number, inSize: number, w: number, bias: number, out: number, outSize: number, relu: number, idx: number, val: number): void;
  dense_grad_weights(x: number, batch: number, inSize: number, dz: number, outSize: number, dw: number, db: number, idx: number, val: number): void;
  dense_grad_input(dz: number, batch: number, outSize: number, w: number, inSize: number, a: number, relu: number, da: number): void;
  adam(p: number, g: number, m: number, v: number, mask: number, n: number, lr: number, b1: number, b2: number, eps: number, c1: number, c2: number): void;
  sgd(p: number, g: number, m: number, mask: number, n: number, lr: number, mom: number): void;
  to_feature_major(src: number, rows: number, cols: number, dst: number, lanes: number): void;
  from_feature_major(src: number, rows: number, cols: number, dst: number, lanes: number): void;
  csr_forward(aT: number, lanes: number, inSize: number, row: number, col: number, val: number, bias: number, outT: number, outSize: number, relu: number): void;
  csr_backward(aT: number, lanes: number, inSize: number, row: number, col: number, val: number, dzT: number, outSize: number, gval: number, gb: number, daT: number, relu: number): void;
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled module, or null where this WebAssembly engine lacks 128-bit SIMD. */
function wasmModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = Buffer.from(WASM_BASE64, 'base64');
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

export function simdKernelsAvailable(): boolean {
  return wasmModule() !== null;
}

const PAGE = 65536;

export class MlpKernels {
  readonly k: MlpExports;
  private readonly memory: WebAssembly.Memory;
  private top: number;

  constructor() {
    const mod = wasmModule();
    if (!mod) throw new Error('this WebAssembly engine does not support 128-bit SIMD');
    this.memory = new WebAssembly.Memory({ initial: 2 });
    this.k = new WebAssembly.Instance(mod, { env: { memory: this.memory } }).exports as unknown as MlpExports;
    this.top = this.k.__heap_base.value as number;
  }

  /** Byte offset of `count` fresh zeroed 4-byte elements, 16-byte aligned. */
  alloc(count: number): number {
    const at = (this.top + 15) & ~15;
    this.top = at + count * 4;
    const need = Math.ceil(this.top / PAGE) - this.memory.buffer.byteLength / PAGE;
    if (need > 0) this.memory.grow(need);
    return at;
  }

  f32(offset: number, count: number): Float32Array {
    return new Float32Array(this.memory.buffer, offset, count);
  }

  i32(offset: number, count: number): Int32Array {
    return new Int32Array(this.memory.buffer, offset, count);
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
