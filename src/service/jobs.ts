// Job use cases: submit (validate everything, then create the row and its
// queue entry in one transaction), read, list (newest first, keyset cursor),
// rounds, cancel. A tenant only ever sees its own jobs: another tenant's id is
// NOT_FOUND, exactly like an id that does not exist.
import { resolveSpec, runName, specHash, type RunSpec } from '../engine/spec.js';
import { cancelDispatchInTx, enqueueInTx } from '../queue/boss.js';
import { Prisma, TX_OPTIONS, toJson } from '../store/db.js';
import { appendEvent } from '../store/events.js';
import { CHANNELS } from '../store/notify.js';
import { isJobState, type JobState } from '../store/states.js';
import type { ServiceContext } from './context.js';
import { resolveJobDataset } from './datasets.js';
import { jobDto, roundDto, type JobDto, type Page, type RoundDto } from './dto.js';
import { invalid, notFound, ServiceError, toServiceError } from './errors.js';
import { decodeCursor, encodeCursor, isUuid, pageLimit } from './ids.js';
import { resolveJobModel } from './models.js';

export interface SubmitResult {
  job: JobDto;
  /** False when an earlier submission with the same Idempotency-Key is returned. */
  created: boolean;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

async function findByKey(ctx: ServiceContext, tenant: string, key: string) {
  return ctx.prisma.job.findUnique({ where: { tenant_idempotencyKey: { tenant, idempotencyKey: key } } });
}

function replay(existing: { requestHash: string } & Parameters<typeof jobDto>[0], requestHash: string): SubmitResult {
  if (existing.requestHash !== requestHash) {
    throw new ServiceError('IDEMPOTENCY_KEY_REUSED', 'Idempotency-Key was already used for a different job request', 'idempotencyKey');
  }
  return { job: jobDto(existing), created: false };
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
  const requestHash = specHash(spec);
  if (key) {
    const existing = await findByKey(ctx, tenant, key);
    if (existing) return replay(existing, requestHash);
  }
  const { modelId } = await resolveJobModel(ctx, tenant, spec.model);
  const { datasetId } = await resolveJobDataset(ctx, tenant, spec.dataset);

  try {
    const row = await ctx.prisma.$transaction(async (tx) => {
      const job = await tx.job.create({
        data: {
          tenant,
          spec: toJson(spec),
          specHash: requestHash,
          runName: runName(spec),
          idempotencyKey: key,
          requestHash,
          modelId,
          datasetId,
        },
        select: { id: true },
      });
      await enqueueInTx(ctx.boss, tx, job.id);
      await appendEvent(tx, job.id, 'queued', { runName: runName(spec) });
      return tx.job.findUniqueOrThrow({ where: { id: job.id } });
    }, TX_OPTIONS);
    return { job: jobDto(row), created: true };
  } catch (e) {
    // A concurrent submission with the same key won the race: answer as a replay.
    if (key && e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002') {
      const existing = await findByKey(ctx, tenant, key);
      if (existing) return replay(existing, requestHash);
    }
    throw e;
  }
}

async function ownJob(ctx: ServiceContext, tenant: string, id: string) {
  if (!isUuid(id)) throw notFound('job', id);
  const row = await ctx.prisma.job.findFirst({ where: { id, tenant } });
  if (!row) throw notFound('job', id);
  return row;
}

export async function getJob(ctx: ServiceContext, tenant: string, id: string): Promise<JobDto> {
  return jobDto(await ownJob(ctx, tenant, id));
}

/** Throws NOT_FOUND unless `id` is a job of `tenant`. */
export async function assertJob(ctx: ServiceContext, tenant: string, id: string): Promise<void> {
  if (!isUuid(id)) throw notFound('job', id);
  const n = await ctx.prisma.job.count({ where: { id, tenant } });
  if (n === 0) throw notFound('job', id);
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
