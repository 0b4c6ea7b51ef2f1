// Webhooks in SQL: tenants' endpoints and callback secrets, and deliveries,
// one row per event and target (the job's callback URL, or an endpoint), each
// written in the transaction of the state change it reports (events.ts
// appendEvent calls enqueueWebhookEvent) together with its pg-boss dispatch on
// WEBHOOK_QUEUE. A crash therefore loses no event: either the round or the
// job's end and its deliveries commit, or neither does. The event id is
// derived from (job, type, round), and (event id, target) is unique, so an
// event is enqueued at most once per target however often the caller retries.
//
// Sending is queue/webhooks.ts's: it claims a delivery (an attempt counted,
// a short lock), POSTs it, and records the answer here (recordAttempt),
// scheduling the next try through pg-boss in the same transaction.
import { createHash } from 'node:crypto';
import type PgBoss from 'pg-boss';
import { TX_OPTIONS, type Db, type Prisma, type PrismaClient } from './db.js';
import { BOSS_SCHEMA, insertQueueSql, txExecutor } from './dispatch.js';
import { CHANNELS } from './notify.js';

export const WEBHOOK_QUEUE = 'ticketsmith-webhooks';

export const WEBHOOK_EVENTS = Object.freeze(['round.committed', 'job.succeeded', 'job.failed', 'job.cancelled'] as const);
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

export const DELIVERY_STATES = Object.freeze(['pending', 'delivered', 'failed'] as const);
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export type EndpointRow = Prisma.WebhookEndpointGetPayload<object>;
export type DeliveryRow = Prisma.WebhookDeliveryGetPayload<object>;

export interface QueuedDeliveryData {
  deliveryId: string;
}

/** What a delivery's body says (`data`), beside its id, type and time. */
export interface WebhookEvent {
  jobId: string;
  type: WebhookEventType;
  status: string;
  round?: number;
  error?: { code: string; message: string };
}

/** The event id: the same for every retry and every target of one event. */
export function webhookEventId(jobId: string, type: WebhookEventType, round?: number): string {
  return `evt_${createHash('sha256').update(`${jobId}|${type}|${round ?? ''}`).digest('hex').slice(0, 32)}`;
}

/**
 * The webhook event a job event row stands for, if any: a committed round
 * ('round') or a job's end ('finished' with its status).
 */
export function webhookEventOf(jobId: string, kind: string, payload: unknown): WebhookEvent | null {
  const p = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, unknown>;
  if (kind === 'round' && typeof p.round === 'number') return { jobId, type: 'round.committed', status: 'running', round: p.round };
  if (kind === 'finished' && (p.status === 'succeeded' || p.status === 'failed' || p.status === 'cancelled')) {
    const err = p.error as { code?: unknown; message?: unknown } | undefined;
    return {
      jobId,
      type: `job.${p.status}`,
      status: p.status,
      ...(err && typeof err.code === 'string' ? { error: { code: err.code, message: String(err.message ?? '') } } : {}),
    };
  }
  return null;
}

/**
 * Enqueues `event` to every target in the caller's transaction: the job's
 * callback URL and each of the tenant's endpoints subscribed to its type. One
 * statement writes the delivery rows (none twice: ON CONFLICT on event id and
 * target), their dispatches, and wakes the dispatchers. Returns how many
 * deliveries were written.
 *   $1 job id, $2 type, $3 event id, $4 body (JSON)
 */
export async function enqueueWebhookEvent(tx: Db, event: WebhookEvent): Promise<number> {
  const id = webhookEventId(event.jobId, event.type, event.round);
  const body = {
    id,
    type: event.type,
    createdAt: new Date().toISOString(),
    data: { jobId: event.jobId, status: event.status, ...(event.round === undefined ? {} : { round: event.round }), ...(event.error ? { error: event.error } : {}) },
  };
  const rows = await tx.$queryRawUnsafe<Array<{ n: number }>>(
    `
WITH j AS (SELECT id, tenant, callback_url FROM job WHERE id = $1::uuid),
targets AS (
  SELECT 'callback' AS target, NULL::uuid AS endpoint_id, j.callback_url AS url FROM j WHERE j.callback_url IS NOT NULL
  UNION ALL
  SELECT 'endpoint:' || e.id::text, e.id, e.url FROM webhook_endpoint e JOIN j ON e.tenant = j.tenant WHERE $2 = ANY(e.events)
), inserted AS (
  INSERT INTO webhook_delivery (tenant, event_id, event_type, job_id, endpoint_id, target, url, payload, next_attempt_at, queue_job_id)
  SELECT j.tenant, $3, $2, j.id, t.endpoint_id, t.target, t.url, $4::jsonb, now(), gen_random_uuid()
  FROM targets t CROSS JOIN j
  ON CONFLICT (event_id, target) DO NOTHING
  RETURNING id, queue_job_id
), dispatch AS (
  ${insertQueueSql(WEBHOOK_QUEUE, `(SELECT queue_job_id AS dispatch_id, jsonb_build_object('deliveryId', id::text) AS data, now() AS start_after FROM inserted)`)}
)
SELECT count(*)::int AS n, pg_notify('${CHANNELS.webhooks}', '') IS NULL AS _ FROM inserted`,
    event.jobId,
    event.type,
    id,
    JSON.stringify(body),
  );
  return rows[0]?.n ?? 0;
}

// ---------------------------------------------------------------- secrets and endpoints

/** Replaces the tenant's callback secret (or sets the first one). */
export async function setCallbackSecret(db: Db, tenant: string, secret: string): Promise<void> {
  await db.webhookSecret.upsert({ where: { tenant }, create: { tenant, secret }, update: { secret, createdAt: new Date() } });
}

export async function hasCallbackSecret(db: Db, tenant: string): Promise<boolean> {
  return (await db.webhookSecret.count({ where: { tenant } })) > 0;
}

export function countEndpoints(db: Db, tenant: string): Promise<number> {
  return db.webhookEndpoint.count({ where: { tenant } });
}

export function insertEndpoint(db: Db, row: { tenant: string; url: string; secret: string; events: string[] }): Promise<EndpointRow> {
  return db.webhookEndpoint.create({ data: row });
}

type After = { createdAt: Date; id: string } | null;

/** Keyset condition for newest-first pages (createdAt desc, id desc). */
function olderThan(after: After) {
  return after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {};
}

export function listEndpointRows(db: Db, tenant: string, q: { after: After; take: number }): Promise<EndpointRow[]> {
  return db.webhookEndpoint.findMany({ where: { tenant, ...olderThan(q.after) }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: q.take });
}

/** Deletes `tenant`'s endpoint (its pending deliveries with it); false when there is none. */
export async function deleteEndpointRow(db: Db, tenant: string, id: string): Promise<boolean> {
  const { count } = await db.webhookEndpoint.deleteMany({ where: { id, tenant } });
  return count === 1;
}

export function listDeliveryRows(
  db: Db,
  tenant: string,
  q: { jobId?: string; status?: DeliveryState; after: After; take: number },
): Promise<DeliveryRow[]> {
  return db.webhookDelivery.findMany({
    where: { tenant, ...(q.jobId ? { jobId: q.jobId } : {}), ...(q.status ? { status: q.status } : {}), ...olderThan(q.after) },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: q.take,
  });
}

// ---------------------------------------------------------------- sending

/** A delivery taken for one attempt: what to send, where, signed with which secret. */
export interface ClaimedDelivery {
  id: string;
  eventId: string;
  eventType: string;
  url: string;
  payload: unknown;
  /** This attempt's number (1 for the first). */
  attempt: number;
  /** The endpoint's secret, or the tenant's callback secret; null when the tenant has none. */
  secret: string | null;
}

/**
 * Takes a pending delivery for one attempt: counts it and locks the row for
 * `lockSeconds` (another dispatcher handed the same delivery skips it). Null
 * when it is delivered, failed, gone, or held by an attempt in flight.
 */
export async function claimDelivery(prisma: PrismaClient, id: string, lockSeconds: number): Promise<ClaimedDelivery | null> {
  const rows = await prisma.$queryRaw<Array<{ id: string; event_id: string; event_type: string; url: string; payload: unknown; attempts: number; secret: string | null }>>`
    UPDATE webhook_delivery d
    SET attempts = d.attempts + 1, locked_until = now() + make_interval(secs => ${lockSeconds}::float8), updated_at = now()
    WHERE d.id = ${id}::uuid AND d.status = 'pending' AND (d.locked_until IS NULL OR d.locked_until < now())
    RETURNING d.id::text AS id, d.event_id, d.event_type, d.url, d.payload, d.attempts,
      COALESCE((SELECT e.secret FROM webhook_endpoint e WHERE e.id = d.endpoint_id),
               CASE WHEN d.endpoint_id IS NULL THEN (SELECT s.secret FROM webhook_secret s WHERE s.tenant = d.tenant) END) AS secret`;
  const r = rows[0];
  return r ? { id: r.id, eventId: r.event_id, eventType: r.event_type, url: r.url, payload: r.payload, attempt: r.attempts, secret: r.secret } : null;
}

/** How one attempt ended. */
export type AttemptOutcome =
  | { kind: 'delivered'; statusCode: number }
  | { kind: 'retry'; statusCode: number | null; error: string; delaySeconds: number }
  | { kind: 'failed'; statusCode: number | null; error: string };

/**
 * Records an attempt of a claimed delivery and, for a retry, its next
 * dispatch (pg-boss, delayed) in the same transaction; fenced by the attempt
 * number, so a late answer of an attempt given up on writes nothing.
 */
export async function recordAttempt(prisma: PrismaClient, boss: PgBoss, d: ClaimedDelivery, outcome: AttemptOutcome): Promise<boolean> {
  return prisma.$transaction(async (tx) => {
    const code = outcome.statusCode;
    const error = outcome.kind === 'delivered' ? null : outcome.error.slice(0, 500);
    const status: DeliveryState = outcome.kind === 'retry' ? 'pending' : outcome.kind;
    const delay = outcome.kind === 'retry' ? outcome.delaySeconds : 0;
    const n = await tx.$executeRaw`
      UPDATE webhook_delivery SET status = ${status}, last_status_code = ${code}, last_error = ${error}, locked_until = NULL, updated_at = now(),
        next_attempt_at = CASE WHEN ${status} = 'pending' THEN now() + make_interval(secs => ${delay}::float8) END,
        delivered_at = CASE WHEN ${status} = 'delivered' THEN now() END
      WHERE id = ${d.id}::uuid AND attempts = ${d.attempt} AND status = 'pending'`;
    if (n !== 1) return false;
    if (outcome.kind === 'retry') {
      const data: QueuedDeliveryData = { deliveryId: d.id };
      // startAfter in seconds, fractions allowed (pg-boss casts it to an interval).
      const queueJobId = await boss.send(WEBHOOK_QUEUE, data, { db: txExecutor(tx), startAfter: Math.max(delay, 0.001) } as PgBoss.SendOptions);
      if (queueJobId === null) throw new Error(`pg-boss did not accept delivery ${d.id}`);
      await tx.webhookDelivery.update({ where: { id: d.id }, data: { queueJobId } });
    }
    return true;
  }, TX_OPTIONS);
}

/**
 * Pending deliveries whose dispatch was lost (its pg-boss entry finished,
 * expired or vanished, and no attempt holds the row) get a new one: the
 * backstop that keeps "at least once" when a dispatcher died between its
 * claim and its answer. Safe from every dispatcher at once (SKIP LOCKED).
 */
export async function redispatchLostDeliveries(prisma: PrismaClient, overdueSeconds: number, limit = 50): Promise<number> {
  return prisma.$transaction(async (tx) => {
    const lost = await tx.$queryRawUnsafe<Array<{ id: string }>>(
      `SELECT d.id::text AS id FROM webhook_delivery d
       LEFT JOIN ${BOSS_SCHEMA}.job b ON b.name = '${WEBHOOK_QUEUE}' AND b.id = d.queue_job_id
       WHERE d.status = 'pending' AND (d.locked_until IS NULL OR d.locked_until < now())
         AND d.next_attempt_at < now() - make_interval(secs => $1::float8)
         AND (b.id IS NULL OR b.state >= 'completed')
       ORDER BY d.next_attempt_at
       LIMIT $2
       FOR UPDATE OF d SKIP LOCKED`,
      overdueSeconds,
      limit,
    );
    if (lost.length === 0) return 0;
    const ids = lost.map((r) => r.id);
    await tx.$executeRawUnsafe(
      `WITH fresh AS (
         UPDATE webhook_delivery SET queue_job_id = gen_random_uuid(), updated_at = now() WHERE id = ANY($1::uuid[]) RETURNING id, queue_job_id
       ), dispatch AS (
         ${insertQueueSql(WEBHOOK_QUEUE, `(SELECT queue_job_id AS dispatch_id, jsonb_build_object('deliveryId', id::text) AS data, now() AS start_after FROM fresh)`)}
       )
       SELECT pg_notify('${CHANNELS.webhooks}', '') FROM (SELECT count(*) FROM dispatch) x`,
      ids,
    );
    return ids.length;
  }, TX_OPTIONS);
}
