// The periodic storage pass every worker runs (queue/worker.ts): finished jobs
// older than the retention go with their rounds, events and artifact rows,
// then the blobs nobody references any more. Safe with several workers: each
// batch of jobs is claimed with SKIP LOCKED (two workers never pick the same
// job, and a job being deleted through the API is skipped), and blobs are
// collected under their per-key locks (blob-gc.ts).
import { collectBlobs, sweepBlobs, type SweepOptions } from './blob-gc.js';
import type { BlobStore } from './blobs.js';
import { TX_OPTIONS, type PrismaClient } from './db.js';

export interface RetentionOptions {
  /** Finished (succeeded, failed, cancelled) jobs older than this go. */
  olderThanSeconds: number;
  /** Jobs per transaction (default 100). */
  batch?: number;
  /** Batches per call (default 10), so one pass stays bounded. */
  maxBatches?: number;
}

export interface RetentionResult {
  jobs: string[];
  blobsRemoved: number;
}

/** Deletes finished jobs older than the retention, and collects their blobs. */
export async function deleteExpiredJobs(prisma: PrismaClient, blobs: BlobStore, opts: RetentionOptions): Promise<RetentionResult> {
  const result: RetentionResult = { jobs: [], blobsRemoved: 0 };
  const batch = opts.batch ?? 100;
  for (let i = 0; i < (opts.maxBatches ?? 10); i++) {
    const { ids, keys } = await prisma.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<{ id: string }[]>`
        SELECT id::text AS id FROM job
        WHERE status IN ('succeeded', 'failed', 'cancelled')
          AND COALESCE(finished_at, created_at) < now() - make_interval(secs => ${opts.olderThanSeconds}::float8)
        ORDER BY finished_at
        LIMIT ${batch}
        FOR UPDATE SKIP LOCKED`;
      const ids = rows.map((r) => r.id);
      if (ids.length === 0) return { ids, keys: [] as string[] };
      const keys = await tx.$queryRaw<{ storage_key: string }[]>`
        SELECT DISTINCT storage_key FROM artifact WHERE job_id = ANY(${ids}::uuid[])`;
      await tx.$executeRaw`DELETE FROM job WHERE id = ANY(${ids}::uuid[])`;
      return { ids, keys: keys.map((k) => k.storage_key) };
    }, TX_OPTIONS);
    if (ids.length === 0) break;
    result.jobs.push(...ids);
    result.blobsRemoved += (await collectBlobs(prisma, blobs, keys)).removed.length;
    if (ids.length < batch) break;
  }
  return result;
}

export interface StoragePassOptions {
  /** 0: keep finished jobs forever. */
  retentionSeconds: number;
  sweep?: SweepOptions;
}

export interface StoragePassResult {
  expiredJobs: string[];
  blobsRemoved: number;
  tempRemoved: number;
}

/** Retention (when on), then the orphan sweep. */
export async function storagePass(prisma: PrismaClient, blobs: BlobStore, opts: StoragePassOptions): Promise<StoragePassResult> {
  const expired = opts.retentionSeconds > 0 ? await deleteExpiredJobs(prisma, blobs, { olderThanSeconds: opts.retentionSeconds }) : { jobs: [], blobsRemoved: 0 };
  const swept = await sweepBlobs(prisma, blobs, opts.sweep);
  return { expiredJobs: expired.jobs, blobsRemoved: expired.blobsRemoved + swept.removed.length, tempRemoved: swept.tempRemoved };
}
