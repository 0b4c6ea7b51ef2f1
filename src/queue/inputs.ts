// Resolves what a stored job spec names for the engine: an uploaded model
// (`model:<id>`) is written from the blob store into a private temp directory
// and handed over as a model source that keeps the reference; a registered
// dataset (`dataset:<id>`) is looked up to its reference; an uploaded one
// (reference `upload:<sha256>`) is written from the blob store into a private
// temp folder and handed over as a `file://` reference with a file policy
// that allows that folder alone. Both were checked to
// belong to the job's tenant at submit time. The spec itself is not rewritten:
// the engine hashes the run name from the references (the job's runName) and
// names the model `model:<id>` in what it reports. `redact` is the last guard:
// it puts `model:<id>` back wherever a server temp path still shows (an error
// from deep inside a library), and a dataset reference where an operator's
// folder shows (builtin:fashion-mnist's), so no job row, event or result
// shows one.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, normalize } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FilePolicy } from '../engine/data/access.js';
import type { ModelSource } from '../engine/models/source.js';
import type { RunSpec } from '../engine/spec.js';
import type { BlobStore } from '../store/blobs.js';
import type { PrismaClient } from '../store/db.js';
import { datasetFiles, datasetReference as registeredDatasetReference } from '../store/datasets.js';
import { modelFiles } from '../store/models.js';

export const MODEL_REF = 'model:';
export const DATASET_REF = 'dataset:';
/** The stored reference of an uploaded dataset: `upload:<sha256 of its file listing>`. */
export const UPLOAD_REF = 'upload:';

export interface PreparedRun {
  /** The stored spec, references unchanged (what the job's runName hashes). */
  spec: RunSpec;
  /** The uploaded model's files, named by the spec's `model:<id>`; absent for a zoo model. */
  model?: ModelSource;
  /** What the registered dataset `dataset:<id>` refers to; absent for a plain reference. */
  datasetReference?: string;
  /** For an uploaded dataset: the only files its load may read (its temp folder). */
  datasetFiles?: FilePolicy;
  cleanup(): Promise<void>;
  /** `value` with the run's temp paths replaced by what the tenant named (plain objects, arrays and strings; bytes untouched). */
  redact<T>(value: T): T;
}

/** Any temp folder this worker makes for a job, even one no run knows about any more. */
const TEMP_PATH = new RegExp(`${escapeRegExp(join(tmpdir(), 'ticketsmith-'))}[^\\s'"\`,;)]*`, 'g');
/** The same folder by its name alone (the image-folder reader names a folder by its base name): `ticketsmith-<job>-[data-]XXXXXX`. */
const TEMP_NAME = /\bticketsmith-[0-9a-f]{8}-(?:data-)?[A-Za-z0-9]{6}\b/g;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Replaces `from` by `to` in every string inside `value`, and any leftover temp path by `fallback`. */
export function redactPaths<T>(value: T, pairs: ReadonlyArray<readonly [string, string]>, fallback = 'the uploaded model'): T {
  const fix = (s: string): string => {
    let out = s;
    for (const [from, to] of pairs) if (from !== '') out = out.split(from).join(to);
    return out.replace(TEMP_PATH, fallback).replace(TEMP_NAME, fallback);
  };
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return fix(v);
    if (depth > 32 || v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    if (Object.getPrototypeOf(v) !== Object.prototype) return v;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, depth + 1)]));
  };
  return walk(value, 0) as T;
}

/**
 * `serverFolders`: the operator's folders the engine reads for the job, each
 * with what a tenant is told instead (builtin:fashion-mnist's folder from the
 * engine config: the loader names the files it tried there).
 */
export async function prepareRun(
  prisma: PrismaClient,
  blobs: BlobStore,
  jobId: string,
  spec: RunSpec,
  serverFolders: ReadonlyArray<readonly [string, string]> = [],
): Promise<PreparedRun> {
  let dir: string | null = null;
  let dataDir: string | null = null;
  let model: ModelSource | undefined;
  let datasetReference: string | undefined;
  let files: FilePolicy | undefined;
  const pairs: Array<readonly [string, string]> = [];
  const cleanup = async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  };
  try {
    if (spec.model.startsWith(MODEL_REF)) {
      const modelId = spec.model.slice(MODEL_REF.length);
      const files = await modelFiles(prisma, modelId);
      if (files.length === 0) throw new Error(`uploaded model ${modelId} has no files`);
      dir = await mkdtemp(join(tmpdir(), `ticketsmith-${jobId.slice(0, 8)}-`));
      for (const f of files) {
        const target = normalize(join(dir, f.name));
        if (!target.startsWith(dir)) throw new Error(`model file name escapes its directory: ${f.name}`);
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, await blobs.get(f.storageKey));
      }
      // Longest first: the path with a trailing slash, then bare.
      pairs.push([`${dir}/`, `${spec.model}/`], [dir, spec.model]);
      // A reader that names a folder by its base name (no path) shows the temp folder's name alone.
      pairs.push([basename(dir), spec.model]);
      model = { kind: 'files', dir, ref: spec.model };
    }
    if (spec.dataset.startsWith(DATASET_REF)) {
      const id = spec.dataset.slice(DATASET_REF.length);
      const found = await registeredDatasetReference(prisma, id);
      if (found === null) throw new Error(`registered dataset ${id} no longer exists`);
      datasetReference = found;
      if (found.startsWith(UPLOAD_REF)) {
        const stored = await datasetFiles(prisma, id);
        if (stored.length === 0) throw new Error(`uploaded dataset ${id} has no files`);
        dataDir = await mkdtemp(join(tmpdir(), `ticketsmith-${jobId.slice(0, 8)}-data-`));
        for (const f of stored) {
          const target = normalize(join(dataDir, f.name));
          if (!target.startsWith(`${dataDir}/`)) throw new Error(`dataset file name escapes its directory: ${f.name}`);
          await mkdir(dirname(target), { recursive: true });
          await writeFile(target, await blobs.get(f.storageKey));
        }
        pairs.push([`${dataDir}/`, `${spec.dataset}/`], [dataDir, spec.dataset]);
        // The image-folder reader names the folder by its base name alone: `ticketsmith-<job>-data-XXXXXX: cat/1.png: ...`.
        pairs.push([basename(dataDir), spec.dataset]);
        datasetReference = pathToFileURL(dataDir).href;
        files = { kind: 'roots', roots: [dataDir] };
      }
    }
  } catch (e) {
    await cleanup();
    throw e;
  }
  // After the temp folder's pairs: longest first. A folder as short as `/` would mangle every message: left to the fallback.
  for (const [folder, name] of serverFolders) {
    const bare = folder.replace(/\/+$/, '');
    if (bare.length > 1) pairs.push([`${bare}/`, `${name}/`], [bare, name]);
  }
  return { spec, model, datasetReference, datasetFiles: files, cleanup, redact: (value) => redactPaths(value, pairs) };
}
