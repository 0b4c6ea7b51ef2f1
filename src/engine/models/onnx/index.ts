// ONNX in: bytes of an .onnx file to a checked TF.js Layers model
// (parse.ts vets the file, convert.ts builds the model, check.ts compares it
// with onnxruntime). Throws ModelImportError for every refusal.
import type * as tf from '@tensorflow/tfjs';
import { checkAgainstOnnxRuntime } from './check.js';
import { convertOnnx, inputLayout, type InputLayout } from './convert.js';
import { parseOnnx } from './parse.js';
import { ModelImportError } from '../import/errors.js';
import { checkModelJson, DEFAULT_MODEL_LIMITS, ModelBudgetError, type ModelLimits } from '../budget.js';

export { CONSTANT_OPS, SUPPORTED_OPS } from './ops/index.js';
export { MAX_OPSET, MIN_OPSET } from './parse.js';

export interface ImportOnnxOptions {
  /** Compare with onnxruntime before returning (default true). */
  check?: boolean;
  name?: string;
  /** Budget for the converted model, judged before the check runs it (default DEFAULT_MODEL_LIMITS). */
  limits?: ModelLimits;
}

/**
 * The converted topology against the model budget, before anything runs it:
 * building is symbolic, but the check feeds whole examples through TF.js and
 * onnxruntime, so a few hundred bytes declaring a 3x8192x8192 input or a Pad
 * by thousands would hold the upload thread for minutes and gigabytes.
 */
function checkBudget(model: tf.LayersModel, limits: ModelLimits): void {
  try {
    checkModelJson({ modelTopology: model.toJSON(undefined, false), weightsManifest: [] }, limits);
  } catch (e) {
    if (e instanceof ModelBudgetError) throw new ModelImportError('INVALID_ARGUMENT', `model.onnx: ${e.message.replace(/^model\.json: /, '')}`, 'model.onnx');
    throw e;
  }
}

export async function importOnnx(bytes: Uint8Array, opts: ImportOnnxOptions = {}): Promise<tf.LayersModel> {
  let model: tf.LayersModel;
  let layout: InputLayout;
  let batch: number | null = null;
  try {
    const parsed = parseOnnx(bytes);
    layout = inputLayout(parsed);
    batch = parsed.input.batch;
    const limits = opts.limits ?? DEFAULT_MODEL_LIMITS;
    model = convertOnnx(parsed, { name: opts.name, maxLayers: limits.maxLayers, maxConstValues: limits.maxLayerParams });
  } catch (e) {
    if (e instanceof ModelImportError) throw e;
    // A graph that passed every check but still does not build (inconsistent shapes, say) is the file's fault.
    throw new ModelImportError('INVALID_ARGUMENT', `model.onnx: the graph does not convert (${(e as Error).message})`, 'model.onnx');
  }
  try {
    checkBudget(model, opts.limits ?? DEFAULT_MODEL_LIMITS);
  } catch (e) {
    model.dispose();
    throw e;
  }
  if (opts.check === false) return model;
  try {
    await checkAgainstOnnxRuntime(model, bytes, { inputLayout: layout, batch: batch ?? 1 });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
