// Weight maps to bytes and back: one little-endian float32 blob plus a JSON
// manifest of names, shapes and offsets. Used for round checkpoints and the
// engine's own state (init and rewind weights).
import type { WeightMap } from './types.js';

interface Manifest {
  format: 'ticketsmith-weights/1';
  weights: Array<{ name: string; shape: number[]; offset: number; length: number }>;
}

export function encodeWeights(w: WeightMap): { bin: Uint8Array; json: Uint8Array } {
  const names = Object.keys(w).sort();
  const manifest: Manifest = { format: 'ticketsmith-weights/1', weights: [] };
  let total = 0;
  for (const name of names) {
    manifest.weights.push({ name, shape: w[name]!.shape, offset: total, length: w[name]!.values.length });
    total += w[name]!.values.length;
  }
  const all = new Float32Array(total);
  for (const e of manifest.weights) all.set(w[e.name]!.values, e.offset);
  return { bin: new Uint8Array(all.buffer), json: new TextEncoder().encode(JSON.stringify(manifest)) };
}

export function decodeWeights(bin: Uint8Array, json: Uint8Array): WeightMap {
  const manifest = JSON.parse(new TextDecoder().decode(json)) as Manifest;
  if (manifest.format !== 'ticketsmith-weights/1') throw new Error(`unknown weights format ${String(manifest.format)}`);
  const floats = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  const out: WeightMap = {};
  for (const e of manifest.weights) {
    if (e.offset + e.length > floats.length) throw new Error(`weights file is truncated at '${e.name}'`);
    out[e.name] = { shape: e.shape, values: floats.slice(e.offset, e.offset + e.length) };
  }
  return out;
}

/** Single-blob form for sink state: 4-byte manifest length, manifest, floats. */
export function packWeights(w: WeightMap): Uint8Array {
  const { bin, json } = encodeWeights(w);
  const pad = (4 - ((4 + json.length) % 4)) % 4;
  const out = new Uint8Array(4 + json.length + pad + bin.length);
  new DataView(out.buffer).setUint32(0, json.length + pad, true);
  out.set(json, 4);
  out.fill(0x20, 4 + json.length, 4 + json.length + pad);
  out.set(bin, 4 + json.length + pad);
  return out;
}

export function unpackWeights(bytes: Uint8Array): WeightMap {
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  return decodeWeights(bytes.subarray(4 + len), bytes.subarray(4, 4 + len));
}
