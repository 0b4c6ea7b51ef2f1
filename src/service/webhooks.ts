// Webhook use cases: a tenant's callback secret (rotated and shown once),
// registered endpoints (each with its own secret, shown once), the delivery
// log, and the door check of every webhook URL, a job's `callbackUrl`
// included: http(s), no credentials in it, and every address of its host
// public or on the operator's allow list (the outbound guard that dataset URLs
// pass, src/runtime/outbound.ts). The worker checks again before each attempt
// (queue/webhooks.ts), so a name that resolves elsewhere later is refused then.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { OUTBOUND_REFUSED, OutboundRefusedError, type OutboundGuard } from '../runtime/outbound.js';
import {
  DELIVERY_STATES,
  WEBHOOK_EVENTS,
  countEndpoints,
  deleteEndpointRow,
  hasCallbackSecret,
  insertEndpoint,
  listDeliveryRows,
  listEndpointRows,
  setCallbackSecret,
  type DeliveryRow,
  type DeliveryState,
  type EndpointRow,
  type WebhookEventType,
} from '../store/webhooks.js';
import type { ServiceContext } from './context.js';
import { outboundGuard } from './data-access.js';
import type { Page } from './dto.js';
import { invalid, notFound, ServiceError } from './errors.js';
import { decodeCursor, encodeCursor, isUuid, pageLimit, toPage, type PageQuery } from './ids.js';

export { WEBHOOK_EVENTS, DELIVERY_STATES };

/** Registered endpoints per tenant: each event fans out to all of them. */
export const MAX_ENDPOINTS = 20;
const MAX_URL_LENGTH = 2048;

const isoTime = z.string().describe('ISO 8601 time');

export const WebhookEndpointSchema = z.object({
  id: z.string().uuid(),
  url: z.string(),
  events: z.array(z.enum(WEBHOOK_EVENTS)),
  createdAt: isoTime,
  secret: z.string().optional().describe('The signing secret: in the answer to POST /v1/webhooks only, never again'),
});
export type WebhookEndpointDto = z.infer<typeof WebhookEndpointSchema>;

export const WebhookDeliverySchema = z.object({
  id: z.string().uuid(),
  eventId: z.string().describe('Ticketsmith-Event-Id: the same on every retry'),
  type: z.enum(WEBHOOK_EVENTS),
  jobId: z.string().uuid().nullable(),
  endpointId: z.string().uuid().nullable().describe("null for the job's callback URL"),
  url: z.string(),
  status: z.enum(DELIVERY_STATES),
  attempts: z.number().int(),
  lastStatusCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  nextAttemptAt: isoTime.nullable(),
  createdAt: isoTime,
  updatedAt: isoTime,
  deliveredAt: isoTime.nullable(),
});
export type WebhookDeliveryDto = z.infer<typeof WebhookDeliverySchema>;

export const CallbackSecretSchema = z.object({
  secret: z.string().describe("Signs every job's callbackUrl deliveries from now on; shown once"),
  createdAt: isoTime,
});

function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

function endpointDto(row: EndpointRow, secret?: string): WebhookEndpointDto {
  return {
    id: row.id,
    url: row.url,
    events: row.events as WebhookEventType[],
    createdAt: row.createdAt.toISOString(),
    ...(secret === undefined ? {} : { secret }),
  };
}

function deliveryDto(row: DeliveryRow): WebhookDeliveryDto {
  return {
    id: row.id,
    eventId: row.eventId,
    type: row.eventType as WebhookEventType,
    jobId: row.jobId,
    endpointId: row.endpointId,
    url: row.url,
    status: row.status as DeliveryState,
    attempts: row.attempts,
    lastStatusCode: row.lastStatusCode,
    lastError: row.lastError,
    nextAttemptAt: row.status === 'pending' ? (row.nextAttemptAt?.toISOString() ?? null) : null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    deliveredAt: row.deliveredAt?.toISOString() ?? null,
  };
}

/**
 * Checks a webhook URL at the door; returns it normalised. Every refusal of
 * the guard reads the same (it reveals nothing about the target).
 */
export async function checkWebhookUrl(guard: OutboundGuard, value: unknown, field: string): Promise<string> {
  if (typeof value !== 'string' || value.trim() === '') throw invalid(field, `${field}: expected an http(s) URL`);
  if (value.length > MAX_URL_LENGTH) throw invalid(field, `${field}: at most ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(field, `${field}: not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(field, `${field}: only http and https URLs can receive webhooks`);
  // Credentials in the URL would be stored and shown in the delivery log; the signature authenticates us instead.
  if (url.username !== '' || url.password !== '') throw invalid(field, `${field}: must not carry credentials (user:password@); verify the signature instead`);
  if (url.hash !== '') throw invalid(field, `${field}: must not have a #fragment`);
  try {
    await guard.check(url);
  } catch (e) {
    if (e instanceof OutboundRefusedError) throw invalid(field, `${field}: URL is not allowed: ${OUTBOUND_REFUSED}`);
    throw e;
  }
  return url.href;
}

/**
 * A job's callback URL at submit: checked like any webhook URL, and only once
 * the tenant has a callback secret to sign its deliveries with.
 */
export async function resolveCallbackUrl(ctx: ServiceContext, tenant: string, value: unknown): Promise<string | null> {
  if (value === undefined || value === null) return null;
  const url = await checkWebhookUrl(outboundGuard(ctx.config), value, 'callbackUrl');
  if (!(await hasCallbackSecret(ctx.prisma, tenant))) {
    throw new ServiceError('FAILED_PRECONDITION', 'callbackUrl: this tenant has no callback secret yet; create one with POST /v1/webhooks/callback-secret (it is shown once) so deliveries can be signed', 'callbackUrl');
  }
  return url;
}

/** Creates or replaces the tenant's callback secret; the answer is the only time it is shown. */
export async function rotateCallbackSecret(ctx: ServiceContext, tenant: string): Promise<z.infer<typeof CallbackSecretSchema>> {
  const secret = newSecret();
  await setCallbackSecret(ctx.prisma, tenant, secret);
  return { secret, createdAt: new Date().toISOString() };
}

function parseEvents(value: unknown): WebhookEventType[] {
  if (value === undefined) return [...WEBHOOK_EVENTS];
  if (!Array.isArray(value) || value.length === 0) throw invalid('events', `events: a non-empty list of ${WEBHOOK_EVENTS.join(', ')}`);
  const out: WebhookEventType[] = [];
  value.forEach((v, i) => {
    if (!(WEBHOOK_EVENTS as readonly unknown[]).includes(v)) throw invalid(`events[${i}]`, `events[${i}]: one of ${WEBHOOK_EVENTS.join(', ')}`);
    if (out.includes(v as WebhookEventType)) throw invalid(`events[${i}]`, `events[${i}]: ${String(v)} is listed twice`);
    out.push(v as WebhookEventType);
  });
  return out;
}

/** Registers an endpoint; the answer carries its secret, shown this once. */
export async function createWebhook(ctx: ServiceContext, tenant: string, body: unknown): Promise<WebhookEndpointDto> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('body', 'body: expected a JSON object { url, events? }');
  for (const k of Object.keys(body)) if (k !== 'url' && k !== 'events') throw invalid(k, `${k}: unknown field (a webhook takes url and events)`);
  const b = body as { url?: unknown; events?: unknown };
  const events = parseEvents(b.events);
  const url = await checkWebhookUrl(outboundGuard(ctx.config), b.url, 'url');
  const count = await countEndpoints(ctx.prisma, tenant);
  if (count >= MAX_ENDPOINTS) throw new ServiceError('QUOTA_EXCEEDED', `webhooks: this tenant has ${count} endpoints, the most it may register is ${MAX_ENDPOINTS}; delete one first`);
  const secret = newSecret();
  return endpointDto(await insertEndpoint(ctx.prisma, { tenant, url, secret, events }), secret);
}

/** A page of rows keyed by (createdAt, id), the order both lists are read in. */
function page<R extends { createdAt: Date; id: string }, D>(rows: R[], limit: number, map: (r: R) => D): Page<D> {
  return toPage(rows, limit, map, (r) => encodeCursor({ createdAt: r.createdAt, id: r.id }));
}

export async function listWebhooks(ctx: ServiceContext, tenant: string, q: PageQuery = {}): Promise<Page<WebhookEndpointDto>> {
  const limit = pageLimit(q.limit);
  const after = q.cursor ? decodeCursor(q.cursor) : null;
  return page(await listEndpointRows(ctx.prisma, tenant, { after, take: limit + 1 }), limit, (r) => endpointDto(r));
}

/** Deletes an endpoint; its deliveries not yet sent are dropped with it. */
export async function deleteWebhook(ctx: ServiceContext, tenant: string, id: string): Promise<void> {
  if (!isUuid(id) || !(await deleteEndpointRow(ctx.prisma, tenant, id))) throw notFound('webhook', id);
}

export interface DeliveriesQuery extends PageQuery {
  jobId?: string;
  status?: string;
}

/** The tenant's deliveries, newest first; `jobId` and `status` filter (an unknown job's list is empty). */
export async function listDeliveries(ctx: ServiceContext, tenant: string, q: DeliveriesQuery = {}): Promise<Page<WebhookDeliveryDto>> {
  const limit = pageLimit(q.limit);
  if (q.jobId !== undefined && !isUuid(q.jobId)) throw invalid('jobId', 'jobId: a job id (uuid)');
  if (q.status !== undefined && !(DELIVERY_STATES as readonly string[]).includes(q.status)) throw invalid('status', `status: one of ${DELIVERY_STATES.join(', ')}`);
  const after = q.cursor ? decodeCursor(q.cursor) : null;
  const rows = await listDeliveryRows(ctx.prisma, tenant, { jobId: q.jobId, status: q.status as DeliveryState | undefined, after, take: limit + 1 });
  return page(rows, limit, deliveryDto);
}
