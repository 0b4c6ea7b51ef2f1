// gRPC handlers for jobs: SubmitJob (the RunSpec message becomes the schema's
// JSON and the service validates it), GetJob, ListJobs, ListRounds, CancelJob
// DeleteJob and WatchJob (the service's event stream, written with flow control and
// stopped when the client cancels). Errors name fields by their path in the
// request (spec.rounds, pageSize), not by their REST names.
import type * as grpc from '@grpc/grpc-js';
import { cancelJob, deleteJob, getJob, listJobs, listRounds, ServiceError, submitJob, watchJob, type ServiceContext } from '../../service/index.js';
import { invalidArgument, renameField, requiredId, serverStream, unary } from './call.js';
import { eventToProto, jobStateFromProto, jobToProto, roundToProto, SPEC_FIELDS, specFromProto } from './mapping.js';
import type {
  CancelJobRequest,
  DeleteJobRequest,
  DeleteResponse,
  GetJobRequest,
  JobEventMessage,
  JobMessage,
  ListJobsRequest,
  ListJobsResponse,
  ListRoundsRequest,
  ListRoundsResponse,
  SubmitJobRequest,
  SubmitJobResponse,
  WatchJobRequest,
} from './messages.js';

const SPEC_KEYS = new Set(SPEC_FIELDS.map((f) => f.key));
const REFS = ['model', 'dataset'] as const;

/** The spec JSON of a request: its RunSpec, with model/dataset from the request's own fields when given there. */
export function submitBody(req: SubmitJobRequest): { body: Record<string, unknown>; topLevel: Set<string> } {
  const body = specFromProto(req.spec, 'spec');
  const topLevel = new Set<string>();
  for (const key of REFS) {
    const value = req[key].trim();
    if (value === '') continue;
    if (body[key] !== undefined && body[key] !== value) throw invalidArgument(key, `${key}: given here and as spec.${key} with a different value`);
    body[key] = value;
    topLevel.add(key);
  }
  return { body, topLevel };
}

/** A spec error names `rounds`; in this request that field is `spec.rounds` (unless it was a top-level model/dataset). */
function specPath(e: unknown, topLevel: Set<string>): unknown {
  if (!(e instanceof ServiceError) || e.field === undefined) return e;
  const head = e.field.split(/[.[]/)[0]!;
  if (!SPEC_KEYS.has(head) || topLevel.has(head)) return e;
  return renameField(e, e.field, `spec.${e.field}`);
}

/** One signal for "the client cancelled or the server is shutting down", with its listeners removed by `done`. */
function eitherSignal(a: AbortSignal, b?: AbortSignal): { signal: AbortSignal; done(): void } {
  if (!b) return { signal: a, done: () => {} };
  const ac = new AbortController();
  const stop = () => ac.abort();
  a.addEventListener('abort', stop, { once: true });
  b.addEventListener('abort', stop, { once: true });
  if (a.aborted || b.aborted) stop();
  return {
    signal: ac.signal,
    done: () => {
      a.removeEventListener('abort', stop);
      b.removeEventListener('abort', stop);
    },
  };
}

/** `closing` fires when the server shuts down: WatchJob streams then end with UNAVAILABLE (watch again with after_id). */
export function jobHandlers(ctx: ServiceContext, closing?: AbortSignal): grpc.UntypedServiceImplementation {
  return {
    SubmitJob: unary<SubmitJobRequest, SubmitJobResponse>(ctx, 'SubmitJob', async (req, tenant) => {
      const { body, topLevel } = submitBody(req);
      try {
        const { job, created } = await submitJob(ctx, tenant, body, req.idempotencyKey === '' ? null : req.idempotencyKey, {
          callbackUrl: req.callbackUrl === '' ? undefined : req.callbackUrl,
        });
        return { job: jobToProto(job), created };
      } catch (e) {
        throw specPath(e, topLevel);
      }
    }),
    GetJob: unary<GetJobRequest, JobMessage>(ctx, 'GetJob', async (req, tenant) => jobToProto(await getJob(ctx, tenant, requiredId(req.jobId, 'jobId')))),
    ListJobs: unary<ListJobsRequest, ListJobsResponse>(ctx, 'ListJobs', async (req, tenant) => {
      const status = jobStateFromProto(req.status, 'status');
      try {
        const page = await listJobs(ctx, tenant, {
          status: status ?? undefined,
          limit: req.pageSize === 0 ? undefined : req.pageSize,
          cursor: req.pageToken === '' ? undefined : req.pageToken,
        });
        return { jobs: page.items.map(jobToProto), nextPageToken: page.nextCursor ?? '' };
      } catch (e) {
        throw renameField(renameField(e, 'limit', 'pageSize'), 'cursor', 'pageToken');
      }
    }),
    ListRounds: unary<ListRoundsRequest, ListRoundsResponse>(ctx, 'ListRounds', async (req, tenant) => ({
      rounds: (await listRounds(ctx, tenant, requiredId(req.jobId, 'jobId'))).map(roundToProto),
    })),
    CancelJob: unary<CancelJobRequest, JobMessage>(ctx, 'CancelJob', async (req, tenant) => jobToProto(await cancelJob(ctx, tenant, requiredId(req.jobId, 'jobId')))),
    DeleteJob: unary<DeleteJobRequest, DeleteResponse>(ctx, 'DeleteJob', async (req, tenant) => {
      await deleteJob(ctx, tenant, requiredId(req.jobId, 'jobId'));
      return {};
    }),
    WatchJob: serverStream<WatchJobRequest, JobEventMessage>(ctx, 'WatchJob', async (req, tenant, out, signal) => {
      const jobId = requiredId(req.jobId, 'jobId');
      const watch = eitherSignal(signal, closing);
      try {
        for await (const event of watchJob(ctx, tenant, jobId, { afterId: req.afterId === 0 ? null : req.afterId, signal: watch.signal })) {
          await out.write(eventToProto(event));
        }
      } finally {
        watch.done();
      }
      // Ending with OK would tell the client the job had finished.
      if (closing?.aborted && !signal.aborted) throw new ServiceError('UNAVAILABLE', 'the server is shutting down; watch again with after_id to resume', 'jobId');
    }),
  };
}
