// Deleting a tenant's models, datasets and jobs. Each delete is one
// transaction that locks the row, checks it may go, and deletes it (rounds,
// events and artifact rows go with it by ON DELETE CASCADE); the blobs that
// lost their last reference are collected after the commit (store/blob-gc.ts).
//
// Semantics (README, "Deleting"): another tenant's id is NOT_FOUND like a
// missing one; a queued or running job is not deleted (FAILED_PRECONDITION:
// cancel it first), because cancelling a running job is cooperative and a
// delete that waited for it would hang a request for a training step; a model
// or dataset that a queued or running job uses is not deleted either. Jobs
// that finished keep their rounds and artifacts when their model or dataset
// goes (their spec still names `model:<id>`; model_id / dataset_id become null).
import { childLogger } from '../runtime/logger.js';
import { collectBlobs } from '../store/blob-gc.js';
import { TX_OPTIONS, type Prisma } from '../store/db.js';
import type { ServiceContext } from './context.js';
import { notFound, ServiceError } from './errors.js';
import { isUuid } from './ids.js';

const log = childLogger({ module: 'deletion' });

const ACTIVE = ['queued', 'running'] as const;

/**
 * The rows are gone (committed) by the time this runs, so the delete has
 * happened whatever befalls the blobs: a failure here is logged, not
 * answered, and the storage pass's orphan sweep collects what is left.
 */
async function collectAfterDelete(ctx: ServiceContext, keys: string[], what: string): Promise<void> {
  try {
    await collectBlobs(ctx.prisma, ctx.blobs, keys);
  } catch (err) {
    log.warn({ err, what, blobs: keys.length }, 'blob collection after a delete failed; the storage pass will retry');
  }
}

/** A queued or running job that uses the model / dataset, if any (read after the row lock, so it sees every committed submit). */
async function activeUser(tx: Prisma.TransactionClient, column: 'model_id' | 'dataset_id', id: string): Promise<{ id: string; status: string } | null> {
  const rows =
    column === 'model_id'
      ? await tx.$queryRaw<{ id: string; status: string }[]>`
          SELECT id::text AS id, status::text AS status FROM job WHERE model_id = ${id}::uuid AND status::text = ANY(${[...ACTIVE]}::text[]) LIMIT 1`
      : await tx.$queryRaw<{ id: string; status: string }[]>`
          SELECT id::text AS id, status::text AS status FROM job WHERE dataset_id = ${id}::uuid AND status::text = ANY(${[...ACTIVE]}::text[]) LIMIT 1`;
  return rows[0] ?? null;
}

/**
 * Deletes an uploaded model and its files. A submit that names the model
 * concurrently either commits first (its job is then seen here: 409) or
 * fails its foreign-key check after this commit (NOT_FOUND): the row lock
 * taken here conflicts with the key-share lock the job insert takes.
 */
export async function deleteModel(ctx: ServiceContext, tenant: string, id: string): Promise<void> {
  if (!isUuid(id)) throw notFound('model', id);
  const keys = await ctx.prisma.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id::text AS id FROM model WHERE id = ${id}::uuid AND tenant = ${tenant} FOR UPDATE`;
    if (rows.length === 0) throw notFound('model', id);
    const user = await activeUser(tx, 'model_id', id);
    if (user) throw new ServiceError('FAILED_PRECONDITION', `model ${id} is used by job ${user.id}, which is ${user.status}; cancel it or let it finish, then delete the model`);
    const files = await tx.artifact.findMany({ where: { modelId: id }, select: { storageKey: true } });
    await tx.model.delete({ where: { id } });
    return files.map((f) => f.storageKey);
  }, TX_OPTIONS);
  await collectAfterDelete(ctx, keys, `model ${id}`);
}

/** Deletes a registered dataset reference (no bytes are stored for it). */
export async function deleteDataset(ctx: ServiceContext, tenant: string, id: string): Promise<void> {
  if (!isUuid(id)) throw notFound('dataset', id);
  await ctx.prisma.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id::text AS id FROM dataset WHERE id = ${id}::uuid AND tenant = ${tenant} FOR UPDATE`;
    if (rows.length === 0) throw notFound('dataset', id);
    const user = await activeUser(tx, 'dataset_id', id);
    if (user) throw new ServiceError('FAILED_PRECONDITION', `dataset ${id} is used by job ${user.id}, which is ${user.status}; cancel it or let it finish, then delete the dataset`);
    await tx.dataset.delete({ where: { id } });
  }, TX_OPTIONS);
}

/** Deletes a finished job with its rounds, events and artifacts. */
export async function deleteJob(ctx: ServiceContext, tenant: string, id: string): Promise<void> {
  if (!isUuid(id)) throw notFound('job', id);
  const keys = await ctx.prisma.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<{ status: string }[]>`SELECT status::text AS status FROM job WHERE id = ${id}::uuid AND tenant = ${tenant} FOR UPDATE`;
    const job = rows[0];
    if (!job) throw notFound('job', id);
    if ((ACTIVE as readonly string[]).includes(job.status)) {
      throw new ServiceError('FAILED_PRECONDITION', `job ${id} is ${job.status}; cancel it first, then delete it once it is cancelled`);
    }
    const artifacts = await tx.artifact.findMany({ where: { jobId: id }, select: { storageKey: true } });
    await tx.job.delete({ where: { id } });
    return artifacts.map((a) => a.storageKey);
  }, TX_OPTIONS);
  await collectAfterDelete(ctx, keys, `job ${id}`);
}
