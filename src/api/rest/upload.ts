// Reads a model or dataset upload off the wire into the service's shape:
// multipart/form-data (files named by their filename, paths kept so an
// uploaded folder stays a folder; or one `archive` part), or a raw archive
// body (application/zip, application/gzip, application/x-tar). The size limit
// is enforced while reading, so an oversized upload is refused without being
// buffered whole.
import type { Request } from 'express';
import busboy from 'busboy';
import { invalid, receiveTimer, ServiceError, type ModelUpload, type NamedFile, type ReceiveTimes } from '../../service/index.js';

const ARCHIVE_TYPES = new Set(['application/zip', 'application/x-zip-compressed', 'application/gzip', 'application/x-gzip', 'application/x-tar', 'application/x-gtar', 'application/octet-stream']);
const ARCHIVE_NAME = /\.(zip|tar\.gz|tgz|tar)$/i;
/** Room for multipart boundaries and part headers on top of the file bytes. */
const ENVELOPE = 1024 * 1024;

export interface ParsedUpload {
  upload: ModelUpload;
  name?: string;
}

const tooLarge = (max: number) => new ServiceError('PAYLOAD_TOO_LARGE', `upload exceeds ${max} bytes`, 'files');

function mediaType(req: Request): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function checkDeclaredLength(req: Request, max: number): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max + ENVELOPE) throw tooLarge(max);
}

const endedEarly = () => invalid('body', 'body: the upload ended early');

/**
 * Calls `fail` however the request stops before its body is whole. When
 * Node's parser refuses the body midway (a malformed chunk) the request emits
 * neither `aborted`, `error` nor `end`, only `close` (and its socket's):
 * without these a read would never settle and its upload slot never be freed.
 * Returns the function that removes the listeners once the read has settled.
 */
function onEndedEarly(req: Request, times: ReceiveTimes, fail: (e: ServiceError) => void): () => void {
  const gone = () => {
    if (!req.complete) fail(endedEarly());
  };
  // A client that stalls or trickles is cut off too: its slot is freed and the connection closed after
  // the 408, so the rest of its body is not read for nothing.
  const timer = receiveTimer(times, (e) => {
    req.res?.setHeader('Connection', 'close');
    fail(e);
  });
  const touch = () => timer.touch();
  const socket = req.socket;
  req.on('data', touch);
  req.on('aborted', gone);
  req.on('error', gone);
  req.on('close', gone);
  // A keep-alive socket outlives the request: the listener goes when the read settles.
  socket?.on('close', gone);
  return () => {
    timer.stop();
    req.off('data', touch);
    req.off('aborted', gone);
    req.off('close', gone);
    socket?.off('close', gone);
  };
}

function readRaw(req: Request, max: number, times: ReceiveTimes): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let failed = false;
    const fail = (e: ServiceError) => {
      if (failed) return;
      failed = true;
      chunks.length = 0;
      stopWatching();
      reject(e);
    };
    const stopWatching = onEndedEarly(req, times, fail);
    // Past the limit the rest is read and dropped, so the client gets our 413 rather than a reset.
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      total += chunk.length;
      if (total > max) return fail(tooLarge(max));
      chunks.push(chunk);
    });
    req.on('end', () => {
      stopWatching();
      if (!failed) resolve(new Uint8Array(Buffer.concat(chunks)));
    });
  });
}

/** What an upload holds, for messages; and how many files it may have. */
interface UploadKind {
  what: string;
  maxFiles: number;
}

const MODEL: UploadKind = { what: 'model.json and its weight files', maxFiles: 1000 };

function readMultipart(req: Request, max: number, times: ReceiveTimes, kind: UploadKind = MODEL): Promise<ParsedUpload> {
  return new Promise<ParsedUpload>((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, preservePath: true, limits: { fileSize: max + 1, files: kind.maxFiles, fields: 20, fieldSize: 4096, parts: kind.maxFiles + 100 } });
    } catch (e) {
      reject(invalid('body', `body: ${(e as Error).message}`));
      return;
    }
    const files: NamedFile[] = [];
    let archive: Uint8Array | null = null;
    let name: string | undefined;
    let total = 0;
    let failed: ServiceError | null = null;
    let pending = 0;
    let finished = false;
    const fail = (e: ServiceError) => {
      if (failed) return;
      failed = e;
      stopWatching();
      req.unpipe(bb);
      // Drain what the client still sends, so it reads our answer instead of a reset.
      req.resume();
      reject(e);
    };
    const stopWatching = onEndedEarly(req, times, fail);
    const settle = () => {
      if (failed || !finished || pending > 0) return;
      stopWatching();
      if (archive) {
        if (files.length > 0) return fail(invalid('archive', `archive: send one archive or ${kind.what}, not both`));
        return resolve({ upload: { archive }, name });
      }
      if (files.length === 0) return fail(invalid('files', `files: the upload has no files (send ${kind.what}, or one archive)`));
      resolve({ upload: { files }, name });
    };
    bb.on('file', (field, stream, info) => {
      pending++;
      const chunks: Buffer[] = [];
      // The name is held as long as the bytes: it counts too, or thousands of long-named parts pass the cap unseen.
      total += Buffer.byteLength(info.filename ?? field);
      if (total > max) {
        stream.resume();
        fail(tooLarge(max));
      }
      // A part cut off mid-file errors on its own stream, not on busboy's: without a
      // listener that one request would be an uncaught exception and end the process.
      stream.on('error', (e: Error) => fail(invalid('body', `body: malformed multipart data (${e.message})`)));
      stream.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (total > max) {
          stream.resume();
          fail(tooLarge(max));
          return;
        }
        if (!failed) chunks.push(chunk);
      });
      stream.on('end', () => {
        pending--;
        if (failed) return;
        const bytes = new Uint8Array(Buffer.concat(chunks));
        const filename = info.filename ?? field;
        if (field === 'archive' || ARCHIVE_NAME.test(filename)) {
          if (archive) return fail(invalid('archive', 'archive: only one archive per upload'));
          archive = bytes;
        } else {
          files.push({ name: filename, bytes });
        }
        settle();
      });
    });
    bb.on('field', (field, value) => {
      if (field === 'name') name = value;
    });
    bb.on('partsLimit', () => fail(invalid('files', 'files: too many parts')));
    bb.on('filesLimit', () => fail(invalid('files', `files: more than ${kind.maxFiles} files (the limit for one upload)`)));
    bb.on('error', (e: Error) => fail(invalid('body', `body: malformed multipart data (${e.message})`)));
    bb.on('close', () => {
      finished = true;
      settle();
    });
    req.pipe(bb);
  });
}

/** The upload in `req`, or INVALID_ARGUMENT / PAYLOAD_TOO_LARGE / UPLOAD_TIMEOUT (idle for `times.uploadIdleSeconds`, or longer than `times.uploadReceiveSeconds`). */
export async function readModelUpload(req: Request, maxBytes: number, times: ReceiveTimes): Promise<ParsedUpload> {
  checkDeclaredLength(req, maxBytes);
  const type = mediaType(req);
  const nameQuery = typeof req.query.name === 'string' ? req.query.name : undefined;
  if (type === 'multipart/form-data') {
    const parsed = await readMultipart(req, maxBytes, times);
    return { upload: parsed.upload, name: parsed.name ?? nameQuery };
  }
  if (ARCHIVE_TYPES.has(type)) return { upload: { archive: await readRaw(req, maxBytes, times) }, name: nameQuery };
  throw invalid('content-type', 'content-type: send multipart/form-data (model.json and weight files, or an archive) or a raw application/zip, application/gzip or application/x-tar body');
}

const DATASET_TYPES = 'multipart/form-data (the dataset files, or one archive) or a raw application/zip, application/gzip or application/x-tar body';

/** True when `req` carries an upload rather than a JSON body (POST /v1/datasets takes both). */
export function isUploadRequest(req: Request): boolean {
  const type = mediaType(req);
  return type === 'multipart/form-data' || ARCHIVE_TYPES.has(type);
}

/**
 * A dataset upload in `req` (the files of an IDX set, NPY/NPZ or CIFAR-10
 * batches, or one archive of them or of an image folder), or INVALID_ARGUMENT
 * / PAYLOAD_TOO_LARGE: the byte cap is enforced while the body streams
 * (and UPLOAD_TIMEOUT when it stalls or drags, as for models).
 */
export async function readDatasetUpload(req: Request, maxBytes: number, maxFiles: number, times: ReceiveTimes): Promise<ModelUpload> {
  checkDeclaredLength(req, maxBytes);
  const type = mediaType(req);
  if (type === 'multipart/form-data') return (await readMultipart(req, maxBytes, times, { what: 'the dataset files', maxFiles })).upload;
  if (ARCHIVE_TYPES.has(type)) return { archive: await readRaw(req, maxBytes, times) };
  throw invalid('content-type', `content-type: send ${DATASET_TYPES}, or JSON { "reference": "..." }`);
}
