// The Prisma client (generated into src/generated/prisma by
// scripts/prisma-generate.sh) over the node-postgres driver adapter; Prisma 7
// has no query-engine binary, so the adapter is how it reaches Postgres.
// Hot paths (the job submit statement, the ownership check every job-scoped
// read starts with) send one SQL statement of their own: each Prisma call
// costs a few hundred microseconds of CPU on the API's one thread before it
// reaches the socket. Rows are still read through Prisma, so no query
// restates the schema's column list.
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { Prisma, PrismaClient } from '../generated/prisma/client.js';
import { childLogger } from '../runtime/logger.js';

export { Prisma, PrismaClient };
export type { JobStatus } from '../generated/prisma/client.js';

/** What a repository function accepts: the client or an interactive transaction. */
export type Db = PrismaClient | Prisma.TransactionClient;

const log = childLogger({ module: 'db' });

/** The pg pool under each client made by createPrisma. */
const pools = new WeakMap<PrismaClient, pg.Pool>();

/**
 * No connection of `pool` can crash the process with an unhandled 'error'
 * event. An idle one dropped by the server is logged (57P01 is the server
 * shutting down, as at the end of every embedded-database run). And every
 * connection keeps a listener of its own for its whole life: between the pool
 * handing out a fresh connection and its borrower attaching a listener (Prisma's
 * transactions do so a promise turn later), a shutdown message that arrived in
 * the same packet as "ready" would otherwise be unhandled. The borrower still
 * sees the error: its next query fails.
 */
export function keepConnectionErrorsHandled(pool: pg.Pool): void {
  pool.on('error', (err: Error & { code?: string }) => {
    if (err.code === '57P01') log.debug({ code: err.code }, 'idle database connection closed by the server');
    else log.warn({ code: err.code, message: err.message }, 'idle database connection failed');
  });
  pool.on('connect', (client) => client.on('error', (err: Error & { code?: string }) => log.debug({ code: err.code, message: err.message }, 'database connection failed')));
}

export function createPrisma(url: string, opts: { poolSize?: number } = {}): PrismaClient {
  // A connect that hangs (a database host gone silent) fails after 15 s, as UNAVAILABLE, instead of holding the request forever.
  const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10, application_name: 'ticketsmith', connectionTimeoutMillis: 15_000 });
  keepConnectionErrorsHandled(pool);
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
  pools.set(prisma, pool);
  return prisma;
}

/** A statement for sqlQuery; a `name` makes each connection parse and plan it once, not per call. */
export interface SqlStatement {
  name?: string;
  text: string;
}

/**
 * Runs one parameterised statement outside any transaction (a single
 * statement is atomic by itself) and returns its rows as node-postgres parses
 * them: timestamptz → Date, json/jsonb → value, int4 → number, uuid → string.
 * On the pool under `prisma` when it came from createPrisma; otherwise
 * through Prisma's raw query, whose values match for those types.
 */
export async function sqlQuery<T>(prisma: PrismaClient, statement: SqlStatement, values: unknown[]): Promise<T[]> {
  const pool = pools.get(prisma);
  if (pool) return (await pool.query<T & pg.QueryResultRow>({ name: statement.name, text: statement.text, values })).rows;
  return prisma.$queryRawUnsafe<T[]>(statement.text, ...values);
}

/**
 * Interactive transactions hold a pooled connection for their whole body; the
 * defaults (2 s to get one, 5 s to finish) are too tight for a round commit
 * under load, and a stuck one must still end.
 */
export const TX_OPTIONS = { maxWait: 10_000, timeout: 30_000 } as const;

/** Plain JSON for a Json column: drops undefined, turns NaN/Infinity into null (as JSON does). */
export function toJson(value: unknown): Prisma.InputJsonValue {
  return JSON.parse(JSON.stringify(value ?? null)) as Prisma.InputJsonValue;
}

/** Runs `fn` in one interactive transaction (TX_OPTIONS), for a use case that composes several repository calls. */
export function inTransaction<T>(prisma: PrismaClient, fn: (tx: Prisma.TransactionClient) => Promise<T>): Promise<T> {
  return prisma.$transaction(fn, TX_OPTIONS);
}

/** Closes a client made by createPrisma (and its pool). */
export async function closePrisma(prisma: PrismaClient): Promise<void> {
  await prisma.$disconnect();
}

/** Whether the database answers a trivial query now (readiness). */
export async function databaseAnswers(prisma: PrismaClient): Promise<boolean> {
  try {
    await prisma.$queryRaw`SELECT 1`;
    return true;
  } catch {
    return false;
  }
}
