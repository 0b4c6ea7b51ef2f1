// Job events: an append-only log per job whose ids are the SSE / WatchJob
// cursor. Ids come from one sequence, which by itself does not order commits
// (a transaction that took id 10 may commit after the one that took 11, and a
// reader at cursor 11 would never see 10). Every insert therefore first locks
// its job's row, so for any one job ids are taken in commit order.
import { toJson, type Db, type Prisma } from './db.js';
import { enqueueWebhookEvent, webhookEventOf } from './webhooks.js';

export class JobGoneError extends Error {
  override name = 'JobGoneError';
}

/**
 * Appends an event inside the caller's transaction; returns its id. A
 * committed round and a job's end also enqueue their webhook deliveries here,
 * in the same transaction (store/webhooks.ts).
 */
export async function appendEvent(tx: Db, jobId: string, kind: string, payload: unknown): Promise<bigint> {
  const locked = await tx.$queryRaw<{ id: string }[]>`SELECT id::text FROM job WHERE id = ${jobId}::uuid FOR UPDATE`;
  if (locked.length === 0) throw new JobGoneError(`job ${jobId} does not exist`);
  const event = await tx.event.create({ data: { jobId, kind, payload: toJson(payload) }, select: { id: true } });
  const hook = webhookEventOf(jobId, kind, payload);
  if (hook) await enqueueWebhookEvent(tx, hook);
  return event.id;
}

export type EventRow = Prisma.EventGetPayload<object>;

/** A job's events with ids above `after`, oldest first, `limit` at most. */
export function eventsAfter(db: Db, jobId: string, after: bigint, limit: number): Promise<EventRow[]> {
  return db.event.findMany({ where: { jobId, id: { gt: after } }, orderBy: { id: 'asc' }, take: limit });
}
