// Public face of the data layer: a dataset reference in, a Dataset (train /
// validation / test as flat NHWC Float32Arrays in [0, 1]) out. Reference syntax
// and the builtin splits are documented in ./README.md.

import type { Dataset } from '../types.js';
import type { DataAccess } from './access.js';
import { loadBuiltin } from './builtin.js';
import { DatasetError, describeError } from './errors.js';
import { loadLocation, locate } from './loaders.js';
import { loadImages } from './images/load.js';
import { parseReference } from './reference.js';
import { assemble, checkSplitOptions } from './split.js';

export { DatasetError } from './errors.js';
export { confineFile, FILES_DISABLED, withEngineConfig, type DataAccess, type FilePolicy } from './access.js';
export { checkFits } from './fits.js';
export { parseReference } from './reference.js';
export type { DatasetReference, DatasetFormat, BuiltinName } from './reference.js';
export { DEFAULT_VALIDATION_FRACTION } from './split.js';
export { FASHION_MNIST_DIR_ENV } from './builtin.js';

export interface LoadDatasetOptions {
  /** Share of the training data held out for validation, in [0, 1). Default 0.1. */
  validationFraction?: number;
  /** Picks which training examples go to validation (and the maxTrain subset). Default 0. */
  seed?: number;
  /** Caps the training data used (before the carve): train.n + validation.n <= maxTrain. */
  maxTrain?: number;
  /** Keeps http(s) downloads here, keyed by URL; without it every load downloads again. */
  cacheDir?: string;
  /**
   * How http(s) files are fetched and which server files may be read (./access.ts).
   * Default: the outbound guard without an allow list, and any file.
   */
  access?: DataAccess;
  /**
   * The model's input shape ([height, width, channels]), asked only when the
   * reference is an image folder: its images are resized and fitted to it.
   * Absent or undefined: the first image's size and the widest colour.
   */
  modelInput?: () => Promise<number[] | undefined>;
}

export async function loadDataset(reference: string, opts: LoadDatasetOptions = {}): Promise<Dataset> {
  try {
    const split = checkSplitOptions(opts);
    const ref = parseReference(reference);
    // Builtin datasets live where the operator put them: the tenant's file policy does not apply.
    if (ref.kind === 'builtin') {
      const loaded = await loadBuiltin(ref.name, { cacheDir: opts.cacheDir, limits: opts.access?.limits, fashionMnistDir: opts.access?.fashionMnistDir });
      return assemble(reference, loaded, split);
    }
    const read = { cacheDir: opts.cacheDir, ...opts.access };
    const where = await locate(ref, read);
    if (where.format === 'images') {
      const inputShape = await opts.modelInput?.();
      return await loadImages(where.location, ref, read, { reference, inputShape, ...split }, where.archive);
    }
    return assemble(reference, await loadLocation(ref, read, where), split);
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    // Readers are written to throw DatasetError; anything else is a bug, but the
    // client still gets one clear error naming the reference, not a stack trace.
    throw new DatasetError(`${reference}: cannot load dataset (${describeError(err)})`, 'reference', undefined, {
      cause: err,
    });
  }
}
