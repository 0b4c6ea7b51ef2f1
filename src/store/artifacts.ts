// Recording artifacts: bytes into the blob store first (durable), then the
// row. Shared by uploads (service/models.ts) and the round sink.
import { extname } from 'node:path';
import type { BlobRef, BlobStore } from './blobs.js';
import type { Db } from './db.js';

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

export function mediaTypeOf(name: string): string {
  return MEDIA_TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream';
}

export interface ArtifactOwner {
  tenant: string;
  jobId?: string;
  roundId?: string;
  modelId?: string;
}

export interface PendingArtifact {
  name: string;
  kind: string;
  blob: BlobRef;
}

/** Writes every file to the blob store; call before the transaction that records them. */
export async function storeBlobs(blobs: BlobStore, files: Record<string, Uint8Array>, kind: string, prefix = ''): Promise<PendingArtifact[]> {
  const out: PendingArtifact[] = [];
  for (const [name, bytes] of Object.entries(files)) {
    out.push({ name: `${prefix}${name}`, kind, blob: await blobs.put(bytes) });
  }
  return out;
}

/** Records artifact rows, replacing rows of the same (job, name) or (model, name). */
export async function recordArtifacts(tx: Db, owner: ArtifactOwner, items: PendingArtifact[]): Promise<void> {
  if (items.length === 0) return;
  const names = items.map((i) => i.name);
  if (owner.jobId) await tx.artifact.deleteMany({ where: { jobId: owner.jobId, name: { in: names } } });
  if (owner.modelId) await tx.artifact.deleteMany({ where: { modelId: owner.modelId, name: { in: names } } });
  await tx.artifact.createMany({
    data: items.map((i) => ({
      tenant: owner.tenant,
      jobId: owner.jobId ?? null,
      roundId: owner.roundId ?? null,
      modelId: owner.modelId ?? null,
      kind: i.kind,
      name: i.name,
      sha256: i.blob.sha256,
      sizeBytes: BigInt(i.blob.size),
      storageKey: i.blob.key,
      mediaType: mediaTypeOf(i.name),
    })),
  });
}
