// The dataset table (SQL only; probing and the reference policy are
// service/datasets.ts's, uploads service/dataset-uploads.ts's): a tenant's
// registered references and uploads, their stored probe summaries, and an
// upload's file artifacts.
import type { Db, Prisma } from './db.js';

export type DatasetRow = Prisma.DatasetGetPayload<object>;

/** Registers `reference` for `tenant`, or updates the row it has already. */
export function upsertDataset(db: Db, tenant: string, reference: string, data: { format: string; shapes: object; sha256: string | null }): Promise<DatasetRow> {
  return db.dataset.upsert({
    where: { tenant_reference: { tenant, reference } },
    create: { tenant, reference, ...data },
    update: data,
  });
}

/** `tenant`'s dataset `id`, or null (another tenant's is null too). */
export function findDataset(db: Db, tenant: string, id: string): Promise<DatasetRow | null> {
  return db.dataset.findFirst({ where: { id, tenant } });
}

/** `tenant`'s dataset `id` with its stored probe summary, or null. */
export function findDatasetShapes(db: Db, tenant: string, id: string): Promise<{ id: string; shapes: Prisma.JsonValue } | null> {
  return db.dataset.findFirst({ where: { id, tenant }, select: { id: true, shapes: true } });
}

/** `tenant`'s datasets, newest first (1000 at most), or one page of them strictly after the keyset cursor `after`. */
export function listDatasetRows(db: Db, tenant: string, page?: { after: { createdAt: Date; id: string } | null; take: number }): Promise<DatasetRow[]> {
  const where: Prisma.DatasetWhereInput = { tenant };
  const c = page?.after;
  if (c) where.OR = [{ createdAt: { lt: c.createdAt } }, { createdAt: c.createdAt, id: { lt: c.id } }];
  return db.dataset.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: page?.take ?? 1000 });
}

/** The reference registered as dataset `id` (any tenant: for a job's stored spec), or null once deleted. */
export async function datasetReference(db: Db, id: string): Promise<string | null> {
  const row = await db.dataset.findUnique({ where: { id }, select: { reference: true } });
  return row?.reference ?? null;
}

/** `tenant`'s dataset registered as `reference` (an upload's `upload:<sha256>`), or null. */
export function findDatasetByReference(db: Db, tenant: string, reference: string): Promise<DatasetRow | null> {
  return db.dataset.findUnique({ where: { tenant_reference: { tenant, reference } } });
}

/** A new dataset row (an upload: the caller records its file artifacts in the same transaction). */
export function insertDataset(db: Db, data: { tenant: string; reference: string; format: string; shapes: object; sha256: string | null }): Promise<DatasetRow> {
  return db.dataset.create({ data });
}

/** An uploaded dataset's files (name and blob key), by name; empty for a reference. */
export function datasetFiles(db: Db, id: string): Promise<{ name: string; storageKey: string }[]> {
  return db.artifact.findMany({ where: { datasetId: id, kind: 'dataset-file' }, select: { name: true, storageKey: true }, orderBy: { name: 'asc' } });
}
