// The process's Prometheus metrics (prom-client): one Registry, the metric
// objects, and small functions the code that sees each event calls. The REST
// door serves the registry at /metrics; a worker process serves it on a port
// of its own (metrics-server.ts). Labels are bounded sets only: route
// templates, gRPC method names, codes, job states, outcomes; never a raw URL,
// an id or a tenant. Gauges that need the database (jobs by state, queue
// depth) are read on scrape through a source the caller registers, with a
// short cache so a busy scraper does not hammer the database.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { uncaughtCounts } from './crash-guard.js';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const ROUND_BUCKETS = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200];

const httpRequests = new Counter({
  name: 'ticketsmith_http_requests_total',
  help: 'HTTP requests answered, by method, route template and status.',
  labelNames: ['method', 'route', 'status'] as const,
  registers: [registry],
});

const httpDuration = new Histogram({
  name: 'ticketsmith_http_request_duration_seconds',
  help: 'Time from an HTTP request to the last byte of its response, by method, route template and status.',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

const grpcHandled = new Counter({
  name: 'ticketsmith_grpc_server_handled_total',
  help: 'gRPC calls finished, by method and status code name.',
  labelNames: ['method', 'code'] as const,
  registers: [registry],
});

const grpcDuration = new Histogram({
  name: 'ticketsmith_grpc_server_handling_seconds',
  help: 'Time from a gRPC call to its status (streams: to the end of the stream), by method and status code name.',
  labelNames: ['method', 'code'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

const roundsCommitted = new Counter({
  name: 'ticketsmith_rounds_committed_total',
  help: 'Pruning rounds this process committed (worker processes).',
  registers: [registry],
});

const roundDuration = new Histogram({
  name: 'ticketsmith_round_duration_seconds',
  help: 'Wall time of a committed round on this worker: from the previous commit (or the job start) to this one, controls included.',
  buckets: ROUND_BUCKETS,
  registers: [registry],
});

const examplesPerSecond = new Gauge({
  name: 'ticketsmith_training_examples_per_second',
  help: "Training throughput of the last committed round's ticket on this worker (examples per second).",
  registers: [registry],
});

export const WEBHOOK_OUTCOMES = Object.freeze(['delivered', 'failed', 'retrying'] as const);
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

const webhookDeliveries = new Counter({
  name: 'ticketsmith_webhook_deliveries_total',
  help: 'Webhook delivery attempts that ended, by outcome (delivered; retrying: failed, will be retried; failed: given up).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});
for (const outcome of WEBHOOK_OUTCOMES) webhookDeliveries.inc({ outcome }, 0);

new Counter({
  name: 'ticketsmith_uncaught_errors_total',
  help: 'Errors no handler caught that the process survived (each one is a bug).',
  labelNames: ['kind'] as const,
  registers: [registry],
  collect() {
    const counts = uncaughtCounts();
    this.reset();
    this.inc({ kind: 'exception' }, counts.exception);
    this.inc({ kind: 'rejection' }, counts.rejection);
  },
});

/** One answered HTTP request; `route` is the route template (`/v1/jobs/:id`), or `unmatched`. */
export function observeHttp(method: string, route: string, status: number, seconds: number): void {
  const labels = { method, route, status: String(status) };
  httpRequests.inc(labels);
  httpDuration.observe(labels, seconds);
}

/** One finished gRPC call; `code` is the status code's name (`OK`, `NOT_FOUND`, ...). */
export function observeGrpc(method: string, code: string, seconds: number): void {
  grpcHandled.inc({ method, code });
  grpcDuration.observe({ method, code }, seconds);
}

/** A round committed by this worker: its wall time and its ticket's training throughput. */
export function observeRound(seconds: number, examplesPerSec: number): void {
  roundsCommitted.inc();
  if (Number.isFinite(seconds) && seconds >= 0) roundDuration.observe(seconds);
  if (Number.isFinite(examplesPerSec)) examplesPerSecond.set(examplesPerSec);
}

/** One webhook delivery attempt ended (the webhooks code calls it where a delivery ends). */
export function countWebhookDelivery(outcome: WebhookOutcome): void {
  webhookDeliveries.inc({ outcome });
}

/** What the database says about jobs (all tenants): counts by state, dispatches waiting. */
export interface JobCounts {
  jobs: Record<string, number>;
  queueDepth: number;
}

interface JobSource {
  read: () => Promise<JobCounts>;
  ttlMs: number;
  /** The last read (or the one in flight) and when it started. */
  last: { at: number; value: Promise<JobCounts | null> } | null;
}

let jobSource: JobSource | null = null;

/**
 * Where the jobs-by-state and queue-depth gauges come from (the service's
 * jobGauges over this process's database). Read at scrape time, at most once
 * per `ttlMs` (concurrent scrapes share one read); a failed read sets
 * ticketsmith_scrape_ok to 0 and drops the gauges rather than failing the
 * scrape. The last registration wins (one service per process).
 */
export function registerJobSource(read: () => Promise<JobCounts>, opts: { ttlMs?: number } = {}): void {
  jobSource = { read, ttlMs: opts.ttlMs ?? 2000, last: null };
}

function jobCounts(): Promise<JobCounts | null> {
  const src = jobSource;
  if (!src) return Promise.resolve(null);
  const now = Date.now();
  if (src.last && now - src.last.at < src.ttlMs) return src.last.value;
  const value = src.read().catch(() => null);
  src.last = { at: now, value };
  return value;
}

const jobsByState = new Gauge({
  name: 'ticketsmith_jobs',
  help: 'Jobs in the database, by state (all tenants).',
  labelNames: ['state'] as const,
  registers: [registry],
  async collect() {
    const c = await jobCounts();
    this.reset();
    if (c) for (const [state, n] of Object.entries(c.jobs)) this.set({ state }, n);
  },
});
void jobsByState;

new Gauge({
  name: 'ticketsmith_queue_depth',
  help: 'Dispatches waiting in the job queue.',
  registers: [registry],
  async collect() {
    const c = await jobCounts();
    this.reset();
    if (c) this.set(c.queueDepth);
  },
});

new Gauge({
  name: 'ticketsmith_scrape_ok',
  help: '1 when the database gauges (ticketsmith_jobs, ticketsmith_queue_depth) were read; 0 when the database did not answer.',
  async collect() {
    this.set(jobSource === null ? 0 : (await jobCounts()) === null ? 0 : 1);
  },
  registers: [registry],
});

/** The exposition text of every metric, and its content type. */
export async function renderMetrics(): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}
