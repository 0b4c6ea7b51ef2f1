// Content-addressed artifact bytes. A blob's key is its sha256; writing the
// same bytes twice stores them once. Rows that reference a blob are written
// to Postgres only after `put` returns, i.e. after the bytes are durable
// (temp file, fsync, rename, fsync of the directory), so a row never points
// at a blob that a crash could lose.
//
// LocalBlobStore keeps `<root>/ab/cdef…` files. The BlobStore interface is
// what an S3-compatible store would implement (not written yet).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';

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
  /** Where blobs live, for logs (a directory or a bucket URL). */
  readonly location: string;
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
