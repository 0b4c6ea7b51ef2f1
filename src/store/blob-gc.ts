// Collecting blobs no artifact row references any more (after a model or job
// is deleted, or a write whose row never committed), without ever losing a
// blob that a concurrent writer is about to reference.
//
// Why advisory locks and not a refcount table with a grace period: blobs are
// content-addressed, so an upload or a round commit may write bytes that are
// already stored (same sha256) at the very moment the collector decides they
// are unreferenced. A grace period only makes that race unlikely (a writer
// slower than N seconds between `put` and its commit still loses its blob); a
// lock per key makes it impossible, and needs no extra table to keep in step
// with the artifact rows. The protocol:
//
// - Writers (store/artifacts.ts recordArtifacts) write the bytes first, outside
//   any transaction, then in the transaction that inserts the rows take a
//   SHARED transaction-level advisory lock on each key, check the blob is
//   still there and write it again if it is not, and commit the rows. The
//   lock is released at commit, once the rows are visible.
// - The collector takes the EXCLUSIVE lock on one key, counts the rows that
//   reference it (a fresh statement under READ COMMITTED: it sees every row
//   committed before it got the lock), unlinks the blob only when the count
//   is 0, and commits.
// Either the writer's commit comes first (the collector then sees its row and
// keeps the blob) or the collector's unlink does (the writer then finds the
// blob missing under its lock and writes it again before its rows commit).
// Writers only share the lock, so they never wait for each other; the
// collector holds one key's lock at a time and waits for nothing while it
// holds it, so no deadlock can form.
//
// Lock keys: the two-int4 advisory key space (it does not overlap the bigint
// one that migrations and pg-boss use), a fixed class and the first 32 bits of
// the sha256. Two keys sharing those bits only share a lock: more waiting,
// never a wrong answer.
import type { BlobStore } from './blobs.js';
import { TX_OPTIONS, type Db, type PrismaClient } from './db.js';

/** "tsbl" in ASCII: the advisory-lock class of blob keys (pg_locks.classid). */
export const BLOB_LOCK_CLASS = 0x7473626c;

const HEX64 = /^[0-9a-f]{64}$/;

/** The int4 lock id of a blob key. */
export function blobLockId(key: string): number {
  if (!HEX64.test(key)) throw new Error(`not a blob key: ${key}`);
  return Number.parseInt(key.slice(0, 8), 16) | 0;
}

/** Writers: shared locks on these keys until the caller's transaction ends. */
export async function lockBlobsShared(tx: Db, keys: string[]): Promise<void> {
  const ids = [...new Set(keys.map(blobLockId))].sort((a, b) => a - b);
  if (ids.length === 0) return;
  await tx.$executeRaw`SELECT pg_advisory_xact_lock_shared(${BLOB_LOCK_CLASS}::int4, k) FROM unnest(${ids}::int4[]) AS k`;
}

export interface CollectResult {
  /** Keys whose blob was removed. */
  removed: string[];
  /** Keys still referenced (kept). */
  kept: string[];
}

/**
 * Removes each blob that no artifact row references, re-checking under the
 * key's exclusive lock. Call after the transaction that deleted the rows has
 * committed; safe to call for any key, any number of times, from any process.
 */
export async function collectBlobs(prisma: PrismaClient, blobs: BlobStore, keys: Iterable<string>): Promise<CollectResult> {
  const result: CollectResult = { removed: [], kept: [] };
  for (const key of new Set(keys)) {
    if (!HEX64.test(key)) continue;
    const removed = await prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${BLOB_LOCK_CLASS}::int4, ${blobLockId(key)}::int4)`;
      const [row] = await tx.$queryRaw<{ referenced: boolean }[]>`
        SELECT EXISTS (SELECT 1 FROM artifact WHERE storage_key = ${key}) AS referenced`;
      if (row?.referenced) return false;
      // Unlinked before the commit releases the lock: no writer can be between "blob exists" and its commit now.
      await blobs.delete(key);
      return true;
    }, TX_OPTIONS);
    (removed ? result.removed : result.kept).push(key);
  }
  return result;
}

export interface SweepOptions {
  /**
   * Blobs written more recently than this are left for a later sweep. Not
   * needed for safety (writers re-check under the lock), it spares in-flight
   * writes from writing their bytes twice.
   */
  minAgeSeconds?: number;
  /** Temp files of writes that died are removed after this long (default 1 h). */
  tempMaxAgeSeconds?: number;
}

export interface SweepResult extends CollectResult {
  tempRemoved: number;
}

/**
 * The orphan sweep: every stored blob that no row references goes (through
 * collectBlobs, so under the same lock), and temp files of dead writes too.
 */
export async function sweepBlobs(prisma: PrismaClient, blobs: BlobStore, opts: SweepOptions = {}): Promise<SweepResult> {
  const minAgeMs = (opts.minAgeSeconds ?? 0) * 1000;
  const result: SweepResult = { removed: [], kept: [], tempRemoved: 0 };
  let batch: string[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    // One query filters the referenced keys out; only candidates pay for a locked re-check.
    const referenced = await prisma.$queryRaw<{ storage_key: string }[]>`
      SELECT DISTINCT storage_key FROM artifact WHERE storage_key = ANY(${batch}::text[])`;
    const keep = new Set(referenced.map((r) => r.storage_key));
    const r = await collectBlobs(prisma, blobs, batch.filter((k) => !keep.has(k)));
    result.removed.push(...r.removed);
    result.kept.push(...r.kept);
    batch = [];
  };
  for await (const blob of blobs.list()) {
    if (Date.now() - blob.modifiedAt.getTime() < minAgeMs) continue;
    batch.push(blob.key);
    if (batch.length >= 500) await flush();
  }
  await flush();
  result.tempRemoved = await blobs.removeStaleTemp((opts.tempMaxAgeSeconds ?? 3600) * 1000);
  return result;
}
