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
