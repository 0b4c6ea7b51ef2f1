import v8 from 'node:v8';
import { isMainThread } from 'node:worker_threads';

// One WebAssembly memory that kernels and their callers share: callers
// allocate every buffer first (alloc), then take views (f32/i32), which stay
// valid because the memory never grows after the last alloc. Used by the MLP
// kernels (mlp-kernels.ts) and the conv-net kernels (cnn-kernels.ts). An
// arena can be reset and allocated again from the start (the conv engine
// reuses one memory per thread across trials): alloc zeroes what earlier
// users wrote, so every allocation still starts zeroed.
const PAGE = 65536;

export class WasmArena {
  private top: number;
  /** End of what allocations before the last reset may have written: alloc zeroes below it. */
  private dirty = 0;

  constructor(
    readonly memory: WebAssembly.Memory,
    private readonly heapBase: number,
  ) {
    this.top = heapBase;
  }

  /** Frees every allocation: the next alloc starts again at the heap's base (views taken before must not be used). */
  reset(): void {
    this.dirty = Math.max(this.dirty, this.top);
    this.top = this.heapBase;
  }

  /** Byte offset of `count` fresh zeroed 4-byte elements, 16-byte aligned. */
  alloc(count: number): number {
    const at = (this.top + 15) & ~15;
    this.top = at + count * 4;
    const need = Math.ceil(this.top / PAGE) - this.memory.buffer.byteLength / PAGE;
    if (need > 0) this.memory.grow(need);
    if (at < this.dirty) new Uint8Array(this.memory.buffer, at, Math.min(this.top, this.dirty) - at).fill(0);
    return at;
  }

  /** Bytes allocated so far (the high-water mark). */
  get used(): number {
    return this.top;
  }

  f32(offset: number, count: number): Float32Array {
    return new Float32Array(this.memory.buffer, offset, count);
  }

  i32(offset: number, count: number): Int32Array {
    return new Int32Array(this.memory.buffer, offset, count);
  }
}

/** The compiled module of a base64 binary, or null where this engine cannot validate it (no 128-bit SIMD). */
export function compileOnce(base64: string): () => WebAssembly.Module | null {
  let compiled: WebAssembly.Module | null | undefined;
  return () => {
    if (compiled === undefined) {
      const bytes = Buffer.from(base64, 'base64');
      compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    }
    return compiled;
  };
}

/** A module's two builds: plain SIMD, and relaxed SIMD (fused multiply-adds). */
export type SimdBuild = 'relaxed' | 'plain';

export interface SimdBuilds {
  /** One build, or null where this engine cannot compile it. */
  build(build: SimdBuild): WebAssembly.Module | null;
  /** The build the engine runs: relaxed where it compiles, unless TICKETSMITH_RELAXED_SIMD=0; else plain (null: no SIMD at all). */
  inUse(): SimdBuild | null;
  /** The module of the build in use, or null where this engine has no 128-bit SIMD. */
  module(): WebAssembly.Module | null;
}

/**
 * The plain and relaxed-SIMD builds of one kernel module (scripts/build-simd.sh
 * embeds both for a source marked `// wasm: relaxed-simd`), each compiled on
 * first use. Node 20's V8 validates relaxed SIMD only behind
 * --experimental-wasm-relaxed-simd (later Nodes ship it on). V8's flags are
 * the process's, and Node leaves changing them after start to the caller's
 * risk: the main thread turns the flag on when it loads a kernel module, at
 * start-up and before any worker thread exists (enableRelaxedSimd); a thread
 * that still finds the relaxed binary invalid falls back to the plain one
 * rather than touch the flags with other threads running.
 * TICKETSMITH_RELAXED_SIMD=0 is read at each choice, so a benchmark can
 * compare both builds in one process.
 */
export function simdBuilds(plainBase64: string, relaxedBase64: string): SimdBuilds {
  const plain = compileOnce(plainBase64);
  if (isMainThread) enableRelaxedSimd(relaxedBase64);
  let relaxedCompiled: WebAssembly.Module | null | undefined;
  const relaxed = (): WebAssembly.Module | null => {
    if (relaxedCompiled === undefined) {
      const bytes = Buffer.from(relaxedBase64, 'base64');
      relaxedCompiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    }
    return relaxedCompiled;
  };
  const build = (b: SimdBuild) => (b === 'plain' ? plain() : relaxed());
  const inUse = (): SimdBuild | null => {
    if (process.env.TICKETSMITH_RELAXED_SIMD !== '0' && relaxed()) return 'relaxed';
    return plain() ? 'plain' : null;
  };
  return {
    build,
    inUse,
    module() {
      const b = inUse();
      return b ? build(b) : null;
    },
  };
}

/**
 * Turns on V8's relaxed-SIMD flag for the process where the relaxed binary
 * needs it to validate (Node 20), unless TICKETSMITH_RELAXED_SIMD=0. Called
 * from the main thread only, as each kernel module loads (at start-up,
 * before the trial pool and the engine's threads exist); worker threads
 * inherit the process's flags.
 */
export function enableRelaxedSimd(relaxedBase64: string): void {
  if (process.env.TICKETSMITH_RELAXED_SIMD === '0') return;
  const bytes = Buffer.from(relaxedBase64, 'base64');
  if (!WebAssembly.validate(bytes)) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
}
