// pg-boss setup: the one queue compression jobs travel through, its settings,
// and enqueueing inside the caller's Prisma transaction (so a job row and its
// queue entry appear together or not at all).
//
// pg-boss is pinned to the 10.x line: it supports Node 20 (11.x declares
// Node >= 22). pg-boss expires an active job after `expireInSeconds` (default
// 15 minutes; 10.x caps it below 24 hours). A pruning run can take longer, so
// expiry is NOT what detects a dead worker here: workers stamp a heartbeat on
// the job row, and a reaper requeues jobs whose heartbeat went stale (see
// lifecycle.ts). Expiry is set to the cap as a backstop only; an expired entry
// for a job still running is recognised as a duplicate and dropped.
import PgBoss from 'pg-boss';
import { childLogger } from '../runtime/logger.js';
import type { Prisma } from '../store/db.js';
import { isDatabaseUnavailable } from '../store/unavailable.js';
import { CHANNELS } from '../store/notify.js';

const log = childLogger({ module: 'queue' });

export const JOB_QUEUE = 'ticketsmith-jobs';
/** pg-boss's schema (its default, named so the SQL below and the instance agree). */
export const BOSS_SCHEMA = 'pgboss';

export interface QueueSettings {
  /** Backstop only (see above); must stay below 24 h in pg-boss 10. */
  expireInSeconds: number;
  /** Re-deliveries after a handler error (a database hiccup), not after engine failures. */
  retryLimit: number;
  retryDelay: number;
  retryBackoff: boolean;
}

export const DEFAULT_QUEUE_SETTINGS: QueueSettings = Object.freeze({
  expireInSeconds: 23 * 60 * 60,
  retryLimit: 3,
  retryDelay: 5,
  retryBackoff: true,
});

export interface BossOptions {
  queue?: Partial<QueueSettings>;
  /** pg-boss housekeeping (expiry, archive) interval; default 120 s. */
  maintenanceIntervalSeconds?: number;
}

/** Starts pg-boss (creating or upgrading its `pgboss` schema) and the job queue. */
export async function startBoss(url: string, opts: BossOptions = {}): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString: url,
    schema: BOSS_SCHEMA,
    application_name: 'ticketsmith-queue',
    max: 4,
    // No cron jobs here; the timekeeper would only poll for nothing.
    schedule: false,
    maintenanceIntervalSeconds: opts.maintenanceIntervalSeconds ?? 120,
  });
  boss.on('error', (err: Error & { code?: string }) => {
    // 57P01: the server ended the session (database shutdown). pg's pool.end()
    // returns before its sockets close, so a stop right after ours lands here.
    if (err.code === '57P01') log.info({ code: err.code }, 'pg-boss connection closed by the server');
    // The database restarting: pg-boss's pool reconnects by itself once it answers.
    else if (isDatabaseUnavailable(err)) log.warn({ code: err.code, message: err.message }, 'pg-boss: database unavailable');
    else log.error({ err }, 'pg-boss error');
  });
  await boss.start();
  const settings = { ...DEFAULT_QUEUE_SETTINGS, ...opts.queue };
  await boss.createQueue(JOB_QUEUE, { name: JOB_QUEUE, ...settings });
  // createQueue keeps an existing queue's settings; apply the current ones.
  await boss.updateQueue(JOB_QUEUE, { name: JOB_QUEUE, ...settings });
  return boss;
}

/** pg-boss's `db` option over a Prisma interactive transaction. */
export function txExecutor(tx: Prisma.TransactionClient): PgBoss.Db {
  return {
    executeSql: async (text: string, values: unknown[]) => ({ rows: await tx.$queryRawUnsafe<unknown[]>(text, ...(values ?? [])) }),
  };
}

export interface QueuedJobData {
  jobId: string;
}

/**
 * Adds a dispatch for `jobId` in the caller's transaction, records it on the
 * job row, and wakes idle workers when the transaction commits. With
 * `startAfterSeconds` the dispatch is delivered only after that delay.
 */
export async function enqueueInTx(boss: PgBoss, tx: Prisma.TransactionClient, jobId: string, opts: { startAfterSeconds?: number } = {}): Promise<string> {
  const data: QueuedJobData = { jobId };
  const id = await boss.send(JOB_QUEUE, data, { db: txExecutor(tx), ...(opts.startAfterSeconds ? { startAfter: opts.startAfterSeconds } : {}) });
  if (id === null) throw new Error(`pg-boss did not accept job ${jobId}`);
  await tx.job.update({ where: { id: jobId }, data: { queueJobId: id } });
  await tx.$executeRaw`SELECT pg_notify(${CHANNELS.jobs}, ${jobId})`;
  return id;
}

/**
 * SQL that inserts one dispatch into pg-boss 10's job table for each row of
 * `source` (a CTE or table with uuid columns `job_id` and `dispatch_id`),
 * returning the dispatch ids. It is what `boss.send(JOB_QUEUE, { jobId })`
 * inserts (pg-boss's `insertJob` plan with no per-job options and no
 * constructor defaults: every setting from the queue row, then pg-boss's own
 * fallbacks), written as a plain INSERT ... SELECT so a submission can put it
 * in the same statement as the job row and its first event. No ON CONFLICT:
 * our queue has the standard policy, and a conflict must fail the statement
 * rather than leave a job without a dispatch. Tied to the pinned 10.x line:
 * recheck against pg-boss's `insertJob` plan when upgrading.
 */
export function insertDispatchSql(source: string): string {
  return `INSERT INTO ${BOSS_SCHEMA}.job (id, name, data, priority, start_after, singleton_key, singleton_on, dead_letter,
      expire_in, keep_until, retry_limit, retry_delay, retry_backoff, policy)
    SELECT s.dispatch_id, q.name, jsonb_build_object('jobId', s.job_id::text), 0, now(), NULL, NULL, q.dead_letter,
      COALESCE(q.expire_seconds * interval '1s', interval '15 minutes'),
      now() + CAST(COALESCE((q.retention_minutes * 60)::text, '14 days') AS interval),
      COALESCE(q.retry_limit, 2),
      CASE WHEN COALESCE(q.retry_backoff, false) THEN GREATEST(q.retry_delay, 1) ELSE COALESCE(q.retry_delay, 0) END,
      COALESCE(q.retry_backoff, false),
      q.policy
    FROM ${source} s JOIN ${BOSS_SCHEMA}.queue q ON q.name = '${JOB_QUEUE}'
    RETURNING id`;
}

/** Drops a pending or active dispatch (no error when it already finished). */
export async function cancelDispatchInTx(boss: PgBoss, tx: Prisma.TransactionClient, queueJobId: string | null): Promise<void> {
  if (queueJobId) await boss.cancel(JOB_QUEUE, queueJobId, { db: txExecutor(tx) });
}
