// A job row's state transitions, each one transaction: claim (queued →
// running), heartbeat, finish (→ succeeded / failed / cancelled), release
// (running → queued on shutdown) and reap (stale running → queued, or failed
// after too many attempts). The job row, not the pg-boss entry, is the truth:
// pg-boss only delivers "look at job X" messages, and a message for a job that
// is finished or held by a live worker is dropped. The worker (queue/worker.ts)
// decides when; this file is the SQL of each change.
import type PgBoss from 'pg-boss';
import type { RunSpec } from '../engine/spec.js';
import { NO_FAULTS, type Faults } from '../runtime/faults.js';
import { TX_OPTIONS, toJson, type Prisma, type PrismaClient } from './db.js';
import { JOB_QUEUE, cancelDispatchInTx, enqueueInTx } from './dispatch.js';
import { appendEvent } from './events.js';
import type { JobErrorCode } from './errors.js';
import { touchLease, type Lease } from './sink.js';
import { isTerminal, type JobState } from './states.js';
import { countTenantJobs, lockTenant } from './limits.js';

export { JOB_ERROR_CODES, type JobErrorCode } from './errors.js';

export interface ClaimOptions {
  workerId: string;
  queueJobId: string;
  staleSeconds: number;
  maxAttempts: number;
  /**
   * A tenant's running-jobs cap: a job whose tenant is at it stays queued and
   * is dispatched again after `deferSeconds` (default 5; needs `boss`).
   */
  tenantMaxRunning?: number;
  deferSeconds?: number;
  boss?: PgBoss;
  faults?: Faults;
}

export type Claim =
  | { kind: 'run'; lease: Lease; spec: RunSpec; resumed: boolean; startedAt: Date }
  | { kind: 'skip'; reason: string };

interface LockedJob {
  status: JobState;
  attempts: number;
  tenant: string;
  spec: unknown;
  worker_id: string | null;
  cancel_requested: boolean;
  heartbeat_fresh: boolean;
}

async function lockJob(tx: Prisma.TransactionClient, jobId: string, staleSeconds: number): Promise<LockedJob | null> {
  const rows = await tx.$queryRaw<LockedJob[]>`
    SELECT status::text AS status, attempts, tenant, spec, worker_id,
           cancel_requested_at IS NOT NULL AS cancel_requested,
           COALESCE(heartbeat_at > now() - make_interval(secs => ${staleSeconds}::float8), false) AS heartbeat_fresh
    FROM job WHERE id = ${jobId}::uuid FOR UPDATE`;
  return rows[0] ?? null;
}

/**
 * The tenant's running-jobs cap, checked under a per-tenant advisory lock so
 * two workers claiming at once cannot both take the last slot (the count is
 * a statement after the lock: READ COMMITTED sees the other claim's commit).
 * A job over the cap stays queued (a running one whose worker died goes back
 * to queued) with a new dispatch delayed by `deferSeconds`.
 */
async function deferOverRunningCap(tx: Prisma.TransactionClient, jobId: string, job: LockedJob, opts: ClaimOptions): Promise<Claim | null> {
  if (opts.tenantMaxRunning === undefined || !opts.boss) return null;
  await lockTenant(tx, job.tenant, 'running');
  const running = await countTenantJobs(tx, job.tenant, 'running', jobId);
  if (running < opts.tenantMaxRunning) return null;
  if (job.status === 'running') await tx.job.update({ where: { id: jobId }, data: { status: 'queued', workerId: null, heartbeatAt: null } });
  await enqueueInTx(opts.boss, tx, jobId, { startAfterSeconds: opts.deferSeconds ?? 5 });
  return { kind: 'skip', reason: `tenant has ${running} jobs running (cap ${opts.tenantMaxRunning}); dispatched again later` };
}

/** Takes a job for this worker, or says why this delivery is to be dropped. */
export async function claimJob(prisma: PrismaClient, jobId: string, opts: ClaimOptions): Promise<Claim> {
  return prisma.$transaction(async (tx) => {
    const job = await lockJob(tx, jobId, opts.staleSeconds);
    if (!job) return { kind: 'skip', reason: 'job row missing' };
    if (isTerminal(job.status)) return { kind: 'skip', reason: `job already ${job.status}` };
    if (job.status === 'running' && job.heartbeat_fresh) return { kind: 'skip', reason: `job held by live worker ${job.worker_id}` };
    if (job.cancel_requested) {
      await tx.job.update({ where: { id: jobId }, data: { status: 'cancelled', finishedAt: new Date(), workerId: null } });
      await appendEvent(tx, jobId, 'finished', { status: 'cancelled' });
      return { kind: 'skip', reason: 'cancelled before start' };
    }
    if (job.attempts >= opts.maxAttempts) {
      const message = `gave up after ${job.attempts} attempts: each worker that ran this job stopped without finishing it`;
      await tx.job.update({
        where: { id: jobId },
        data: { status: 'failed', finishedAt: new Date(), errorCode: 'WORKER_LOST', errorMessage: message, workerId: null },
      });
      await appendEvent(tx, jobId, 'finished', { status: 'failed', error: { code: 'WORKER_LOST', message } });
      return { kind: 'skip', reason: 'too many attempts' };
    }
    const deferred = await deferOverRunningCap(tx, jobId, job, opts);
    if (deferred) return deferred;
    const attempt = job.attempts + 1;
    const [started] = await tx.$queryRaw<{ started_at: Date }[]>`
      UPDATE job SET status = 'running', attempts = ${attempt}, worker_id = ${opts.workerId},
        queue_job_id = ${opts.queueJobId}::uuid, heartbeat_at = now(), started_at = COALESCE(started_at, now())
      WHERE id = ${jobId}::uuid
      RETURNING started_at`;
    await appendEvent(tx, jobId, 'started', { attempt, workerId: opts.workerId });
    (opts.faults ?? NO_FAULTS).hit('claim.in-tx');
    return { kind: 'run', lease: { jobId, tenant: job.tenant, attempt }, spec: job.spec as RunSpec, resumed: attempt > 1, startedAt: started!.started_at };
  }, TX_OPTIONS);
}

/**
 * Records one engine event of a run held under `lease`: the lease is checked
 * and stamped with `progress`, the run's backend noted when the event names
 * one, and the event row appended, in one transaction. Throws LeaseLostError
 * (sink.ts) when another worker holds the job now, JobGoneError (events.ts)
 * when it was deleted.
 */
export async function recordRunEvent(
  prisma: PrismaClient,
  lease: Lease,
  event: { kind: string; payload: unknown; progress?: unknown; backend?: string },
  faults: Faults = NO_FAULTS,
): Promise<void> {
  await prisma.$transaction(async (tx) => {
    await touchLease(tx, lease, event.progress);
    if (event.backend) await tx.job.update({ where: { id: lease.jobId }, data: { backend: event.backend } });
    await appendEvent(tx, lease.jobId, event.kind, event.payload);
    faults.hit('event.in-tx');
  }, TX_OPTIONS);
}

export interface HeartbeatResult {
  /** False when another worker took the job over (or it finished). */
  held: boolean;
  cancelRequested: boolean;
}

export async function heartbeat(prisma: PrismaClient, lease: Lease): Promise<HeartbeatResult> {
  const rows = await prisma.$queryRaw<{ cancel_requested: boolean }[]>`
    UPDATE job SET heartbeat_at = now()
    WHERE id = ${lease.jobId}::uuid AND attempts = ${lease.attempt} AND status = 'running'
    RETURNING cancel_requested_at IS NOT NULL AS cancel_requested`;
  return rows.length === 0 ? { held: false, cancelRequested: false } : { held: true, cancelRequested: rows[0]!.cancel_requested };
}

export type Outcome =
  | { status: 'succeeded' }
  | { status: 'cancelled' }
  | { status: 'failed'; code: JobErrorCode; message: string };

/** Records the end of a run; false when the lease was lost meanwhile (nothing written). */
export async function finishJob(prisma: PrismaClient, lease: Lease, outcome: Outcome, progress?: unknown, faults: Faults = NO_FAULTS): Promise<boolean> {
  return prisma.$transaction(async (tx) => {
    const { count } = await tx.job.updateMany({
      where: { id: lease.jobId, attempts: lease.attempt, status: 'running' },
      data: {
        status: outcome.status,
        finishedAt: new Date(),
        heartbeatAt: null,
        errorCode: outcome.status === 'failed' ? outcome.code : null,
        errorMessage: outcome.status === 'failed' ? outcome.message.slice(0, 4000) : null,
        ...(progress === undefined ? {} : { progress: toJson(progress) }),
      },
    });
    if (count !== 1) return false;
    await appendEvent(tx, lease.jobId, 'finished', {
      status: outcome.status,
      ...(outcome.status === 'failed' ? { error: { code: outcome.code, message: outcome.message } } : {}),
    });
    faults.hit('finish.in-tx');
    return true;
  }, TX_OPTIONS);
}

/**
 * Hands a running job back to the queue (worker shutdown, or a dependency
 * down: then after `delaySeconds`); it resumes from its last committed round.
 */
export async function releaseJob(prisma: PrismaClient, boss: PgBoss, lease: Lease, reason: string, delaySeconds = 0): Promise<boolean> {
  return prisma.$transaction(async (tx) => {
    const { count } = await tx.job.updateMany({
      where: { id: lease.jobId, attempts: lease.attempt, status: 'running' },
      data: { status: 'queued', workerId: null, heartbeatAt: null },
    });
    if (count !== 1) return false;
    await enqueueInTx(boss, tx, lease.jobId, { startAfterSeconds: delaySeconds });
    await appendEvent(tx, lease.jobId, 'requeued', { reason, ...(delaySeconds > 0 ? { retryInSeconds: delaySeconds } : {}) });
    return true;
  }, TX_OPTIONS);
}

export interface ReapOptions {
  staleSeconds: number;
  maxAttempts: number;
  /** A queued job whose dispatch ended (or vanished) this long ago is re-dispatched. */
  lostDispatchSeconds?: number;
  limit?: number;
}

export interface ReapResult {
  requeued: string[];
  failed: string[];
  cancelled: string[];
  redispatched: string[];
}

/**
 * Recovers jobs whose worker died: running jobs with a stale heartbeat are
 * requeued (or failed as WORKER_LOST after maxAttempts, or cancelled when a
 * cancel was pending), and queued jobs whose pg-boss entry is gone get a new
 * one. Safe to run from every worker at once (SKIP LOCKED).
 */
export async function reapJobs(prisma: PrismaClient, boss: PgBoss, opts: ReapOptions): Promise<ReapResult> {
  const result: ReapResult = { requeued: [], failed: [], cancelled: [], redispatched: [] };
  const limit = opts.limit ?? 20;
  await prisma.$transaction(async (tx) => {
    const stale = await tx.$queryRaw<{ id: string; attempts: number; queue_job_id: string | null; cancel_requested: boolean }[]>`
      SELECT id::text AS id, attempts, queue_job_id::text AS queue_job_id, cancel_requested_at IS NOT NULL AS cancel_requested
      FROM job
      WHERE status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => ${opts.staleSeconds}::float8))
      ORDER BY heartbeat_at NULLS FIRST
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED`;
    for (const job of stale) {
      await cancelDispatchInTx(boss, tx, job.queue_job_id);
      if (job.cancel_requested) {
        await tx.job.update({ where: { id: job.id }, data: { status: 'cancelled', finishedAt: new Date(), workerId: null, heartbeatAt: null } });
        await appendEvent(tx, job.id, 'finished', { status: 'cancelled' });
        result.cancelled.push(job.id);
      } else if (job.attempts >= opts.maxAttempts) {
        const message = `worker stopped responding on attempt ${job.attempts} of ${opts.maxAttempts}`;
        await tx.job.update({
          where: { id: job.id },
          data: { status: 'failed', finishedAt: new Date(), errorCode: 'WORKER_LOST', errorMessage: message, workerId: null, heartbeatAt: null },
        });
        await appendEvent(tx, job.id, 'finished', { status: 'failed', error: { code: 'WORKER_LOST', message } });
        result.failed.push(job.id);
      } else {
        await tx.job.update({ where: { id: job.id }, data: { status: 'queued', workerId: null, heartbeatAt: null } });
        await enqueueInTx(boss, tx, job.id);
        await appendEvent(tx, job.id, 'requeued', { reason: 'worker heartbeat stale', attempt: job.attempts });
        result.requeued.push(job.id);
      }
    }

    const lostAfter = opts.lostDispatchSeconds ?? 60;
    // A dispatch still 'active' for a queued job: the worker that fetched it died before its claim committed
    // (a claim takes milliseconds); pg-boss would only expire it after expireInSeconds.
    const lost = await tx.$queryRaw<{ id: string; stuck: string | null }[]>`
      SELECT j.id::text AS id, CASE WHEN b.state = 'active' THEN b.id::text END AS stuck FROM job j
      LEFT JOIN pgboss.job b ON b.name = ${JOB_QUEUE} AND b.id = j.queue_job_id
      WHERE j.status = 'queued' AND j.cancel_requested_at IS NULL
        AND (b.id IS NULL OR b.state >= 'completed'
             OR (b.state = 'active' AND b.started_on < now() - make_interval(secs => ${lostAfter}::float8)))
        AND j.created_at < now() - make_interval(secs => ${lostAfter}::float8)
        AND (b.completed_on IS NULL OR b.completed_on < now() - make_interval(secs => ${lostAfter}::float8))
      LIMIT ${limit}
      FOR UPDATE OF j SKIP LOCKED`;
    for (const job of lost) {
      await cancelDispatchInTx(boss, tx, job.stuck);
      await enqueueInTx(boss, tx, job.id);
      await appendEvent(tx, job.id, 'requeued', { reason: 'queue entry lost' });
      result.redispatched.push(job.id);
    }
  }, TX_OPTIONS);
  return result;
}
