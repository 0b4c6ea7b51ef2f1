// Reading and writing TF.js Layers models in the standard model.json + weight
// shards format, from a local directory / file:// URI or over http(s), without
// tfjs-node (pure tfjs has no file:// handler). Inputs are user uploads, so
// every failure names the file or manifest field at fault, and the weight bytes
// are checked against the manifest before tfjs ever sees them.
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { checkModelJson, DEFAULT_MODEL_LIMITS, type ModelLimits } from './budget.js';
import { describeModel } from './inspect.js';
// Registers the custom layers of imported models, so their saved form loads.
import './layers/index.js';
import { createModel, isZooModel, knownModelNames, type ModelOptions } from './registry.js';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';

type Json = Record<string, unknown>;

const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Bytes per element as stored in a weight file, quantisation taken into account. */
function bytesPerElement(entry: tf.io.WeightsManifestEntry, field: string): number {
  const q = entry.quantization?.dtype;
  if (q !== undefined) {
    const size = ({ uint8: 1, uint16: 2, float16: 2 } as Record<string, number>)[q];
    if (size === undefined) throw new Error(`${field}.quantization.dtype '${q}' is not supported`);
    return size;
  }
  const size = ({ float32: 4, int32: 4, bool: 1, complex64: 8 } as Record<string, number>)[entry.dtype];
  if (size === undefined) throw new Error(`${field}.dtype '${String(entry.dtype)}' is not supported in a Layers model`);
  return size;
}

function checkManifest(raw: unknown, where: string): tf.io.WeightsManifestConfig {
  if (!Array.isArray(raw)) throw new Error(`${where}: 'weightsManifest' must be a list of weight groups`);
  raw.forEach((group: unknown, g) => {
    const field = `weightsManifest[${g}]`;
    if (!isObject(group)) throw new Error(`${where}: ${field} must be an object with 'paths' and 'weights'`);
    if (!Array.isArray(group.paths) || !group.paths.every((p) => typeof p === 'string' && p.length > 0)) {
      throw new Error(`${where}: ${field}.paths must be a list of file names`);
    }
    if (!Array.isArray(group.weights)) throw new Error(`${where}: ${field}.weights must be a list`);
    group.weights.forEach((w: unknown, i) => {
      const wf = `${field}.weights[${i}]`;
      if (!isObject(w) || typeof w.name !== 'string') throw new Error(`${where}: ${wf}.name must be a string`);
      if (!Array.isArray(w.shape) || !w.shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw new Error(`${where}: ${wf}.shape ('${w.name}') must be a list of non-negative integers`);
      }
      if (typeof w.dtype !== 'string') throw new Error(`${where}: ${wf}.dtype ('${w.name}') must be a string`);
    });
  });
  return raw as tf.io.WeightsManifestConfig;
}

function parseModelJSON(text: string, where: string): tf.io.ModelJSON {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`invalid JSON in ${where}: ${message(e)}`);
  }
  if (!isObject(parsed)) throw new Error(`${where}: expected a JSON object`);
  if (parsed.format !== undefined && parsed.format !== 'layers-model') {
    throw new Error(`${where}: format '${String(parsed.format)}' is not supported; a TF.js Layers model ('layers-model') is required`);
  }
  if (!isObject(parsed.modelTopology)) throw new Error(`${where}: missing 'modelTopology' object`);
  checkManifest(parsed.weightsManifest, where);
  return parsed as unknown as tf.io.ModelJSON;
}

/** Layer class names used anywhere in a (possibly nested) topology, with the layer that uses each. */
function layerClasses(topology: Json): { cls: string; layer: string }[] {
  const found: { cls: string; layer: string }[] = [];
  const visit = (node: unknown): void => {
    if (!isObject(node) || typeof node.class_name !== 'string') return;
    const config = node.config;
    const name = isObject(config) && typeof config.name === 'string' ? config.name : '?';
    found.push({ cls: node.class_name, layer: name });
    // Sequential configs are either a list of layers (old Keras) or { name, layers }.
    const layers = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
    if (Array.isArray(layers)) layers.forEach(visit);
    if (isObject(config) && isObject(config.layer)) visit(config.layer); // wrappers (TimeDistributed, Bidirectional)
  };
  visit(isObject(topology.model_config) ? topology.model_config : topology);
  return found;
}

function checkLayerClasses(topology: Json, where: string): void {
  const known = tf.serialization.SerializationMap.getMap().classNameMap;
  const bad = layerClasses(topology).filter((c) => !Object.hasOwn(known, c.cls));
  if (bad.length > 0) {
    const list = bad.map((c) => `'${c.cls}' (layer '${c.layer}')`).join(', ');
    throw new Error(`${where}: unsupported layer class ${list}; TF.js ${tf.version_layers} Layers cannot build it`);
  }
}

interface Source {
  /** Where model.json came from, for messages. */
  where: string;
  readModelJSON(): Promise<string>;
  /** Bytes of one file named in a manifest's `paths`; `field` names the manifest entry. */
  readWeightFile(p: string, field: string): Promise<Uint8Array>;
}

function localSource(modelPath: string): Source {
  const dir = path.dirname(modelPath);
  return {
    where: modelPath,
    async readModelJSON() {
      try {
        return await readFile(modelPath, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`missing ${path.basename(modelPath)} in ${dir}`);
        throw new Error(`cannot read ${modelPath}: ${message(e)}`);
      }
    },
    async readWeightFile(p, field) {
      const file = path.resolve(dir, p);
      // Manifests come from uploads: never let one read outside its own directory.
      if (path.isAbsolute(p) || !file.startsWith(path.resolve(dir) + path.sep)) {
        throw new Error(`${modelPath}: ${field} '${p}' points outside the model directory`);
      }
      try {
        return await readFile(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new Error(`missing weight file '${p}' (listed in ${field} of ${modelPath}; looked for ${file})`);
        }
        throw new Error(`cannot read weight file ${file}: ${message(e)}`);
      }
    },
  };
}

function httpSource(modelUrl: string): Source {
  const get = async (url: string, what: string): Promise<Response> => {
    let res: Response;
    try {
      res = await fetch(url);
    } catch (e) {
      throw new Error(`cannot fetch ${what} from ${url}: ${message(e)}`);
    }
    if (!res.ok) throw new Error(`${res.status === 404 ? 'missing' : 'cannot fetch'} ${what}: HTTP ${res.status} from ${url}`);
    return res;
  };
  return {
    where: modelUrl,
    async readModelJSON() {
      return (await get(modelUrl, 'model.json')).text();
    },
    async readWeightFile(p, field) {
      const url = new URL(p, modelUrl).toString();
      const res = await get(url, `weight file '${p}' (listed in ${field})`);
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}

async function resolveSource(uri: string): Promise<Source> {
  if (/^https?:\/\//i.test(uri)) {
    const url = new URL(uri);
    if (!url.pathname.endsWith('.json')) url.pathname = url.pathname.replace(/\/?$/, `/${MODEL_JSON}`);
    return httpSource(url.toString());
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !/^file:\/\//i.test(uri)) {
    throw new Error(`unsupported model URI scheme in '${uri}'; use a directory, file:// or http(s)://`);
  }
  const p = /^file:\/\//i.test(uri) ? fileURLToPath(uri) : uri;
  let isDir: boolean;
  try {
    isDir = (await stat(p)).isDirectory();
  } catch {
    throw new Error(`no model at '${p}': no such file or directory`);
  }
  return localSource(isDir ? path.join(p, MODEL_JSON) : p);
}

async function readArtifacts(src: Source, limits: ModelLimits): Promise<tf.io.ModelArtifacts> {
  const modelJSON = parseModelJSON(await src.readModelJSON(), src.where);
  // What building it would cost, before any weight file is read or any layer built.
  checkModelJson(modelJSON, limits);
  checkLayerClasses(modelJSON.modelTopology as Json, src.where);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  for (const [g, group] of modelJSON.weightsManifest.entries()) {
    const field = `weightsManifest[${g}]`;
    let expected = 0;
    group.weights.forEach((w, i) => {
      expected += w.shape.reduce((a, b) => a * b, 1) * bytesPerElement(w, `${src.where}: ${field}.weights[${i}]`);
    });
    let found = 0;
    for (const p of group.paths) {
      const bytes = await src.readWeightFile(p, `${field}.paths`);
      found += bytes.byteLength;
      chunks.push(bytes);
    }
    if (found !== expected) {
      throw new Error(`${src.where}: weight file(s) ${group.paths.join(', ')} hold ${found} bytes but ${field} describes ${expected} bytes (from its weights' shapes and dtypes)`);
    }
    specs.push(...group.weights);
  }
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  const data = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    data.set(c, offset);
    offset += c.byteLength;
  }
  return tf.io.getModelArtifactsForJSON(modelJSON, async () => [specs, data.buffer]);
}

/**
 * Loads a Layers model (Sequential or functional) from a directory or file://
 * URI holding model.json and its weight files, or from an http(s) URL of a
 * model.json (a URL not ending in .json gets `/model.json` appended).
 * model.json is checked against `opts.limits` (budget.ts) before anything is
 * built: TF.js allocates every weight of a layer as it builds it.
 */
export async function loadModelFrom(uri: string, opts: { limits?: ModelLimits } = {}): Promise<tf.LayersModel> {
  const src = await resolveSource(uri);
  const artifacts = await readArtifacts(src, opts.limits ?? DEFAULT_MODEL_LIMITS);
  try {
    return await tf.loadLayersModel({ load: async () => artifacts }, { strict: true });
  } catch (e) {
    throw new Error(`cannot build the model in ${src.where}: ${message(e)}`);
  }
}

async function writeAtomically(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

/**
 * Writes `dir/model.json` and one `dir/weights.bin`, readable by loadModelFrom
 * and by stock `tf.loadLayersModel`. model.json is written last, so a reader
 * that sees it also sees its weights. Returns the files' paths and total size.
 */
export async function saveModelTo(model: tf.LayersModel, dir: string): Promise<{ files: string[]; bytes: number }> {
  await mkdir(dir, { recursive: true });
  const weightsPath = path.join(dir, WEIGHTS_BIN);
  const modelPath = path.join(dir, MODEL_JSON);
  let bytes = 0;
  await model.save({
    save: async (artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> => {
      const weights = artifacts.weightData === undefined
        ? new Uint8Array(0)
        : new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
      const modelJSON: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as Json,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.trainingConfig !== undefined) modelJSON.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata !== undefined) modelJSON.userDefinedMetadata = artifacts.userDefinedMetadata;
      const text = JSON.stringify(modelJSON);
      await writeAtomically(weightsPath, weights);
      await writeAtomically(modelPath, text);
      bytes = weights.byteLength + Buffer.byteLength(text);
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  });
  return { files: [modelPath, weightsPath], bytes };
}

function isUri(ref: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(ref);
}

/** Throws unless the model's known input dims and class count match the options. */
function checkAgainstOptions(model: tf.LayersModel, ref: string, opts: ModelOptions): void {
  const d = describeModel(model);
  const shapeOk = d.inputShape.length === opts.inputShape.length
    && d.inputShape.every((dim, i) => dim === -1 || dim === opts.inputShape[i]);
  if (!shapeOk || d.numClasses !== opts.numClasses) {
    throw new Error(`model '${ref}' takes input ${JSON.stringify(d.inputShape)} with ${d.numClasses} classes, but the data has input ${JSON.stringify(opts.inputShape)} with ${opts.numClasses} classes`);
  }
}

/**
 * A zoo name builds a fresh model; anything else is a path or URL to load.
 * A loaded model must fit `opts.inputShape` and `opts.numClasses` (its own
 * weights are kept, `opts.seed` is unused), so a mismatch fails here with a
 * clear message rather than deep inside training.
 */
export async function createOrLoadModel(ref: string, opts: ModelOptions, limits?: ModelLimits): Promise<tf.LayersModel> {
  if (isZooModel(ref)) return createModel(ref, opts);
  if (!isUri(ref)) {
    const exists = await stat(ref).then(() => true, () => false);
    if (!exists) throw new Error(`'${ref}' is neither a zoo model (${knownModelNames()}) nor an existing path`);
  }
  return fitOrDispose(await loadModelFrom(ref, { limits }), ref, opts);
}

/** `model` once it fits the run's options (checkAgainstOptions); disposed when it does not. */
export function fitOrDispose(model: tf.LayersModel, ref: string, opts: ModelOptions): tf.LayersModel {
  try {
    checkAgainstOptions(model, ref, opts);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
