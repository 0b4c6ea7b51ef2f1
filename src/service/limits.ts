// The bounds a request must stay within besides the spec schema's own: a job's
// model and dataset named explicitly at the API, its training cost under
// TICKETSMITH_MAX_JOB_EXAMPLES, a tenant's stored bytes under its quota, and
// the per-key rate limit. Each check is its own function so submit, upload
// and the doors call only what they need. The queued-jobs quota sits with the
// submit statement it guards (service/jobs.ts), the running-jobs cap with the
// claim (store/lifecycle.ts).
import { estimateCost } from '../engine/cost.js';
import type { RunSpec } from '../engine/spec.js';
import type { Db } from '../store/db.js';
import { tenantStorageBytes } from '../store/artifacts.js';
import { hitRateLimit } from '../store/limits.js';
import type { ServiceContext } from './context.js';
import { invalid, ServiceError } from './errors.js';

/** Training-set sizes of the builtin datasets (before the validation split): an upper bound for epochs. */
const BUILTIN_TRAIN_EXAMPLES: Readonly<Record<string, number>> = Object.freeze({ 'builtin:mnist': 8004, 'builtin:fashion-mnist': 60_000 });

/**
 * At the API a job names its model and dataset: an empty request must not
 * start the paper's 50,000-iteration LeNet run by default (the CLI's `prune`
 * keeps its defaults; it does not come through here).
 */
export function requireModelAndDataset(body: unknown): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('body', 'body: expected a run spec object with at least model and dataset');
  const b = body as Record<string, unknown>;
  for (const field of ['model', 'dataset'] as const) {
    if (b[field] === undefined || b[field] === null || b[field] === '') {
      throw invalid(field, `${field}: required (a job names its ${field === 'model' ? 'model (a zoo name or model:<id>)' : 'dataset (a reference or dataset:<id>)'} explicitly)`);
    }
  }
}

const fmt = (n: number) => (n >= 1e6 ? n.toExponential(2).replace('e+', 'e') : n.toLocaleString('en-US'));

/** Refuses a spec whose training would exceed the server's per-job example budget. */
export function checkJobCost(spec: RunSpec, maxExamples: number): void {
  const known = BUILTIN_TRAIN_EXAMPLES[spec.dataset] ?? null;
  const trainExamples = spec.maxTrainExamples === undefined ? known : Math.min(spec.maxTrainExamples, known ?? Infinity);
  const cost = estimateCost(spec, trainExamples);
  if (cost === null) {
    throw invalid('epochs', 'epochs: the size of this dataset is not known before the job runs; give maxTrainExamples (or iterations instead of epochs) so the job has a bounded cost');
  }
  if (cost.examples > maxExamples) {
    const field = spec.epochs !== undefined ? 'epochs' : 'iterations';
    throw invalid(
      field,
      `${field}: this job would train on about ${fmt(cost.examples)} examples (${cost.trainings} trainings, batchSize ${spec.batchSize}); ` +
        `this server allows at most ${fmt(maxExamples)} per job: ask for fewer rounds, iterations, epochs or controls, or a smaller batchSize`,
    );
  }
}

/** QUOTA_EXCEEDED when `tenant` already stores, or with `adding` more bytes would store, more than its quota. */
export async function checkStorageQuota(db: Db, ctx: ServiceContext, tenant: string, adding = 0): Promise<void> {
  const max = ctx.config.limits.tenantMaxStorageBytes;
  const used = await tenantStorageBytes(db, tenant);
  if (used + adding > max) {
    throw new ServiceError(
      'QUOTA_EXCEEDED',
      `storage quota: this tenant stores ${fmt(used)} bytes${adding > 0 ? ` and this upload adds ${fmt(adding)}` : ''}; the quota is ${fmt(max)} bytes`,
    );
  }
}

/** RATE_LIMITED, with the seconds until the window ends (Retry-After; a retry-after trailer over gRPC). */
export class RateLimitedError extends ServiceError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super('RATE_LIMITED', message);
  }
}

/** Counts one request of an API key; RateLimitedError beyond the limit. A limit of 0 is off. */
export async function checkRateLimit(ctx: ServiceContext, keyId: string): Promise<void> {
  const { rateLimit, rateWindowSeconds } = ctx.config.limits;
  if (rateLimit <= 0) return;
  const hit = await hitRateLimit(ctx.prisma, keyId, rateWindowSeconds);
  if (hit.hits > rateLimit) {
    const retry = Math.max(1, Math.ceil(hit.resetSeconds));
    throw new RateLimitedError(`rate limit: at most ${rateLimit} requests per ${rateWindowSeconds} s per API key; retry in ${retry} s`, retry);
  }
}
