// Tenant matrix, generated from the two doors' own tables: every REST route
// of restRoutes() and every method of the loaded Compression service. For
// each id a route or method takes, tenant B asking for tenant A's id gets the
// same answer (status / gRPC code, error code, message shape) as for an id
// that does not exist; for each one that needs a key, no key, a malformed key
// and a revoked key get 401 / UNAUTHENTICATED. A route or method, or an id
// parameter, the generator does not know how to call fails the test, so a new
// endpoint cannot skip the matrix. (A list filtered by a foreign id answers
// like one filtered by a missing id: an empty list, or the same error.) Real
// servers on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import * as tf from '@tensorflow/tfjs';
import { restRoutes } from '../../src/api/rest/app.js';
import { HttpMetrics } from '../../src/api/rest/metrics.js';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { compressionService, ERROR_CODE_KEY, messageFields } from '../../src/api/grpc/proto.js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { createApiKey, createWebhook, getJob, listArtifacts, registerDataset, revokeApiKey, submitJob, uploadModel, type ServiceRuntime } from '../../src/service/index.js';
import { makeTestEngine } from '../integration/fixtures/test-engine.js';
import { startTestDb, until, uploadFiles, type TestDb } from '../integration/fixtures/harness.js';

type Kind = 'job' | 'model' | 'dataset' | 'artifact' | 'webhook';

/**
 * How to call each REST operation: which kind of id sits in its `:id`, in
 * which query parameters, and in which body field. Every operation must be
 * here; every path parameter and every `...Id` query parameter must be named.
 */
/** `fixed`: path parameters other than `:id`, with the value the matrix puts there. */
const REST: Record<string, { path?: Kind; fixed?: Record<string, string>; query?: Record<string, Kind>; body?: (id: string) => unknown; bodyId?: Kind }> = {
  health: {},
  ready: {},
  metrics: {},
  openapi: {},
  uploadModel: {},
  listModels: {},
  getModel: { path: 'model' },
  registerDataset: { body: () => ({ reference: 'builtin:mnist' }) },
  listDatasets: {},
  getDataset: { path: 'dataset' },
  deleteModel: { path: 'model' },
  deleteDataset: { path: 'dataset' },
  deleteJob: { path: 'job' },
  submitJob: { bodyId: 'model', body: (model) => ({ model, dataset: 'builtin:mnist', rounds: 1, iterations: 1 }) },
  listJobs: {},
  getJob: { path: 'job' },
  listRounds: { path: 'job' },
  getJobPlot: { path: 'job', fixed: { name: 'accuracy' } },
  cancelJob: { path: 'job' },
  listJobArtifacts: { path: 'job' },
  watchJob: { path: 'job' },
  watchJobs: {},
  listArtifacts: { query: { jobId: 'job', modelId: 'model' } },
  downloadArtifact: { path: 'artifact' },
  downloadTicket: { path: 'job' },
  // Webhooks (issue 13): the endpoint body is a loopback URL the matrix's allow list admits (never dialled for B).
  rotateCallbackSecret: {},
  createWebhook: { body: () => ({ url: 'http://127.0.0.1:9/hook' }) },
  listWebhooks: {},
  listWebhookDeliveries: { query: { jobId: 'job' } },
  deleteWebhook: { path: 'webhook' },
};

/** The same for gRPC methods: request fields holding ids, and a request builder. */
const GRPC: Record<string, { ids: Record<string, Kind>; request: (field?: string, id?: string) => object }> = {
  UploadModel: { ids: {}, request: () => ({}) },
  GetModel: { ids: { modelId: 'model' }, request: (f, id) => ({ [f ?? 'modelId']: id ?? randomUUID() }) },
  RegisterDataset: { ids: {}, request: () => ({ reference: 'builtin:mnist' }) },
  SubmitJob: { ids: { model: 'model' }, request: (_f, id) => ({ model: id ?? 'lenet-300-100', dataset: 'builtin:mnist', spec: { rounds: 1, iterations: 1 } }) },
  GetJob: { ids: { jobId: 'job' }, request: (_f, id) => ({ jobId: id ?? randomUUID() }) },
  ListJobs: { ids: {}, request: () => ({}) },
  ListRounds: { ids: { jobId: 'job' }, request: (_f, id) => ({ jobId: id ?? randomUUID() }) },
  CancelJob: { ids: { jobId: 'job' }, request: (_f, id) => ({ jobId: id ?? randomUUID() }) },
  WatchJob: { ids: { jobId: 'job' }, request: (_f, id) => ({ jobId: id ?? randomUUID() }) },
  ListArtifacts: { ids: { jobId: 'job', modelId: 'model' }, request: (f, id) => (f ? { [f]: id } : {}) },
  DownloadArtifact: { ids: { artifactId: 'artifact' }, request: (_f, id) => ({ artifactId: id ?? randomUUID() }) },
  DownloadTicket: { ids: { jobId: 'job' }, request: (_f, id) => ({ jobId: id ?? randomUUID() }) },
  DeleteModel: { ids: { modelId: 'model' }, request: (_f, id) => ({ modelId: id ?? randomUUID() }) },
  DeleteDataset: { ids: { datasetId: 'dataset' }, request: (_f, id) => ({ datasetId: id ?? randomUUID() }) },
  DeleteJob: { ids: { jobId: 'job' }, request: (_f, id) => ({ jobId: id ?? randomUUID() }) },
  // Dataset uploads (issue 11): takes no id; a new dataset is always the caller's own.
  UploadDataset: { ids: {}, request: () => ({}) },
};

let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let grpcServer: GrpcServerHandle;
let address: string;
const keys = { a: '', b: '', revoked: '' };
const owned: Record<Kind, string> = { job: '', model: '', dataset: '', artifact: '', webhook: '' };

before(async () => {
  // Loopback allowed, so tenant A can register a webhook endpoint without any public address in the test.
  t = await startTestDb({ TICKETSMITH_OUTBOUND_ALLOW: '127.0.0.1/32' });
  rt = await t.open({ worker: { heartbeatSeconds: 0.5, pollSeconds: 0.2, progressIntervalMs: 100 }, runner: makeTestEngine({ stepMs: 1 }) });
  rest = await startRestServer(rt, { host: '127.0.0.1', port: 0, sseHeartbeatMs: 300 });
  grpcServer = await startGrpcServer(rt, { host: '127.0.0.1', port: 0 });
  address = `127.0.0.1:${grpcServer.port}`;
  keys.a = (await createApiKey(rt.ctx, 'acme')).key;
  keys.b = (await createApiKey(rt.ctx, 'globex')).key;
  const revoked = await createApiKey(rt.ctx, 'initech');

  // Tenant A owns one of everything.
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [28, 28, 1] }), tf.layers.dense({ units: 10, activation: 'softmax' })] });
  owned.model = (await uploadModel(rt.ctx, 'acme', { files: await uploadFiles(model) })).id;
  model.dispose();
  owned.dataset = (await registerDataset(rt.ctx, 'acme', 'builtin:mnist')).id;
  owned.job = (await submitJob(rt.ctx, 'acme', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 2 })).job.id;
  await until(async () => (await getJob(rt.ctx, 'acme', owned.job)).status === 'succeeded', 20_000, "tenant A's job");
  owned.artifact = (await listArtifacts(rt.ctx, 'acme', { jobId: owned.job }))[0]!.id;
  // Registered after A's job ended: no delivery is ever attempted.
  owned.webhook = (await createWebhook(rt.ctx, 'acme', { url: 'http://127.0.0.1:9/hook' })).id;

  // The revoked key worked once (so any cache has seen it) before it was revoked.
  const ok = await fetch(`${rest.url}/v1/jobs`, { headers: { authorization: `Bearer ${revoked.key}` } });
  assert.equal(ok.status, 200);
  await revokeApiKey(rt.ctx, 'initech', revoked.id);
  keys.revoked = revoked.key;
});

after(async () => {
  await rest?.stop(200);
  await grpcServer?.stop();
  await t?.stop();
});

const UUIDS = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
/** A message's shape: ids replaced, so "job <A's id> not found" and "job <random> not found" compare equal. */
const shape = (x: unknown) => JSON.stringify(x).replace(UUIDS, '<id>');

async function restCall(method: string, path: string, auth: string | null, body?: unknown): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = {};
  if (auth !== null) headers.authorization = auth;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${rest.url}${path}`, {
    method: method.toUpperCase(),
    headers,
    body: body === undefined ? (method === 'post' ? '' : undefined) : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  // An SSE stream that opened (a leak) would never end: read the status, not the stream.
  const type = res.headers.get('content-type') ?? '';
  if (type.startsWith('text/event-stream')) {
    await res.body?.cancel();
    return { status: res.status, body: 'event-stream' };
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: compare the text
  }
  return { status: res.status, body: parsed };
}

interface GrpcAnswer {
  code: number;
  details: string;
  errorCode: string | undefined;
}

function grpcCall(name: string, request: object, auth: string | null): Promise<GrpcAnswer> {
  const m = compressionService[name] as MethodDefinition<object, object>;
  const md = new grpc.Metadata();
  if (auth !== null) md.set('authorization', auth);
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const opts = { deadline: Date.now() + 10_000 };
  const answer = (err: grpc.ServiceError | null): GrpcAnswer =>
    err ? { code: err.code, details: err.details, errorCode: err.metadata?.get(ERROR_CODE_KEY)[0]?.toString() } : { code: grpc.status.OK, details: '', errorCode: undefined };
  return new Promise<GrpcAnswer>((resolve) => {
    const done = (err: grpc.ServiceError | null) => {
      client.close();
      resolve(answer(err));
    };
    if (m.requestStream && !m.responseStream) {
      const call = client.makeClientStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, md, opts, (err) => done(err));
      call.end();
    } else if (m.responseStream && !m.requestStream) {
      const call = client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, request, md, opts);
      call.on('data', () => {});
      call.on('error', (err: grpc.ServiceError) => done(err));
      call.on('end', () => done(null));
    } else if (!m.requestStream && !m.responseStream) {
      client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, request, md, opts, (err) => done(err));
    } else {
      client.close();
      assert.fail(`${name}: bidirectional streams are unknown to the matrix generator`);
    }
  });
}

const NO_KEYS = (revoked: string) => [
  ['no key', null],
  ['malformed key', 'Bearer not-a-ticketsmith-key'],
  ['revoked key', `Bearer ${revoked}`],
] as const;

test('tenant matrix over every REST route and gRPC method: foreign ids answer as missing ones, bad keys as 401 / UNAUTHENTICATED', async () => {
  const cells: string[] = [];
  const failures: string[] = [];
  const check = (cell: string, ok: boolean, detail: string) => {
    cells.push(cell);
    if (!ok) failures.push(`${cell}: ${detail}`);
  };

  // REST, from the route table the app serves.
  const routes = restRoutes(rt, new HttpMetrics());
  assert.ok(routes.length >= Object.keys(REST).length);
  for (const route of routes) {
    const how = REST[route.operationId];
    if (!how) {
      failures.push(`REST ${route.operationId} (${route.method.toUpperCase()} ${route.path}): the matrix does not know how to call it; add it to REST`);
      continue;
    }
    const pathParams = [...route.path.matchAll(/:(\w+)/g)].map((x) => x[1]!);
    assert.deepEqual(pathParams.filter((p) => !how.fixed?.[p]), how.path ? ['id'] : [], `${route.operationId}: path parameters the matrix knows`);
    for (const q of route.query ?? []) {
      if (/id$/i.test(q.name)) assert.ok(how.query?.[q.name], `${route.operationId}: id query parameter '${q.name}' unknown to the matrix`);
    }
    const fixedPath = Object.entries(how.fixed ?? {}).reduce((path, [name, value]) => path.replace(`:${name}`, value), route.path);
    const pathFor = (id: string) => fixedPath.replace(':id', encodeURIComponent(id));
    const label = `REST ${route.method.toUpperCase()} ${route.path}`;

    // Foreign id vs missing id, as tenant B.
    const idCells: Array<[string, (id: string) => Promise<{ status: number; body: unknown }>, Kind]> = [];
    if (how.path) idCells.push([':id', (id) => restCall(route.method, pathFor(id), `Bearer ${keys.b}`, how.body?.(id)), how.path]);
    for (const [q, kind] of Object.entries(how.query ?? {})) {
      idCells.push([`?${q}`, (id) => restCall(route.method, `${route.path}?${q}=${id}`, `Bearer ${keys.b}`), kind]);
    }
    if (how.bodyId) idCells.push(['body', (id) => restCall(route.method, route.path, `Bearer ${keys.b}`, how.body!(id)), how.bodyId]);
    for (const [where, call, kind] of idCells) {
      const foreign = await call(owned[kind]);
      const missing = await call(randomUUID());
      check(
        `${label} ${where} foreign ${kind}`,
        foreign.status === missing.status && shape(foreign.body) === shape(missing.body),
        `foreign ${foreign.status} ${shape(foreign.body)} vs missing ${missing.status} ${shape(missing.body)}`,
      );
    }

    // Bad keys.
    if (route.auth === false) continue;
    for (const [what, auth] of NO_KEYS(keys.revoked)) {
      const r = await restCall(route.method, pathFor(how.path ? owned[how.path] : ''), auth, how.body?.(how.bodyId ? owned[how.bodyId] : ''));
      const code = (r.body as { error?: { code?: string } } | null)?.error?.code;
      check(`${label} ${what}`, r.status === 401 && code === 'UNAUTHENTICATED', `${r.status} ${shape(r.body)}`);
    }
  }
  for (const op of Object.keys(REST)) assert.ok(routes.some((r) => r.operationId === op), `REST table names ${op}, which the app does not serve`);

  // gRPC, from the loaded service definition.
  for (const [name, def] of Object.entries(compressionService)) {
    const how = GRPC[name];
    if (!how) {
      failures.push(`gRPC ${name}: the matrix does not know how to call it; add it to GRPC`);
      continue;
    }
    const requestType = (def.requestType as unknown as { type: { name: string } }).type.name;
    for (const f of messageFields(requestType)) {
      if (f.type === 'TYPE_STRING' && /id$/i.test(f.name)) assert.ok(how.ids[f.name], `${name}: id field '${f.name}' unknown to the matrix`);
    }
    const label = `gRPC ${name}`;
    for (const [field, kind] of Object.entries(how.ids)) {
      const foreign = await grpcCall(name, how.request(field, owned[kind]), `Bearer ${keys.b}`);
      const missing = await grpcCall(name, how.request(field, randomUUID()), `Bearer ${keys.b}`);
      check(
        `${label} ${field} foreign ${kind}`,
        foreign.code === missing.code && foreign.errorCode === missing.errorCode && shape(foreign.details) === shape(missing.details),
        `foreign ${foreign.code}/${foreign.errorCode} '${foreign.details}' vs missing ${missing.code}/${missing.errorCode} '${missing.details}'`,
      );
    }
    const firstId = Object.entries(how.ids)[0];
    for (const [what, auth] of NO_KEYS(keys.revoked)) {
      const r = await grpcCall(name, firstId ? how.request(firstId[0], owned[firstId[1]]) : how.request(), auth);
      check(`${label} ${what}`, r.code === grpc.status.UNAUTHENTICATED && r.errorCode === 'UNAUTHENTICATED', `${r.code}/${r.errorCode} '${r.details}'`);
    }
  }
  for (const name of Object.keys(GRPC)) assert.ok(name in compressionService, `GRPC table names ${name}, which the service does not define`);

  console.log(`tenant matrix: ${cells.length} cells (${failures.length} failing)`);
  assert.deepEqual(failures, []);
  // A's job is untouched by B's cancel attempts.
  assert.equal((await getJob(rt.ctx, 'acme', owned.job)).status, 'succeeded');
});
