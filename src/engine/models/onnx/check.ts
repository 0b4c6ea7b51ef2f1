// Checking an import against a real runtime: the converted Layers model and
// the original ONNX bytes (onnxruntime-node, one intra-op thread: this runs in
// an upload worker thread beside training) get the same seeded random inputs,
// and the import is refused when any output differs by more than the
// tolerance, saying by how much. It does not convert anything (convert.ts).
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../rng.js';
import { ModelImportError } from '../import/errors.js';

/** Largest |TF.js - onnxruntime| an import may show. */
export const IMPORT_TOLERANCE = 1e-4;

export interface CheckOptions {
  /** Random inputs tried (batch 1 each). */
  cases?: number;
  seed?: number;
  tolerance?: number;
  /** How the ONNX graph takes an image: NCHW (torch, default) or NHWC (tf2onnx). */
  inputLayout?: 'nchw' | 'nhwc' | 'flat';
  /** The batch the ONNX input is fixed to, when it is (torch exports without dynamic_axes); default 1. */
  batch?: number;
}

/** Largest fixed batch the check feeds; a model fixed to more is refused (each example is checked anyway). */
export const MAX_CHECK_BATCH = 16;

/** Max abs difference between the Layers model and the ONNX graph over a few seeded inputs in [-2, 2). */
export async function compareWithOnnxRuntime(model: tf.LayersModel, bytes: Uint8Array, opts: CheckOptions = {}): Promise<number> {
  const ort = await import('onnxruntime-node');
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  } catch (e) {
    throw new ModelImportError('INVALID_ARGUMENT', `model.onnx: onnxruntime cannot load the original model (${(e as Error).message})`, 'model.onnx');
  }
  try {
    const shape = model.inputs[0]!.shape.slice(1) as number[];
    const batch = opts.batch ?? 1;
    if (!(Number.isInteger(batch) && batch >= 1 && batch <= MAX_CHECK_BATCH)) {
      throw new ModelImportError('UNSUPPORTED_MODEL', `model.onnx: input '${session.inputNames[0]}' has a fixed batch of ${batch}; export with a batch of at most ${MAX_CHECK_BATCH} or a dynamic one (torch.onnx.export(..., dynamic_axes={'input': {0: 'batch'}}))`, 'model.onnx');
    }
    const size = shape.reduce((a, b) => a * b, 1) * batch;
    const next = mulberry32(opts.seed ?? 1234);
    let diff = 0;
    for (let c = 0; c < (opts.cases ?? 3); c++) {
      const values = new Float32Array(size);
      for (let i = 0; i < size; i++) values[i] = next() * 4 - 2;
      const x = tf.tensor(values, [batch, ...shape]);
      const toNchw = shape.length === 3 && opts.inputLayout !== 'nhwc';
      const nchw = toNchw ? tf.transpose(x, [0, 3, 1, 2]) : x;
      const y = model.predict(x) as tf.Tensor;
      const expected = y.dataSync();
      const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', nchw.dataSync() as Float32Array, [batch, ...(toNchw ? [shape[2]!, shape[0]!, shape[1]!] : shape)]) };
      tf.dispose([x, nchw, y]);
      let result: Awaited<ReturnType<typeof session.run>>;
      try {
        result = await session.run(feeds);
      } catch (e) {
        // A graph onnxruntime loads but cannot run on a valid input is the file's fault, not a server error.
        throw new ModelImportError('INVALID_ARGUMENT', `model.onnx: onnxruntime cannot run the original model (${(e as Error).message.split('\n')[0]!.slice(0, 300)})`, 'model.onnx');
      }
      const got = result[session.outputNames[0]!]!.data as Float32Array;
      if (got.length !== expected.length) {
        throw new ModelImportError('UNSUPPORTED_MODEL', `model.onnx: the imported model gives ${expected.length} outputs per input, onnxruntime ${got.length}`, 'model.onnx');
      }
      for (let i = 0; i < got.length; i++) {
        const d = Math.abs(got[i]! - expected[i]!);
        diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
      }
    }
    return diff;
  } finally {
    await session.release();
  }
}

/** Refuses the import (UNSUPPORTED_MODEL) when it differs from onnxruntime by more than the tolerance. */
export async function checkAgainstOnnxRuntime(model: tf.LayersModel, bytes: Uint8Array, opts: CheckOptions = {}): Promise<number> {
  const tolerance = opts.tolerance ?? IMPORT_TOLERANCE;
  const diff = await compareWithOnnxRuntime(model, bytes, opts);
  if (!(diff <= tolerance)) {
    throw new ModelImportError('UNSUPPORTED_MODEL', `model.onnx: the converted model differs from onnxruntime by up to ${diff.toExponential(3)} (more than ${tolerance}) on random inputs; the conversion is refused`, 'model.onnx');
  }
  return diff;
}
