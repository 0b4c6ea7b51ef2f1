// The webhook dispatcher: takes delivery dispatches from pg-boss's webhook
// queue, POSTs each event through the outbound guard and records the answer.
// It runs beside the job worker in every worker process.
//
// One attempt: claim the delivery row (store/webhooks.ts claimDelivery counts
// the attempt and locks the row), check the URL again and POST the signed
// body with the guard (redirects not followed, a time limit, the answer's
// body not read), then record the outcome: a 2xx is delivered; anything else
// is retried after a doubling wait (retrySeconds, 2×, 4×… capped at
// retryMaxSeconds) through a new delayed dispatch written in the same
// transaction, until maxAttempts; a URL the guard now refuses (its name
// resolves elsewhere since the door checked it) fails at once without a
// connection. A dispatcher that dies mid-attempt leaves a locked row and an
// active dispatch: pg-boss expires the dispatch, and the sweep
// (redispatchLostDeliveries) re-dispatches a pending row whose dispatch is
// gone, so every event is delivered at least once. Receivers deduplicate by
// the event id.
import { createHmac, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type PgBoss from 'pg-boss';
import { childLogger, type Logger } from '../runtime/logger.js';
import { countWebhookDelivery } from '../runtime/metrics.js';
import { OutboundRefusedError, OUTBOUND_REFUSED, type OutboundGuard } from '../runtime/outbound.js';
import type { PrismaClient } from '../store/db.js';
import { CHANNELS, type Notifier } from '../store/notify.js';
import {
  WEBHOOK_QUEUE,
  claimDelivery,
  recordAttempt,
  redispatchLostDeliveries,
  type AttemptOutcome,
  type ClaimedDelivery,
  type QueuedDeliveryData,
} from '../store/webhooks.js';
import { QueuePoll } from './poll.js';

export const SIGNATURE_HEADER = 'Ticketsmith-Signature';
export const EVENT_ID_HEADER = 'Ticketsmith-Event-Id';
export const EVENT_TYPE_HEADER = 'Ticketsmith-Event';

/** The hex HMAC-SHA256 of `<t>.<body>` under `secret` (the secret string's UTF-8 bytes are the key). */
export function signPayload(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** The Ticketsmith-Signature header: `t=<unix seconds>,v1=<hex>`. */
export function signatureHeader(secret: string, body: string, now = Date.now()): string {
  const t = Math.floor(now / 1000);
  return `t=${t},v1=${signPayload(secret, t, body)}`;
}

/** The wait after attempt `attempt` (1-based) failed: base, 2×base, 4×base…, at most `cap`. */
export function retryDelaySeconds(attempt: number, base: number, cap: number): number {
  return Math.min(base * 2 ** Math.max(0, attempt - 1), cap);
}

/**
 * The body as sent: the stored event with its keys in the documented order
 * (jsonb keeps its own order), the same bytes on every attempt.
 */
export function deliveryBody(payload: unknown): string {
  const p = payload as { id: string; type: string; createdAt: string; data: { jobId: string; status: string; round?: number; error?: unknown } };
  const d = p.data;
  return JSON.stringify({
    id: p.id,
    type: p.type,
    createdAt: p.createdAt,
    data: { jobId: d.jobId, status: d.status, ...(d.round === undefined ? {} : { round: d.round }), ...(d.error === undefined ? {} : { error: d.error }) },
  });
}

export interface WebhookDeps {
  prisma: PrismaClient;
  boss: PgBoss;
  /** The operator's outbound guard (allow list); every attempt goes through it. */
  guard: OutboundGuard;
  /** Without it, new deliveries are seen at the next poll. */
  notifier?: Notifier;
}

export interface WebhookOptions {
  id?: string;
  /** Attempts per delivery before it fails (default 8). */
  maxAttempts?: number;
  /** Wait before the first retry, doubled each time (default 1 s). */
  retrySeconds?: number;
  /** The longest wait between attempts (default 300 s). */
  retryMaxSeconds?: number;
  /** A receiver's time to answer (default 10 s). */
  timeoutSeconds?: number;
  /** Deliveries sent at once (default 8). */
  concurrency?: number;
  /** Idle fetch period when no NOTIFY wakes the dispatcher (default 2 s). */
  pollSeconds?: number;
  /** How often lost dispatches are looked for; 0: never (default 30 s). */
  sweepSeconds?: number;
  /** A pending delivery this far past its time with no live dispatch is re-dispatched (default 60 s). */
  overdueSeconds?: number;
}

type Settings = Required<Omit<WebhookOptions, 'id'>>;

const DEFAULTS: Settings = {
  maxAttempts: 8,
  retrySeconds: 1,
  retryMaxSeconds: 300,
  timeoutSeconds: 10,
  concurrency: 8,
  pollSeconds: 2,
  sweepSeconds: 30,
  overdueSeconds: 60,
};

/** How much of a receiver's error answer is kept in the delivery log. */
const ERROR_SNIPPET_BYTES = 256;

export class WebhookDispatcher {
  readonly id: string;
  private readonly settings: Settings;
  private readonly log: Logger;
  private readonly poll: QueuePoll<QueuedDeliveryData>;
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopping = false;
  private unlisten: (() => void) | null = null;
  private sweeping: Promise<void> | null = null;
  private readonly stopSignal = new AbortController();

  constructor(
    private readonly deps: WebhookDeps,
    opts: WebhookOptions = {},
  ) {
    this.id = opts.id ?? `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
    this.settings = { ...DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([k, v]) => v !== undefined && k !== 'id')) } as Settings;
    this.log = childLogger({ module: 'webhooks', dispatcherId: this.id });
    this.poll = new QueuePoll<QueuedDeliveryData>({
      boss: deps.boss,
      queue: WEBHOOK_QUEUE,
      concurrency: this.settings.concurrency,
      pollSeconds: this.settings.pollSeconds,
      handle: (dispatch) => this.handle(dispatch),
      onFetchError: (err) => this.log.warn({ err }, 'webhook queue fetch failed'),
    });
  }

  start(): void {
    if (this.poll.started) return;
    this.unlisten = this.deps.notifier?.on(CHANNELS.webhooks, () => this.poll.wake()) ?? null;
    if (this.settings.sweepSeconds > 0) {
      const sweep = setInterval(() => {
        this.sweeping ??= this.sweep().finally(() => (this.sweeping = null));
      }, this.settings.sweepSeconds * 1000);
      this.timers.add(sweep);
    }
    this.poll.start();
  }

  /** Stops fetching; attempts in flight are cut (their rows are swept up later by a dispatcher). */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.unlisten?.();
    for (const t of this.timers) clearTimeout(t);
    this.stopSignal.abort();
    await this.poll.stop();
    await this.sweeping;
  }

  /** Wakes the loop when a retry this process scheduled is due (other processes find it at their next poll). */
  private wakeAfter(seconds: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.poll.wake();
    }, Math.ceil(seconds * 1000) + 5);
    this.timers.add(t);
  }

  private async handle(dispatch: PgBoss.Job<QueuedDeliveryData>): Promise<void> {
    const { boss, prisma } = this.deps;
    const deliveryId = dispatch.data?.deliveryId;
    const log = this.log.child({ deliveryId, queueJobId: dispatch.id });
    try {
      if (typeof deliveryId !== 'string') throw new Error('webhook dispatch without a deliveryId');
      const claimed = await claimDelivery(prisma, deliveryId, this.settings.timeoutSeconds + 30);
      if (claimed) {
        const outcome = await this.attempt(claimed);
        if (this.stopping && this.stopSignal.signal.aborted && outcome === null) return;
        if (outcome) {
          const written = await recordAttempt(prisma, boss, claimed, outcome);
          countWebhookDelivery(outcome.kind === 'retry' ? 'retrying' : outcome.kind);
          log.info({ eventId: claimed.eventId, attempt: claimed.attempt, outcome: outcome.kind, statusCode: outcome.statusCode, written }, 'webhook attempt');
          if (outcome.kind === 'retry') this.wakeAfter(outcome.delaySeconds);
        }
      }
      await boss.complete(WEBHOOK_QUEUE, dispatch.id);
    } catch (err) {
      log.error({ err }, 'webhook dispatch failed');
      await boss.fail(WEBHOOK_QUEUE, dispatch.id, { message: err instanceof Error ? err.message : String(err) }).catch(() => {});
    }
  }

  /** One POST; null when it was cut by stop() (nothing to record). */
  private async attempt(d: ClaimedDelivery): Promise<AttemptOutcome | null> {
    const { maxAttempts, retrySeconds, retryMaxSeconds, timeoutSeconds } = this.settings;
    const retryOr = (statusCode: number | null, error: string): AttemptOutcome =>
      d.attempt >= maxAttempts
        ? { kind: 'failed', statusCode, error: `${error}; gave up after ${d.attempt} attempts` }
        : { kind: 'retry', statusCode, error, delaySeconds: retryDelaySeconds(d.attempt, retrySeconds, retryMaxSeconds) };
    if (d.secret === null) return { kind: 'failed', statusCode: null, error: 'the tenant has no callback secret to sign with' };
    const body = deliveryBody(d.payload);
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutSeconds * 1000), this.stopSignal.signal]);
    let res: Response;
    try {
      res = await this.deps.guard.fetch(d.url, {
        method: 'POST',
        body,
        redirect: 'manual',
        signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Ticketsmith-Webhooks/1',
          [EVENT_ID_HEADER]: d.eventId,
          [EVENT_TYPE_HEADER]: d.eventType,
          [SIGNATURE_HEADER]: signatureHeader(d.secret, body),
        },
      });
    } catch (err) {
      if (this.stopSignal.signal.aborted) return null;
      // The door accepted this URL; its name points somewhere refused now. Nothing was sent.
      if (err instanceof OutboundRefusedError) return { kind: 'failed', statusCode: null, error: `refused before connecting: URL is not allowed: ${OUTBOUND_REFUSED}` };
      const timedOut = (err as { name?: string }).name === 'TimeoutError' || (err as { name?: string }).name === 'AbortError';
      return retryOr(null, timedOut ? `no answer within ${timeoutSeconds} s` : `could not deliver: ${(err as { code?: string }).code ?? (err as Error).message}`);
    }
    const status = res.status;
    if (status >= 200 && status < 300) {
      await res.body?.cancel().catch(() => {});
      return { kind: 'delivered', statusCode: status };
    }
    const snippet = await readSnippet(res);
    return retryOr(status, `HTTP ${status}${snippet ? `: ${snippet}` : ''}`);
  }

  private async sweep(): Promise<void> {
    if (this.stopping) return;
    try {
      const n = await redispatchLostDeliveries(this.deps.prisma, this.settings.overdueSeconds);
      if (n > 0) this.log.warn({ redispatched: n }, 're-dispatched webhook deliveries whose dispatch was lost');
    } catch (err) {
      this.log.warn({ err }, 'webhook sweep failed');
    }
  }
}

/** The first bytes of an error answer as text (a receiver's hint), the rest never read. */
async function readSnippet(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < ERROR_SNIPPET_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // a broken answer: what arrived is enough
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, ERROR_SNIPPET_BYTES).toString('utf8').replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}
