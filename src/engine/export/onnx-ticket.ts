// A run's ticket as `ticket/model.onnx` and the numbers the result summary
// states about that file. The numbers are read back from the file itself
// (its initializers), not from the TF.js model, so a filter-pruned export
// shows the count of what was really written. ONNX is an extra output: a
// model exportOnnx refuses (an uploaded model with a layer outside its set)
// gives no file and an `error` saying why, and the run still succeeds.
import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';
import onnxProto from 'onnx-proto';
import { exportOnnx } from './onnx.js';

const { onnx } = onnxProto;

/** The artifact name every method writes its ONNX ticket under. */
export const ONNX_TICKET = 'ticket/model.onnx';

export interface OnnxFileMetrics {
  /** Scalars in the file's float initializers of rank >= 1 (scalar constants such as Clip bounds are not parameters). */
  params: number;
  /** Of those, the ones that are not zero: a ticket's pruned weights stay zeros in the file. */
  nonzeroParams: number;
  /** Size of the file. */
  bytes: number;
  opset: number;
  sha256: string;
}

/** What `summary.onnx` holds: the file's metrics, or why there is no file. */
export type OnnxSummary = OnnxFileMetrics | { error: string };

/** Reads params, zeros, opset and digest off ONNX bytes. */
export function onnxFileMetrics(bytes: Uint8Array): OnnxFileMetrics {
  const m = onnx.ModelProto.decode(bytes);
  let params = 0;
  let nonzeroParams = 0;
  for (const t of m.graph?.initializer ?? []) {
    if (t.dataType !== onnx.TensorProto.DataType.FLOAT || (t.dims ?? []).length === 0) continue;
    const raw = t.rawData && t.rawData.length > 0 ? t.rawData : null;
    const values = raw
      ? new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))
      : Float32Array.from(t.floatData ?? []);
    params += values.length;
    for (const v of values) if (v !== 0) nonzeroParams++;
  }
  const opset = Number(m.opsetImport?.find((o) => !o.domain)?.version ?? 0);
  return { params, nonzeroParams, bytes: bytes.length, opset, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The model (with the ticket's weights already set) as ONNX bytes and its summary; no bytes when export refuses it. */
export function onnxTicket(model: tf.LayersModel, docString: string): { bytes?: Uint8Array; summary: OnnxSummary } {
  let bytes: Uint8Array;
  try {
    bytes = exportOnnx(model, { docString });
  } catch (e) {
    return { summary: { error: e instanceof Error ? e.message : String(e) } };
  }
  return { bytes, summary: onnxFileMetrics(bytes) };
}
