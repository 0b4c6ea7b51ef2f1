// Job use cases: submit (validate everything, then create the row, its
// queue entry and first event in one SQL statement), read, list (newest first, keyset cursor),
// rounds, cancel. A tenant only ever sees its own jobs: another tenant's id is
// NOT_FOUND, exactly like an id that does not exist.
import { createHash, randomUUID } from 'node:crypto';
import { resolveSpec, runName, specHash, type RunSpec } from '../engine/spec.js';
import { inTransaction } from '../store/db.js';
import { JOB_QUEUE } from '../store/dispatch.js';
import { cancelJobRow, findJob, findJobByKey, insertJob, listJobRows, listRoundRows, ownsJob, type JobRow, type NewJob } from '../store/jobs.js';
import { isJobState, type JobState } from '../store/states.js';
import type { ServiceContext } from './context.js';
import { checkSubmission } from './checks.js';
import { resolveJobDataset } from './datasets.js';
import { checkFit } from './fit.js';
import { jobDto, roundDto, type JobDto, type Page, type RoundDto } from './dto.js';
import { invalid, notFound, ServiceError, toServiceError } from './errors.js';
import { decodeCursor, decodeKeys, encodeCursor, encodeKeys, isUuid, pageLimit, toPage, type PageQuery } from './ids.js';
import { checkJobCost, checkStorageQuota, requireModelAndDataset } from './limits.js';
import { resolveJobModel } from './models.js';
import { countTenantJobs, lockTenant } from '../store/limits.js';
import { resolveCallbackUrl } from './webhooks.js';

export interface SubmitOptions {
  /** Where the job's webhook events are POSTed (`callbackUrl` beside the spec; not a run-spec field). */
  callbackUrl?: unknown;
}

export interface SubmitResult {
  job: JobDto;
  /** False when an earlier submission with the same Idempotency-Key is returned. */
  created: boolean;
}

/** What an Idempotency-Key may be (1-255 printable ASCII characters, no spaces); the OpenAPI document publishes the same pattern. */
export const IDEMPOTENCY_KEY_PATTERN = '^[\\x21-\\x7e]{1,255}$';
const IDEMPOTENCY_KEY = new RegExp(IDEMPOTENCY_KEY_PATTERN);

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
export async function submitJob(ctx: ServiceContext, tenant: string, body: unknown, idempotencyKey?: string | null, opts: SubmitOptions = {}): Promise<SubmitResult> {
  const badKey = idempotencyKey !== undefined && idempotencyKey !== null && !IDEMPOTENCY_KEY.test(idempotencyKey) ? invalid('idempotencyKey', 'Idempotency-Key: 1-255 printable ASCII characters') : null;
  const key = idempotencyKey ?? null;
  let spec: RunSpec;
  try {
    spec = resolveSpec(body);
  } catch (e) {
    const err = toServiceError(e);
    // Both the key and the spec are wrong: report all of it, the key first.
    if (badKey && err.code === 'INVALID_ARGUMENT') throw new ServiceError(badKey.code, badKey.message, badKey.field, [{ field: badKey.field!, message: badKey.message }, ...(err.issues ?? (err.field ? [{ field: err.field, message: err.message }] : []))]);
    throw err;
  }
  if (badKey) throw badKey;
  // After the schema, so a malformed field is named first; before the defaults could stand in for them.
  requireModelAndDataset(body);
  checkJobCost(spec, ctx.config.limits.maxJobExamples);
  const callbackUrl = await resolveCallbackUrl(ctx, tenant, opts.callbackUrl);
  const hash = specHash(spec);
  // A retry must name the same callback; without one the hash is the spec's, as before.
  const requestHash = callbackUrl === null ? hash : createHash('sha256').update(`${hash}\n${callbackUrl}`).digest('hex');
  let refs: { modelId: string | null; datasetId: string | null };
  try {
    refs = await resolveRefs(ctx, tenant, spec);
  } catch (e) {
    // A used key answers before the model and dataset are judged (a replay, or IDEMPOTENCY_KEY_REUSED).
    const existing = key ? await findJobByKey(ctx.prisma, tenant, key) : null;
    if (existing) return replay(existing, requestHash);
    throw e;
  }
  await checkSubmission(ctx, spec, refs);
  const name = runName(spec);
  let row: (JobRow & { created: boolean }) | null;
  try {
    row = await submitWithinQuota(ctx, tenant, {
      id: randomUUID(),
      dispatchId: randomUUID(),
      tenant,
      spec,
      specHash: hash,
      requestHash,
      callbackUrl,
      runName: name,
      idempotencyKey: key,
      modelId: refs.modelId,
      datasetId: refs.datasetId,
      firstEvent: { runName: name },
    });
  } catch (e) {
    throw deletedMeanwhile(e) ?? e;
  }
  if (row) return row.created ? { job: jobDto(row), created: true } : replay(row, requestHash);
  // Nothing inserted and nothing visible: a concurrent submission with this key
  // committed while the statement ran (its snapshot predates that row).
  const existing = key ? await findJobByKey(ctx.prisma, tenant, key) : null;
  if (existing) return replay(existing, requestHash);
  throw new Error(`job not inserted: is pg-boss queue ${JOB_QUEUE} missing?`);
}

/** The model or dataset was deleted between its lookup and the insert (foreign key violation): NOT_FOUND, as if looked up later. */
function deletedMeanwhile(e: unknown): ServiceError | null {
  // Raw SQL inside a Prisma transaction reports it as P2010 (the SQLSTATE in meta) or P2003; plain pg as 23503.
  const err = e as { code?: unknown; constraint?: unknown; message?: unknown; meta?: Record<string, unknown> } | null;
  const cause = (err?.meta?.driverAdapterError as { cause?: { originalCode?: unknown } } | undefined)?.cause;
  const code = err?.code === 'P2010' ? (err.meta?.code ?? cause?.originalCode) : err?.code;
  if (code !== '23503' && code !== 'P2003') return null;
  const where = [err?.constraint, err?.meta?.constraint, err?.meta?.field_name, err?.meta?.message, err?.message].map((x) => (typeof x === 'string' ? x : '')).join(' ');
  if (where.includes('job_dataset_id_fkey')) return new ServiceError('NOT_FOUND', 'dataset: the registered dataset was deleted', 'dataset');
  if (where.includes('job_model_id_fkey')) return new ServiceError('NOT_FOUND', 'model: the uploaded model was deleted', 'model');
  return null;
}

/**
 * The submit statement (store/jobs.ts insertJob) under the tenant's queued-jobs quota (TICKETSMITH_TENANT_MAX_QUEUED)
 * and storage quota. The statement alone cannot count safely: its snapshot
 * is taken when it starts, so two API processes would both see room for one
 * more. Here a per-tenant advisory lock comes first and the count and the
 * insert are later statements of the same transaction, which in READ
 * COMMITTED see every submit that held the lock before. A full queue still
 * answers a reused Idempotency-Key with its job (the caller's replay rules).
 */
async function submitWithinQuota(ctx: ServiceContext, tenant: string, job: NewJob): Promise<(JobRow & { created: boolean }) | null> {
  const max = ctx.config.limits.tenantMaxQueued;
  const key = job.idempotencyKey;
  return inTransaction(ctx.prisma, async (tx) => {
    await lockTenant(tx, tenant, 'submit');
    const queued = await countTenantJobs(tx, tenant, 'queued');
    if (queued >= max || key !== null) {
      const existing = key === null ? null : await findJobByKey(tx, tenant, key);
      if (existing) return { ...existing, created: false };
      if (queued >= max) {
        throw new ServiceError('QUOTA_EXCEEDED', `queued jobs: this tenant has ${queued} jobs waiting, the most it may queue is ${max}; submit again when some have started`);
      }
    }
    await checkStorageQuota(tx, ctx, tenant);
    return insertJob(tx, job);
  });
}

export async function getJob(ctx: ServiceContext, tenant: string, id: string): Promise<JobDto> {
  if (!isUuid(id)) throw notFound('job', id);
  const row = await findJob(ctx.prisma, tenant, id);
  if (!row) throw notFound('job', id);
  return jobDto(row);
}

/** Throws NOT_FOUND unless `id` is a job of `tenant`. */
export async function assertJob(ctx: ServiceContext, tenant: string, id: string): Promise<void> {
  if (!isUuid(id)) throw notFound('job', id);
  if (!(await ownsJob(ctx.prisma, tenant, id))) throw notFound('job', id);
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
  const after = query.cursor ? decodeCursor(query.cursor) : null;
  const rows = await listJobRows(ctx.prisma, tenant, { status, after, take: limit + 1 });
  return toPage(rows, limit, jobDto, (r) => encodeCursor({ createdAt: r.createdAt, id: r.id }));
}

export async function listRounds(ctx: ServiceContext, tenant: string, jobId: string): Promise<RoundDto[]> {
  await assertJob(ctx, tenant, jobId);
  const rows = await listRoundRows(ctx.prisma, jobId);
  return rows.map(roundDto);
}

/** One page of a job's rounds, in order (the cursor is the last round's index). */
export async function listRoundsPage(ctx: ServiceContext, tenant: string, jobId: string, query: PageQuery = {}): Promise<Page<RoundDto>> {
  const limit = pageLimit(query.limit);
  const after = query.cursor ? decodeKeys(query.cursor, ([i]) => (Number.isSafeInteger(i) && (i as number) >= 0 ? (i as number) : null)) : null;
  await assertJob(ctx, tenant, jobId);
  const rows = await listRoundRows(ctx.prisma, jobId, { after, take: limit + 1 });
  return toPage(rows, limit, roundDto, (r) => encodeKeys([r.index]));
}

/**
 * Cancels a job. A queued job is cancelled at once; a running one is asked to
 * stop (the worker aborts between training steps and marks it cancelled,
 * keeping its finished rounds). Cancelling a cancelled job is a no-op;
 * cancelling a succeeded or failed one is FAILED_PRECONDITION.
 */
export async function cancelJob(ctx: ServiceContext, tenant: string, id: string): Promise<JobDto> {
  if (!isUuid(id)) throw notFound('job', id);
  const outcome = await cancelJobRow(ctx.prisma, ctx.boss, tenant, id);
  if (outcome.kind === 'missing') throw notFound('job', id);
  if (outcome.kind === 'finished') throw new ServiceError('FAILED_PRECONDITION', `job ${id} already ${outcome.status}`);
  return jobDto(outcome.row);
}
