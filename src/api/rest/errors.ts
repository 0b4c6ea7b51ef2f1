// Every failure a REST client sees goes through here: the service's one
// classifier (store/errors.ts classifyError) says which error it is, and this
// file only writes it as an HTTP status and JSON body. The one step before
// it is express's own errors (malformed JSON, oversized bodies, bad
// percent-encoding), which become the matching table entry, so bad input is
// a 4xx and never a 500.
import type { Response } from 'express';
import { ERRORS, RETRY_AFTER_SECONDS, ServiceError, classifyError, type Classified, type FieldIssue } from '../../service/index.js';

/** What express/body-parser attach to their errors (http-errors). */
interface HttpLikeError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
  message?: string;
  /** body-parser: the raw body it failed on. */
  body?: unknown;
}

function isJsonScalar(text: string): boolean {
  try {
    const v: unknown = JSON.parse(text);
    return v === null || typeof v !== 'object';
  } catch {
    return false;
  }
}

function fromHttpError(e: HttpLikeError): ServiceError | null {
  const status = e.status ?? e.statusCode;
  if (typeof status !== 'number' || status < 400 || status >= 500) return null;
  switch (e.type) {
    case 'entity.parse.failed':
      // Strict JSON parsing refuses valid JSON that is not an object or array (null, 3, "x"): say what is wrong with it.
      if (typeof e.body === 'string' && isJsonScalar(e.body)) return new ServiceError('INVALID_ARGUMENT', 'body: expected a JSON object', 'body');
      return new ServiceError('INVALID_ARGUMENT', `body: malformed JSON (${e.message ?? 'parse error'})`, 'body');
    case 'entity.too.large':
      return new ServiceError('PAYLOAD_TOO_LARGE', 'body: larger than this endpoint accepts', 'body');
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new ServiceError('INVALID_ARGUMENT', `body: ${e.message ?? 'unsupported encoding'}`, 'body');
    case 'request.aborted':
    case 'request.size.invalid':
      return new ServiceError('INVALID_ARGUMENT', 'body: the request body ended early', 'body');
    default:
      if (status === 413) return new ServiceError('PAYLOAD_TOO_LARGE', 'request larger than this endpoint accepts');
      // A bad percent-escape in the path ends up here (URIError with status 400).
      return new ServiceError('INVALID_ARGUMENT', e.expose !== false && e.message ? e.message : 'bad request');
  }
}

/** The ServiceError a thrown value answers as, and whether it was expected. */
export function classify(e: unknown): Classified {
  const http = typeof e === 'object' && e !== null && !(e instanceof ServiceError) ? fromHttpError(e as HttpLikeError) : null;
  return http ? { error: http, expected: true } : classifyError(e);
}

/**
 * `{ error, errors? }`: `error` is the first problem (what older clients read);
 * `errors` lists every problem of the request found in the same pass, each
 * `{ field, message }`, whenever the error is about a request field.
 */
export function errorBody(error: ServiceError): { error: ReturnType<ServiceError['toJSON']>; errors?: FieldIssue[] } {
  const errors = error.issues && error.issues.length > 0 ? [...error.issues] : error.field !== undefined ? [{ field: error.field, message: error.message }] : undefined;
  return { error: error.toJSON(), ...(errors ? { errors } : {}) };
}

export function sendError(res: Response, error: ServiceError): void {
  res.status(ERRORS[error.code].http);
  if (error.code === 'PAYLOAD_TOO_LARGE') res.setHeader('Connection', 'close');
  // A dependency is away (the database restarting): tell clients when to come back instead of failing them.
  if (error.code === 'UNAVAILABLE') res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
  res.json(errorBody(error));
}
