// Which errors mean "the database is not reachable right now" (as opposed to
// a bug or a bad request): refused or dropped connections, a server shutting
// down or starting up, pool timeouts. They are retried by the worker and
// answered as UNAVAILABLE (503 + Retry-After, gRPC UNAVAILABLE) by the doors.
// The shapes come from every layer between us and Postgres: Prisma's error
// codes, the driver adapter's error kinds (carried in `meta.driverAdapterError`),
// node-postgres and socket errors, and pg-boss, which passes pg's errors on.
import { BlobStoreUnavailableError } from './blobs.js';
import { Prisma } from './db.js';

/** Prisma: can't reach (P1001), timed out (P1002, P1008), closed (P1017), pool timeout (P2024), too many connections (P2037). */
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2037']);
/** Driver adapter error kinds (@prisma/driver-adapter-utils MappedError). */
const ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
/** Sockets, and SQLSTATEs: admin/crash shutdown, cannot connect now (57P01-57P03), too many connections (53300). Class 08 is matched by prefix. */
const CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', '57P01', '57P02', '57P03', '53300']);
/** node-postgres and pg-pool say these in words only. */
const MESSAGES = /connection terminated|terminating connection|not queryable|timeout exceeded when trying to connect|connection timeout|the database system is (starting up|shutting down|in recovery|not yet accepting)|can't reach database server|server closed the connection|Cannot use a pool after calling end/i;

function isSqlstateOrSocket(code: unknown): boolean {
  return typeof code === 'string' && (CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code));
}

/** True when `e` (or what it wraps) says the database is unreachable for now. */
export function isDatabaseUnavailable(e: unknown, depth = 0): boolean {
  if (e === null || typeof e !== 'object' || depth > 6) return false;
  // The blob store's own fault, even when its code is a socket's (an S3 endpoint that refuses connections).
  if (e instanceof BlobStoreUnavailableError) return false;
  if (e instanceof Prisma.PrismaClientInitializationError) return true;
  const x = e as { code?: unknown; kind?: unknown; message?: unknown; cause?: unknown; meta?: { driverAdapterError?: unknown }; errors?: unknown };
  if (e instanceof Prisma.PrismaClientKnownRequestError && PRISMA_CODES.has(e.code)) return true;
  if (typeof x.kind === 'string' && (ADAPTER_KINDS.has(x.kind) || (x.kind === 'postgres' && isSqlstateOrSocket(x.code)))) return true;
  if (!(e instanceof Prisma.PrismaClientKnownRequestError) && isSqlstateOrSocket(x.code)) return true;
  // Prisma's own messages are checked through the adapter error they carry, never by their words.
  if (!(e instanceof Prisma.PrismaClientKnownRequestError) && typeof x.message === 'string' && MESSAGES.test(x.message)) return true;
  if (isDatabaseUnavailable(x.meta?.driverAdapterError, depth + 1)) return true;
  if (isDatabaseUnavailable(x.cause, depth + 1)) return true;
  if (Array.isArray(x.errors)) return x.errors.some((inner) => isDatabaseUnavailable(inner, depth + 1));
  return false;
}

export interface RetryOptions {
  /** Stop retrying (and throw the last error) when this aborts. */
  signal?: AbortSignal;
  /** Give up after this long (default 10 minutes: longer than the supervisor's restarts take). */
  deadlineMs?: number;
  /** First wait (default 250 ms), doubled up to `maxDelayMs` (default 5 s). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Told about each retry (to log it). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs `fn`, and again while it fails because the database is away (until it
 * is back, the deadline passes or `signal` aborts). Only for work that is safe
 * to repeat: a transaction that did not commit, or one whose commit is
 * recognised on the second try (a round's unique key).
 */
export async function whileUnavailable<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.deadlineMs ?? 10 * 60_000);
  let delay = opts.initialDelayMs ?? 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isDatabaseUnavailable(err) || opts.signal?.aborted || Date.now() + delay > deadline) throw err;
      opts.onRetry?.(err, attempt, delay);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, delay);
        opts.signal?.addEventListener('abort', done, { once: true });
      });
      delay = Math.min(delay * 2, opts.maxDelayMs ?? 5_000);
    }
  }
}
