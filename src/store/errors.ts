// Every error the service can answer with, defined once with its HTTP status
// and gRPC status code, and the one function that turns anything thrown into
// one of them (classifyError). The REST and gRPC doors, the CLI and the worker
// all classify through it and never invent codes of their own; the doors only
// format the result (HTTP status + JSON body, gRPC status + trailers). Job
// failure codes (job.error.code) are rows of the same table. It lives in the
// store layer, the lowest one that knows every error class it names (engine
// spec/dataset/model errors, blob store errors, Prisma and connection
// errors), so the worker (queue) can use it without importing the service;
// service/errors.ts re-exports it.
import { Prisma } from './db.js';
import { BlobIntegrityError, BlobNotFoundError, BlobStoreUnavailableError, BlobTooLargeError } from './blobs.js';
import { isDatabaseUnavailable } from './unavailable.js';

/** gRPC status codes (grpc/status.h), numeric so this module needs no gRPC import. */
export const GRPC = Object.freeze({
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const);

interface ErrorDef {
  http: number;
  grpc: number;
  /** When a client sees it. */
  description: string;
}

export const ERRORS = Object.freeze({
  INVALID_ARGUMENT: { http: 400, grpc: GRPC.INVALID_ARGUMENT, description: 'A request field is malformed or out of range; `field` names it.' },
  UNSUPPORTED_MODEL: { http: 400, grpc: GRPC.INVALID_ARGUMENT, description: 'An uploaded ONNX or Keras model uses an op, layer or feature Ticketsmith cannot convert; the message names it and the first node that uses it.' },
  UNAUTHENTICATED: { http: 401, grpc: GRPC.UNAUTHENTICATED, description: 'No API key, or an unknown or revoked one.' },
  NOT_FOUND: { http: 404, grpc: GRPC.NOT_FOUND, description: "No such resource for this tenant (another tenant's resources are not found either)." },
  METHOD_NOT_ALLOWED: { http: 405, grpc: GRPC.UNIMPLEMENTED, description: 'The path exists but not with this method; the `Allow` header lists the methods it takes.' },
  ALREADY_EXISTS: { http: 409, grpc: GRPC.ALREADY_EXISTS, description: 'The resource exists already.' },
  FAILED_PRECONDITION: { http: 409, grpc: GRPC.FAILED_PRECONDITION, description: "The resource's state does not allow this (e.g. cancelling a finished job)." },
  IDEMPOTENCY_KEY_REUSED: { http: 422, grpc: GRPC.FAILED_PRECONDITION, description: 'This Idempotency-Key was used before with a different request.' },
  PAYLOAD_TOO_LARGE: { http: 413, grpc: GRPC.RESOURCE_EXHAUSTED, description: 'Upload or request larger than the configured limit.' },
  RANGE_NOT_SATISFIABLE: { http: 416, grpc: GRPC.OUT_OF_RANGE, description: 'The requested byte range lies outside the artifact.' },
  UPLOAD_TIMEOUT: { http: 408, grpc: GRPC.DEADLINE_EXCEEDED, description: 'An upload sent nothing for the idle timeout, or took longer than the receive deadline; its slot is freed. Send it again, faster.' },
  RATE_LIMITED: { http: 429, grpc: GRPC.RESOURCE_EXHAUSTED, description: 'Too many requests; retry later.' },
  QUOTA_EXCEEDED: { http: 429, grpc: GRPC.RESOURCE_EXHAUSTED, description: "A tenant quota (queued jobs, stored bytes) is used up; wait for jobs to finish or free storage." },
  DEADLINE_EXCEEDED: { http: 504, grpc: GRPC.DEADLINE_EXCEEDED, description: 'The job ran longer than the job timeout and was stopped; its finished rounds are kept.' },
  ENGINE_ERROR: { http: 500, grpc: GRPC.INTERNAL, description: 'The compression run failed (job.error.message says why).' },
  WORKER_LOST: { http: 500, grpc: GRPC.ABORTED, description: 'Workers running the job kept dying; it was given up after the maximum attempts.' },
  INTERNAL: { http: 500, grpc: GRPC.INTERNAL, description: 'A bug or an unexpected failure; logged with a request id.' },
  UNAVAILABLE: { http: 503, grpc: GRPC.UNAVAILABLE, description: 'A dependency (database, blob store) is unreachable; retry.' },
} as const satisfies Record<string, ErrorDef>);

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.freeze(Object.keys(ERRORS) as ErrorCode[]);

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && Object.hasOwn(ERRORS, x);
}

/** One problem with one request field. */
export interface FieldIssue {
  field: string;
  message: string;
}

export class ServiceError extends Error {
  override name = 'ServiceError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The request field at fault (`spec.rounds`, `files[1]`, `reference`…), when one is. */
    readonly field?: string,
    /** Every problem of the request found in the same pass, this error's own first (REST `errors`); absent when only one was looked for. */
    readonly issues?: readonly FieldIssue[],
  ) {
    super(message);
  }

  get httpStatus(): number {
    return ERRORS[this.code].http;
  }

  get grpcCode(): number {
    return ERRORS[this.code].grpc;
  }

  /** The body both doors send: `{ error: { code, message, field? } }`. */
  toJSON(): { code: ErrorCode; message: string; field?: string } {
    return { code: this.code, message: this.message, ...(this.field === undefined ? {} : { field: this.field }) };
  }
}

export const invalid = (field: string, message: string) => new ServiceError('INVALID_ARGUMENT', message, field);
/** NOT_FOUND for an id the client sent; a long one is shown cut, so the answer does not grow with the request. */
export const notFound = (what: string, id: string) => new ServiceError('NOT_FOUND', `${what} ${id.length > 80 ? `${id.slice(0, 80)}…` : id} not found`);

/** What both doors tell a client to wait before retrying an UNAVAILABLE answer (REST Retry-After, gRPC metadata). */
export const RETRY_AFTER_SECONDS = 2;

/** Codes a worker records on a failed job; each is a row of ERRORS. */
export const JOB_ERROR_CODES = Object.freeze(['INVALID_ARGUMENT', 'ENGINE_ERROR', 'WORKER_LOST', 'DEADLINE_EXCEEDED', 'UNAVAILABLE', 'INTERNAL'] as const);
export type JobErrorCode = (typeof JOB_ERROR_CODES)[number];

/**
 * The engine's errors about the request (a bad spec, dataset or model), by
 * name: the classes set it, and an error re-made from a worker thread's
 * message keeps only the name (the engine's classes need no import here).
 */
const CLIENT_ERROR_NAMES = new Set(['SpecError', 'DatasetError', 'ModelBudgetError']);

/** A SpecError's `issues` (every problem of the spec), when it carries them. */
function issuesOf(e: Error): FieldIssue[] | undefined {
  const issues = (e as Error & { issues?: unknown }).issues;
  if (!Array.isArray(issues)) return undefined;
  const ok = issues.filter((i): i is FieldIssue => typeof (i as FieldIssue | null)?.field === 'string' && typeof (i as FieldIssue).message === 'string');
  return ok.length > 0 ? ok : undefined;
}

function fieldOf(e: Error): string | undefined {
  const field = (e as Error & { field?: unknown }).field;
  return typeof field === 'string' ? field : undefined;
}

export interface Classified {
  error: ServiceError;
  /**
   * False for a failure on our side (a bug, an unknown error: INTERNAL with a
   * generic message, the original to be logged); true for every recognised
   * class, a thrown ServiceError included.
   */
  expected: boolean;
}

/**
 * Any thrown value → its ServiceError. Known client mistakes keep their
 * message; an unexpected error becomes INTERNAL with a generic message (the
 * caller logs the original), so internals never leak to clients.
 */
export function classifyError(e: unknown): Classified {
  if (e instanceof ServiceError) return { error: e, expected: true };
  const error = recognise(e);
  return error ? { error, expected: true } : { error: new ServiceError('INTERNAL', 'internal error'), expected: false };
}

function recognise(e: unknown): ServiceError | null {
  if (e instanceof Error && CLIENT_ERROR_NAMES.has(e.name)) {
    // A DatasetError that names no field is about the dataset as a whole.
    return new ServiceError('INVALID_ARGUMENT', e.message, fieldOf(e) ?? (e.name === 'DatasetError' ? 'dataset' : undefined), issuesOf(e));
  }
  // engine/models/import/errors.ts, by name for the same reason as above; it carries its own code.
  if (e instanceof Error && e.name === 'ModelImportError') {
    const code = (e as Error & { code?: unknown }).code === 'UNSUPPORTED_MODEL' ? 'UNSUPPORTED_MODEL' : 'INVALID_ARGUMENT';
    return new ServiceError(code, e.message, fieldOf(e) ?? 'files');
  }
  if (e instanceof BlobTooLargeError) return new ServiceError('PAYLOAD_TOO_LARGE', e.message);
  // A storage failure says what, never where.
  if (e instanceof BlobNotFoundError) return new ServiceError('UNAVAILABLE', 'artifact bytes are not reachable in the blob store');
  if (e instanceof BlobStoreUnavailableError) return new ServiceError('UNAVAILABLE', e.message);
  if (e instanceof BlobIntegrityError) return new ServiceError('UNAVAILABLE', 'artifact bytes in the blob store do not match their sha256');
  if (e instanceof Prisma.PrismaClientKnownRequestError) {
    if (e.code === 'P2002') return new ServiceError('ALREADY_EXISTS', 'a resource with these identifiers exists already');
    if (e.code === 'P2025') return new ServiceError('NOT_FOUND', 'not found');
  }
  // Every connection-class error of every layer (Prisma, its pg adapter, pg, pg-boss): see unavailable.ts.
  if (isDatabaseUnavailable(e)) return new ServiceError('UNAVAILABLE', 'database unavailable; retry shortly');
  return null;
}

/** classifyError's ServiceError alone. */
export function toServiceError(e: unknown): ServiceError {
  return classifyError(e).error;
}

/**
 * How a failed run is recorded on its job (job.error): the request's fault
 * (INVALID_ARGUMENT) and an unreachable blob store (UNAVAILABLE) as
 * classifyError says; anything else is the engine's failure, ENGINE_ERROR
 * with its own message (the worker redacts server paths from it). The
 * worker hands a run back to the queue instead when the database is away.
 */
export function jobFailure(e: unknown): { code: JobErrorCode; message: string } {
  const { error } = classifyError(e);
  const own = e instanceof Error ? e.message : String(e);
  const blobStore = e instanceof BlobNotFoundError || e instanceof BlobStoreUnavailableError || e instanceof BlobIntegrityError;
  if (error.code === 'UNSUPPORTED_MODEL') return { code: 'INVALID_ARGUMENT', message: error.message };
  if (error.code === 'INVALID_ARGUMENT' || (error.code === 'UNAVAILABLE' && blobStore)) return { code: error.code, message: error.message };
  return { code: 'ENGINE_ERROR', message: own || 'engine failed' };
}
