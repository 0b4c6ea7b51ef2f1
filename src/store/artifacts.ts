// Recording artifacts: bytes into the blob store first (durable), then the
// row. Shared by uploads (service/models.ts) and the round sink. The rows are
// recorded under the blobs' shared locks, re-writing any blob the collector
// removed meanwhile (the protocol is explained in blob-gc.ts). Also the
// tenant's storage accounting.
import { extname } from 'node:path';
import { lockBlobsShared } from './blob-gc.js';
import type { BlobRef, BlobStore } from './blobs.js';
import type { Db, Prisma } from './db.js';

const MEDIA_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.csv': 'text/csv',
  '.md': 'text/markdown',
  '.txt': 'text/plain',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
};

/** Every media type an artifact download can answer with. */
export const ARTIFACT_MEDIA_TYPES: readonly string[] = Object.freeze([...new Set([...Object.values(MEDIA_TYPES), 'application/octet-stream'])]);

export function mediaTypeOf(name: string): string {
  return MEDIA_TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream';
}

export interface ArtifactOwner {
  tenant: string;
  jobId?: string;
  roundId?: string;
  modelId?: string;
  /** An uploaded dataset's files. */
  datasetId?: string;
}

export interface PendingArtifact {
  name: string;
  kind: string;
  blob: BlobRef;
  /** Writes the bytes again if the blob is gone (the collector took it before the row committed). */
  ensure(): Promise<void>;
}

/** Writes every file to the blob store; call before the transaction that records them. */
export async function storeBlobs(blobs: BlobStore, files: Record<string, Uint8Array>, kind: string, prefix = ''): Promise<PendingArtifact[]> {
  const out: PendingArtifact[] = [];
  for (const [name, bytes] of Object.entries(files)) {
    const blob = await blobs.put(bytes);
    const ensure = async () => {
      if ((await blobs.size(blob.key)) !== blob.size) await blobs.put(bytes);
    };
    out.push({ name: `${prefix}${name}`, kind, blob, ensure });
  }
  return out;
}

/**
 * Records artifact rows, replacing rows of the same (job, name) or (model,
 * name). Takes the blobs' shared locks (held until the caller's transaction
 * commits) and makes sure every blob exists under them. `tx` must be an
 * interactive transaction: outside one the locks would end with their own
 * statement, before the rows commit.
 */
export async function recordArtifacts(tx: Db, owner: ArtifactOwner, items: PendingArtifact[]): Promise<void> {
  if (items.length === 0) return;
  await lockBlobsShared(tx, items.map((i) => i.blob.key));
  for (const i of items) await i.ensure();
  const names = items.map((i) => i.name);
  if (owner.jobId) await tx.artifact.deleteMany({ where: { jobId: owner.jobId, name: { in: names } } });
  if (owner.modelId) await tx.artifact.deleteMany({ where: { modelId: owner.modelId, name: { in: names } } });
  if (owner.datasetId) await tx.artifact.deleteMany({ where: { datasetId: owner.datasetId, name: { in: names } } });
  await tx.artifact.createMany({
    data: items.map((i) => ({
      tenant: owner.tenant,
      jobId: owner.jobId ?? null,
      roundId: owner.roundId ?? null,
      modelId: owner.modelId ?? null,
      datasetId: owner.datasetId ?? null,
      kind: i.kind,
      name: i.name,
      sha256: i.blob.sha256,
      sizeBytes: BigInt(i.blob.size),
      storageKey: i.blob.key,
      mediaType: mediaTypeOf(i.name),
    })),
  });
}

/**
 * The bytes a tenant's artifacts hold: each distinct blob the tenant
 * references counted once (a model uploaded twice, or a ticket equal to a
 * round's weights, costs its bytes once). Blobs shared with another tenant
 * count for both: each would hold them alone. For per-tenant storage caps.
 */
export async function tenantStorageBytes(db: Db, tenant: string): Promise<number> {
  const [row] = await db.$queryRaw<{ bytes: string }[]>`
    SELECT COALESCE(sum(size_bytes), 0)::text AS bytes
    FROM (SELECT DISTINCT ON (storage_key) size_bytes FROM artifact WHERE tenant = ${tenant} ORDER BY storage_key) AS blobs`;
  return Number(row?.bytes ?? 0);
}

/** An artifact row with its round's index (what service/dto.ts artifactDto takes). */
export type ArtifactRow = Prisma.ArtifactGetPayload<{ include: { round: { select: { index: true } } } }>;

/**
 * `tenant`'s artifacts, oldest first (5000 at most), optionally of one job
 * or model; of `kind`, or of every kind but the engine's internal `state`.
 */
export function listArtifactRows(
  db: Db,
  tenant: string,
  filter: { jobId?: string; modelId?: string; kind?: string },
  page?: { after: { createdAt: Date; name: string; id: string } | null; take: number },
): Promise<ArtifactRow[]> {
  const where: Prisma.ArtifactWhereInput = { tenant };
  if (filter.jobId !== undefined) where.jobId = filter.jobId;
  if (filter.modelId !== undefined) where.modelId = filter.modelId;
  where.kind = filter.kind ? filter.kind : { not: 'state' };
  // Keyset on the list's own order (the database compares names, so its collation decides both).
  const c = page?.after;
  if (c) where.OR = [{ createdAt: { gt: c.createdAt } }, { createdAt: c.createdAt, name: { gt: c.name } }, { createdAt: c.createdAt, name: c.name, id: { gt: c.id } }];
  return db.artifact.findMany({ where, orderBy: [{ createdAt: 'asc' }, { name: 'asc' }, { id: 'asc' }], include: { round: { select: { index: true } } }, take: page?.take ?? 5000 });
}

/** `tenant`'s artifact `id`, or null (another tenant's is null too). */
export function findArtifact(db: Db, tenant: string, id: string): Promise<ArtifactRow | null> {
  return db.artifact.findFirst({ where: { id, tenant }, include: { round: { select: { index: true } } } });
}
