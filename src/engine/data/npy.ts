// Reader for NumPy's .npy arrays (format versions 1-3) and .npz archives (a zip
// of .npy members, stored or deflated, as np.savez / np.savez_compressed write).
// Only what a classification dataset needs: plain numeric dtypes, C order.

import { unzipSync } from 'fflate';
import { hexPrefix, isZip } from './bytes.js';
import { DatasetError, describeError } from './errors.js';
import { ratioAllowance } from './source.js';
import { DEFAULT_DATASET_LIMITS, type DatasetLimits } from '../../runtime/engine-config.js';
import type { Images } from './examples.js';
import { product } from '../shapes.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export interface NpyArray {
  /** NumPy's dtype string, e.g. `<f4`, `|u1`. */
  descr: string;
  kind: 'f' | 'u' | 'i' | 'b';
  itemsize: number;
  shape: number[];
  length: number;
  at: (i: number) => number;
  payload: Uint8Array;
}

const SUPPORTED: Record<string, number[]> = { f: [4, 8], u: [1, 2, 4, 8], i: [1, 2, 4, 8], b: [1] };

/** What an NPY header says: dtype, shape, and where the data starts. */
export interface NpyHeader {
  descr: string;
  kind: NpyArray['kind'];
  itemsize: number;
  bigEndian: boolean;
  shape: number[];
  /** Offset of the first data byte (preamble + header). */
  dataStart: number;
}

/** The longest header accepted: np.save writes well under 1 KiB; a huge one is a hostile file. */
export const MAX_NPY_HEADER = 64 * 1024;

/** Bytes needed before the header text can be read: 10 (v1) or 12 (v2, v3). */
export function npyPreambleSize(major: number): number {
  return major === 1 ? 10 : 12;
}

/**
 * Parses the preamble and header at the start of `bytes` (which need hold no
 * data), so a streaming reader can judge a file from its first bytes.
 */
export function parseNpyHeader(bytes: Uint8Array, file: string, field: string): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new DatasetError(
      `${file}: not an NPY file (magic bytes ${hexPrefix(bytes, 6)}; expected 93 4e 55 4d 50 59 = \\x93NUMPY)`,
      field,
      file,
    );
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new DatasetError(`${file}: truncated NPY header`, field, file);
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new DatasetError(`${file}: unsupported NPY format version ${major}.${bytes[7]}`, field, file);
  }
  if (headerLen > MAX_NPY_HEADER) {
    throw new DatasetError(`${file}: NPY header of ${headerLen} bytes is too long (at most ${MAX_NPY_HEADER})`, field, file);
  }
  const dataStart = headerStart + headerLen;
  if (bytes.length < dataStart) {
    throw new DatasetError(
      `${file}: truncated NPY header (needs ${dataStart} bytes, file has ${bytes.length})`,
      field,
      file,
    );
  }
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));

  const descrMatch = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header);
  const fortranMatch = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header);
  const shapeMatch = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header);
  if (descrMatch === null || fortranMatch === null || shapeMatch === null) {
    const shown = header.trim();
    throw new DatasetError(
      `${file}: unsupported or corrupt NPY header ${JSON.stringify(shown.length > 120 ? `${shown.slice(0, 120)}...` : shown)} (structured dtypes are not supported)`,
      field,
      file,
    );
  }
  if (fortranMatch[1] === 'True') {
    throw new DatasetError(
      `${file}: Fortran-ordered arrays are not supported (save np.ascontiguousarray(a))`,
      field,
      file,
    );
  }
  const descr = descrMatch[1];
  const dt = /^([<>|=])([fuib])(\d+)$/.exec(descr);
  const kind = dt?.[2] as NpyArray['kind'] | undefined;
  const itemsize = Number(dt?.[3]);
  if (dt === null || kind === undefined || !SUPPORTED[kind].includes(itemsize)) {
    throw new DatasetError(
      `${file}: unsupported dtype '${descr}' (float32/64, (u)int8-64 or bool)`,
      field,
      file,
    );
  }
  const shapeText = shapeMatch[1].trim();
  const shape = shapeText === '' ? [] : shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new DatasetError(`${file}: bad shape (${shapeText}) in NPY header`, field, file);
  }
  return { descr, kind, itemsize, bigEndian: dt[1] === '>', shape, dataStart };
}

export function parseNpy(bytes: Uint8Array, file: string, field: string): NpyArray {
  const { descr, kind, itemsize, bigEndian, shape, dataStart } = parseNpyHeader(bytes, file, field);
  const length = product(shape);
  const expected = length * itemsize;
  const actual = bytes.length - dataStart;
  if (actual !== expected) {
    throw new DatasetError(
      `${file}: ${actual < expected ? 'truncated' : 'corrupt'} NPY data (header says shape (${shape.join(', ')}) ` +
        `${descr} = ${expected} bytes, file has ${actual} bytes after the header)`,
      field,
      file,
    );
  }
  const payload = bytes.subarray(dataStart);
  return { descr, kind, itemsize, shape, length, payload, at: accessor(payload, kind, itemsize, bigEndian) };
}

function accessor(payload: Uint8Array, kind: NpyArray['kind'], size: number, bigEndian: boolean): (i: number) => number {
  if (size === 1) {
    if (kind === 'i') {
      const a = new Int8Array(payload.buffer, payload.byteOffset, payload.byteLength);
      return (i) => a[i];
    }
    return (i) => payload[i];
  }
  if (bigEndian) {
    const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const get: Record<string, (o: number) => number> = {
      f4: (o) => v.getFloat32(o, false),
      f8: (o) => v.getFloat64(o, false),
      u2: (o) => v.getUint16(o, false),
      u4: (o) => v.getUint32(o, false),
      u8: (o) => Number(v.getBigUint64(o, false)),
      i2: (o) => v.getInt16(o, false),
      i4: (o) => v.getInt32(o, false),
      i8: (o) => Number(v.getBigInt64(o, false)),
    };
    const g = get[`${kind}${size}`];
    return (i) => g(i * size);
  }
  // Copy to an aligned buffer: the payload's offset inside a Node Buffer need not be a multiple of `size`.
  const buf = payload.slice().buffer;
  switch (`${kind}${size}`) {
    case 'f4': { const a = new Float32Array(buf); return (i) => a[i]; }
    case 'f8': { const a = new Float64Array(buf); return (i) => a[i]; }
    case 'u2': { const a = new Uint16Array(buf); return (i) => a[i]; }
    case 'u4': { const a = new Uint32Array(buf); return (i) => a[i]; }
    case 'u8': { const a = new BigUint64Array(buf); return (i) => Number(a[i]); }
    case 'i2': { const a = new Int16Array(buf); return (i) => a[i]; }
    case 'i4': { const a = new Int32Array(buf); return (i) => a[i]; }
    default: { const a = new BigInt64Array(buf); return (i) => Number(a[i]); }
  }
}

/** (n, d) -> [d]; (n, h, w) -> [h, w, 1]; (n, h, w, c) -> [h, w, c]. uint8 scaled by 1/255; floats kept and range-checked. */
export function npyImages(arr: NpyArray, file: string, field: string): Images {
  if (arr.shape.length < 2 || arr.shape.length > 4) {
    throw new DatasetError(
      `${file}: images must have shape (n, d), (n, h, w) or (n, h, w, c), got (${arr.shape.join(', ')})`,
      field,
      file,
    );
  }
  const [n, ...rest] = arr.shape;
  const shape = rest.length === 2 ? [rest[0], rest[1], 1] : rest;
  const x = new Float32Array(arr.length);
  if (arr.kind === 'u' && arr.itemsize === 1) {
    for (let i = 0; i < arr.length; i++) x[i] = arr.payload[i] / 255;
  } else if (arr.kind === 'f') {
    for (let i = 0; i < arr.length; i++) {
      const v = arr.at(i);
      if (!(v >= 0 && v <= 1)) {
        throw new DatasetError(
          `${file}: pixel ${v} at element ${i} is outside [0, 1] (float images must be pre-scaled; uint8 is scaled by 1/255)`,
          field,
          file,
        );
      }
      x[i] = v;
    }
  } else {
    throw new DatasetError(
      `${file}: images must be uint8 (scaled by 1/255) or float32/float64 in [0, 1], got dtype '${arr.descr}'`,
      field,
      file,
    );
  }
  return { x, n, shape };
}

/** Labels of shape (n,) or (n, 1): integers >= 0 (float labels must hold whole numbers). */
export function npyLabels(arr: NpyArray, file: string, field: string): Int32Array {
  const ok = arr.shape.length === 1 || (arr.shape.length === 2 && arr.shape[1] === 1);
  if (!ok) {
    const hint = arr.shape.length === 2 ? ' (one-hot labels are not supported: save argmax(y, axis=1))' : '';
    throw new DatasetError(
      `${file}: labels must have shape (n,) or (n, 1), got (${arr.shape.join(', ')})${hint}`,
      field,
      file,
    );
  }
  const y = new Int32Array(arr.shape[0]);
  for (let i = 0; i < y.length; i++) {
    const v = arr.at(i);
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw new DatasetError(`${file}: label ${v} at index ${i} is not a class index (an integer >= 0)`, field, file);
    }
    y[i] = v;
  }
  return y;
}

/** The members of an .npz archive by key (member name without `.npy`). */
export function parseNpz(bytes: Uint8Array, file: string, field: string, limits: DatasetLimits = DEFAULT_DATASET_LIMITS): Map<string, Uint8Array> {
  if (!isZip(bytes)) {
    throw new DatasetError(
      `${file}: not an NPZ (zip) archive (magic bytes ${hexPrefix(bytes)}; expected 50 4b 03 04)`,
      field,
      file,
    );
  }
  let members: Record<string, Uint8Array>;
  const { maxBytes: max, maxRatio: ratio } = limits;
  let unpacked = 0;
  try {
    // Sizes from the zip directory are checked before anything is inflated (a zip bomb is refused unexpanded).
    members = unzipSync(bytes, {
      filter: (f) => {
        unpacked += f.originalSize;
        if (f.compression !== 0 && f.originalSize > ratioAllowance(f.size, ratio)) {
          throw new DatasetError(`${file}: member ${f.name} expands more than ${ratio}-fold, the limit for compressed dataset files (TICKETSMITH_MAX_DATASET_RATIO)`, field, file);
        }
        if (unpacked > max) {
          throw new DatasetError(`${file}: unpacks to more than the ${max}-byte limit for a dataset file (TICKETSMITH_MAX_DATASET_BYTES)`, field, file);
        }
        return true;
      },
    });
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    throw new DatasetError(`${file}: corrupt or truncated NPZ archive (${describeError(err)})`, field, file, {
      cause: err,
    });
  }
  const out = new Map<string, Uint8Array>();
  for (const [name, data] of Object.entries(members)) out.set(name.replace(/\.npy$/, ''), data);
  return out;
}
