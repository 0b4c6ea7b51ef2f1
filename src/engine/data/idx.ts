// Reader for the IDX format of LeCun's MNIST files (and Fashion-MNIST, EMNIST,
// KMNIST which reuse it): 2 zero bytes, a type byte, a rank byte, big-endian
// uint32 dimensions, then big-endian data. Gzip is handled by the caller.

import { hexPrefix } from './bytes.js';
import { DatasetError } from './errors.js';
import type { Images } from './examples.js';
import { product } from '../shapes.js';

export interface IdxType {
  name: string;
  size: number;
  get: (view: DataView, offset: number) => number;
}

export const IDX_TYPES: Record<number, IdxType> = {
  0x08: { name: 'ubyte', size: 1, get: (v, o) => v.getUint8(o) },
  0x09: { name: 'byte', size: 1, get: (v, o) => v.getInt8(o) },
  0x0b: { name: 'short', size: 2, get: (v, o) => v.getInt16(o, false) },
  0x0c: { name: 'int', size: 4, get: (v, o) => v.getInt32(o, false) },
  0x0d: { name: 'float', size: 4, get: (v, o) => v.getFloat32(o, false) },
  0x0e: { name: 'double', size: 8, get: (v, o) => v.getFloat64(o, false) },
};

export interface IdxArray {
  type: string;
  dims: number[];
  /** Element count = product(dims). */
  length: number;
  at: (i: number) => number;
  /** The raw payload, for the fast uint8 path. */
  payload: Uint8Array;
}

/** What an IDX header says; `dataBytes` is what the payload must hold. */
export interface IdxHeader {
  type: IdxType;
  /** The four magic bytes as one big-endian number, e.g. 0x00000803. */
  magic: number;
  dims: number[];
  length: number;
  headerSize: number;
  dataBytes: number;
}

/**
 * Parses the header at the start of `bytes` (the data need not follow), so a
 * streaming reader can judge a file from its first bytes.
 */
export function parseIdxHeader(bytes: Uint8Array, file: string, field: string): IdxHeader {
  if (bytes.length < 4) {
    throw new DatasetError(`${file}: truncated IDX file (${bytes.length} bytes, header needs at least 4)`, field, file);
  }
  const type = IDX_TYPES[bytes[2]];
  if (bytes[0] !== 0 || bytes[1] !== 0 || type === undefined) {
    throw new DatasetError(
      `${file}: not an IDX file (magic bytes ${hexPrefix(bytes)}; expected 00 00 <type 08|09|0b|0c|0d|0e> <rank>)`,
      field,
      file,
    );
  }
  const rank = bytes[3];
  const headerSize = 4 + 4 * rank;
  if (rank === 0 || bytes.length < headerSize) {
    throw new DatasetError(
      rank === 0
        ? `${file}: IDX header has rank 0`
        : `${file}: truncated IDX header (rank ${rank} needs ${headerSize} bytes, file has ${bytes.length})`,
      field,
      file,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < rank; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const length = product(dims);
  return { type, magic: view.getUint32(0, false), dims, length, headerSize, dataBytes: length * type.size };
}

export function parseIdx(bytes: Uint8Array, file: string, field: string): IdxArray {
  const { type, dims, length, headerSize, dataBytes: expected } = parseIdxHeader(bytes, file, field);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const actual = bytes.length - headerSize;
  if (actual !== expected) {
    throw new DatasetError(
      `${file}: ${actual < expected ? 'truncated' : 'corrupt'} IDX data (header says ${dims.join('x')} ${type.name} = ` +
        `${expected} bytes, file has ${actual} bytes after the header)`,
      field,
      file,
    );
  }
  const payload = bytes.subarray(headerSize);
  return { type: type.name, dims, length, at: (i) => type.get(view, headerSize + i * type.size), payload };
}

/** Images of rank 3 (n, h, w) or 4 (n, h, w, c); ubyte scaled by 1/255, float/double kept and range-checked. */
export function idxImages(arr: IdxArray, file: string, field: string): Images {
  if (arr.dims.length !== 3 && arr.dims.length !== 4) {
    throw new DatasetError(
      `${file}: IDX images must have rank 3 (n, rows, cols) or 4 (n, rows, cols, channels), got ${arr.dims.join('x')}`,
      field,
      file,
    );
  }
  const [n, ...rest] = arr.dims;
  const shape = rest.length === 2 ? [rest[0], rest[1], 1] : rest;
  const x = new Float32Array(arr.length);
  if (arr.type === 'ubyte') {
    for (let i = 0; i < arr.length; i++) x[i] = arr.payload[i] / 255;
  } else if (arr.type === 'float' || arr.type === 'double') {
    for (let i = 0; i < arr.length; i++) {
      const v = arr.at(i);
      if (!(v >= 0 && v <= 1)) {
        throw new DatasetError(
          `${file}: ${arr.type} pixel ${v} at element ${i} is outside [0, 1] (float images must be pre-scaled)`,
          field,
          file,
        );
      }
      x[i] = v;
    }
  } else {
    throw new DatasetError(
      `${file}: IDX images of type ${arr.type} are not supported (ubyte, float or double)`,
      field,
      file,
    );
  }
  return { x, n, shape };
}

/** Labels of rank 1; any integer IDX type, values must be >= 0 (upper bound checked later). */
export function idxLabels(arr: IdxArray, file: string, field: string): Int32Array {
  if (arr.dims.length !== 1) {
    throw new DatasetError(`${file}: IDX labels must have rank 1 (n), got ${arr.dims.join('x')}`, field, file);
  }
  if (arr.type === 'float' || arr.type === 'double') {
    throw new DatasetError(`${file}: IDX labels must be an integer type, got ${arr.type}`, field, file);
  }
  const y = new Int32Array(arr.length);
  for (let i = 0; i < arr.length; i++) {
    const v = arr.at(i);
    if (v < 0) throw new DatasetError(`${file}: label ${v} at index ${i} is negative`, field, file);
    y[i] = v;
  }
  return y;
}
