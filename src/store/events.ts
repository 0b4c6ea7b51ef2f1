// Job events: an append-only log per job whose ids are the SSE / WatchJob
// cursor. Ids come from one sequence, which by itself does not order commits
// (a transaction that took id 10 may commit after the one that took 11, and a
// reader at cursor 11 would never see 10). Every insert therefore first locks
// its job's row, so for any one job ids are taken in commit order.
import type { Db } from './db.js';
import { toJson } from './db.js';

export class JobGoneError extends Error {
  override name = 'JobGoneError';
}

/** Appends an event inside the caller's transaction; returns its id. */
export async function appendEvent(tx: Db, jobId: string, kind: string, payload: unknown): Promise<bigint> {
  const locked = await tx.$queryRaw<{ id: string }[]>`SELECT id::text FROM job WHERE id = ${jobId}::uuid FOR UPDATE`;
  if (locked.length === 0) throw new JobGoneError(`job ${jobId} does not exist`);
  const event = await tx.event.create({ data: { jobId, kind, payload: toJson(payload) }, select: { id: true } });
  return event.id;
}
