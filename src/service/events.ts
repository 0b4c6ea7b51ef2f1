// A job's event log for clients: a page after a cursor, a long-poll that
// returns as soon as something new is committed (LISTEN/NOTIFY, with a poll as
// fallback), and watchJob, the stream behind SSE and gRPC WatchJob, which ends
// once the job has finished and its last event was delivered; watchTenantJobs,
// the stream of a tenant's jobs as they change (GET /v1/events, the dashboard's list).
import { eventsAfter } from '../store/events.js';
import { jobStatus } from '../store/jobs.js';
import { CHANNELS } from '../store/notify.js';
import { isTerminal } from '../store/states.js';
import type { ServiceContext } from './context.js';
import { eventDto, type EventDto, type JobDto } from './dto.js';
import { invalid, notFound, ServiceError } from './errors.js';
import { isUuid, pageLimit } from './ids.js';
import { assertJob, getJob } from './jobs.js';

function afterCursor(afterId: unknown): bigint {
  if (afterId === undefined || afterId === null || afterId === '') return 0n;
  const s = String(afterId);
  if (!/^\d{1,18}$/.test(s)) throw invalid('afterId', 'afterId (the Last-Event-ID header or ?after=): the id of the last event seen, a non-negative integer');
  return BigInt(s);
}

async function page(ctx: ServiceContext, jobId: string, after: bigint, limit: number): Promise<EventDto[]> {
  const rows = await eventsAfter(ctx.prisma, jobId, after, limit);
  return rows.map(eventDto);
}

/** Events of a job after `afterId` (exclusive), oldest first. */
export async function listEvents(
  ctx: ServiceContext,
  tenant: string,
  jobId: string,
  opts: { afterId?: number | string | null; limit?: number | string } = {},
): Promise<EventDto[]> {
  const after = afterCursor(opts.afterId);
  const limit = pageLimit(opts.limit, 500, 1000);
  await assertJob(ctx, tenant, jobId);
  return page(ctx, jobId, after, limit);
}

/**
 * Like listEvents, but when nothing is newer than `afterId` it waits (up to
 * `timeoutMs`, or until `signal` aborts) for the next event; [] on timeout.
 */
export async function waitForEvents(
  ctx: ServiceContext,
  tenant: string,
  jobId: string,
  afterId: number | string | null | undefined,
  opts: { timeoutMs?: number; signal?: AbortSignal; limit?: number } = {},
): Promise<EventDto[]> {
  const after = afterCursor(afterId);
  await assertJob(ctx, tenant, jobId);
  const limit = opts.limit ?? 500;
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    // Listen before reading, so an event committed in between still wakes us.
    const woke = ctx.notifier.wait(CHANNELS.events, jobId, { timeoutMs: Math.max(0, Math.min(5_000, deadline - Date.now())), signal: opts.signal });
    const events = await page(ctx, jobId, after, limit);
    if (events.length > 0 || Date.now() >= deadline || opts.signal?.aborted) return events;
    await woke;
  }
}

/**
 * Watchers of one job wake on the same NOTIFY and read the same rows: a read
 * that another watcher has in flight is shared instead of repeated, so a
 * thousand watchers on twenty jobs cost the database about twenty reads per
 * event, not a thousand. A watcher joins only a read that started after it
 * began listening, so a shared read never misses a commit it was woken for.
 */
let readSeq = 0;
const inflight = new Map<string, { seq: number; p: Promise<unknown> }>();

/** `fn`'s result, from a read of `key` started after `since` (joined or new), with that read's start mark. */
async function sharedRead<T>(key: string, since: number, fn: () => Promise<T>): Promise<{ value: T; seq: number }> {
  const cur = inflight.get(key);
  if (cur && cur.seq > since) return { value: (await cur.p) as T, seq: cur.seq };
  const entry = { seq: ++readSeq, p: undefined as unknown as Promise<T> };
  entry.p = fn().finally(() => {
    if (inflight.get(key) === entry) inflight.delete(key);
  });
  inflight.set(key, entry);
  return { value: await entry.p, seq: entry.seq };
}

/**
 * Every event of a job after `afterId`, as they are committed; finishes after
 * the job reached a final state and everything up to then was yielded, or
 * when `signal` aborts.
 */
export async function* watchJob(
  ctx: ServiceContext,
  tenant: string,
  jobId: string,
  opts: { afterId?: number | string | null; signal?: AbortSignal } = {},
): AsyncGenerator<EventDto> {
  if (!isUuid(jobId)) throw notFound('job', jobId);
  let after = afterCursor(opts.afterId);
  await assertJob(ctx, tenant, jobId);
  while (!opts.signal?.aborted) {
    const woke = ctx.notifier.wait(CHANNELS.events, jobId, { timeoutMs: 5_000, signal: opts.signal });
    const listening = ++readSeq;
    const read = await sharedRead(`status:${jobId}`, listening, () => jobStatus(ctx.prisma, jobId));
    const status = read.value ?? undefined;
    // Pages read after the status read started: a final status then has no events after them.
    const nextPage = () => sharedRead(`page:${jobId}:${after}`, read.seq, () => page(ctx, jobId, after, 500)).then((r) => r.value);
    let events = await nextPage();
    while (events.length > 0) {
      for (const e of events) {
        yield e;
        after = BigInt(e.id);
      }
      events = await nextPage();
    }
    // Status was read before the last page: a final job has no events after it.
    if (status === undefined || isTerminal(status)) return;
    await woke;
  }
}

/**
 * The tenant's jobs as they change, for a live list (GET /v1/events): every
 * NOTIFY of a new job event marks its job, and marked jobs are read again
 * under the tenant and yielded (another tenant's job is not found and
 * skipped). Between batches the stream waits `minIntervalMs`, so a job is read
 * at most once per interval however many events it writes; marks made
 * meanwhile merge. Ends when `signal` aborts.
 */
export function watchTenantJobs(
  ctx: ServiceContext,
  tenant: string,
  opts: { signal: AbortSignal; minIntervalMs?: number },
): AsyncGenerator<JobDto> {
  const { signal } = opts;
  const marked = new Set<string>();
  let wake: (() => void) | null = null;
  // Listening starts now, not at the first read of the stream: a client that reads the list once the
  // stream has opened misses no change made after that.
  const off = ctx.notifier.on(CHANNELS.events, (jobId) => {
    if (!isUuid(jobId)) return;
    marked.add(jobId);
    wake?.();
  });
  signal.addEventListener('abort', off, { once: true });
  const pause = (ms: number | null) =>
    new Promise<void>((resolve) => {
      const done = () => {
        wake = null;
        if (timer) clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = ms === null ? null : setTimeout(done, ms);
      if (ms === null) wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  return (async function* () {
    try {
      while (!signal.aborted) {
        if (marked.size === 0) await pause(null);
        if (signal.aborted) return;
        const ids = [...marked];
        marked.clear();
        for (const id of ids) {
          let job: JobDto;
          try {
            job = await getJob(ctx, tenant, id);
          } catch (e) {
            if (e instanceof ServiceError && e.code === 'NOT_FOUND') continue;
            throw e;
          }
          yield job;
        }
        await pause(opts.minIntervalMs ?? 500);
      }
    } finally {
      off();
      signal.removeEventListener('abort', off);
    }
  })();
}
