// What a dataset load may touch: how http(s) files are fetched, which files
// on the server's disk may be read, how large one file may be, and where the
// operator's builtin:fashion-mnist lives. The worker passes the operator's policy
// (tenant input); the operator's own CLI passes none and may read any file.
// Checks resolve symlinks (realpath), so a link inside an allowed folder that
// leads out is refused; refusals never name the resolved path.
//
// It does not read settings: the caller (src/queue/worker.ts via the service
// wiring, the CLI) builds the policy from src/runtime/config.ts, and
// withEngineConfig adds the engine's dataset settings to it.
import { realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { GuardedFetch } from '../../runtime/outbound.js';
import type { DatasetLimits, EngineConfig, ImageLimits } from '../../runtime/engine-config.js';
import { DatasetError } from './errors.js';

/** Which server files a load may read: any (the operator's CLI), those under `roots`, or none. */
export type FilePolicy =
  | { kind: 'any' }
  | { kind: 'roots'; roots: readonly string[] }
  | { kind: 'none'; reason: string };

export interface DataAccess {
  /** Fetches http(s) files; default: guardedFetch (the outbound guard without an allow list). */
  fetch?: GuardedFetch;
  /** Default: any file (callers with tenant input always pass one). */
  files?: FilePolicy;
  /** Caps on one file, downloaded or unpacked (TICKETSMITH_MAX_DATASET_BYTES / _RATIO). Default: DEFAULT_DATASET_LIMITS. */
  limits?: DatasetLimits;
  /** Where builtin:fashion-mnist is read from (TICKETSMITH_FASHION_MNIST_DIR). Default: the Debian package's folder. */
  fashionMnistDir?: string;
  /** Caps on an image-folder dataset (TICKETSMITH_MAX_IMAGE_*). Default: DEFAULT_IMAGE_LIMITS. */
  images?: ImageLimits;
}

/** `access` with the engine config's dataset caps and Fashion-MNIST folder. */
export function withEngineConfig(access: DataAccess, engine: Pick<EngineConfig, 'datasets' | 'fashionMnistDir' | 'images'>): DataAccess {
  return { ...access, limits: engine.datasets, fashionMnistDir: engine.fashionMnistDir, ...(engine.images ? { images: engine.images } : {}) };
}

export const FILES_DISABLED = 'file:// datasets are disabled on this server; use an http(s) or builtin reference';
const NO_ROOTS = 'file:// datasets are on but no folder is allowed: the operator must set TICKETSMITH_FILE_ROOTS';
const OUTSIDE = 'dataset file is not allowed: it is not inside a folder this server lets tenants read (TICKETSMITH_FILE_ROOTS)';

/** `path` with symlinks resolved as far as it exists; the missing tail is appended as written. */
async function realpathLoose(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const parent = dirname(path);
    if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === path) throw err;
    return resolve(await realpathLoose(parent), basename(path));
  }
}

const inside = (root: string, p: string) => {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
};

/**
 * The path to open for `path` under `policy`: `path` itself when any file may
 * be read, else its real path when that lies inside a root. Throws a
 * DatasetError on `field` (never naming a resolved path) otherwise. A path
 * that does not exist but would lie inside a root passes (the read then
 * reports it missing).
 */
export async function confineFile(path: string, policy: FilePolicy | undefined, field: string): Promise<string> {
  if (policy === undefined || policy.kind === 'any') return path;
  if (policy.kind === 'none') throw new DatasetError(policy.reason, field);
  if (policy.roots.length === 0) throw new DatasetError(NO_ROOTS, field);
  if (!isAbsolute(path) || path.split(/[\\/]/).includes('..')) throw new DatasetError(OUTSIDE, field);
  let real: string;
  try {
    real = await realpathLoose(path);
  } catch (err) {
    // EACCES, ELOOP...: refused alike, so the answer says nothing about the disk.
    throw new DatasetError(OUTSIDE, field, undefined, { cause: err });
  }
  for (const root of policy.roots) {
    const realRoot = await realpath(root).catch(() => null);
    if (realRoot !== null && inside(realRoot, real)) return real;
  }
  throw new DatasetError(OUTSIDE, field);
}
