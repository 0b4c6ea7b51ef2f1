// GET /v1/jobs/:id/events: a job's events as Server-Sent Events. `id:` is the
// event id, so a reconnecting client (Last-Event-ID, or `?after=`) resumes
// where it stopped; comment heartbeats keep proxies from closing an idle
// stream; a final `end` event carries the job's status and the stream closes
// once the job has finished. `Accept: application/json` gets one page instead.
// GET /v1/events: the tenant's jobs as they change (`event: job`, the Job as
// data), for live lists such as the dashboard's; it runs until the client
// leaves or the server shuts down.
import { getJob, listEvents, watchJob, watchTenantJobs, type EventDto } from '../../../service/index.js';
import { send } from '../backpressure.js';
import { classify, errorBody } from '../errors.js';
import { COMMON_ERRORS, pathParam, itemsOf, queryString, tagJob, type RouteDef } from '../route.js';

export interface SseOptions {
  /** Heartbeat comment interval (default 15 s). */
  heartbeatMs: number;
  /** Fires when the server shuts down: open streams end (clients resume elsewhere with Last-Event-ID). */
  closing?: AbortSignal;
}

function frame(e: EventDto): string {
  return `id: ${e.id}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`;
}

/** Starts an SSE response: headers out, heartbeats, and an abort when the client leaves or the server closes. */
function openStream(req: Parameters<RouteDef['handler']>[0], res: Parameters<RouteDef['handler']>[1], opts: SseOptions): { signal: AbortSignal; close(): void } {
  const abort = new AbortController();
  const stop = () => abort.abort();
  res.once('close', stop);
  opts.closing?.addEventListener('abort', stop, { once: true });
  if (opts.closing?.aborted) stop();
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('Connection', 'keep-alive');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  req.socket.setNoDelay(true);
  const heartbeat = setInterval(() => {
    if (!res.writableEnded) res.write(': heartbeat\n\n');
  }, opts.heartbeatMs);
  return {
    signal: abort.signal,
    close() {
      clearInterval(heartbeat);
      res.off('close', stop);
      opts.closing?.removeEventListener('abort', stop);
      if (!res.writableEnded) res.end();
    },
  };
}

/** An error once the stream's headers are out: reported in-band as `event: error` (the caller then closes). */
async function sendStreamError(res: Parameters<RouteDef['handler']>[1], e: unknown): Promise<void> {
  const { error, expected } = classify(e);
  if (!expected) res.locals.error = e;
  await send(res, `event: error\ndata: ${JSON.stringify(errorBody(error))}\n\n`);
}

export function eventRoutes(opts: SseOptions): RouteDef[] {
  return [
    {
      method: 'get',
      path: '/v1/events',
      operationId: 'watchJobs',
      tag: 'jobs',
      summary: "The tenant's jobs as they change, as Server-Sent Events (for live lists)",
      responses: {
        200: {
          description:
            'text/event-stream: `event: job` with the Job as JSON each time one of the tenant\'s jobs writes an event (submitted, started, progress, rounds, finished; a job at most every 0.5 s), and `: heartbeat` comments. It has no cursor: read the list first (GET /v1/jobs), then apply what arrives.',
          content: { 'text/event-stream': { type: 'string' } },
        },
      },
      errors: [...COMMON_ERRORS],
      async handler(req, res, { ctx, tenant }) {
        const stream = openStream(req, res, opts);
        try {
          // Listening before the first byte: whatever changes after the client sees the stream open arrives.
          const jobs = watchTenantJobs(ctx, tenant, { signal: stream.signal });
          if (!(await send(res, 'retry: 2000\n\n'))) return;
          for await (const job of jobs) {
            if (!(await send(res, `event: job\ndata: ${JSON.stringify(job)}\n\n`))) return;
          }
          if (opts.closing?.aborted) await send(res, ': server shutting down; reconnect\n\n');
        } catch (e) {
          await sendStreamError(res, e);
        } finally {
          stream.close();
        }
      },
    },
    {
      method: 'get',
      path: '/v1/jobs/:id/events',
      operationId: 'watchJob',
      tag: 'jobs',
      summary: "A job's events as Server-Sent Events, until the job has finished",
      params: [{ name: 'id', description: 'Job id', schema: { type: 'string', format: 'uuid' } }],
      query: [
        { name: 'after', description: 'Resume after this event id (like Last-Event-ID)', schema: { type: 'integer', minimum: 0 } },
        { name: 'limit', description: 'Page size with Accept: application/json (1-1000, default 500)', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
      ],
      headers: [{ name: 'Last-Event-ID', description: 'The last event id received; the stream resumes after it' }],
      responses: {
        200: {
          description:
            'text/event-stream: one SSE event per job event (`id:` event id, `event:` its kind, `data:` the Event as JSON), `: heartbeat` comments, and a final `event: end` with `{"status": ...}`. With Accept: application/json, one page of events.',
          content: { 'text/event-stream': { type: 'string' }, 'application/json': itemsOf('Event') },
        },
      },
      errors: ['NOT_FOUND', 'INVALID_ARGUMENT', ...COMMON_ERRORS],
      async handler(req, res, { ctx, tenant }) {
        const id = pathParam(req, 'id');
        tagJob(res, id);
        const afterId = req.get('last-event-id') ?? queryString(req, 'after') ?? null;
        if (req.accepts(['text/event-stream', 'application/json']) === 'application/json') {
          res.json({ items: await listEvents(ctx, tenant, id, { afterId, limit: queryString(req, 'limit') }) });
          return;
        }
        // Checks the job and the cursor while an error can still be a plain JSON response.
        await listEvents(ctx, tenant, id, { afterId, limit: 1 });

        const stream = openStream(req, res, opts);
        try {
          if (!(await send(res, 'retry: 2000\n\n'))) return;
          for await (const e of watchJob(ctx, tenant, id, { afterId, signal: stream.signal })) {
            if (!(await send(res, frame(e)))) return;
          }
          if (stream.signal.aborted) {
            if (opts.closing?.aborted) await send(res, ': server shutting down; reconnect with Last-Event-ID\n\n');
            return;
          }
          const job = await getJob(ctx, tenant, id);
          await send(res, `event: end\ndata: ${JSON.stringify({ status: job.status })}\n\n`);
        } catch (e) {
          await sendStreamError(res, e);
        } finally {
          stream.close();
        }
      },
    },
  ];
}
