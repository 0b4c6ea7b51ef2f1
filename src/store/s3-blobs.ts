// The blob store on S3-compatible storage (AWS S3, MinIO, Ceph, R2...), so
// workers and servers on different machines share one set of artifacts. Same
// contract as the folder store (store/blobs.ts): a blob's key is its sha256,
// stored at `<prefix><ab>/<cdef…>` in one bucket; writing the same bytes
// twice stores them once (HEAD before any upload); a failing store surfaces as
// BlobStoreUnavailableError naming the cause, never the endpoint.
//
// Writes: bytes whose sha256 is known up front (put) go straight to their key,
// in one PutObject carrying the sha256 for the server to check, or as a
// multipart upload when larger than one part. A stream (putStream, uploads) is
// hashed while it flows: if it ends within one part it is put like bytes;
// otherwise its parts go to a temp key `<prefix>.tmp/<host>~<pid>~<random>`
// and, once the digest is known, a server-side copy puts it under its key (a
// single CopyObject, hence the 5 GiB cap on streamed blobs). A failed multipart
// upload is aborted; one left by a killed process is removed by the storage
// pass (removeStaleTemp) where the server lists uploads, and by a bucket
// lifecycle rule (AbortIncompleteMultipartUpload) anyway.
//
// Reads stream from S3 without buffering. A whole-blob read hashes the bytes
// as they pass and holds back the last chunk until the digest matches the
// key: a corrupted object fails the stream (BlobIntegrityError) before its
// end is delivered. A range read cannot be hashed; its length is checked.
//
// The endpoint is operator configuration (runtime/config.ts), not tenant
// input, so these requests do not go through the tenant outbound guard.
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import type { S3Settings } from '../runtime/config.js';
import {
  BlobIntegrityError,
  BlobNotFoundError,
  BlobStoreUnavailableError,
  BlobTooLargeError,
  sha256Hex,
  type BlobRef,
  type BlobStore,
  type ByteRange,
  type StoredBlob,
} from './blobs.js';

const HEX64 = /^[0-9a-f]{64}$/;
/** S3's smallest part (but the last) is 5 MiB; 8 MiB parts keep a 512 MiB upload at 64 requests. */
const DEFAULT_PART_BYTES = 8 * 1024 * 1024;
/** The largest object one CopyObject may copy. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;
const HOST = hostname().replace(/[^A-Za-z0-9.-]/g, '_') || 'host';

export interface S3BlobStoreOptions {
  /** Credentials other than the SDK's default chain (AWS_* variables, profiles, instance roles): tests. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Bytes per multipart part (at least 5 MiB on real S3; smaller lets tests reach the multipart path). */
  partBytes?: number;
  /** Attempts per request, retries of throttling, 5xx and network errors included (SDK default 3). */
  maxAttempts?: number;
  /** Keys per ListObjectsV2 page (S3's most and default: 1000; smaller lets tests page). */
  listPageSize?: number;
}

/** What an S3 failure means for the caller: the unavailable error, or null when it is something else. */
export function s3Fault(e: unknown): BlobStoreUnavailableError | null {
  if (e instanceof BlobStoreUnavailableError) return e;
  if (typeof e !== 'object' || e === null) return null;
  const err = e as { name?: unknown; code?: unknown; $metadata?: { httpStatusCode?: number }; $retryable?: { throttling?: boolean } };
  const status = err.$metadata?.httpStatusCode;
  // An error answer to HEAD has no body, so no S3 code: the SDK calls it Unknown (or by its status).
  const named = typeof err.name === 'string' && err.name !== 'Unknown' && err.name !== 'Error' ? err.name : '';
  const name = named || (status !== undefined ? `HTTP${status}` : '');
  const code = typeof err.code === 'string' ? err.code : '';
  if (NETWORK_CODES.has(code)) return new BlobStoreUnavailableError(code, 'the storage endpoint is unreachable');
  if (name === 'TimeoutError' || name === 'RequestTimeout') return new BlobStoreUnavailableError(name, 'the storage endpoint did not answer in time');
  if (name === 'CredentialsProviderError') return new BlobStoreUnavailableError(name, 'no storage credentials were found');
  if (name === 'NoSuchBucket') return new BlobStoreUnavailableError(name, 'the bucket does not exist');
  if (THROTTLING.has(name) || err.$retryable?.throttling === true || status === 429) {
    return new BlobStoreUnavailableError(name || 'SlowDown', 'the storage is throttling requests');
  }
  if (status === 401 || status === 403 || DENIED.has(name)) return new BlobStoreUnavailableError(name, 'the storage refused the credentials');
  if (status !== undefined && status >= 500) return new BlobStoreUnavailableError(name, `the storage answered with a server error (${status})`);
  return null;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED', 'EPROTO']);
const THROTTLING = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded', 'ServiceUnavailable']);
const DENIED = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken']);

function isNotFound(e: unknown): boolean {
  const err = e as { name?: unknown; $metadata?: { httpStatusCode?: number } } | null;
  return err?.name === 'NoSuchKey' || err?.name === 'NotFound' || (err?.$metadata?.httpStatusCode === 404 && err?.name !== 'NoSuchBucket');
}

export class S3BlobStore implements BlobStore {
  readonly location: string;
  readonly bucket: string;
  /** '' or ending in '/'. */
  readonly prefix: string;
  readonly client: S3Client;
  private readonly partBytes: number;
  private readonly listPageSize: number | undefined;

  constructor(settings: S3Settings, opts: S3BlobStoreOptions = {}) {
    this.bucket = settings.bucket;
    this.prefix = settings.prefix;
    this.location = `s3://${settings.bucket}/${settings.prefix}`;
    this.partBytes = opts.partBytes ?? DEFAULT_PART_BYTES;
    this.listPageSize = opts.listPageSize;
    this.client = new S3Client({
      region: settings.region,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      forcePathStyle: settings.forcePathStyle,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      maxAttempts: opts.maxAttempts ?? 3,
      // We check sha256 ourselves; the SDK's own CRC trailers are not understood by every S3-compatible server.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // An endpoint that does not accept a connection is "unavailable" within seconds, not minutes.
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000 },
    });
  }

  /** The object key of a blob key. */
  objectKey(key: string): string {
    if (!HEX64.test(key)) throw new BlobNotFoundError(`not a blob key: ${key}`);
    return `${this.prefix}${key.slice(0, 2)}/${key.slice(2)}`;
  }

  private get tempPrefix(): string {
    return `${this.prefix}.tmp/`;
  }

  /** Runs one S3 call, mapping its failure to the blob store's error classes. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw s3Fault(e) ?? e;
    }
  }

  async put(bytes: Uint8Array): Promise<BlobRef> {
    const sha256 = sha256Hex(bytes);
    const ref = { sha256, size: bytes.byteLength, key: sha256 };
    if ((await this.size(sha256)) === bytes.byteLength) return ref;
    const Key = this.objectKey(sha256);
    if (bytes.byteLength <= this.partBytes) {
      await this.call(() =>
        this.client.send(new PutObjectCommand({
          Bucket: this.bucket,
          Key,
          Body: bytes,
          ContentLength: bytes.byteLength,
          ContentType: 'application/octet-stream',
          // The server checks the bytes it received against the digest the key was made from.
          ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
        })),
      );
      return ref;
    }
    const parts = (async function* (partBytes: number) {
      for (let at = 0; at < bytes.byteLength; at += partBytes) yield bytes.subarray(at, Math.min(at + partBytes, bytes.byteLength));
    })(this.partBytes);
    await this.multipart(Key, parts);
    return ref;
  }

  async putStream(source: AsyncIterable<Uint8Array>, opts: { maxBytes?: number } = {}): Promise<BlobRef> {
    const hash = createHash('sha256');
    let size = 0;
    const counted = async function* (this: void) {
      for await (const chunk of source) {
        size += chunk.byteLength;
        if (opts.maxBytes !== undefined && size > opts.maxBytes) throw new BlobTooLargeError(opts.maxBytes);
        hash.update(chunk);
        yield chunk;
      }
    };
    const parts = rechunk(counted(), this.partBytes);
    const first = await parts.next();
    const second = first.done ? first : await parts.next();
    if (second.done) {
      // The whole stream fits one part: its digest is known, put it like bytes.
      const bytes = first.done ? new Uint8Array(0) : first.value;
      return this.put(bytes);
    }
    const temp = `${this.tempPrefix}${HOST}~${process.pid}~${randomBytes(8).toString('hex')}`;
    const all = (async function* () {
      yield first.value as Uint8Array;
      yield second.value;
      yield* parts;
    })();
    await this.multipart(temp, all, MAX_COPY_BYTES);
    try {
      const sha256 = hash.digest('hex');
      const ref = { sha256, size, key: sha256 };
      if ((await this.size(sha256)) !== size) {
        await this.call(() =>
          this.client.send(new CopyObjectCommand({
            Bucket: this.bucket,
            Key: this.objectKey(sha256),
            CopySource: `${this.bucket}/${encodeURI(temp)}`,
            ContentType: 'application/octet-stream',
            MetadataDirective: 'REPLACE',
          })),
        );
      }
      return ref;
    } finally {
      await this.call(() => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: temp }))).catch(() => {});
    }
  }

  /** A multipart upload of `parts` (each but the last at least 5 MiB on real S3) to `Key`; aborted if anything fails. */
  private async multipart(Key: string, parts: AsyncIterable<Uint8Array>, maxBytes?: number): Promise<void> {
    const { UploadId } = await this.call(() =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ContentType: 'application/octet-stream' })),
    );
    if (!UploadId) throw new BlobStoreUnavailableError('NoUploadId', 'the storage started a multipart upload without an id');
    try {
      const done: CompletedPart[] = [];
      let total = 0;
      for await (const part of parts) {
        total += part.byteLength;
        if (maxBytes !== undefined && total > maxBytes) throw new BlobTooLargeError(maxBytes);
        const PartNumber = done.length + 1;
        const { ETag } = await this.call(() =>
          this.client.send(new UploadPartCommand({ Bucket: this.bucket, Key, UploadId, PartNumber, Body: part, ContentLength: part.byteLength })),
        );
        done.push({ ETag, PartNumber });
      }
      await this.call(() =>
        this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId, MultipartUpload: { Parts: done } })),
      );
    } catch (e) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId })).catch(() => {});
      throw e;
    }
  }

  async get(key: string): Promise<Uint8Array> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.open(key) as AsyncIterable<Buffer>) chunks.push(chunk);
    return new Uint8Array(Buffer.concat(chunks));
  }

  open(key: string, range?: ByteRange): Readable {
    const store = this;
    return Readable.from(
      (async function* () {
        const Key = store.objectKey(key);
        let body: Readable | undefined;
        try {
          const out = await store.client.send(
            new GetObjectCommand({ Bucket: store.bucket, Key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
          );
          body = out.Body as Readable | undefined;
          if (!body) throw new BlobStoreUnavailableError('NoBody', 'the storage answered without a body');
          if (range) {
            let got = 0;
            for await (const chunk of body as AsyncIterable<Buffer>) {
              got += chunk.byteLength;
              yield chunk;
            }
            if (got !== range.end - range.start + 1) throw new BlobIntegrityError(`blob ${key}: the storage sent ${got} bytes of a ${range.end - range.start + 1}-byte range`);
            return;
          }
          // Each chunk is passed on when the next arrives; the last only once the digest matches.
          const hash = createHash('sha256');
          let held: Buffer | null = null;
          for await (const chunk of body as AsyncIterable<Buffer>) {
            hash.update(chunk);
            if (held) yield held;
            held = chunk;
          }
          if (hash.digest('hex') !== key) throw new BlobIntegrityError(`blob ${key} in the blob store does not match its sha256`);
          if (held) yield held;
        } catch (e) {
          if (e instanceof BlobIntegrityError || e instanceof BlobNotFoundError) throw e;
          if (isNotFound(e)) throw new BlobNotFoundError(`blob ${key} is missing from the blob store`);
          throw s3Fault(e) ?? e;
        } finally {
          body?.destroy();
        }
      })(),
      { objectMode: false },
    );
  }

  async size(key: string): Promise<number | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return head.ContentLength ?? null;
    } catch (e) {
      if (e instanceof BlobNotFoundError || isNotFound(e)) return null;
      throw s3Fault(e) ?? e;
    }
  }

  async delete(key: string): Promise<void> {
    await this.call(() => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) })));
  }

  async *list(): AsyncIterable<StoredBlob> {
    const shape = new RegExp(`^${escapeRegExp(this.prefix)}([0-9a-f]{2})/([0-9a-f]{62})$`);
    for await (const o of this.objects(this.prefix)) {
      const m = shape.exec(o.Key);
      if (m) yield { key: m[1]! + m[2]!, size: o.Size, modifiedAt: o.LastModified };
    }
  }

  /** Every object under `Prefix`, page by page (ListObjectsV2 answers 1000 at most). */
  private async *objects(Prefix: string): AsyncIterable<{ Key: string; Size: number; LastModified: Date }> {
    let ContinuationToken: string | undefined;
    for (let page = 0; page < 10_000_000; page++) {
      const out = await this.call(() => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix, ContinuationToken, MaxKeys: this.listPageSize })));
      for (const o of out.Contents ?? []) {
        if (o.Key !== undefined) yield { Key: o.Key, Size: o.Size ?? 0, LastModified: o.LastModified ?? new Date(0) };
      }
      if (!out.IsTruncated || !out.NextContinuationToken) return;
      ContinuationToken = out.NextContinuationToken;
    }
  }

  /**
   * Removes temp objects of streamed writes that died between their upload
   * and their copy, and aborts multipart uploads left under the temp prefix,
   * both older than `olderThanMs`. Servers that do not list uploads
   * (NotImplemented) leave those to the bucket's lifecycle rule.
   */
  async removeStaleTemp(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for await (const o of this.objects(this.tempPrefix)) {
      if (o.LastModified.getTime() > cutoff) continue;
      await this.call(() => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: o.Key })));
      removed += 1;
    }
    try {
      const out = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.tempPrefix }));
      for (const u of out.Uploads ?? []) {
        if (!u.Key || !u.UploadId || (u.Initiated?.getTime() ?? 0) > cutoff) continue;
        await this.call(() => this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId })));
        removed += 1;
      }
    } catch (e) {
      if ((e as { name?: unknown }).name !== 'NotImplemented') throw s3Fault(e) ?? e;
    }
    return removed;
  }

  /** Closes the client's connections. */
  destroy(): void {
    this.client.destroy();
  }
}

/** Chunks of any size regrouped into `size`-byte pieces (the last may be shorter; nothing for an empty source). */
async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array, void, undefined> {
  let buf = new Uint8Array(size);
  let fill = 0;
  for await (const chunk of source) {
    let at = 0;
    while (at < chunk.byteLength) {
      const n = Math.min(size - fill, chunk.byteLength - at);
      buf.set(chunk.subarray(at, at + n), fill);
      fill += n;
      at += n;
      if (fill === size) {
        yield buf;
        buf = new Uint8Array(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
