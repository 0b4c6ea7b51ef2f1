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
import { deleteDatasetRow, deleteJobRow, deleteModelRow } from '../store/deletion.js';
import type { ServiceContext } from './context.js';
import { notFound, ServiceError } from './errors.js';
import { isUuid } from './ids.js';

const log = childLogger({ module: 'deletion' });

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

/**
 * Deletes an uploaded model and its files. A submit that names the model
 * concurrently either commits first (its job is then seen: 409) or fails
 * its foreign-key check after this commit (NOT_FOUND); see store/deletion.ts.
 */
export async function deleteModel(ctx: ServiceContext, tenant: string, id: string): Promise<void> {
  if (!isUuid(id)) throw notFound('model', id);
  const done = await deleteModelRow(ctx.prisma, tenant, id);
  if (done.kind === 'missing') throw notFound('model', id);
  if (done.kind === 'blocked') {
    throw new ServiceError('FAILED_PRECONDITION', `model ${id} is used by job ${done.job.id}, which is ${done.job.status}; cancel it or let it finish, then delete the model`);
  }
  await collectAfterDelete(ctx, done.blobKeys, `model ${id}`);
}

/** Deletes a registered dataset (an upload's files with it, their blobs collected). */
export async function deleteDataset(ctx: ServiceContext, tenant: string, id: string): Promise<void> {
  if (!isUuid(id)) throw notFound('dataset', id);
  const done = await deleteDatasetRow(ctx.prisma, tenant, id);
  if (done.kind === 'missing') throw notFound('dataset', id);
  if (done.kind === 'blocked') {
    throw new ServiceError('FAILED_PRECONDITION', `dataset ${id} is used by job ${done.job.id}, which is ${done.job.status}; cancel it or let it finish, then delete the dataset`);
  }
  await collectAfterDelete(ctx, done.blobKeys, `dataset ${id}`);
}

/** Deletes a finished job with its rounds, events and artifacts. */
export async function deleteJob(ctx: ServiceContext, tenant: string, id: string): Promise<void> {
  if (!isUuid(id)) throw notFound('job', id);
  const done = await deleteJobRow(ctx.prisma, tenant, id);
  if (done.kind === 'missing') throw notFound('job', id);
  if (done.kind === 'blocked') throw new ServiceError('FAILED_PRECONDITION', `job ${id} is ${done.job.status}; cancel it first, then delete it once it is cancelled`);
  await collectAfterDelete(ctx, done.blobKeys, `job ${id}`);
}
