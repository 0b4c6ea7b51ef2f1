// Keras models in: a Keras 3 `.keras` archive (zip of config.json,
// metadata.json and model.weights.h5) or a legacy `.h5` (HDF5 with a
// `model_config` attribute and a `model_weights` group), rebuilt as a TF.js
// Layers model with the file's weights. The config is converted first
// (config.ts), its cost bounded by the same budget as an uploaded model.json
// (budget.ts) before TF.js allocates anything, then the weights are read by
// shape-checked position (weights.ts). Refusals are ModelImportErrors: a
// broken or incomplete file INVALID_ARGUMENT, a layer or setting TF.js cannot
// build UNSUPPORTED_MODEL, each naming the file and the layer.
import * as tf from '@tensorflow/tfjs';
import { unzipSync } from 'fflate';
import { checkModelJson, DEFAULT_MODEL_LIMITS, ModelBudgetError, type ModelLimits } from '../budget.js';
import { isZip } from '../../data/bytes.js';
import { ratioAllowance } from '../../data/source.js';
import { ModelImportError } from '../import/errors.js';
import { convertKerasConfig, type ConvertedModel } from './config.js';
import { isHdf5, stringAttr, withHdf5, type H5File } from './hdf5.js';
import { keras3Locator, legacyLocator, loadKerasWeights, type WeightLocator } from './weights.js';

export { isHdf5 } from './hdf5.js';
export { KERAS_LAYER_CLASSES } from './config.js';

export interface KerasImportOptions {
  /** Bytes the archive's entries may unpack to (default: the model budget's weight bytes plus 16 MiB for the config). */
  maxBytes?: number;
  /** Budget for the converted topology (default DEFAULT_MODEL_LIMITS). */
  limits?: ModelLimits;
}

const CONFIG = 'config.json';
const METADATA = 'metadata.json';
const WEIGHTS = 'model.weights.h5';
const ARCHIVE_ENTRIES = new Set([CONFIG, METADATA, WEIGHTS]);

const invalid = (msg: string, field?: string): ModelImportError => new ModelImportError('INVALID_ARGUMENT', msg, field);

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Whether an unpacked upload is a Keras 3 archive's content (config.json and model.weights.h5 at its root). */
export function isKerasArchive(files: readonly { name: string }[]): boolean {
  const names = new Set(files.map((f) => f.name.replace(/^\.\//, '')));
  return names.has(CONFIG) && names.has(WEIGHTS);
}

/** The archive's three known entries (others, like assets/, are not read), unpacked within `maxBytes`. */
function unpackKeras(bytes: Uint8Array, fileName: string, maxBytes: number, maxRatio?: number): Map<string, Uint8Array> {
  const tooLarge = (): ModelImportError => invalid(`${fileName}: the archive unpacks to more than ${maxBytes} bytes`, fileName);
  const tooExpanded = (what: string): ModelImportError =>
    invalid(`${fileName}: ${what} expands more than ${maxRatio}-fold, the limit for compressed model uploads (TICKETSMITH_MAX_MODEL_RATIO; a zip bomb?)`, fileName);
  let declared = 0;
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes, {
      filter: (f) => {
        if (!ARCHIVE_ENTRIES.has(f.name)) return false;
        // fflate inflates no further than the declared size, so checking the declared sizes bounds the work.
        if (f.size > bytes.byteLength) throw invalid(`${fileName}: '${f.name}' is corrupt (its compressed size runs past the end of the archive)`, fileName);
        if (maxRatio !== undefined && f.originalSize > ratioAllowance(f.size, maxRatio)) throw tooExpanded(`'${f.name}'`);
        declared += f.originalSize;
        if (declared > maxBytes) throw tooLarge();
        if (maxRatio !== undefined && declared > ratioAllowance(bytes.byteLength, maxRatio)) throw tooExpanded('the archive');
        return true;
      },
    });
  } catch (e) {
    if (e instanceof ModelImportError) throw e;
    throw invalid(`${fileName}: not a valid .keras archive (zip: ${message(e)})`, fileName);
  }
  const total = Object.values(entries).reduce((n, d) => n + d.byteLength, 0);
  if (total > maxBytes) throw tooLarge();
  return new Map(Object.entries(entries));
}

/** Bytes a model config may take (config.json, or a legacy .h5's model_config): real ones are a few hundred KB. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
/** Brackets a model config may nest: a Keras config nests about 8 per level of nested model, MAX_NESTING (8) deep. */
export const MAX_CONFIG_DEPTH = 128;

/**
 * Refuses a config too large or too deeply nested before JSON.parse sees it:
 * 2 MB of nested brackets (2 KB zipped) made JSON.parse take 875 MB, and a
 * 123 MB config (5 MB zipped) 19 s and 1.6 GB before any layer was looked at.
 */
function checkConfigShape(text: string, where: string, field: string): void {
  if (text.length > MAX_CONFIG_BYTES) throw invalid(`${where}: ${text.length} characters is over the ${MAX_CONFIG_BYTES}-character limit for a model config`, field);
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++;
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) {
      inString = true;
    } else if (ch === 0x7b || ch === 0x5b) {
      if (++depth > MAX_CONFIG_DEPTH) throw invalid(`${where}: nests objects and lists more than ${MAX_CONFIG_DEPTH} deep; a Keras model config nests far less`, field);
    } else if (ch === 0x7d || ch === 0x5d) {
      depth--;
    }
  }
}

function parseJson(bytes: Uint8Array | string, where: string, field: string): unknown {
  if (typeof bytes !== 'string' && bytes.byteLength > MAX_CONFIG_BYTES) throw invalid(`${where}: ${bytes.byteLength} bytes is over the ${MAX_CONFIG_BYTES}-byte limit for a model config`, field);
  let text: string;
  try {
    text = typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    throw invalid(`${where}: not valid JSON (${message(e)})`, field);
  }
  checkConfigShape(text, where, field);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalid(`${where}: not valid JSON (${message(e)})`, field);
  }
}

/** Bounds the converted topology, then lets TF.js build it (weights still initial). */
async function build(converted: ConvertedModel, where: string, limits: ModelLimits): Promise<tf.LayersModel> {
  try {
    checkModelJson({ modelTopology: converted.topology, weightsManifest: [] }, limits);
  } catch (e) {
    if (e instanceof ModelBudgetError) throw invalid(`${where}: ${e.message.replace(/^model\.json: /, '')}`);
    throw e;
  }
  try {
    return await tf.models.modelFromJSON({ modelTopology: converted.topology } as unknown as tf.io.ModelJSON);
  } catch (e) {
    throw invalid(`${where}: TF.js could not build the model (${message(e)})`);
  }
}

async function withWeights(model: tf.LayersModel, bytes: Uint8Array, label: string, converted: ConvertedModel, locator: (root: H5File) => WeightLocator): Promise<tf.LayersModel> {
  try {
    await withHdf5(bytes, label, (f) => loadKerasWeights(model, converted.layers, locator(f), label));
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

async function importEntries(entries: ReadonlyMap<string, Uint8Array>, fileName: string, opts: Required<KerasImportOptions>): Promise<tf.LayersModel> {
  const config = entries.get(CONFIG);
  if (config === undefined) throw invalid(`${fileName}: the archive has no ${CONFIG}; a Keras 3 .keras file holds ${CONFIG}, ${METADATA} and ${WEIGHTS}`, fileName);
  const weights = entries.get(WEIGHTS);
  if (weights === undefined) throw invalid(`${fileName}: the archive has no ${WEIGHTS} (was the model saved without weights?)`, fileName);
  const where = `${fileName} ${CONFIG}`;
  const converted = convertKerasConfig(parseJson(config, where, fileName), where);
  const model = await build(converted, where, opts.limits);
  const label = `${fileName} ${WEIGHTS}`;
  return withWeights(model, weights, label, converted, (f) => keras3Locator(f, converted.layers, label));
}

const resolve = (options: KerasImportOptions): Required<KerasImportOptions> => {
  const limits = options.limits ?? DEFAULT_MODEL_LIMITS;
  return { limits, maxBytes: options.maxBytes ?? limits.maxBytes + 16 * 1024 * 1024 };
};

/**
 * A TF.js Layers model from a Keras 3 archive already unpacked (an upload
 * whose files isKerasArchive accepts): config.json and model.weights.h5 at
 * the root; `label` names the upload in messages. Throws ModelImportError.
 */
export async function importKerasFiles(files: readonly { name: string; bytes: Uint8Array }[], label: string, options: KerasImportOptions = {}): Promise<tf.LayersModel> {
  const opts = resolve(options);
  const entries = new Map<string, Uint8Array>();
  let total = 0;
  for (const f of files) {
    const name = f.name.replace(/^\.\//, '');
    if (!ARCHIVE_ENTRIES.has(name)) continue;
    total += f.bytes.byteLength;
    if (total > opts.maxBytes) throw invalid(`${label}: the Keras files hold more than ${opts.maxBytes} bytes`, label);
    entries.set(name, f.bytes);
  }
  return importEntries(entries, label, opts);
}

async function importHdf5(bytes: Uint8Array, fileName: string, opts: Required<KerasImportOptions>): Promise<tf.LayersModel> {
  const where = `${fileName} model_config`;
  const text = await withHdf5(bytes, fileName, (f) => stringAttr(f, 'model_config'));
  if (text === null) throw invalid(`${fileName}: the HDF5 file has no 'model_config' attribute (a weights-only file?); save the whole model`, fileName);
  const converted = convertKerasConfig(parseJson(text, where, fileName), where);
  const model = await build(converted, where, opts.limits);
  return withWeights(model, bytes, fileName, converted, (f) => legacyLocator(f, fileName));
}

/**
 * A TF.js Layers model from a Keras file: `.keras` (or any zip) as a Keras 3
 * archive, `.h5`/`.hdf5` (or any HDF5) as a legacy model. `fileName` names
 * the file in messages. Throws ModelImportError.
 */
export async function importKeras(bytes: Uint8Array, fileName: string, options: KerasImportOptions = {}): Promise<tf.LayersModel> {
  const opts = resolve(options);
  if (bytes.byteLength > opts.maxBytes) throw invalid(`${fileName}: ${bytes.byteLength} bytes is over the ${opts.maxBytes}-byte limit for a Keras model`, fileName);
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.keras') || (!/\.(h5|hdf5)$/.test(lower) && isZip(bytes))) return importEntries(unpackKeras(bytes, fileName, opts.maxBytes, opts.limits.maxRatio), fileName, opts);
  if (/\.(h5|hdf5)$/.test(lower) || isHdf5(bytes)) return importHdf5(bytes, fileName, opts);
  throw invalid(`${fileName}: not a Keras model (expected a .keras archive or an HDF5 .h5 file)`, fileName);
}
