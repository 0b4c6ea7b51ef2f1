// Where dataset bytes come from: local files (confined by the caller's file
// policy, ./access.ts) or http(s) URLs (through the outbound guard,
// src/runtime/outbound.ts), with an optional on-disk cache for downloads. Every
// failure becomes a DatasetError naming the path or URL; a refused URL or file
// gets one message that says nothing about the target.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { guardedFetch, OUTBOUND_REFUSED, OutboundRefusedError } from '../../runtime/outbound.js';
import { DEFAULT_DATASET_LIMITS, type DatasetLimits } from '../../runtime/engine-config.js';
import { confineFile, type DataAccess } from './access.js';
import { DatasetError, describeError } from './errors.js';

export type Location = { kind: 'file'; path: string } | { kind: 'http'; url: string };

export interface ReadOptions extends DataAccess {
  /** Downloads are kept here, keyed by URL; absent = no cache. */
  cacheDir?: string;
}

/** The error of a refused URL: the field, never the target or why. */
export const refusedUrl = (field: string) => new DatasetError(`dataset URL is not allowed: ${OUTBOUND_REFUSED}`, field);

/** Big archives on slow links take minutes; a stuck server must not hang a job forever. */
const FETCH_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * The caps on one dataset file a load runs under (TICKETSMITH_MAX_DATASET_BYTES
 * and _RATIO, passed in by the caller; default 2 GiB and 200-fold): a tenant's
 * URL must not be able to exhaust a worker's memory.
 */
export function datasetLimits(access: Pick<DataAccess, 'limits'> | undefined): DatasetLimits {
  return access?.limits ?? DEFAULT_DATASET_LIMITS;
}

/**
 * Output allowed for `compressed` input bytes under the ratio cap. Tiny inputs
 * get a floor: a 40-byte gzip of a 9 KB label file is not a bomb.
 */
export function ratioAllowance(compressed: number, ratio: number): number {
  return ratio * Math.max(compressed, RATIO_FLOOR_BYTES);
}

const RATIO_FLOOR_BYTES = 16 * 1024;

export function describeLocation(loc: Location): string {
  return loc.kind === 'file' ? loc.path : loc.url;
}

/** `name` relative to the directory `dir` (absolute names are kept, but must stay on the same scheme). */
export function childLocation(dir: Location, name: string, field: string): Location {
  if (dir.kind === 'file') return { kind: 'file', path: resolve(dir.path, name) };
  let url: URL;
  try {
    url = new URL(name, dir.url.endsWith('/') ? dir.url : `${dir.url}/`);
  } catch (err) {
    throw new DatasetError(`${dir.url}: bad file name '${name}' (${describeError(err)})`, field, dir.url, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DatasetError(`${url.href}: files of an http(s) reference must be http(s) URLs`, field, url.href);
  }
  return { kind: 'http', url: url.href };
}

/** The bytes at `loc`, or null when it does not exist (ENOENT, HTTP 404/410). */
export async function tryRead(loc: Location, field: string, opts: ReadOptions): Promise<Uint8Array | null> {
  return loc.kind === 'file' ? tryReadFile(loc.path, field, opts) : tryFetch(loc.url, field, opts);
}

/** The bytes at `loc`; a missing file is a DatasetError. */
export async function read(loc: Location, field: string, opts: ReadOptions): Promise<Uint8Array> {
  const bytes = await tryRead(loc, field, opts);
  if (bytes === null) {
    const where = describeLocation(loc);
    throw new DatasetError(`${where}: file not found`, field, where);
  }
  return bytes;
}

/** The first of `candidates` that exists (e.g. `x.gz` before `x`). */
export async function readFirst(
  candidates: Location[],
  field: string,
  opts: ReadOptions,
): Promise<{ loc: Location; bytes: Uint8Array }> {
  for (const loc of candidates) {
    const bytes = await tryRead(loc, field, opts);
    if (bytes !== null) return { loc, bytes };
  }
  const names = candidates.map(describeLocation);
  throw new DatasetError(`${names[0]}: file not found (tried ${names.join(', ')})`, field, names[0]);
}

async function tryReadFile(path: string, field: string, opts: DataAccess): Promise<Uint8Array | null> {
  const real = await confineFile(path, opts.files, field);
  try {
    // Judged by its size before it is read: a file over the cap never enters memory.
    const size = (await stat(real)).size;
    const max = datasetLimits(opts).maxBytes;
    if (size > max) {
      throw new DatasetError(`${path}: larger than the ${max}-byte limit for a dataset file (TICKETSMITH_MAX_DATASET_BYTES)`, field, path);
    }
    const buf = await readFile(real);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    // describeError names the path Node opened: the real one must not show.
    const why = code === 'EISDIR' ? 'is a directory, not a file' : `cannot read (${describeError(err).split(real).join(path)})`;
    throw new DatasetError(`${path}: ${why}`, field, path, { cause: err });
  }
}

async function tryFetch(url: string, field: string, opts: ReadOptions): Promise<Uint8Array | null> {
  const cachePath = opts.cacheDir === undefined ? undefined : join(opts.cacheDir, cacheName(url));
  if (cachePath !== undefined) {
    const cached = await tryReadFile(cachePath, field, { limits: opts.limits });
    if (cached !== null) return cached;
  }
  let res: Response;
  let body: ArrayBuffer;
  try {
    res = await (opts.fetch ?? guardedFetch)(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (res.status === 404 || res.status === 410) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new DatasetError(`${url}: HTTP ${res.status} ${res.statusText}`.trimEnd(), field, url);
    }
    body = await readCapped(res, url, field, datasetLimits(opts).maxBytes);
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    if (err instanceof OutboundRefusedError) throw refusedUrl(field);
    throw new DatasetError(`${url}: download failed (${describeError(err)})`, field, url, { cause: err });
  }
  const declared = res.headers.get('content-length');
  // Only meaningful without content-encoding: fetch hands back decoded bytes.
  if (declared !== null && res.headers.get('content-encoding') === null && Number(declared) !== body.byteLength) {
    throw new DatasetError(
      `${url}: download truncated (Content-Length ${declared}, received ${body.byteLength} bytes)`,
      field,
      url,
    );
  }
  const bytes = new Uint8Array(body);
  if (cachePath !== undefined && opts.cacheDir !== undefined) await writeCache(opts.cacheDir, cachePath, bytes, url, field);
  return bytes;
}

/** The response body, refused as soon as it is declared or found to exceed `max` bytes. */
async function readCapped(res: Response, url: string, field: string, max: number): Promise<ArrayBuffer> {
  const tooBig = () => new DatasetError(`${url}: larger than the ${max}-byte limit for a dataset file (TICKETSMITH_MAX_DATASET_BYTES)`, field, url);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > max) {
    await res.body?.cancel();
    throw tooBig();
  }
  if (!res.body) return new ArrayBuffer(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw tooBig();
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out.buffer;
}

function cacheName(url: string): string {
  return `http-${createHash('sha256').update(url).digest('hex').slice(0, 40)}`;
}

/** Write-then-rename so a concurrent reader (another worker) never sees half a file. */
async function writeCache(dir: string, path: string, bytes: Uint8Array, url: string, field: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (err) {
    throw new DatasetError(`${url}: cannot write download cache ${path} (${describeError(err)})`, 'cacheDir', path, {
      cause: err,
    });
  }
}
