// pg-boss's rows as the job store writes them: a job's dispatch (the "look at
// job X" message pg-boss delivers to a worker) is added and dropped inside the
// caller's Prisma transaction, so a job row and its queue entry change
// together or not at all. Starting pg-boss and its queue settings are
// queue/boss.ts's; this file is SQL over its tables, tied to the pinned 10.x
// line (see insertDispatchSql).
import type PgBoss from 'pg-boss';
import type { Prisma } from './db.js';
import { CHANNELS } from './notify.js';

export const JOB_QUEUE = 'ticketsmith-jobs';
/** pg-boss's schema (its default, named so the SQL below and the instance agree). */
export const BOSS_SCHEMA = 'pgboss';

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
  return insertQueueSql(JOB_QUEUE, `(SELECT s0.dispatch_id, jsonb_build_object('jobId', s0.job_id::text) AS data, now() AS start_after FROM ${source} s0)`);
}

/**
 * The same INSERT for any queue of ours: one pg-boss job per row of `source`
 * (columns `dispatch_id` uuid, `data` jsonb, `start_after` timestamptz).
 * Nothing is inserted while `queue` does not exist.
 */
export function insertQueueSql(queue: string, source: string): string {
  return `INSERT INTO ${BOSS_SCHEMA}.job (id, name, data, priority, start_after, singleton_key, singleton_on, dead_letter,
      expire_in, keep_until, retry_limit, retry_delay, retry_backoff, policy)
    SELECT s.dispatch_id, q.name, s.data, 0, s.start_after, NULL, NULL, q.dead_letter,
      COALESCE(q.expire_seconds * interval '1s', interval '15 minutes'),
      s.start_after + CAST(COALESCE((q.retention_minutes * 60)::text, '14 days') AS interval),
      COALESCE(q.retry_limit, 2),
      CASE WHEN COALESCE(q.retry_backoff, false) THEN GREATEST(q.retry_delay, 1) ELSE COALESCE(q.retry_delay, 0) END,
      COALESCE(q.retry_backoff, false),
      q.policy
    FROM ${source} s JOIN ${BOSS_SCHEMA}.queue q ON q.name = '${queue}'
    RETURNING id`;
}

/** Drops a pending or active dispatch (no error when it already finished). */
export async function cancelDispatchInTx(boss: PgBoss, tx: Prisma.TransactionClient, queueJobId: string | null): Promise<void> {
  if (queueJobId) await boss.cancel(JOB_QUEUE, queueJobId, { db: txExecutor(tx) });
}

/** Dispatches waiting in the job queue. */
export async function queueSize(boss: PgBoss): Promise<number> {
  return boss.getQueueSize(JOB_QUEUE);
}
