// The Prisma client (generated into src/generated/prisma by
// scripts/prisma-generate.sh) over the node-postgres driver adapter; Prisma 7
// has no query-engine binary, so the adapter is how it reaches Postgres.
import { PrismaPg } from '@prisma/adapter-pg';
import { Prisma, PrismaClient } from '../generated/prisma/client.js';

export { Prisma, PrismaClient };
export type { JobStatus } from '../generated/prisma/client.js';

/** What a repository function accepts: the client or an interactive transaction. */
export type Db = PrismaClient | Prisma.TransactionClient;

export function createPrisma(url: string, opts: { poolSize?: number } = {}): PrismaClient {
  const adapter = new PrismaPg({ connectionString: url, max: opts.poolSize ?? 10, application_name: 'ticketsmith' });
  return new PrismaClient({ adapter });
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
