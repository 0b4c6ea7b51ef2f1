// What every gRPC handler does the same way: read the API key from metadata
// and authenticate it, run the use case, and turn any failure into a status:
// the service's one classifier (classifyError) says which error it is, and
// this file writes it as gRPC (code from ERRORS, the message as details, the
// table's code name and the faulty field as trailing metadata). The one step
// before it is this door's own request-decoding errors (WireError, MalformedRequest).
// Streams get an AbortSignal that fires when the client cancels, and a
// writer that respects flow control.
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { childLogger } from '../../runtime/logger.js';
import { observeGrpc } from '../../runtime/metrics.js';
import { authenticate, checkRateLimit, classifyError, isUuid, RateLimitedError, RETRY_AFTER_SECONDS, ServiceError, type Classified, type ServiceContext } from '../../service/index.js';
import { WireError } from './mapping.js';
import { ERROR_CODE_KEY, ERROR_FIELD_KEY } from './proto.js';
import { MalformedRequest } from './wire.js';

const log = childLogger({ module: 'grpc' });

/** `authorization: Bearer <key>`, else `x-api-key: <key>`; null when neither is sent. */
export function apiKeyOf(md: grpc.Metadata): string | null {
  const auth = md.get('authorization')[0];
  if (typeof auth === 'string' && auth.trim() !== '') {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    // Any other scheme is passed on as it is, so it fails as an invalid key rather than a missing one.
    return bearer ? bearer[1]! : auth.trim();
  }
  const key = md.get('x-api-key')[0];
  return typeof key === 'string' && key.trim() !== '' ? key.trim() : null;
}

export const invalidArgument = (field: string, message: string) => new ServiceError('INVALID_ARGUMENT', message, field);

/** This door's own decoding errors first, then the service's classifier. */
function classify(e: unknown): Classified {
  if (e instanceof WireError) return { error: invalidArgument(e.field, e.message), expected: true };
  if (e instanceof MalformedRequest) return { error: new ServiceError('INVALID_ARGUMENT', e.message, e.field), expected: true };
  return classifyError(e);
}

export function statusOf(e: unknown, method: string): grpc.StatusObject {
  const se = classify(e).error;
  // Client mistakes are the client's to read; failures on our side are ours to log.
  if (se.code === 'INTERNAL') log.error({ err: e, method }, 'gRPC call failed');
  else if (se.code === 'UNAVAILABLE') log.warn({ err: e, method }, 'gRPC call failed: a dependency is unavailable');
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_KEY, se.code);
  if (se.field !== undefined) metadata.set(ERROR_FIELD_KEY, se.field);
  if (se.code === 'UNAVAILABLE') metadata.set(RETRY_AFTER_KEY, String(RETRY_AFTER_SECONDS));
  if (se instanceof RateLimitedError) metadata.set(RETRY_AFTER_KEY, String(se.retryAfterSeconds));
  return { code: se.grpcCode as grpc.status, details: se.message, metadata };
}

/** A field-name change for errors the service reports under its REST name (limit -> pageSize). */
export function renameField(e: unknown, from: string, to: string): unknown {
  if (!(e instanceof ServiceError) || e.field !== from) return e;
  const message = e.message.startsWith(`${from}:`) ? `${to}${e.message.slice(from.length)}` : e.message;
  return new ServiceError(e.code, message, to);
}

/** Non-empty string field, or INVALID_ARGUMENT naming it. */
export function required(value: string, field: string): string {
  if (value.trim() === '') throw invalidArgument(field, `${field}: required`);
  return value.trim();
}

/**
 * A resource id field: required and a UUID, as REST's path ids are documented
 * (`format: uuid`). A malformed id is the client's mistake, named; a
 * well-formed id that names nothing of the tenant's stays NOT_FOUND.
 */
export function requiredId(value: string, field: string): string {
  const id = required(value, field);
  if (!isUuid(id)) throw invalidArgument(field, `${field}: not an id (a UUID)`);
  return id;
}

/** An optional id filter: '' (unset) passes as undefined, anything else must be a UUID. */
export function optionalId(value: string, field: string): string | undefined {
  return value === '' ? undefined : requiredId(value, field);
}

/** What every server call has (grpc-js does not export its ServerSurfaceCall). */
interface SurfaceCall {
  metadata: grpc.Metadata;
  on(event: 'cancelled', listener: () => void): unknown;
}

/** Trailer of a RESOURCE_EXHAUSTED for the rate limit: seconds until a retry can pass (as HTTP's Retry-After). */
export const RETRY_AFTER_KEY = 'retry-after';

async function tenantOf(ctx: ServiceContext, call: SurfaceCall): Promise<string> {
  const principal = await authenticate(ctx, apiKeyOf(call.metadata));
  await checkRateLimit(ctx, principal.keyId);
  return principal.tenant;
}

/** The request as the handler may read it: a MalformedRequest (wire.ts) is thrown, after the key was checked. */
function wellFormed<Req>(request: Req): Req {
  if (request instanceof MalformedRequest) throw request;
  return request;
}

async function* wellFormedStream<Req>(messages: AsyncIterable<Req>): AsyncIterable<Req> {
  for await (const m of messages) yield wellFormed(m);
}

/** Times one call into the gRPC metrics (by method and the status code's name) when `done` is called. */
function callTimer(method: string): (code: grpc.status) => void {
  const start = process.hrtime.bigint();
  return (code) => observeGrpc(method, grpc.status[code] ?? String(code), Number(process.hrtime.bigint() - start) / 1e9);
}

export function unary<Req, Res>(ctx: ServiceContext, method: string, fn: (req: Req, tenant: string) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const done = callTimer(method);
    void (async () => {
      try {
        const tenant = await tenantOf(ctx, call);
        callback(null, await fn(wellFormed(call.request), tenant));
        done(grpc.status.OK);
      } catch (e) {
        const status = statusOf(e, method);
        callback(status);
        done(status.code);
      }
    })();
  };
}

let streams = 0;

/** Streaming calls whose handler is still running (a cancelled watch or download must drop to 0). */
export function streamsInFlight(): number {
  return streams;
}

export interface StreamWriter<Res> {
  /** Sends one message; resolves once the transport takes more (rejects if the client went away). */
  write(msg: Res): Promise<void>;
}

function abortOnCancel(call: SurfaceCall): AbortController {
  const ac = new AbortController();
  call.on('cancelled', () => ac.abort());
  return ac;
}

export function serverStream<Req, Res>(
  ctx: ServiceContext,
  method: string,
  fn: (req: Req, tenant: string, out: StreamWriter<Res>, signal: AbortSignal) => Promise<void>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    const ac = abortOnCancel(call);
    const out: StreamWriter<Res> = {
      async write(msg) {
        ac.signal.throwIfAborted();
        if (!call.write(msg)) await once(call, 'drain', { signal: ac.signal });
      },
    };
    const done = callTimer(method);
    streams++;
    void (async () => {
      let code = grpc.status.CANCELLED;
      try {
        const tenant = await tenantOf(ctx, call);
        await fn(wellFormed(call.request), tenant, out, ac.signal);
        if (!ac.signal.aborted) {
          call.end();
          code = grpc.status.OK;
        }
      } catch (e) {
        // A cancelled call has no one left to tell.
        if (!ac.signal.aborted) {
          const status = statusOf(e, method);
          call.emit('error', status);
          code = status.code;
        }
      } finally {
        streams--;
        done(code);
      }
    })();
  };
}

export function clientStream<Req, Res>(
  ctx: ServiceContext,
  method: string,
  fn: (messages: AsyncIterable<Req>, tenant: string, signal: AbortSignal) => Promise<Res>,
): grpc.handleClientStreamingCall<Req, Res> {
  return (call, callback) => {
    const ac = abortOnCancel(call);
    // Without this a cancelled upload would leave the reader waiting for messages that never come.
    ac.signal.addEventListener('abort', () => call.destroy(), { once: true });
    const done = callTimer(method);
    streams++;
    void (async () => {
      let code = grpc.status.CANCELLED;
      try {
        const tenant = await tenantOf(ctx, call);
        callback(null, await fn(wellFormedStream(call as AsyncIterable<Req>), tenant, ac.signal));
        code = grpc.status.OK;
      } catch (e) {
        if (!ac.signal.aborted) {
          const status = statusOf(e, method);
          callback(status);
          code = status.code;
        }
      } finally {
        streams--;
        done(code);
      }
    })();
  };
}
