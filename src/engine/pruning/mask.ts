// Masks are data: weight name -> 0/1 Float32Array in the weight's row-major
// order. Helpers to make, measure, apply and (de)serialise them.
import type { Mask, PrunableWeight, WeightMap } from '../types.js';
import { product } from '../shapes.js';

export function onesMask(weights: PrunableWeight[]): Mask {
  const mask: Mask = {};
  for (const w of weights) mask[w.name] = new Float32Array(product(w.shape)).fill(1);
  return mask;
}

export function countAlive(m: Float32Array): number {
  let n = 0;
  for (let i = 0; i < m.length; i++) n += m[i]!;
  return n;
}

export function layerDensity(mask: Mask): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, m] of Object.entries(mask)) out[name] = m.length === 0 ? 1 : countAlive(m) / m.length;
  return out;
}

/** Fraction of all masked weights still alive. */
export function globalDensity(mask: Mask): number {
  let alive = 0;
  let total = 0;
  for (const m of Object.values(mask)) {
    alive += countAlive(m);
    total += m.length;
  }
  return total === 0 ? 1 : alive / total;
}

export function applyMask(values: Float32Array, m: Float32Array): Float32Array {
  if (values.length !== m.length) throw new Error(`mask has ${m.length} entries, weight has ${values.length}`);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i]! * m[i]!;
  return out;
}

/** Zero the pruned entries of a weight map (weights without a mask entry are shared, not copied). */
export function applyMaskTo(w: WeightMap, mask: Mask): WeightMap {
  const out: WeightMap = { ...w };
  for (const [name, m] of Object.entries(mask)) {
    const src = w[name];
    if (!src) throw new Error(`mask names weight '${name}', which the weights do not have`);
    out[name] = { shape: src.shape, values: applyMask(src.values, m) };
  }
  return out;
}

/** Pack 0/1 floats into bits, LSB first. */
export function packBits(m: Float32Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(m.length / 8));
  for (let i = 0; i < m.length; i++) if (m[i] !== 0) out[i >> 3]! |= 1 << (i & 7);
  return out;
}

export function unpackBits(bits: Uint8Array, length: number): Float32Array {
  if (bits.length < Math.ceil(length / 8)) throw new Error(`bitmask has ${bits.length} bytes, need ${Math.ceil(length / 8)}`);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = (bits[i >> 3]! >> (i & 7)) & 1;
  return out;
}

interface MaskFile {
  format: 'ticketsmith-mask/1';
  weights: Record<string, { length: number; bits: string }>;
}

export function serializeMask(mask: Mask): Uint8Array {
  const file: MaskFile = { format: 'ticketsmith-mask/1', weights: {} };
  for (const [name, m] of Object.entries(mask)) {
    file.weights[name] = { length: m.length, bits: Buffer.from(packBits(m)).toString('base64') };
  }
  return new TextEncoder().encode(JSON.stringify(file));
}

export function deserializeMask(bytes: Uint8Array): Mask {
  const file = JSON.parse(new TextDecoder().decode(bytes)) as MaskFile;
  if (file.format !== 'ticketsmith-mask/1') throw new Error(`unknown mask format ${String(file.format)}`);
  const mask: Mask = {};
  for (const [name, { length, bits }] of Object.entries(file.weights)) {
    mask[name] = unpackBits(new Uint8Array(Buffer.from(bits, 'base64')), length);
  }
  return mask;
}
