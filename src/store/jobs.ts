// The job table as the service reads and changes it (SQL only; the rules,
// checks and error messages are service/jobs.ts's): the submit statement,
// reads by id, idempotency key, page and state, a job's rounds, and the
// cancel transaction. The worker's state changes (claim, heartbeat, finish,
// release, reap) are lifecycle.ts's.
import type PgBoss from 'pg-boss';
import { TX_OPTIONS, sqlQuery, type Db, type Prisma, type PrismaClient, type SqlStatement } from './db.js';
import { BOSS_SCHEMA, JOB_QUEUE, cancelDispatchInTx, insertDispatchSql } from './dispatch.js';
import { appendEvent } from './events.js';
import { CHANNELS } from './notify.js';
import type { JobState } from './states.js';

/** A job row as Prisma reads it (what service/dto.ts jobDto takes). */
export type JobRow = Prisma.JobGetPayload<object>;
export type RoundRow = Prisma.RoundGetPayload<object>;

/** What a submission writes; ids are made by the caller, so the job row names its dispatch without an UPDATE. */
export interface NewJob {
  id: string;
  dispatchId: string;
  tenant: string;
  spec: unknown;
  /** The spec's hash. */
  specHash: string;
  /** What tells a retried request from a reused Idempotency-Key: the spec's hash, with the callback URL when there is one. */
  requestHash: string;
  /** Where the job's webhook events go (checked by the caller); null for none. */
  callbackUrl: string | null;
  runName: string;
  idempotencyKey: string | null;
  modelId: string | null;
  datasetId: string | null;
  /** The first event's payload. */
  firstEvent: unknown;
}

/**
 * A submission in one statement: the
 * job row, its pg-boss dispatch, its first event and the workers' wake-up
 * commit together or not at all. (It was one round trip with no BEGIN/COMMIT;
 * the tenant's queue quota now runs it inside a short transaction after a
 * lock and a count, see service/jobs.ts submitWithinQuota.) With an Idempotency-Key already used by the
 * tenant the insert does nothing (so neither do the dispatch and the event,
 * which read its rows) and the earlier job's id comes back instead, `created`
 * false. The first event skips appendEvent's row lock: nobody else can see
 * the job before this statement commits. The job row is only written while
 * the queue exists, so the dispatch (which joins the queue row) cannot be
 * missing. It returns the id only: the row is read back through Prisma in the
 * same transaction, so no column list restates the schema.
 *   $1 job id, $2 dispatch id, $3 tenant, $4 spec, $5 spec hash,
 *   $6 run name, $7 Idempotency-Key, $8 model id, $9 dataset id, $10 event payload,
 *   $11 callback URL, $12 request hash
 */
const SUBMIT_SQL: SqlStatement = {
  name: 'ticketsmith-submit-job',
  text: `
WITH inserted AS (
  INSERT INTO job (id, tenant, spec, spec_hash, run_name, idempotency_key, request_hash, model_id, dataset_id, queue_job_id, callback_url)
  SELECT $1::uuid, $3, $4::jsonb, $5, $6, $7, $12, $8::uuid, $9::uuid, $2::uuid, $11
  WHERE EXISTS (SELECT 1 FROM ${BOSS_SCHEMA}.queue WHERE name = '${JOB_QUEUE}')
  ON CONFLICT (tenant, idempotency_key) DO NOTHING
  RETURNING *
), dispatch AS (
  ${insertDispatchSql('(SELECT id AS job_id, queue_job_id AS dispatch_id FROM inserted)')}
), first_event AS (
  INSERT INTO event (job_id, kind, payload) SELECT id, 'queued', $10::jsonb FROM inserted RETURNING id
)
SELECT i.id::text AS id, true AS created, pg_notify('${CHANNELS.jobs}', i.id::text) IS NULL AS _
FROM inserted i
UNION ALL
SELECT j.id::text, false, false
FROM job j WHERE $7::text IS NOT NULL AND j.tenant = $3 AND j.idempotency_key = $7 AND NOT EXISTS (SELECT 1 FROM inserted)`,
};

/**
 * Runs SUBMIT_SQL in the caller's transaction: the new row (`created`), the
 * tenant's earlier job with the same key (`created` false), or null when
 * neither is visible (a concurrent submission with this key committed while
 * the statement ran: its snapshot predates that row).
 */
export async function insertJob(tx: Prisma.TransactionClient, job: NewJob): Promise<(JobRow & { created: boolean }) | null> {
  const rows = await tx.$queryRawUnsafe<Array<{ id: string; created: boolean }>>(
    SUBMIT_SQL.text,
    job.id,
    job.dispatchId,
    job.tenant,
    JSON.stringify(job.spec),
    job.specHash,
    job.runName,
    job.idempotencyKey,
    job.modelId,
    job.datasetId,
    JSON.stringify(job.firstEvent),
    job.callbackUrl,
    job.requestHash,
  );
  const hit = rows[0];
  if (!hit) return null;
  const row = await tx.job.findUniqueOrThrow({ where: { id: hit.id } });
  return { ...row, created: hit.created };
}

export function findJobByKey(db: Db, tenant: string, key: string): Promise<JobRow | null> {
  return db.job.findUnique({ where: { tenant_idempotencyKey: { tenant, idempotencyKey: key } } });
}

/** `tenant`'s job `id`, or null (another tenant's job is null too). */
export function findJob(db: Db, tenant: string, id: string): Promise<JobRow | null> {
  return db.job.findFirst({ where: { id, tenant } });
}

const OWNS_SQL: SqlStatement = { name: 'ticketsmith-owns-job', text: 'SELECT 1 AS one FROM job WHERE id = $1::uuid AND tenant = $2' };

/** Whether `id` is a job of `tenant` (one prepared statement: every job-scoped read asks it first). */
export async function ownsJob(prisma: PrismaClient, tenant: string, id: string): Promise<boolean> {
  const rows = await sqlQuery<{ one: number }>(prisma, OWNS_SQL, [id, tenant]);
  return rows.length > 0;
}

/** A page of `tenant`'s jobs, newest first, strictly after `after` (a keyset cursor); `take` rows at most. */
export function listJobRows(
  db: Db,
  tenant: string,
  query: { status?: JobState; after?: { createdAt: Date; id: string } | null; take: number },
): Promise<JobRow[]> {
  const where: Prisma.JobWhereInput = { tenant, ...(query.status ? { status: query.status } : {}) };
  const c = query.after;
  if (c) where.OR = [{ createdAt: { lt: c.createdAt } }, { createdAt: c.createdAt, id: { lt: c.id } }];
  return db.job.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: query.take });
}

/** A job's committed rounds, in order; or one page of them after round index `page.after`. */
export function listRoundRows(db: Db, jobId: string, page?: { after: number | null; take: number }): Promise<RoundRow[]> {
  const after = page?.after;
  return db.round.findMany({ where: { jobId, ...(after !== undefined && after !== null ? { index: { gt: after } } : {}) }, orderBy: { index: 'asc' }, ...(page ? { take: page.take } : {}) });
}

/** How many rounds of a job are committed. */
export function countRounds(db: Db, jobId: string): Promise<number> {
  return db.round.count({ where: { jobId } });
}

/** A job's state, or null when it is gone (no tenant check: for a job already checked). */
export async function jobStatus(db: Db, id: string): Promise<JobState | null> {
  const row = await db.job.findUnique({ where: { id }, select: { status: true } });
  return row ? (row.status as JobState) : null;
}

/** Jobs per state over all tenants (the metrics gauge). */
export async function countJobsByStatus(db: Db): Promise<Map<string, number>> {
  const groups = await db.job.groupBy({ by: ['status'], _count: { _all: true } });
  return new Map(groups.map((g) => [String(g.status), g._count._all]));
}

export type CancelOutcome =
  | { kind: 'missing' }
  | { kind: 'finished'; status: 'succeeded' | 'failed' }
  | { kind: 'done'; row: JobRow };

/**
 * Cancels `tenant`'s job `id` under its row lock: a queued job is cancelled
 * at once (its dispatch dropped); a running one is marked, and its worker
 * woken by NOTIFY, to stop between training steps; a cancelled one is left
 * as it is. A succeeded or failed job is reported, not changed.
 */
export async function cancelJobRow(prisma: PrismaClient, boss: PgBoss, tenant: string, id: string): Promise<CancelOutcome> {
  return prisma.$transaction(async (tx): Promise<CancelOutcome> => {
    const locked = await tx.$queryRaw<{ status: JobState; queue_job_id: string | null; cancel_requested: boolean }[]>`
      SELECT status::text AS status, queue_job_id::text AS queue_job_id, cancel_requested_at IS NOT NULL AS cancel_requested
      FROM job WHERE id = ${id}::uuid AND tenant = ${tenant} FOR UPDATE`;
    const job = locked[0];
    if (!job) return { kind: 'missing' };
    if (job.status === 'succeeded' || job.status === 'failed') return { kind: 'finished', status: job.status };
    if (job.status === 'queued') {
      await cancelDispatchInTx(boss, tx, job.queue_job_id);
      await tx.job.update({ where: { id }, data: { status: 'cancelled', cancelRequestedAt: new Date(), finishedAt: new Date() } });
      await appendEvent(tx, id, 'finished', { status: 'cancelled' });
    } else if (job.status === 'running' && !job.cancel_requested) {
      await tx.job.update({ where: { id }, data: { cancelRequestedAt: new Date() } });
      await appendEvent(tx, id, 'cancel-requested', {});
      await tx.$executeRaw`SELECT pg_notify(${CHANNELS.cancel}, ${id})`;
    }
    return { kind: 'done', row: await tx.job.findUniqueOrThrow({ where: { id } }) };
  }, TX_OPTIONS);
}
