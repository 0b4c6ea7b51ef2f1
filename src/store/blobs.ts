// Content-addressed artifact bytes. A blob's key is its sha256; writing the
// same bytes twice stores them once. Rows that reference a blob are written
// to Postgres only after `put` returns, i.e. after the bytes are durable
// (temp file, fsync, rename, fsync of the directory), so a row never points
// at a blob that a crash could lose.
//
// LocalBlobStore keeps `<root>/ab/cdef…` files. The BlobStore interface is
// what an S3-compatible store would implement (not written yet).
//
// Deleting is only for the collector (store/blob-gc.ts), which unlinks a key
// under a Postgres lock after re-checking that no row references it; nothing
// else may call `delete`.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';

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

const HEX64 = /^[0-9a-f]{64}$/;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class LocalBlobStore implements BlobStore {
  readonly location: string;

  constructor(readonly root: string) {
    this.location = root;
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
    const tmp = join(tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
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
    return { sha256, size, key: sha256 };
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      return new Uint8Array(await readFile(this.pathOf(key)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(`blob ${key} is missing from ${this.root}`);
      throw e;
    }
  }

  open(key: string, range?: ByteRange): Readable {
    return createReadStream(this.pathOf(key), range ? { start: range.start, end: range.end } : {});
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

  async removeStaleTemp(olderThanMs: number): Promise<number> {
    const tmpDir = join(this.root, '.tmp');
    let removed = 0;
    for (const name of await readdirOrEmpty(tmpDir)) {
      try {
        // A live write touches its file with every chunk; only a dead writer's file gets old.
        if (Date.now() - (await stat(join(tmpDir, name))).mtimeMs < olderThanMs) continue;
        await rm(join(tmpDir, name), { force: true });
        removed++;
      } catch {
        // Renamed or removed by its writer meanwhile.
      }
    }
    return removed;
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
