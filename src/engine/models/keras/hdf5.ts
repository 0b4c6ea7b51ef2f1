// HDF5 files (Keras's weights, legacy `.h5` models) read through h5wasm, the
// HDF5 C library compiled to WebAssembly. h5wasm only opens files that sit in
// its in-memory file system, so the bytes are written there under a unique
// name for the duration of one read and unlinked after. HDF5's own error
// stack is turned into thrown errors (instead of lines on stderr and a -1
// handle), and a broken file becomes a ModelImportError naming the file.
import h5wasm from 'h5wasm/node';
import { ModelImportError } from '../import/errors.js';
import { isHdf5 } from '../import/sniff.js';

export { isHdf5 };

export type H5File = InstanceType<typeof h5wasm.File>;
export type H5Group = InstanceType<typeof h5wasm.Group>;
export type H5Dataset = InstanceType<typeof h5wasm.Dataset>;



let module: Promise<Awaited<typeof h5wasm.ready>> | null = null;

function ready(): Promise<Awaited<typeof h5wasm.ready>> {
  module ??= h5wasm.ready.then((m) => {
    m.activate_throwing_error_handler();
    return m;
  });
  return module;
}

let counter = 0;

/** The innermost `minor:` line of an HDF5 error stack ("Not an HDF5 file", "File has been truncated"). */
export function hdf5Reason(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const minors = [...text.matchAll(/minor: (.+)/g)].map((m) => m[1]!.trim());
  const last = minors.at(-1);
  if (last !== undefined) return last;
  return text.split('\n')[0]!.slice(0, 200);
}

/**
 * Opens `bytes` as HDF5 for `read`, which must finish synchronously with the
 * file (nothing of it is kept after). `label` names the file in errors.
 * Errors HDF5 raises while reading become INVALID_ARGUMENT; ModelImportErrors
 * thrown by `read` pass through.
 */
export async function withHdf5<T>(bytes: Uint8Array, label: string, read: (file: H5File) => T): Promise<T> {
  if (!isHdf5(bytes)) throw new ModelImportError('INVALID_ARGUMENT', `${label}: not an HDF5 file (no HDF5 signature)`, label);
  const m = await ready();
  const path = `/ticketsmith-keras-${process.pid}-${++counter}.h5`;
  m.FS.writeFile(path, bytes);
  let file: H5File | null = null;
  try {
    try {
      file = new h5wasm.File(path, 'r');
    } catch (e) {
      throw new ModelImportError('INVALID_ARGUMENT', `${label}: not a readable HDF5 file (${hdf5Reason(e)})`, label);
    }
    if (file.file_id < 0n) throw new ModelImportError('INVALID_ARGUMENT', `${label}: not a readable HDF5 file`, label);
    try {
      return read(file);
    } catch (e) {
      if (e instanceof ModelImportError) throw e;
      throw new ModelImportError('INVALID_ARGUMENT', `${label}: corrupt HDF5 file (${hdf5Reason(e)})`, label);
    }
  } finally {
    try {
      file?.close();
    } catch {
      // A file HDF5 could not read may not close cleanly either; the bytes go with the unlink.
    }
    m.FS.unlink(path);
  }
}

/** The object at `path`, or null when there is none (h5wasm's `get` throws on some missing paths). */
export function h5get(group: H5Group, path: string): H5Group | H5Dataset | null {
  let entity: unknown;
  try {
    entity = group.get(path);
  } catch {
    return null;
  }
  if (entity instanceof h5wasm.Group || entity instanceof h5wasm.Dataset) return entity;
  return null;
}

export const isGroup = (x: unknown): x is H5Group => x instanceof h5wasm.Group;
export const isDataset = (x: unknown): x is H5Dataset => x instanceof h5wasm.Dataset;

/** A string attribute (h5wasm gives strings for variable- and fixed-length text). */
export function stringAttr(obj: H5Group | H5Dataset, name: string): string | null {
  const attr = obj.attrs[name];
  if (attr === undefined) return null;
  const v: unknown = attr.value;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  return null;
}

/** A list-of-strings attribute (Keras's `weight_names`, `layer_names`); an empty list is stored as a float array. */
export function stringListAttr(obj: H5Group | H5Dataset, name: string): string[] | null {
  const attr = obj.attrs[name];
  if (attr === undefined) return null;
  const v: unknown = attr.value;
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  if (ArrayBuffer.isView(v) && (v as unknown as ArrayLike<unknown>).length === 0) return [];
  return null;
}
