// Where a run's model comes from, decided once per run: a zoo architecture
// built fresh, model files (a directory, file:// or http(s) URL) named by a
// stable reference, or a model already in memory (IMP after filter pruning
// runs on the shrunken model without writing it anywhere).
//
// The spec's `model` field is the reference (a zoo name, `model:<id>` of an
// upload, or a path / URL given on the command line); the run name hashes
// that, never where the files were unpacked, so a job's name is the same on
// every worker and attempt. What the engine says about the model (errors
// included) names it by its reference too.
import type * as tf from '@tensorflow/tfjs';
import type { ModelLimits } from './budget.js';
import type { ModelOptions } from './common.js';
import { describeModel } from './inspect.js';
import { createOrLoadModel, loadModelFrom } from './load.js';
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
    model = source.kind === 'memory' ? source.model : await loadModelFrom(source.dir, { limits });
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
