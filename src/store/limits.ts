// SQL behind the tenant quotas and the rate limit (SQL only; the rules live in
// service/limits.ts and store/lifecycle.ts). Counts that gate an insert are
// taken under a per-tenant advisory lock held to the end of the caller's
// transaction: in READ COMMITTED each statement after the lock sees every
// transaction that held it before, so two API processes (or two workers)
// cannot both pass a cap with the same count.
import type { Db, PrismaClient } from './db.js';

export type QuotaLock = 'submit' | 'running' | 'storage';

/** Serialises one tenant's quota checks of one kind until the transaction ends. */
export async function lockTenant(tx: Db, tenant: string, kind: QuotaLock): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`ticketsmith-quota:${kind}:${tenant}`}, 0))`;
}

/** Jobs of `tenant` in `status`, leaving out `exceptId` (a job being re-claimed counts as running itself). */
export async function countTenantJobs(tx: Db, tenant: string, status: 'queued' | 'running', exceptId?: string): Promise<number> {
  const rows = await tx.$queryRaw<{ n: number }[]>`
    SELECT count(*)::int AS n FROM job
    WHERE tenant = ${tenant} AND status = ${status}::job_status AND (${exceptId ?? null}::uuid IS NULL OR id <> ${exceptId ?? null}::uuid)`;
  return rows[0]?.n ?? 0;
}

export interface RateHit {
  /** Requests of this key in the current window, this one included. */
  hits: number;
  /** Seconds until the current window ends. */
  resetSeconds: number;
}

/**
 * Counts one request of `keyId` in its fixed window of `windowSeconds`
 * (windows start at multiples of the window since the epoch, by the
 * database's clock, so every API process agrees). One upsert: a row from an
 * older window is restarted at 1.
 */
export async function hitRateLimit(prisma: PrismaClient, keyId: string, windowSeconds: number): Promise<RateHit> {
  const rows = await prisma.$queryRaw<{ hits: number; reset: number }[]>`
    WITH w AS (SELECT to_timestamp(floor(extract(epoch FROM now()) / ${windowSeconds}::int) * ${windowSeconds}::int) AS start)
    INSERT INTO rate_limit AS r (key_id, window_start, hits)
    SELECT ${keyId}, w.start, 1 FROM w
    ON CONFLICT (key_id) DO UPDATE
      SET hits = CASE WHEN r.window_start = EXCLUDED.window_start THEN r.hits + 1 ELSE 1 END,
          window_start = EXCLUDED.window_start
    RETURNING hits, extract(epoch FROM (window_start + make_interval(secs => ${windowSeconds}::int) - now()))::float8 AS reset`;
  const row = rows[0]!;
  return { hits: row.hits, resetSeconds: Math.max(0, row.reset) };
}
