// Reader for CIFAR-10's binary batches (data_batch_N.bin, test_batch.bin): a
// headerless run of 3073-byte records, 1 label byte then 32x32 red, green and
// blue planes (CHW). The engine wants NHWC, so the planes are interleaved here.

import { DatasetError } from './errors.js';

export const CIFAR_SIDE = 32;
export const CIFAR_CHANNELS = 3;
export const CIFAR_CLASSES = 10;
const PLANE = CIFAR_SIDE * CIFAR_SIDE;
const PIXELS = PLANE * CIFAR_CHANNELS;
export const CIFAR_RECORD = 1 + PIXELS;

export interface CifarBatch {
  x: Float32Array;
  y: Int32Array;
  n: number;
}

export function parseCifarBatch(bytes: Uint8Array, file: string, field: string): CifarBatch {
  if (bytes.length === 0) throw new DatasetError(`${file}: empty CIFAR-10 batch file`, field, file);
  if (bytes.length % CIFAR_RECORD !== 0) {
    const whole = Math.floor(bytes.length / CIFAR_RECORD);
    throw new DatasetError(
      `${file}: truncated or corrupt CIFAR-10 batch (${bytes.length} bytes is not a multiple of the ` +
        `${CIFAR_RECORD}-byte record; ${whole} whole records + ${bytes.length % CIFAR_RECORD} bytes)`,
      field,
      file,
    );
  }
  const n = bytes.length / CIFAR_RECORD;
  const x = new Float32Array(n * PIXELS);
  const y = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const base = r * CIFAR_RECORD;
    const label = bytes[base];
    if (label >= CIFAR_CLASSES) {
      throw new DatasetError(
        `${file}: label ${label} of record ${r} is out of range [0, ${CIFAR_CLASSES}) ` +
          `(CIFAR-100 batches, with 2 label bytes, are not supported)`,
        field,
        file,
      );
    }
    y[r] = label;
    const out = r * PIXELS;
    for (let p = 0; p < PLANE; p++) {
      for (let c = 0; c < CIFAR_CHANNELS; c++) {
        x[out + p * CIFAR_CHANNELS + c] = bytes[base + 1 + c * PLANE + p] / 255;
      }
    }
  }
  return { x, y, n };
}

/** Several batches as one split, in the order given. */
export function concatBatches(batches: CifarBatch[]): CifarBatch {
  const n = batches.reduce((s, b) => s + b.n, 0);
  const x = new Float32Array(n * PIXELS);
  const y = new Int32Array(n);
  let at = 0;
  for (const b of batches) {
    x.set(b.x, at * PIXELS);
    y.set(b.y, at);
    at += b.n;
  }
  return { x, y, n };
}
