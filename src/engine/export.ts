// The compressed ticket: every masked weight stored as a bitmask plus its
// surviving values (float32 or float16), every other weight dense. At 20%
// density that is ~4.3x smaller than dense float32; the reader restores the
// exact dense tensors (zeros in place).
import type { Mask, WeightMap } from './types.js';
import { packBits, unpackBits } from './pruning/mask.js';

const MAGIC = 'TSCK1';

interface Header {
  float16: boolean;
  weights: Array<{ name: string; shape: number[]; sparse: boolean; count: number }>;
}

export function float32ToFloat16(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant = (mant | 0x800000) >> (1 - e);
    if (mant & 0x1000) mant += 0x2000;
    return sign | (mant >> 13);
  }
  if (mant & 0x1000) {
    mant += 0x2000;
    if (mant & 0x800000) {
      mant = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | (mant >> 13);
}

export function float16ToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Layout: magic, u32 header length, header JSON, then per weight [bitmask][values]. */
export function compressTicket(weights: WeightMap, mask: Mask, opts: { float16?: boolean } = {}): Uint8Array {
  const f16 = opts.float16 === true;
  const header: Header = { float16: f16, weights: [] };
  const parts: Uint8Array[] = [];
  for (const name of Object.keys(weights).sort()) {
    const { shape, values } = weights[name]!;
    const m = mask[name];
    const kept: number[] = [];
    if (m) {
      parts.push(packBits(m));
      for (let i = 0; i < values.length; i++) if (m[i] !== 0) kept.push(values[i]!);
    } else {
      for (let i = 0; i < values.length; i++) kept.push(values[i]!);
    }
    if (f16) {
      const h = new Uint16Array(kept.length);
      for (let i = 0; i < kept.length; i++) h[i] = float32ToFloat16(kept[i]!);
      parts.push(new Uint8Array(h.buffer));
    } else {
      parts.push(new Uint8Array(Float32Array.from(kept).buffer));
    }
    header.weights.push({ name, shape, sparse: m !== undefined, count: kept.length });
  }
  const head = new TextEncoder().encode(JSON.stringify(header));
  const total = MAGIC.length + 4 + head.length + parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, head.length, true);
  out.set(head, MAGIC.length + 4);
  let off = MAGIC.length + 4 + head.length;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function decompressTicket(bytes: Uint8Array): { weights: WeightMap; mask: Mask } {
  if (new TextDecoder().decode(bytes.subarray(0, MAGIC.length)) !== MAGIC) throw new Error('not a compressed ticket (bad magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headLen = view.getUint32(MAGIC.length, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, MAGIC.length + 4 + headLen))) as Header;
  let off = MAGIC.length + 4 + headLen;
  const weights: WeightMap = {};
  const mask: Mask = {};
  const take = (n: number) => {
    if (off + n > bytes.length) throw new Error('compressed ticket is truncated');
    // A copy with its own aligned buffer (Buffer#slice would be a view into a shared pool).
    const s = new Uint8Array(bytes.subarray(off, off + n));
    off += n;
    return s;
  };
  for (const e of header.weights) {
    const size = e.shape.reduce((a, b) => a * b, 1);
    const m = e.sparse ? unpackBits(take(Math.ceil(size / 8)), size) : null;
    const raw = take(e.count * (header.float16 ? 2 : 4));
    const kept = header.float16
      ? Float32Array.from(new Uint16Array(raw.buffer), float16ToFloat32)
      : new Float32Array(raw.buffer);
    const values = new Float32Array(size);
    if (m) {
      let j = 0;
      for (let i = 0; i < size; i++) if (m[i] !== 0) values[i] = kept[j++]!;
      mask[e.name] = m;
    } else {
      values.set(kept);
    }
    weights[e.name] = { shape: e.shape, values };
  }
  return { weights, mask };
}
