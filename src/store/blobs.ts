// Content-addressed artifact bytes. A blob's key is its sha256; writing the
// same bytes twice stores them once. Rows that reference a blob are written
// to Postgres only after `put` returns, i.e. after the bytes are durable
// (temp file, fsync, rename, fsync of the directory), so a row never points
// at a blob that a crash could lose.
//
// LocalBlobStore keeps `<root>/ab/cdef…` files, writing through temp files in
// `<root>/.tmp` named after the writing host and process, so a process that
// starts can sweep the temp files of dead ones (a SIGKILL between write and
// rename leaves one). S3BlobStore (store/s3-blobs.ts) implements the same
// interface on an S3-compatible bucket. guardBlobs() turns a failing store's
// errors (full disk, read-only, gone) into one retryable BlobStoreUnavailableError
// whose message names the cause and never the path.
//
// Deleting is only for the collector (store/blob-gc.ts), which unlinks a key
// under a Postgres lock after re-checking that no row references it; nothing
// else may call `delete`.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { NO_FAULTS, type Faults } from '../runtime/faults.js';
import { isAlive } from '../runtime/process.js';

export interface BlobRef {
  /** sha256 of the bytes, hex; also the key. */
  sha256: string;
  size: number;
  key: string;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive (HTTP Range semantics). */
  end: number;
}

export interface BlobStore {
  /** Stores bytes durably; returns once a crash can no longer lose them. */
  put(bytes: Uint8Array): Promise<BlobRef>;
  /** Streams bytes in (uploads); fails with BlobTooLargeError past `maxBytes`. */
  putStream(source: AsyncIterable<Uint8Array>, opts?: { maxBytes?: number }): Promise<BlobRef>;
  get(key: string): Promise<Uint8Array>;
  open(key: string, range?: ByteRange): Readable;
  /** Size in bytes, or null when the blob is absent. */
  size(key: string): Promise<number | null>;
  /** Removes a blob (absent already: nothing to do). Only the collector calls it. */
  delete(key: string): Promise<void>;
  /** Every stored blob, with when it was last written (for the orphan sweep). */
  list(): AsyncIterable<StoredBlob>;
  /** Removes temp files of writes that died (older than `olderThanMs`); returns how many. */
  removeStaleTemp(olderThanMs: number): Promise<number>;
  /** Where blobs live, for logs (a directory or a bucket URL). */
  readonly location: string;
}

export interface StoredBlob {
  key: string;
  size: number;
  modifiedAt: Date;
}

export class BlobTooLargeError extends Error {
  override name = 'BlobTooLargeError';
  constructor(readonly maxBytes: number) {
    super(`blob exceeds ${maxBytes} bytes`);
  }
}

export class BlobNotFoundError extends Error {
  override name = 'BlobNotFoundError';
}

/** The stored bytes do not hash to their key (a corrupted object): the read fails instead of passing them on. */
export class BlobIntegrityError extends Error {
  override name = 'BlobIntegrityError';
}

/** The blob store cannot take or give bytes now (disk full, read-only, folder gone): retry later. */
export class BlobStoreUnavailableError extends Error {
  override name = 'BlobStoreUnavailableError';
  constructor(
    /** What the store failed with: an errno code (ENOSPC, EROFS, ...) or an S3 error name (SlowDown, NoSuchBucket, ...). */
    readonly code: string,
    reason: string,
  ) {
    super(`blob store unavailable: ${reason} (${code})`);
  }
}

/** Errno codes of a store that is full, read-only, unreachable or not a folder; each with words for the message. */
const UNAVAILABLE_CODES: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'input/output error',
  ENOTDIR: 'the blob folder is not a directory',
  EEXIST: 'the blob folder is not a directory',
  EISDIR: 'a blob path is a directory',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  ESTALE: 'stale file handle',
  ENOTCONN: 'storage not connected',
};

/** The store-unavailable error for a failed store call, or null when `e` is something else. */
export function blobStoreFault(e: unknown): BlobStoreUnavailableError | null {
  if (e instanceof BlobStoreUnavailableError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !(code in UNAVAILABLE_CODES)) return null;
  return new BlobStoreUnavailableError(code, UNAVAILABLE_CODES[code]!);
}

/**
 * Wraps a store so that a failing disk surfaces as BlobStoreUnavailableError
 * (retryable, no path in the message); too-large and not-found pass through.
 */
export function guardBlobs(inner: BlobStore): BlobStore {
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw blobStoreFault(e) ?? e;
    }
  };
  return {
    location: inner.location,
    put: (bytes) => guard(() => inner.put(bytes)),
    putStream: (source, opts) => guard(() => inner.putStream(source, opts)),
    get: (key) => guard(() => inner.get(key)),
    open: (key, range) => inner.open(key, range),
    size: (key) => guard(() => inner.size(key)),
    delete: (key) => guard(() => inner.delete(key)),
    list: () => inner.list(),
    removeStaleTemp: (olderThanMs) => guard(() => inner.removeStaleTemp(olderThanMs)),
  };
}

const HEX64 = /^[0-9a-f]{64}$/;
/** Temp file names: `<host>~<pid>~<random>` (host with anything odd replaced). */
const HOST = hostname().replace(/[^A-Za-z0-9.-]/g, '_') || 'host';
const TEMP_NAME = /^(.+)~(\d+)~[0-9a-f]+$/;


export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class LocalBlobStore implements BlobStore {
  readonly location: string;

  private readonly faults: Faults;

  constructor(
    readonly root: string,
    opts: { faults?: Faults } = {},
  ) {
    this.location = root;
    this.faults = opts.faults ?? NO_FAULTS;
  }

  /**
   * Removes temp files left by writers that died between write and rename:
   * those of this host whose process is gone, and any older than
   * `staleMs` (writers on other hosts sharing the folder). Returns how many.
   */
  async sweepTemp(staleMs = 24 * 60 * 60 * 1000): Promise<number> {
    const tmpDir = join(this.root, '.tmp');
    let names: string[];
    try {
      names = await readdir(tmpDir);
    } catch {
      return 0;
    }
    let removed = 0;
    const now = Date.now();
    for (const name of names) {
      const m = TEMP_NAME.exec(name);
      const path = join(tmpDir, name);
      let dead = m !== null && m[1] === HOST && Number(m[2]) !== process.pid && !isAlive(Number(m[2]));
      if (!dead) dead = await stat(path).then((s) => now - s.mtimeMs > staleMs, () => false);
      if (dead && (await rm(path, { force: true }).then(() => true, () => false))) removed += 1;
    }
    return removed;
  }

  pathOf(key: string): string {
    if (!HEX64.test(key)) throw new BlobNotFoundError(`not a blob key: ${key}`);
    return join(this.root, key.slice(0, 2), key.slice(2));
  }

  async put(bytes: Uint8Array): Promise<BlobRef> {
    return this.putStream((async function* () {
      yield bytes;
    })());
  }

  async putStream(source: AsyncIterable<Uint8Array>, opts: { maxBytes?: number } = {}): Promise<BlobRef> {
    const tmpDir = join(this.root, '.tmp');
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, `${HOST}~${process.pid}~${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    const file = await open(tmp, 'wx', 0o644);
    try {
      for await (const chunk of source) {
        size += chunk.byteLength;
        if (opts.maxBytes !== undefined && size > opts.maxBytes) throw new BlobTooLargeError(opts.maxBytes);
        hash.update(chunk);
        await file.write(chunk);
      }
      await file.sync();
    } catch (e) {
      await file.close().catch(() => {});
      await rm(tmp, { force: true });
      throw e;
    }
    await file.close();
    this.faults.hit('blob.temp-written');
    const sha256 = hash.digest('hex');
    const target = this.pathOf(sha256);
    if ((await this.size(sha256)) === size) {
      // Same content already stored (and durable): nothing to add.
      await rm(tmp, { force: true });
      return { sha256, size, key: sha256 };
    }
    await mkdir(dirname(target), { recursive: true });
    await rename(tmp, target);
    await fsyncDir(dirname(target));
    this.faults.hit('blob.after-rename');
    return { sha256, size, key: sha256 };
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      return new Uint8Array(await readFile(this.pathOf(key)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(`blob ${key} is missing from the blob store`);
      throw e;
    }
  }

  open(key: string, range?: ByteRange): Readable {
    const file = createReadStream(this.pathOf(key), range ? { start: range.start, end: range.end } : {});
    const root = this.root;
    // A blob gone from disk is BlobNotFoundError (UNAVAILABLE to clients), like get(), not
    // a bare ENOENT; and destroying the returned stream closes the file.
    return Readable.from(
      (async function* () {
        try {
          for await (const chunk of file as AsyncIterable<Buffer>) yield chunk;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(`blob ${key} is missing from ${root}`);
          throw e;
        } finally {
          file.destroy();
        }
      })(),
      { objectMode: false },
    );
  }

  async size(key: string): Promise<number | null> {
    try {
      return (await stat(this.pathOf(key))).size;
    } catch {
      return null;
    }
  }

  async delete(key: string): Promise<void> {
    // No directory fsync: a crash that brings the file back leaves an orphan the next sweep removes.
    await rm(this.pathOf(key), { force: true });
  }

  async *list(): AsyncIterable<StoredBlob> {
    for (const dir of await readdirOrEmpty(this.root)) {
      if (!/^[0-9a-f]{2}$/.test(dir)) continue;
      for (const rest of await readdirOrEmpty(join(this.root, dir))) {
        const key = dir + rest;
        if (!HEX64.test(key)) continue;
        try {
          const st = await stat(join(this.root, dir, rest));
          yield { key, size: st.size, modifiedAt: st.mtime };
        } catch {
          // Collected meanwhile.
        }
      }
    }
  }

  /** The storage pass's sweep: the same as sweepTemp, with its age. */
  removeStaleTemp(olderThanMs: number): Promise<number> {
    return this.sweepTemp(olderThanMs);
  }

}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** A rename is durable only once the directory entry is flushed too. */
async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
