// Where a run's model comes from, decided once per run: a zoo architecture
// built fresh, model files (a directory, file:// or http(s) URL) named by a
// stable reference, or a model already in memory (IMP after filter pruning
// runs on the shrunken model without writing it anywhere).
//
// The spec's `model` field is the reference (a zoo name, `model:<id>` of an
// upload, or a path / URL given on the command line); the run name hashes
// that, never where the files were unpacked, so a job's name is the same on
// every worker and attempt. What the engine says about the model (errors
// included) names it by its reference too. A local file ending in .onnx,
// .keras or .h5 (the CLI's `--model path.onnx`) is converted by
// import/index.ts on open.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as tf from '@tensorflow/tfjs';
import type { ModelLimits } from './budget.js';
import type { ModelOptions } from './common.js';
import { describeModel } from './inspect.js';
import { createOrLoadModel, fitOrDispose, loadModelFrom } from './load.js';
import { formatFromName } from './import/index.js';
import { createModel, isZooModel } from './registry.js';

export type ModelSource =
  | { kind: 'zoo'; name: string }
  /** `dir`: where the files are (a directory, file:// or http(s) URL); `ref`: what the spec names them. */
  | { kind: 'files'; dir: string; ref: string }
  | { kind: 'memory'; model: tf.LayersModel };

/**
 * The source for the spec's model reference: `given` when the caller resolved
 * it (the worker unpacks `model:<id>` into a folder), else a zoo name or a
 * path / URL the reference itself names.
 */
export function modelSourceFor(ref: string, given?: ModelSource): ModelSource {
  if (given) {
    if (given.kind === 'files' && given.ref !== ref) throw new Error(`the run was given the files of model '${given.ref}' but its spec names '${ref}'`);
    return given;
  }
  return isZooModel(ref) ? { kind: 'zoo', name: ref } : { kind: 'files', dir: ref, ref };
}

/**
 * Builds or loads the model. `owned`: the caller disposes it (a memory
 * source's model belongs to whoever made it). Load errors name the model by
 * its reference, not by the folder it was read from.
 */
export async function openModel(source: ModelSource, opts: ModelOptions, limits?: ModelLimits): Promise<{ model: tf.LayersModel; owned: boolean }> {
  if (source.kind === 'memory') return { model: source.model, owned: false };
  if (source.kind === 'zoo') return { model: createModel(source.name, limits ? { ...opts, maxLayerParams: limits.maxLayerParams } : opts), owned: true };
  const foreign = foreignFile(source.dir);
  if (foreign) return { model: await openForeign(foreign, source.ref, opts), owned: true };
  try {
    return { model: await createOrLoadModel(source.dir, opts, limits), owned: true };
  } catch (e) {
    if (e instanceof Error && source.dir !== source.ref) e.message = e.message.split(source.dir).join(source.ref);
    throw e;
  }
}

/**
 * The [height, width, channels] the source's model takes, for fitting an
 * image folder to it; undefined for a zoo model (built for the data), a flat
 * or free-size input, or a model that does not load (openModel then says why).
 */
export async function modelInputShape(source: ModelSource, limits?: ModelLimits): Promise<number[] | undefined> {
  if (source.kind === 'zoo') return undefined;
  let model: tf.LayersModel;
  try {
    const foreign = source.kind === 'files' ? foreignFile(source.dir) : null;
    model = source.kind === 'memory' ? source.model : foreign ? await importForeign(foreign, source.ref) : await loadModelFrom(source.dir, { limits });
  } catch {
    return undefined;
  }
  try {
    const shape = describeModel(model).inputShape;
    return shape.length === 3 && shape.every((d) => d > 0) ? shape : undefined;
  } catch {
    return undefined;
  } finally {
    if (source.kind === 'files') model.dispose();
  }
}

/** A local path or file:// URI of an ONNX or Keras file, with its format; null for anything else. */
function foreignFile(dir: string): { file: string; format: NonNullable<ReturnType<typeof formatFromName>> } | null {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(dir) && !/^file:\/\//i.test(dir)) return null;
  const file = /^file:\/\//i.test(dir) ? fileURLToPath(dir) : dir;
  const format = formatFromName(file);
  return format === null ? null : { file, format };
}

/** Reads and converts a foreign model file (ONNX checked against onnxruntime). */
async function importForeign(foreign: { file: string; format: 'onnx' | 'keras' | 'h5' }, ref: string): Promise<tf.LayersModel> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(foreign.file));
  } catch (e) {
    throw new Error(`cannot read model '${ref}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const { importModel } = await import('./import/index.js');
  return importModel(bytes, foreign.format, path.basename(foreign.file));
}

/** importForeign, then fits the model to the data. */
async function openForeign(foreign: { file: string; format: 'onnx' | 'keras' | 'h5' }, ref: string, opts: ModelOptions): Promise<tf.LayersModel> {
  return fitOrDispose(await importForeign(foreign, ref), ref, opts);
}
