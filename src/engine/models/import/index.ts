// Which framework wrote an uploaded model file, and its conversion to a TF.js
// Layers model: `.onnx` (or a raw body that is no archive and parses as ONNX)
// goes to models/onnx/, a Keras 3 `.keras` zip (config.json +
// model.weights.h5) and a legacy `.h5` (HDF5 magic) to the Keras importer.
// A model.json + weights upload is not foreign and is not handled here.
import type * as tf from '@tensorflow/tfjs';
import { unzipSync } from 'fflate';
import { isGzip, isZip } from '../../data/bytes.js';
import type { ModelLimits } from '../budget.js';
import { isHdf5 } from './sniff.js';

export { ModelImportError } from './errors.js';

export type ForeignFormat = 'onnx' | 'keras' | 'h5';

export { isHdf5 } from './sniff.js';

const isTar = (b: Uint8Array): boolean => b.length >= 512 && new TextDecoder().decode(b.subarray(257, 262)) === 'ustar';

/** Names of a zip's entries, nothing inflated (null when it is not a readable zip). */
function zipNames(bytes: Uint8Array): string[] | null {
  const names: string[] = [];
  try {
    unzipSync(bytes, { filter: (f) => { names.push(f.name); return false; } });
  } catch {
    return null;
  }
  return names;
}

/** A Keras 3 archive: a zip with config.json and model.weights.h5 at its root. */
export function isKerasArchive(bytes: Uint8Array): boolean {
  if (!isZip(bytes)) return false;
  const names = zipNames(bytes);
  return names !== null && names.includes('config.json') && names.includes('model.weights.h5');
}

/** The foreign format of a file named `fileName`, or null when its name says nothing. */
export function formatFromName(fileName: string): ForeignFormat | null {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.onnx')) return 'onnx';
  if (lower.endsWith('.keras')) return 'keras';
  if (lower.endsWith('.h5') || lower.endsWith('.hdf5')) return 'h5';
  return null;
}

/**
 * An ONNX ModelProto as exporters write it: protobuf fields in number order,
 * so the first byte is the tag of field 1 (ir_version, a varint). Other bytes
 * (text, an unknown format) stay with the archive reader and its message.
 */
export const looksLikeOnnx = (b: Uint8Array): boolean => b.length > 0 && b[0] === 0x08;

/**
 * The foreign format of an upload: by file name when it has one, else (a raw
 * body) a Keras zip, the HDF5 magic, or ONNX for a body that is no zip, gzip
 * or tar archive and starts as an ONNX model does. null: an archive of
 * model.json and weights (or bytes the archive reader will refuse).
 */
export function detectModelFormat(bytes: Uint8Array, fileName?: string): ForeignFormat | null {
  if (fileName !== undefined) return formatFromName(fileName);
  if (isKerasArchive(bytes)) return 'keras';
  if (isHdf5(bytes)) return 'h5';
  if (isZip(bytes) || isGzip(bytes) || isTar(bytes)) return null;
  return looksLikeOnnx(bytes) ? 'onnx' : null;
}

/** Converts a foreign model file; throws ModelImportError when it cannot. `limits`: the model budget, checked before anything runs the model. */
export async function importModel(bytes: Uint8Array, format: ForeignFormat, fileName?: string, limits?: ModelLimits): Promise<tf.LayersModel> {
  if (format === 'onnx') {
    const { importOnnx } = await import('../onnx/index.js');
    return importOnnx(bytes, { name: fileName?.replace(/\.onnx$/i, ''), limits });
  }
  const { importKeras } = await import('../keras/index.js');
  return importKeras(bytes, fileName ?? (format === 'keras' ? 'model.keras' : 'model.h5'), { limits });
}
