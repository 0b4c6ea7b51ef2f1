// The model table (SQL only; upload checks and the quota rule are
// service/models.ts's): an uploaded model's row, lookups by tenant, its
// architecture summary and its file artifacts.
import type { Db, Prisma } from './db.js';

export type ModelRow = Prisma.ModelGetPayload<object>;

export function insertModel(tx: Db, data: Prisma.ModelUncheckedCreateInput): Promise<ModelRow> {
  return tx.model.create({ data });
}

/** `tenant`'s model `id`, or null (another tenant's is null too). */
export function findModel(db: Db, tenant: string, id: string): Promise<ModelRow | null> {
  return db.model.findFirst({ where: { id, tenant } });
}

/** Whether `id` is a model of `tenant`. */
export async function modelExists(db: Db, tenant: string, id: string): Promise<boolean> {
  return (await db.model.findFirst({ where: { id, tenant }, select: { id: true } })) !== null;
}

/** `tenant`'s models, newest first (1000 at most), or one page of them strictly after the keyset cursor `after`. */
export function listModelRows(db: Db, tenant: string, page?: { after: { createdAt: Date; id: string } | null; take: number }): Promise<ModelRow[]> {
  const where: Prisma.ModelWhereInput = { tenant };
  const c = page?.after;
  if (c) where.OR = [{ createdAt: { lt: c.createdAt } }, { createdAt: c.createdAt, id: { lt: c.id } }];
  return db.model.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: page?.take ?? 1000 });
}

/** The stored architecture summary of model `id` (any tenant: for an id already resolved), or null. */
export async function modelArchitecture(db: Db, id: string): Promise<Prisma.JsonValue | null> {
  const row = await db.model.findUnique({ where: { id }, select: { architecture: true } });
  return row?.architecture ?? null;
}

/** The files of an uploaded model: each one's name under model.json's folder and its blob key. */
export function modelFiles(db: Db, modelId: string): Promise<Array<{ name: string; storageKey: string }>> {
  return db.artifact.findMany({ where: { modelId, kind: 'model-file' }, select: { name: true, storageKey: true } });
}
