// /v1/jobs: submit (Idempotency-Key honoured), get, list with a keyset
// cursor (in the body and a Link header), rounds, cancel, artifacts, delete.
import type { Request } from 'express';
import { ARTIFACT_KINDS, cancelJob, deleteJob, getJob, getJobPlot, IDEMPOTENCY_KEY_PATTERN, invalid, listArtifactsPage, listJobs, listRoundsPage, PLOT_NAMES, submitJob, JOB_STATES, ServiceError } from '../../../service/index.js';
import { COMMON_ERRORS, PAGE_PARAMS, pageOf, pageQuery, pathParam, queryString, ref, tagJob, type RouteDef } from '../route.js';

const jobId = { name: 'id', description: 'Job id', schema: { type: 'string', format: 'uuid' } };

const MODEL_PREFIX = 'model:';
const DATASET_PREFIX = 'dataset:';
const TOP_LEVEL = new Set(['model', 'dataset', 'idempotencyKey', 'body', 'callbackUrl']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Json = Record<string, unknown>;
const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * The request body in the service's flat form. Clients may also send
 * `{ model, dataset, spec: {...} }` and bare ids for uploaded models or
 * registered datasets; both are spelled the service's way here. Returns the
 * prefix for error fields that came from the nested `spec`, and the
 * top-level `callbackUrl` (not a run-spec field) apart.
 */
function submitBody(raw: unknown): { flat: Json; specPrefix: string; callbackUrl: unknown } {
  if (!isObject(raw)) throw invalid('body', 'body: expected a JSON object (Content-Type: application/json)');
  const { callbackUrl, ...body } = raw;
  let flat: Json = body;
  let specPrefix = '';
  if ('spec' in body) {
    const { spec, ...top } = body;
    if (!isObject(spec)) throw invalid('spec', 'spec: expected an object of run-spec fields');
    if ('callbackUrl' in spec) throw invalid('spec.callbackUrl', "spec.callbackUrl: callbackUrl sits beside 'spec', not in it");
    for (const k of Object.keys(top)) {
      if (k !== 'model' && k !== 'dataset') throw invalid(k, `${k}: with 'spec', only 'model', 'dataset' and 'callbackUrl' sit beside it`);
    }
    flat = { ...spec, ...top };
    specPrefix = 'spec.';
  }
  if (typeof flat.model === 'string' && UUID.test(flat.model)) flat = { ...flat, model: MODEL_PREFIX + flat.model };
  if (typeof flat.dataset === 'string' && UUID.test(flat.dataset)) flat = { ...flat, dataset: DATASET_PREFIX + flat.dataset };
  return { flat, specPrefix, callbackUrl };
}

function nextLink(req: Request, cursor: string): string {
  const q = new URLSearchParams();
  const status = queryString(req, 'status');
  const limit = queryString(req, 'limit');
  if (status) q.set('status', status);
  if (limit) q.set('limit', limit);
  q.set('cursor', cursor);
  return `</v1/jobs?${q.toString()}>; rel="next"`;
}

export const jobRoutes: RouteDef[] = [
  {
    method: 'post',
    path: '/v1/jobs',
    operationId: 'submitJob',
    tag: 'jobs',
    summary: 'Submit a compression job (validated in full before it is queued)',
    headers: [
      {
        name: 'Idempotency-Key',
        description: 'Retries with the same key return the first job instead of a new one (1-255 printable ASCII characters, no spaces)',
        schema: { type: 'string', minLength: 1, maxLength: 255, pattern: IDEMPOTENCY_KEY_PATTERN },
      },
    ],
    body: { required: true, content: { 'application/json': ref('SubmitJobRequest') } },
    responses: {
      201: { description: 'Queued', content: { 'application/json': ref('Job') }, headers: { Location: 'The job URL' } },
      200: { description: 'Replay of an earlier submission with this Idempotency-Key', content: { 'application/json': ref('Job') }, headers: { 'Idempotent-Replayed': 'true' } },
    },
    errors: ['INVALID_ARGUMENT', 'NOT_FOUND', 'FAILED_PRECONDITION', 'IDEMPOTENCY_KEY_REUSED', 'PAYLOAD_TOO_LARGE', 'QUOTA_EXCEEDED', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      const { flat, specPrefix, callbackUrl } = submitBody(req.body);
      let result;
      try {
        result = await submitJob(ctx, tenant, flat, req.get('idempotency-key') ?? null, { callbackUrl });
      } catch (e) {
        // Point a nested client at the field it actually sent: `spec.rounds`, not `rounds`.
        if (specPrefix && e instanceof ServiceError && e.field) {
          const nest = (field: string, message: string) => (TOP_LEVEL.has(field) ? { field, message } : { field: specPrefix + field, message: specPrefix + message });
          const first = nest(e.field, e.message);
          throw new ServiceError(e.code, first.message, first.field, e.issues?.map((i) => nest(i.field, i.message)));
        }
        throw e;
      }
      tagJob(res, result.job.id);
      res.setHeader('Location', `/v1/jobs/${result.job.id}`);
      if (!result.created) res.setHeader('Idempotent-Replayed', 'true');
      res.status(result.created ? 201 : 200).json(result.job);
    },
  },
  {
    method: 'get',
    path: '/v1/jobs',
    operationId: 'listJobs',
    tag: 'jobs',
    summary: "The tenant's jobs, newest first",
    query: [
      { name: 'status', description: 'Only jobs in this state', schema: { type: 'string', enum: [...JOB_STATES] } },
      ...PAGE_PARAMS,
    ],
    responses: { 200: { description: 'One page', content: { 'application/json': ref('JobPage') }, headers: { Link: 'rel="next" URL while there are more' } } },
    errors: ['INVALID_ARGUMENT', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      const page = await listJobs(ctx, tenant, { status: queryString(req, 'status'), cursor: queryString(req, 'cursor'), limit: queryString(req, 'limit') });
      if (page.nextCursor) res.setHeader('Link', nextLink(req, page.nextCursor));
      // next_cursor: the old name, kept for one version beside nextCursor (deprecated in the document).
      res.json({ items: page.items, nextCursor: page.nextCursor, next_cursor: page.nextCursor });
    },
  },
  {
    method: 'get',
    path: '/v1/jobs/:id',
    operationId: 'getJob',
    tag: 'jobs',
    summary: 'A job: status, progress, result',
    params: [jobId],
    responses: { 200: { description: 'The job', content: { 'application/json': ref('Job') } } },
    errors: ['NOT_FOUND', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      const id = pathParam(req, 'id');
      tagJob(res, id);
      res.json(await getJob(ctx, tenant, id));
    },
  },
  {
    method: 'delete',
    path: '/v1/jobs/:id',
    operationId: 'deleteJob',
    tag: 'jobs',
    summary: 'Delete a finished job with its rounds, events and artifacts (409 while it is queued or running: cancel it first)',
    params: [jobId],
    responses: { 204: { description: 'Deleted' } },
    errors: ['NOT_FOUND', 'FAILED_PRECONDITION', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      const id = pathParam(req, 'id');
      tagJob(res, id);
      await deleteJob(ctx, tenant, id);
      res.status(204).end();
    },
  },
  {
    method: 'get',
    path: '/v1/jobs/:id/rounds',
    operationId: 'listRounds',
    tag: 'jobs',
    summary: "A job's finished rounds with their metrics",
    params: [jobId],
    query: PAGE_PARAMS,
    responses: { 200: { description: 'Rounds, in order', content: { 'application/json': pageOf('Round') } } },
    errors: ['NOT_FOUND', 'INVALID_ARGUMENT', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      const id = pathParam(req, 'id');
      tagJob(res, id);
      res.json(await listRoundsPage(ctx, tenant, id, pageQuery(req)));
    },
  },
  {
    method: 'get',
    path: '/v1/jobs/:id/plots/:name',
    operationId: 'getJobPlot',
    tag: 'jobs',
    summary: "A Lottery Ticket plot of the job as SVG, drawn now from its committed rounds (works while it runs). IMP jobs: accuracy, early-stop, density; filter jobs: sensitivity, density",
    params: [jobId, { name: 'name', description: 'Which plot', schema: { type: 'string', enum: [...PLOT_NAMES] } }],
    responses: {
      200: {
        description: "SVG; each series is <g class=\"series\" data-series=\"SLUG\"> with one <circle class=\"point\" data-x data-y> per round (x: % of weights remaining, y: test accuracy % or early-stop iteration); the dense baseline is <g class=\"baseline\" data-series=\"dense\">; bars are <rect class=\"bar\" data-x=\"LAYER\" data-y>",
        content: { 'image/svg+xml': { type: 'string' } },
      },
    },
    errors: ['NOT_FOUND', 'INVALID_ARGUMENT', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      const id = pathParam(req, 'id');
      tagJob(res, id);
      const svg = await getJobPlot(ctx, tenant, id, pathParam(req, 'name'));
      res.type('image/svg+xml').set('Cache-Control', 'no-store').send(svg);
    },
  },
  {
    method: 'post',
    path: '/v1/jobs/:id/cancel',
    operationId: 'cancelJob',
    tag: 'jobs',
    summary: 'Cancel a job (a running one stops between training steps and keeps its finished rounds)',
    params: [jobId],
    responses: {
      200: { description: 'Cancelled', content: { 'application/json': ref('Job') } },
      202: { description: 'Running: asked to stop; watch it reach `cancelled`', content: { 'application/json': ref('Job') } },
    },
    errors: ['NOT_FOUND', 'FAILED_PRECONDITION', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      const id = pathParam(req, 'id');
      tagJob(res, id);
      const job = await cancelJob(ctx, tenant, id);
      res.status(job.status === 'cancelled' ? 200 : 202).json(job);
    },
  },
  {
    method: 'get',
    path: '/v1/jobs/:id/artifacts',
    operationId: 'listJobArtifacts',
    tag: 'artifacts',
    summary: "A job's artifacts (per-round masks and weights, the ticket, the result)",
    params: [jobId],
    query: [{ name: 'kind', description: 'Only this kind', schema: { type: 'string', enum: [...ARTIFACT_KINDS] } }, ...PAGE_PARAMS],
    responses: { 200: { description: 'Artifacts', content: { 'application/json': ref('ArtifactList') } } },
    errors: ['NOT_FOUND', 'INVALID_ARGUMENT', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      const id = pathParam(req, 'id');
      tagJob(res, id);
      res.json(await listArtifactsPage(ctx, tenant, { jobId: id, kind: queryString(req, 'kind'), ...pageQuery(req) }));
    },
  },
];
