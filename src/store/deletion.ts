// Deleting a model, dataset or job row (SQL only; the rules and messages are
// service/deletion.ts's). Each is one transaction that locks the row, looks
// for a queued or running job that still needs it, and deletes it (rounds,
// events and artifact rows go with it by ON DELETE CASCADE). It returns the
// blob keys the deleted rows referenced, for the collector to check after
// the commit.
import { TX_OPTIONS, type Prisma, type PrismaClient } from './db.js';

const ACTIVE = ['queued', 'running'] as const;

/** What a delete found: nothing of the tenant's, a job in the way, or done (with the blob keys to collect). */
export type DeleteOutcome = { kind: 'missing' } | { kind: 'blocked'; job: { id: string; status: string } } | { kind: 'deleted'; blobKeys: string[] };

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
 * Deletes `tenant`'s model `id` and its file artifacts unless a queued or
 * running job uses it. A submit that names the model concurrently either
 * commits first (its job is then seen here) or fails its foreign-key check
 * after this commit: the row lock taken here conflicts with the key-share
 * lock the job insert takes.
 */
export async function deleteModelRow(prisma: PrismaClient, tenant: string, id: string): Promise<DeleteOutcome> {
  return prisma.$transaction(async (tx): Promise<DeleteOutcome> => {
    const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id::text AS id FROM model WHERE id = ${id}::uuid AND tenant = ${tenant} FOR UPDATE`;
    if (rows.length === 0) return { kind: 'missing' };
    const user = await activeUser(tx, 'model_id', id);
    if (user) return { kind: 'blocked', job: user };
    const files = await tx.artifact.findMany({ where: { modelId: id }, select: { storageKey: true } });
    await tx.model.delete({ where: { id } });
    return { kind: 'deleted', blobKeys: files.map((f) => f.storageKey) };
  }, TX_OPTIONS);
}

/** Deletes `tenant`'s dataset `id` (an upload's file artifacts go with it) unless a queued or running job uses it. */
export async function deleteDatasetRow(prisma: PrismaClient, tenant: string, id: string): Promise<DeleteOutcome> {
  return prisma.$transaction(async (tx): Promise<DeleteOutcome> => {
    const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id::text AS id FROM dataset WHERE id = ${id}::uuid AND tenant = ${tenant} FOR UPDATE`;
    if (rows.length === 0) return { kind: 'missing' };
    const user = await activeUser(tx, 'dataset_id', id);
    if (user) return { kind: 'blocked', job: user };
    const files = await tx.artifact.findMany({ where: { datasetId: id }, select: { storageKey: true } });
    await tx.dataset.delete({ where: { id } });
    return { kind: 'deleted', blobKeys: files.map((f) => f.storageKey) };
  }, TX_OPTIONS);
}

/** Deletes `tenant`'s job `id` with its rounds, events and artifacts unless it is queued or running (then `blocked` names itself). */
export async function deleteJobRow(prisma: PrismaClient, tenant: string, id: string): Promise<DeleteOutcome> {
  return prisma.$transaction(async (tx): Promise<DeleteOutcome> => {
    const rows = await tx.$queryRaw<{ status: string }[]>`SELECT status::text AS status FROM job WHERE id = ${id}::uuid AND tenant = ${tenant} FOR UPDATE`;
    const job = rows[0];
    if (!job) return { kind: 'missing' };
    if ((ACTIVE as readonly string[]).includes(job.status)) return { kind: 'blocked', job: { id, status: job.status } };
    const artifacts = await tx.artifact.findMany({ where: { jobId: id }, select: { storageKey: true } });
    await tx.job.delete({ where: { id } });
    return { kind: 'deleted', blobKeys: artifacts.map((a) => a.storageKey) };
  }, TX_OPTIONS);
}
