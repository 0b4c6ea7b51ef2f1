// Job use cases: submit (validate everything, then create the row, its
// queue entry and first event in one SQL statement), read, list (newest first, keyset cursor),
// rounds, cancel. A tenant only ever sees its own jobs: another tenant's id is
// NOT_FOUND, exactly like an id that does not exist.
import { randomUUID } from 'node:crypto';
import { resolveSpec, runName, specHash, type RunSpec } from '../engine/spec.js';
import { BOSS_SCHEMA, JOB_QUEUE, cancelDispatchInTx, insertDispatchSql } from '../queue/boss.js';
import { Prisma, TX_OPTIONS, sqlQuery, type SqlStatement } from '../store/db.js';
import { appendEvent } from '../store/events.js';
import { CHANNELS } from '../store/notify.js';
import { isJobState, type JobState } from '../store/states.js';
import type { ServiceContext } from './context.js';
import { checkSubmission } from './checks.js';
import { resolveJobDataset } from './datasets.js';
import { checkFit } from './fit.js';
import { jobDto, roundDto, type JobDto, type Page, type RoundDto } from './dto.js';
import { invalid, notFound, ServiceError, toServiceError } from './errors.js';
import { decodeCursor, encodeCursor, isUuid, pageLimit } from './ids.js';
import { checkJobCost, checkStorageQuota, requireModelAndDataset } from './limits.js';
import { resolveJobModel } from './models.js';
import { countTenantJobs, lockTenant } from '../store/limits.js';

export interface SubmitResult {
  job: JobDto;
  /** False when an earlier submission with the same Idempotency-Key is returned. */
  created: boolean;
}

type JobRow = Parameters<typeof jobDto>[0];

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The job table's columns under the names of Prisma's Job row (what jobDto reads). */
const jobColumns = (t: string) =>
  `${t}.id, ${t}.tenant, ${t}.spec, ${t}.spec_hash AS "specHash", ${t}.run_name AS "runName", ${t}.status::text AS status,
   ${t}.progress, ${t}.backend, ${t}.error_code AS "errorCode", ${t}.error_message AS "errorMessage",
   ${t}.idempotency_key AS "idempotencyKey", ${t}.request_hash AS "requestHash", ${t}.model_id AS "modelId",
   ${t}.dataset_id AS "datasetId", ${t}.result, ${t}.attempts, ${t}.worker_id AS "workerId", ${t}.queue_job_id AS "queueJobId",
   ${t}.heartbeat_at AS "heartbeatAt", ${t}.cancel_requested_at AS "cancelRequestedAt", ${t}.created_at AS "createdAt",
   ${t}.started_at AS "startedAt", ${t}.finished_at AS "finishedAt"`;

/**
 * A submission in one statement: the
 * job row, its pg-boss dispatch, its first event and the workers' wake-up
 * commit together or not at all. (It was one round trip with no BEGIN/COMMIT;
 * the tenant's queue quota now runs it inside a short transaction after a
 * lock and a count, see submitWithinQuota.) With an Idempotency-Key already used by the
 * tenant the insert does nothing (so neither do the dispatch and the event,
 * which read its rows) and the earlier job comes back instead, `created`
 * false. The first event skips appendEvent's row lock: nobody else can see
 * the job before this statement commits. Ids are made here, so the job row
 * names its dispatch without an UPDATE. The job row is only written while
 * the queue exists, so the dispatch (which joins the queue row) cannot be
 * missing.
 *   $1 job id, $2 dispatch id, $3 tenant, $4 spec, $5 spec hash (= request hash),
 *   $6 run name, $7 Idempotency-Key, $8 model id, $9 dataset id, $10 event payload
 */
const SUBMIT_SQL: SqlStatement = {
  name: 'ticketsmith-submit-job',
  text: `
WITH inserted AS (
  INSERT INTO job (id, tenant, spec, spec_hash, run_name, idempotency_key, request_hash, model_id, dataset_id, queue_job_id)
  SELECT $1::uuid, $3, $4::jsonb, $5, $6, $7, $5, $8::uuid, $9::uuid, $2::uuid
  WHERE EXISTS (SELECT 1 FROM ${BOSS_SCHEMA}.queue WHERE name = '${JOB_QUEUE}')
  ON CONFLICT (tenant, idempotency_key) DO NOTHING
  RETURNING *
), dispatch AS (
  ${insertDispatchSql('(SELECT id AS job_id, queue_job_id AS dispatch_id FROM inserted)')}
), first_event AS (
  INSERT INTO event (job_id, kind, payload) SELECT id, 'queued', $10::jsonb FROM inserted RETURNING id
)
SELECT ${jobColumns('i')}, true AS created, pg_notify('${CHANNELS.jobs}', i.id::text) IS NULL AS _
FROM inserted i
UNION ALL
SELECT ${jobColumns('j')}, false, false
FROM job j WHERE $7::text IS NOT NULL AND j.tenant = $3 AND j.idempotency_key = $7 AND NOT EXISTS (SELECT 1 FROM inserted)`,
};

const OWNS_SQL: SqlStatement = { name: 'ticketsmith-owns-job', text: 'SELECT 1 AS one FROM job WHERE id = $1::uuid AND tenant = $2' };

const GET_SQL: SqlStatement = { name: 'ticketsmith-get-job', text: `SELECT ${jobColumns('j')} FROM job j WHERE j.id = $1::uuid AND j.tenant = $2` };

async function findByKey(ctx: ServiceContext, tenant: string, key: string) {
  return ctx.prisma.job.findUnique({ where: { tenant_idempotencyKey: { tenant, idempotencyKey: key } } });
}

function replay(existing: JobRow, requestHash: string): SubmitResult {
  if (existing.requestHash !== requestHash) {
    throw new ServiceError('IDEMPOTENCY_KEY_REUSED', 'Idempotency-Key was already used for a different job request', 'idempotencyKey');
  }
  return { job: jobDto(existing), created: false };
}

/**
 * The uploaded model and registered dataset a spec names (lookups only for
 * `model:`/`dataset:` ids; a raw dataset reference is probed), model errors
 * first, then whether the dataset fits the model.
 */
async function resolveRefs(ctx: ServiceContext, tenant: string, spec: RunSpec): Promise<{ modelId: string | null; datasetId: string | null }> {
  const [model, dataset] = await Promise.allSettled([resolveJobModel(ctx, tenant, spec.model), resolveJobDataset(ctx, tenant, spec.dataset)]);
  if (model.status === 'rejected') throw model.reason;
  if (dataset.status === 'rejected') throw dataset.reason;
  await checkFit(ctx, spec.model, model.value.modelId, dataset.value.probe);
  return { modelId: model.value.modelId, datasetId: dataset.value.datasetId };
}

/**
 * Submits a job. `body` is a run spec (see engine/spec.ts RunSpecSchema) whose
 * `model` is a zoo name or `model:<id>` and whose `dataset` is a reference or
 * `dataset:<id>`. Everything is validated before anything is queued.
 */
export async function submitJob(ctx: ServiceContext, tenant: string, body: unknown, idempotencyKey?: string | null): Promise<SubmitResult> {
  if (idempotencyKey !== undefined && idempotencyKey !== null && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
    throw invalid('idempotencyKey', 'Idempotency-Key: 1-255 printable ASCII characters');
  }
  const key = idempotencyKey ?? null;
  let spec: RunSpec;
  try {
    spec = resolveSpec(body);
  } catch (e) {
    throw toServiceError(e);
  }
  // After the schema, so a malformed field is named first; before the defaults could stand in for them.
  requireModelAndDataset(body);
  checkJobCost(spec, ctx.config.limits.maxJobExamples);
  const requestHash = specHash(spec);
  let refs: { modelId: string | null; datasetId: string | null };
  try {
    refs = await resolveRefs(ctx, tenant, spec);
  } catch (e) {
    // A used key answers before the model and dataset are judged (a replay, or IDEMPOTENCY_KEY_REUSED).
    const existing = key ? await findByKey(ctx, tenant, key) : null;
    if (existing) return replay(existing, requestHash);
    throw e;
  }
  await checkSubmission(ctx, spec, refs);
  const name = runName(spec);
  let rows: Array<JobRow & { created: boolean }>;
  try {
    rows = await submitWithinQuota(ctx, tenant, key, [
      randomUUID(),
      randomUUID(),
      tenant,
      JSON.stringify(spec),
      requestHash,
      name,
      key,
      refs.modelId,
      refs.datasetId,
      JSON.stringify({ runName: name }),
    ]);
  } catch (e) {
    throw deletedMeanwhile(e) ?? e;
  }
  const row = rows[0];
  if (row) return row.created ? { job: jobDto(row), created: true } : replay(row, requestHash);
  // Nothing inserted and nothing visible: a concurrent submission with this key
  // committed while the statement ran (its snapshot predates that row).
  const existing = key ? await findByKey(ctx, tenant, key) : null;
  if (existing) return replay(existing, requestHash);
  throw new Error(`job not inserted: is pg-boss queue ${JOB_QUEUE} missing?`);
}

/** The model or dataset was deleted between its lookup and the insert (foreign key violation): NOT_FOUND, as if looked up later. */
function deletedMeanwhile(e: unknown): ServiceError | null {
  const err = e as { code?: unknown; constraint?: unknown } | null;
  if (err?.code !== '23503') return null;
  if (err.constraint === 'job_dataset_id_fkey') return new ServiceError('NOT_FOUND', 'dataset: the registered dataset was deleted', 'dataset');
  if (err.constraint === 'job_model_id_fkey') return new ServiceError('NOT_FOUND', 'model: the uploaded model was deleted', 'model');
  return null;
}

/**
 * SUBMIT_SQL under the tenant's queued-jobs quota (TICKETSMITH_TENANT_MAX_QUEUED)
 * and storage quota. The statement alone cannot count safely: its snapshot
 * is taken when it starts, so two API processes would both see room for one
 * more. Here a per-tenant advisory lock comes first and the count and the
 * insert are later statements of the same transaction, which in READ
 * COMMITTED see every submit that held the lock before. A full queue still
 * answers a reused Idempotency-Key with its job (the caller's replay rules).
 */
async function submitWithinQuota(ctx: ServiceContext, tenant: string, key: string | null, params: unknown[]): Promise<Array<JobRow & { created: boolean }>> {
  const max = ctx.config.limits.tenantMaxQueued;
  return ctx.prisma.$transaction(async (tx) => {
    await lockTenant(tx, tenant, 'submit');
    const queued = await countTenantJobs(tx, tenant, 'queued');
    if (queued >= max || key !== null) {
      const existing = key === null ? null : await tx.job.findUnique({ where: { tenant_idempotencyKey: { tenant, idempotencyKey: key } } });
      if (existing) return [{ ...existing, created: false }];
      if (queued >= max) {
        throw new ServiceError('QUOTA_EXCEEDED', `queued jobs: this tenant has ${queued} jobs waiting, the most it may queue is ${max}; submit again when some have started`);
      }
    }
    await checkStorageQuota(tx, ctx, tenant);
    return tx.$queryRawUnsafe<Array<JobRow & { created: boolean }>>(SUBMIT_SQL.text, ...params);
  }, TX_OPTIONS);
}

export async function getJob(ctx: ServiceContext, tenant: string, id: string): Promise<JobDto> {
  if (!isUuid(id)) throw notFound('job', id);
  const [row] = await sqlQuery<JobRow>(ctx.prisma, GET_SQL, [id, tenant]);
  if (!row) throw notFound('job', id);
  return jobDto(row);
}

/** Throws NOT_FOUND unless `id` is a job of `tenant`. */
export async function assertJob(ctx: ServiceContext, tenant: string, id: string): Promise<void> {
  if (!isUuid(id)) throw notFound('job', id);
  const rows = await sqlQuery<{ one: number }>(ctx.prisma, OWNS_SQL, [id, tenant]);
  if (rows.length === 0) throw notFound('job', id);
}

export interface ListJobsQuery {
  status?: string;
  cursor?: string;
  limit?: number | string;
}

export async function listJobs(ctx: ServiceContext, tenant: string, query: ListJobsQuery = {}): Promise<Page<JobDto>> {
  const limit = pageLimit(query.limit);
  let status: JobState | undefined;
  if (query.status !== undefined && query.status !== '') {
    if (!isJobState(query.status)) throw invalid('status', `status: one of queued, running, succeeded, failed, cancelled`);
    status = query.status;
  }
  const where: Prisma.JobWhereInput = { tenant, ...(status ? { status } : {}) };
  if (query.cursor) {
    const c = decodeCursor(query.cursor);
    where.OR = [{ createdAt: { lt: c.createdAt } }, { createdAt: c.createdAt, id: { lt: c.id } }];
  }
  const rows = await ctx.prisma.job.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: limit + 1 });
  const more = rows.length > limit;
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items: items.map(jobDto), nextCursor: more && last ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null };
}

export async function listRounds(ctx: ServiceContext, tenant: string, jobId: string): Promise<RoundDto[]> {
  await assertJob(ctx, tenant, jobId);
  const rows = await ctx.prisma.round.findMany({ where: { jobId }, orderBy: { index: 'asc' } });
  return rows.map(roundDto);
}

/**
 * Cancels a job. A queued job is cancelled at once; a running one is asked to
 * stop (the worker aborts between training steps and marks it cancelled,
 * keeping its finished rounds). Cancelling a cancelled job is a no-op;
 * cancelling a succeeded or failed one is FAILED_PRECONDITION.
 */
export async function cancelJob(ctx: ServiceContext, tenant: string, id: string): Promise<JobDto> {
  if (!isUuid(id)) throw notFound('job', id);
  const row = await ctx.prisma.$transaction(async (tx) => {
    const locked = await tx.$queryRaw<{ status: JobState; queue_job_id: string | null; cancel_requested: boolean }[]>`
      SELECT status::text AS status, queue_job_id::text AS queue_job_id, cancel_requested_at IS NOT NULL AS cancel_requested
      FROM job WHERE id = ${id}::uuid AND tenant = ${tenant} FOR UPDATE`;
    const job = locked[0];
    if (!job) throw notFound('job', id);
    if (job.status === 'succeeded' || job.status === 'failed') {
      throw new ServiceError('FAILED_PRECONDITION', `job ${id} already ${job.status}`);
    }
    if (job.status === 'queued') {
      await cancelDispatchInTx(ctx.boss, tx, job.queue_job_id);
      await tx.job.update({ where: { id }, data: { status: 'cancelled', cancelRequestedAt: new Date(), finishedAt: new Date() } });
      await appendEvent(tx, id, 'finished', { status: 'cancelled' });
    } else if (job.status === 'running' && !job.cancel_requested) {
      await tx.job.update({ where: { id }, data: { cancelRequestedAt: new Date() } });
      await appendEvent(tx, id, 'cancel-requested', {});
      await tx.$executeRaw`SELECT pg_notify(${CHANNELS.cancel}, ${id})`;
    }
    return tx.job.findUniqueOrThrow({ where: { id } });
  }, TX_OPTIONS);
  return jobDto(row);
}
