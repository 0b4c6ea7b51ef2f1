// Model uploads: a TF.js Layers model (model.json + weight files, given as
// files or as one .zip/.tar.gz) is checked before anything is stored: the
// JSON parses, every manifest path is present, the weight bytes match the
// manifest, and TF.js builds the model (the engine's own loader does the last
// two). A model from another framework (one .onnx, .keras or .h5 file, or
// such a raw body) is converted and checked by engine/models/import/ and
// stored as the converted model.json + weights.bin plus its original
// (`source.onnx`, ...). Then its files go to the blob store and one
// transaction records the Model row and its file artifacts. Jobs name it as
// `model:<id>`.
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { checkModelJson, type ModelLimits } from '../engine/models/budget.js';
import { MODEL_REF } from '../queue/inputs.js';
import { recordArtifacts, storeBlobs } from '../store/artifacts.js';
import { inTransaction, toJson } from '../store/db.js';
import { findModel, insertModel, listModelRows, modelExists } from '../store/models.js';
import { unpackArchive, safeName, type NamedFile } from './archive.js';
import type { ServiceContext } from './context.js';
import { modelDto, type ModelDto, type Page } from './dto.js';
import { invalid, notFound, ServiceError, toServiceError } from './errors.js';
import { decodeCursor, encodeCursor, isUuid, pageLimit, toPage, type PageQuery } from './ids.js';
import { uploadPool, type CheckedUpload } from './upload-pool.js';
import { checkStorageQuota } from './limits.js';
import { lockTenant } from '../store/limits.js';

export { MODEL_REF };

export type ModelUpload = { files: NamedFile[] } | { archive: Uint8Array };

const MODEL_JSON = 'model.json';

type Json = Record<string, unknown>;
const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);

/** The model.json and the files its manifest names, relative to model.json's directory. */
function selectModelFiles(files: NamedFile[], limits: ModelLimits): { modelJson: Json; files: NamedFile[] } {
  const candidates = files.filter((f) => posix.basename(f.name) === MODEL_JSON);
  if (candidates.length === 0) throw invalid('files', `files: no ${MODEL_JSON} in the upload`);
  if (candidates.length > 1) throw invalid('files', `files: more than one ${MODEL_JSON} (${candidates.map((c) => c.name).join(', ')})`);
  const root = posix.dirname(candidates[0]!.name);
  const rel = (name: string) => (root === '.' ? name : name.startsWith(`${root}/`) ? name.slice(root.length + 1) : null);
  const byName = new Map<string, NamedFile>();
  for (const f of files) {
    const r = rel(f.name);
    if (r !== null) byName.set(r, { name: r, bytes: f.bytes });
  }

  let modelJson: unknown;
  try {
    modelJson = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(candidates[0]!.bytes));
  } catch (e) {
    throw invalid(MODEL_JSON, `${MODEL_JSON}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(modelJson)) throw invalid(MODEL_JSON, `${MODEL_JSON}: expected a JSON object`);
  if (!isObject(modelJson.modelTopology)) throw invalid(`${MODEL_JSON}.modelTopology`, `${MODEL_JSON}: missing 'modelTopology' (a TF.js Layers model is required)`);
  const manifest = modelJson.weightsManifest;
  if (!Array.isArray(manifest)) throw invalid(`${MODEL_JSON}.weightsManifest`, `${MODEL_JSON}: 'weightsManifest' must be a list`);

  const keep: NamedFile[] = [byName.get(MODEL_JSON)!];
  const sizes = new Map<string, number>();
  manifest.forEach((group: unknown, g) => {
    const paths = isObject(group) && Array.isArray(group.paths) ? group.paths : null;
    if (!paths) throw invalid(`${MODEL_JSON}.weightsManifest[${g}].paths`, `${MODEL_JSON}: weightsManifest[${g}].paths must be a list of file names`);
    paths.forEach((p: unknown, i) => {
      const where = `${MODEL_JSON}.weightsManifest[${g}].paths[${i}]`;
      if (typeof p !== 'string') throw invalid(where, `${where}: must be a file name`);
      const name = safeName(p, where);
      const file = byName.get(name);
      if (!file) throw invalid(where, `${where}: weight file '${p}' is missing from the upload`);
      if (!keep.includes(file)) keep.push(file);
      sizes.set(p, file.bytes.byteLength);
    });
  });
  // What TF.js would allocate building it, from model.json alone: refused before anything is built.
  try {
    checkModelJson(modelJson, limits, sizes);
  } catch (e) {
    throw toServiceError(e);
  }
  return { modelJson, files: keep };
}

/** Builds the model with the engine's loader (manifest vs bytes, layer classes) and summarises it. */
async function inspectModel(files: NamedFile[], limits: ModelLimits): Promise<Json> {
  const dir = await mkdtemp(join(tmpdir(), 'ticketsmith-upload-'));
  try {
    for (const f of files) {
      await mkdir(dirname(join(dir, f.name)), { recursive: true });
      await writeFile(join(dir, f.name), f.bytes);
    }
    // Building the model needs an initialised TF.js backend; in a fresh process none is yet
    // (initBackend keeps the one chosen earlier, e.g. the upload thread's cpu backend).
    await (await import('../runtime/backend.js')).initBackend();
    const { loadModelFrom } = await import('../engine/models/load.js');
    const { describeModel } = await import('../engine/models/inspect.js');
    let model;
    try {
      model = await loadModelFrom(dir, { limits });
    } catch (e) {
      throw invalid('files', (e as Error).message.replaceAll(dir + '/', '').replaceAll(dir, 'upload'));
    }
    try {
      return { ...describeModel(model) } as Json;
    } catch (e) {
      throw invalid('files', (e as Error).message);
    } finally {
      model.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type ForeignUpload = { bytes: Uint8Array; fileName?: string; format: 'onnx' | 'keras' | 'h5' };

/** The one foreign model file of an upload (by name, or a raw body sniffed), or null for a TF.js upload. */
async function foreignFile(upload: ModelUpload): Promise<ForeignUpload | null> {
  const { detectModelFormat, formatFromName } = await import('../engine/models/import/index.js');
  if ('archive' in upload) {
    const format = detectModelFormat(upload.archive);
    return format === null ? null : { bytes: upload.archive, format };
  }
  if (!Array.isArray(upload.files)) return null;
  const named = upload.files.filter((f) => formatFromName(f.name) !== null);
  if (named.length === 0 || upload.files.some((f) => posix.basename(f.name) === MODEL_JSON)) return null;
  if (upload.files.length > 1) {
    throw invalid('files', `files: send one model file (${named.map((f) => f.name).join(', ')}) alone; an ONNX model must keep its weights inside the file`);
  }
  const file = named[0]!;
  return { bytes: file.bytes, fileName: file.name, format: formatFromName(file.name)! };
}

/**
 * A foreign model converted to TF.js (engine/models/import/, which for ONNX
 * also compares the result with onnxruntime): its model.json, weights.bin
 * and the original file, checked against the same budget as a TF.js upload.
 */
async function checkForeignUpload(foreign: ForeignUpload, limits: ModelLimits): Promise<CheckedUpload> {
  await (await import('../runtime/backend.js')).initBackend();
  const { importModel } = await import('../engine/models/import/index.js');
  const { modelToFiles } = await import('../engine/models/files.js');
  const { describeModel } = await import('../engine/models/inspect.js');
  let model;
  try {
    model = await importModel(foreign.bytes, foreign.format, foreign.fileName, limits);
  } catch (e) {
    const err = toServiceError(e);
    // A raw body was taken for ONNX only because it is no archive: say both.
    if (foreign.fileName === undefined && err.code === 'INVALID_ARGUMENT') {
      throw new ServiceError('INVALID_ARGUMENT', `archive: not a .zip, .tar.gz or .tar archive, a Keras or HDF5 file, nor a valid ONNX model (${err.message})`, 'archive');
    }
    throw err;
  }
  try {
    const converted = await modelToFiles(model);
    const { files } = selectModelFiles([{ name: MODEL_JSON, bytes: converted.json }, { name: 'weights.bin', bytes: converted.bin }], limits);
    const ext = foreign.format === 'onnx' ? 'onnx' : foreign.format === 'keras' ? 'keras' : 'h5';
    return { files: [...files, { name: `source.${ext}`, bytes: foreign.bytes }], architecture: { ...describeModel(model) } as Json, format: foreign.format };
  } finally {
    model.dispose();
  }
}

/**
 * Everything checked about an upload before anything is stored: the archive
 * unpacks within the limit, names are safe, model.json and its weight files
 * are there, TF.js builds the model. No database, no blob store: this runs in
 * an upload worker thread (upload-pool.ts), off the event loop.
 */
export async function checkModelUpload(upload: ModelUpload, max: number, limits: ModelLimits): Promise<CheckedUpload> {
  let raw: NamedFile[];
  if ('archive' in upload && upload.archive.byteLength > max) throw new ServiceError('PAYLOAD_TOO_LARGE', `upload exceeds ${max} bytes`, 'archive');
  if ('files' in upload && Array.isArray(upload.files) && upload.files.reduce((n, f) => n + f.bytes.byteLength, 0) > max) {
    throw new ServiceError('PAYLOAD_TOO_LARGE', `upload exceeds ${max} bytes`, 'files');
  }
  const foreign = await foreignFile(upload);
  if (foreign) return checkForeignUpload(foreign, limits);
  if ('archive' in upload) {
    raw = unpackArchive(upload.archive, max, { maxRatio: limits.maxRatio, bytesBeforeRatio: true });
  } else {
    if (!Array.isArray(upload.files) || upload.files.length === 0) throw invalid('files', 'files: at least model.json is required');
    let total = 0;
    raw = upload.files.map((f, i) => {
      total += f.bytes.byteLength;
      if (total > max) throw new ServiceError('PAYLOAD_TOO_LARGE', `upload exceeds ${max} bytes`, 'files');
      return { name: safeName(f.name, `files[${i}]`), bytes: f.bytes };
    });
  }
  const { files } = selectModelFiles(raw, limits);
  return { files, architecture: await inspectModel(files, limits) };
}

/** A model sent as one ONNX or Keras file is named after it (`net.onnx` → `net`); anything else `model`. */
function defaultName(upload: ModelUpload): string {
  const only = 'files' in upload && Array.isArray(upload.files) && upload.files.length === 1 ? posix.basename(upload.files[0]!.name) : '';
  const stem = /\.(onnx|keras|h5|hdf5)$/i.test(only) ? only.replace(/\.[^.]+$/, '').trim() : '';
  return stem !== '' && stem.length <= 200 ? stem : 'model';
}

export async function uploadModel(ctx: ServiceContext, tenant: string, upload: ModelUpload, opts: { name?: string } = {}): Promise<ModelDto> {
  const max = ctx.config.maxUploadBytes;
  const name = (opts.name ?? '').trim() || defaultName(upload);
  if (name.length > 200) throw invalid('name', 'name: at most 200 characters');
  if ('archive' in upload && upload.archive.byteLength > max) throw new ServiceError('PAYLOAD_TOO_LARGE', `upload exceeds ${max} bytes`, 'archive');

  // Before the costly part (unpacking and building the model): a tenant at its storage cap is refused at once.
  await checkStorageQuota(ctx.prisma, ctx, tenant, 'archive' in upload ? upload.archive.byteLength : upload.files.reduce((n, f) => n + f.bytes.byteLength, 0));
  const { files, architecture, format } = await uploadPool(ctx.config.uploadThreads).check(upload, max, ctx.config.modelLimits);

  const pending = await storeBlobs(ctx.blobs, Object.fromEntries(files.map((f) => [f.name, f.bytes])), 'model-file');
  const listing = pending.map((p) => ({ name: p.name, sha256: p.blob.sha256, size: p.blob.size })).sort((a, b) => a.name.localeCompare(b.name));
  const sha256 = createHash('sha256').update(listing.map((f) => `${f.name}\0${f.sha256}\n`).join('')).digest('hex');
  const size = listing.reduce((n, f) => n + f.size, 0);

  const row = await inTransaction(ctx.prisma, async (tx) => {
    await lockTenant(tx, tenant, 'storage');
    await checkStorageQuota(tx, ctx, tenant, size);
    const model = await insertModel(tx, { tenant, name, format: format ?? 'tfjs-layers', sha256, architecture: toJson(architecture), sizeBytes: BigInt(size), files: toJson(listing) });
    await recordArtifacts(tx, { tenant, modelId: model.id }, pending);
    return model;
  });
  return modelDto(row);
}

export async function getModel(ctx: ServiceContext, tenant: string, id: string): Promise<ModelDto> {
  if (!isUuid(id)) throw notFound('model', id);
  const row = await findModel(ctx.prisma, tenant, id);
  if (!row) throw notFound('model', id);
  return modelDto(row);
}

export async function listModels(ctx: ServiceContext, tenant: string): Promise<ModelDto[]> {
  const rows = await listModelRows(ctx.prisma, tenant);
  return rows.map(modelDto);
}

/** One page of the tenant's models, newest first (keyset cursor). */
export async function listModelsPage(ctx: ServiceContext, tenant: string, query: PageQuery = {}): Promise<Page<ModelDto>> {
  const limit = pageLimit(query.limit);
  const after = query.cursor ? decodeCursor(query.cursor) : null;
  const rows = await listModelRows(ctx.prisma, tenant, { after, take: limit + 1 });
  return toPage(rows, limit, modelDto, (r) => encodeCursor({ createdAt: r.createdAt, id: r.id }));
}

let zoo: Promise<{ isZooModel(name: string): boolean; knownModelNames(): string; zooNameProblem(name: string): string | null }> | undefined;

/**
 * A job's model field: `model:<id>` of this tenant, or a zoo name. Paths and
 * URLs are refused: the server must not read files a tenant points it at.
 */
export async function resolveJobModel(ctx: ServiceContext, tenant: string, value: string): Promise<{ modelId: string | null }> {
  if (value.startsWith(MODEL_REF)) {
    const id = value.slice(MODEL_REF.length);
    if (!isUuid(id) || !(await modelExists(ctx.prisma, tenant, id))) throw new ServiceError('NOT_FOUND', `model: no uploaded model ${id}`, 'model');
    return { modelId: id };
  }
  zoo ??= import('../engine/models/registry.js');
  const registry = await zoo;
  const problem = registry.zooNameProblem(value);
  if (problem !== null) throw invalid('model', `model: ${problem}`);
  if (!registry.isZooModel(value)) {
    throw invalid('model', `model: '${value}' is neither a zoo model (${registry.knownModelNames()}) nor ${MODEL_REF}<id> of an uploaded model`);
  }
  return { modelId: null };
}
