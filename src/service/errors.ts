// Every error the service can answer with, defined once with its HTTP status
// and gRPC status code; the REST and gRPC doors both map from this table and
// never invent codes of their own. Job failure codes (job.error.code) come
// from the same table.
import { SpecError } from '../engine/spec.js';
import { ModelBudgetError } from '../engine/models/budget.js';
import { Prisma } from '../store/db.js';
import { BlobNotFoundError, BlobStoreUnavailableError, BlobTooLargeError } from '../store/blobs.js';
import { isDatabaseUnavailable } from '../store/unavailable.js';

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
  UNAUTHENTICATED: { http: 401, grpc: GRPC.UNAUTHENTICATED, description: 'No API key, or an unknown or revoked one.' },
  NOT_FOUND: { http: 404, grpc: GRPC.NOT_FOUND, description: "No such resource for this tenant (another tenant's resources are not found either)." },
  ALREADY_EXISTS: { http: 409, grpc: GRPC.ALREADY_EXISTS, description: 'The resource exists already.' },
  FAILED_PRECONDITION: { http: 409, grpc: GRPC.FAILED_PRECONDITION, description: "The resource's state does not allow this (e.g. cancelling a finished job)." },
  IDEMPOTENCY_KEY_REUSED: { http: 422, grpc: GRPC.FAILED_PRECONDITION, description: 'This Idempotency-Key was used before with a different request.' },
  PAYLOAD_TOO_LARGE: { http: 413, grpc: GRPC.RESOURCE_EXHAUSTED, description: 'Upload or request larger than the configured limit.' },
  RANGE_NOT_SATISFIABLE: { http: 416, grpc: GRPC.OUT_OF_RANGE, description: 'The requested byte range lies outside the artifact.' },
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

export class ServiceError extends Error {
  override name = 'ServiceError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The request field at fault (`spec.rounds`, `files[1]`, `reference`…), when one is. */
    readonly field?: string,
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

/**
 * Any error → a ServiceError. Known client mistakes keep their message; an
 * unexpected error becomes INTERNAL with a generic message (the caller logs
 * the original), so internals never leak to clients.
 */
export function toServiceError(e: unknown): ServiceError {
  if (e instanceof ServiceError) return e;
  if (e instanceof SpecError) return new ServiceError('INVALID_ARGUMENT', e.message, e.field);
  if (e instanceof Error && e.name === 'DatasetError') {
    return new ServiceError('INVALID_ARGUMENT', e.message, (e as Error & { field?: string }).field ?? 'dataset');
  }
  if (e instanceof ModelBudgetError) return new ServiceError('INVALID_ARGUMENT', e.message, e.field);
  if (e instanceof BlobTooLargeError) return new ServiceError('PAYLOAD_TOO_LARGE', e.message);
  if (e instanceof BlobNotFoundError) return new ServiceError('UNAVAILABLE', 'artifact bytes are not reachable in the blob store');
  if (e instanceof BlobStoreUnavailableError) return new ServiceError('UNAVAILABLE', e.message);
  if (e instanceof Prisma.PrismaClientKnownRequestError) {
    if (e.code === 'P2002') return new ServiceError('ALREADY_EXISTS', 'a resource with these identifiers exists already');
    if (e.code === 'P2025') return new ServiceError('NOT_FOUND', 'not found');
  }
  // Every connection-class error of every layer (Prisma, its pg adapter, pg, pg-boss): see store/unavailable.ts.
  if (isDatabaseUnavailable(e)) return new ServiceError('UNAVAILABLE', 'database unavailable; retry shortly');
  return new ServiceError('INTERNAL', 'internal error');
}
