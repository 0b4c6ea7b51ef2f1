// Dataset arrays on SharedArrayBuffers: postMessage shares such an array with
// a worker thread instead of copying it, so a trial pool of k workers holds one
// dataset, not k + 1. Loaders allocate their final splits here; shareDataset
// moves any other dataset (one built by hand, a test's) over once.
import type { Dataset, Split } from '../types.js';

export function sharedFloat32(length: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(length * Float32Array.BYTES_PER_ELEMENT));
}

export function sharedInt32(length: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(length * Int32Array.BYTES_PER_ELEMENT));
}

export function isShared(a: ArrayBufferView): boolean {
  return a.buffer instanceof SharedArrayBuffer;
}

/** `s` itself when both arrays are shared already, else a copy on shared buffers. */
export function shareSplit(s: Split): Split {
  if (isShared(s.x) && isShared(s.y)) return s;
  const x = isShared(s.x) ? s.x : sharedFloat32(s.x.length);
  const y = isShared(s.y) ? s.y : sharedInt32(s.y.length);
  if (x !== s.x) x.set(s.x);
  if (y !== s.y) y.set(s.y);
  return { x, y, n: s.n };
}

/** `ds` itself when every split is shared already, else a dataset whose splits are (the same values). */
export function shareDataset(ds: Dataset): Dataset {
  const train = shareSplit(ds.train);
  const validation = shareSplit(ds.validation);
  const test = shareSplit(ds.test);
  if (train === ds.train && validation === ds.validation && test === ds.test) return ds;
  return { ...ds, train, validation, test };
}
