// The REST door end to end: a real HTTP server on 127.0.0.1 over the service
// on an embedded Postgres, the typed client, and (last) a worker running the
// real engine. Uploads (multipart files, zip), submit with idempotency,
// pagination, tenant isolation, bad input naming its field, a 2-round job
// followed by SSE to the end, its ticket downloaded (sha256, Range, ETag) and
// loaded in TF.js with the reported density, and a running job cancelled.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import * as tf from '@tensorflow/tfjs';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { ApiError, TicketsmithClient, type EventDto } from '../../src/client/index.js';
import { RunSpecSchema } from '../../src/engine/spec.js';
import { loadModelFrom } from '../../src/engine/models/load.js';
import { getWeightMap, prunableWeights } from '../../src/engine/models/inspect.js';
import { createApiKey, ERROR_CODES, type ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, type TestDb, uploadFiles } from '../integration/fixtures/harness.js';
import { checkResponsesOf } from '../fixtures/openapi-check.js';

/** Every REST response this file sees is checked against /openapi.json (test/fixtures/openapi-check.ts). */
let responses: Awaited<ReturnType<typeof checkResponsesOf>> | undefined;
let t: TestDb;
let rt: ServiceRuntime;
let server: RestServer;
let base: string;
let acmeKey: string;
let globexKey: string;
let acme: TicketsmithClient;
let globex: TicketsmithClient;
let modelFiles: { name: string; bytes: Uint8Array<ArrayBuffer> }[];

/** Real engine, seconds per job: a small MLP on 300 MNIST examples. */
const tiny = { dataset: 'builtin:mnist', rounds: 2, iterations: 20, evalEvery: 10, batchSize: 30, maxTrainExamples: 300, controls: 'none', seed: 1 } as const;

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function call(method: string, path: string, init: { key?: string | null; body?: string | Uint8Array | FormData; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  const key = init.key === undefined ? acmeKey : init.key;
  if (key) headers.authorization = `Bearer ${key}`;
  const res = await fetch(base + path, { method, headers, body: init.body as BodyInit | undefined, signal: AbortSignal.timeout(30_000) });
  const text = res.status === 304 ? '' : await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON (downloads, metrics)
  }
  return { res, status: res.status, text, json: json as Record<string, unknown> & { error?: { code: string; message: string; field?: string } } };
}

const postJson = (path: string, body: unknown, headers: Record<string, string> = {}, key?: string | null) =>
  call('POST', path, { key, body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

function assertError(r: { status: number; json: { error?: { code: string; field?: string } } }, status: number, code: string, field?: string) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(r.json.error?.code, code, JSON.stringify(r.json));
  if (field !== undefined) assert.equal(r.json.error?.field, field, JSON.stringify(r.json));
}

before(async () => {
  t = await startTestDb();
  rt = await t.open();
  server = await startRestServer(rt, { port: 0, sseHeartbeatMs: 300 });
  responses = await checkResponsesOf(server.url);
  base = server.url;
  acmeKey = (await createApiKey(rt.ctx, 'acme')).key;
  globexKey = (await createApiKey(rt.ctx, 'globex')).key;
  acme = new TicketsmithClient({ baseUrl: base, apiKey: acmeKey });
  globex = new TicketsmithClient({ baseUrl: base, apiKey: globexKey });
  // A user's own Layers model for MNIST-shaped input, saved the standard way.
  const model = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [28, 28, 1], name: 'flat' }),
      tf.layers.dense({ units: 16, activation: 'relu', name: 'fc1' }),
      tf.layers.dense({ units: 10, activation: 'softmax', name: 'out' }),
    ],
  });
  modelFiles = await uploadFiles(model);
  model.dispose();
});

after(async () => {
  responses?.restore();
  await server?.stop(500);
  await t?.stop();
});

describe('operations', () => {
  test('healthz and readyz answer without a key; every response has a request id', async () => {
    const h = await call('GET', '/healthz', { key: null });
    assert.equal(h.status, 200);
    assert.deepEqual(h.json, { status: 'ok' });
    assert.match(h.res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const r = await call('GET', '/readyz', { key: null, headers: { 'x-request-id': 'trace-42' } });
    assert.equal(r.status, 200);
    assert.equal(r.res.headers.get('x-request-id'), 'trace-42');
    // Probes that add a query string of their own are still answered.
    assert.equal((await call('GET', '/healthz?probe=lb&t=1', { key: null })).status, 200);
    assert.equal((await call('GET', '/readyz?from=k8s', { key: null })).status, 200);
  });

  test('openapi.json is generated from the route table, the run-spec schema and the error table', async () => {
    const r = await call('GET', '/openapi.json', { key: null });
    assert.equal(r.status, 200);
    const doc = r.json as { openapi: string; paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>>; components: { schemas: Record<string, { properties?: Record<string, unknown> }> } };
    assert.equal(doc.openapi, '3.1.0');
    for (const [path, method] of [['/v1/jobs', 'post'], ['/v1/jobs', 'get'], ['/v1/jobs/{id}', 'get'], ['/v1/jobs/{id}/rounds', 'get'], ['/v1/jobs/{id}/events', 'get'], ['/v1/jobs/{id}/cancel', 'post'], ['/v1/jobs/{id}/artifacts', 'get'], ['/v1/artifacts/{id}', 'get'], ['/v1/models', 'post'], ['/v1/datasets', 'post'], ['/healthz', 'get'], ['/metrics', 'get']] as const) {
      assert.ok(doc.paths[path]?.[method], `${method} ${path} documented`);
    }
    assert.deepEqual(Object.keys(doc.components.schemas.RunSpec!.properties!).sort(), Object.keys(RunSpecSchema.shape).sort());
    const err = doc.components.schemas.Error!.properties!.error as { properties: { code: { enum: string[] } } };
    assert.deepEqual(err.properties.code.enum, [...ERROR_CODES]);
    // Statuses come from the error table: a missing job is documented as 404, a reused key as 422.
    assert.ok(doc.paths['/v1/jobs/{id}']!.get!.responses['404'], "doc.paths['/v1/jobs/{id}']!.get!.responses['404']");
    assert.ok(doc.paths['/v1/jobs']!.post!.responses['422'], "doc.paths['/v1/jobs']!.post!.responses['422']");
  });

  test('unknown routes are a JSON 404, a known path with a method it lacks 405 with Allow; the dashboard page is served at /', async () => {
    assertError(await call('GET', '/v1/nope'), 404, 'NOT_FOUND');
    const wrongMethod = await call('DELETE', '/v1/jobs', { key: null });
    assertError(wrongMethod, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(wrongMethod.res.headers.get('allow'), 'GET, HEAD, POST, OPTIONS');
    const page = await call('GET', '/', { key: null });
    assert.equal(page.status, 200);
    assert.match(page.text, /<title>Ticketsmith<\/title>/);
    assert.match((await call('GET', '/dashboard.js', { key: null })).text, /\/v1\/jobs/);
  });
});

describe('authentication and bad input', () => {
  test('no key, a malformed key and an unknown key are 401 UNAUTHENTICATED; X-Api-Key works too', async () => {
    const none = await call('GET', '/v1/jobs', { key: null });
    assertError(none, 401, 'UNAUTHENTICATED');
    assert.match(none.res.headers.get('www-authenticate') ?? '', /^Bearer/);
    assertError(await call('GET', '/v1/jobs', { key: 'nope' }), 401, 'UNAUTHENTICATED');
    assertError(await call('GET', '/v1/jobs', { key: `tsk_${'A'.repeat(43)}` }), 401, 'UNAUTHENTICATED');
    // Even with a broken body, a stranger learns only that a key is needed.
    assertError(await call('POST', '/v1/jobs', { key: null, body: '{oops', headers: { 'content-type': 'application/json' } }), 401, 'UNAUTHENTICATED');
    const viaHeader = await call('GET', '/v1/jobs', { key: null, headers: { 'x-api-key': acmeKey } });
    assert.equal(viaHeader.status, 200);
  });

  test('bad bodies and bad spec fields are 400 naming the field, and queue nothing', async () => {
    const before = await rt.ctx.prisma.job.count();
    assertError(await call('POST', '/v1/jobs', { body: '{"rounds": 2,', headers: { 'content-type': 'application/json' } }), 400, 'INVALID_ARGUMENT', 'body');
    assertError(await call('POST', '/v1/jobs', { body: 'rounds=2', headers: { 'content-type': 'text/plain' } }), 400, 'INVALID_ARGUMENT', 'body');
    assertError(await postJson('/v1/jobs', [1, 2]), 400, 'INVALID_ARGUMENT', 'body');
    assertError(await postJson('/v1/jobs', { ...tiny, model: 'lenet-20-10', rounds: -1 }), 400, 'INVALID_ARGUMENT', 'rounds');
    assertError(await postJson('/v1/jobs', { ...tiny, model: 'lenet-20-10', learningRate: 'fast' }), 400, 'INVALID_ARGUMENT', 'learningRate');
    assertError(await postJson('/v1/jobs', { ...tiny, model: 'lenet-20-10', bogus: true }), 400, 'INVALID_ARGUMENT', 'bogus');
    // The nested form names the field where the client put it.
    assertError(await postJson('/v1/jobs', { model: 'lenet-20-10', dataset: 'builtin:mnist', spec: { rounds: 1.5 } }), 400, 'INVALID_ARGUMENT', 'spec.rounds');
    assertError(await postJson('/v1/jobs', { ...tiny, model: 'resnet-9000' }), 400, 'INVALID_ARGUMENT', 'model');
    assertError(await postJson('/v1/jobs', { ...tiny, model: '/etc/passwd' }), 400, 'INVALID_ARGUMENT', 'model');
    assertError(await postJson('/v1/jobs', { ...tiny, model: 'lenet-20-10', dataset: 'ftp://example.com/mnist' }), 400, 'INVALID_ARGUMENT', 'dataset');
    assertError(await postJson('/v1/jobs', { ...tiny, model: 'lenet-20-10', dataset: 'file:///etc' }), 400, 'INVALID_ARGUMENT', 'dataset');
    assertError(await postJson('/v1/jobs', { ...tiny, model: '6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11' }), 404, 'NOT_FOUND', 'model');
    assertError(await postJson('/v1/jobs', { ...tiny, model: 'lenet-20-10' }, { 'idempotency-key': 'has spaces' }), 400, 'INVALID_ARGUMENT', 'idempotencyKey');
    assertError(await call('GET', '/v1/jobs?limit=0'), 400, 'INVALID_ARGUMENT', 'limit');
    assertError(await call('GET', '/v1/jobs?status=done'), 400, 'INVALID_ARGUMENT', 'status');
    assertError(await call('GET', '/v1/jobs?cursor=zzz'), 400, 'INVALID_ARGUMENT', 'cursor');
    assertError(await call('GET', '/v1/jobs?limit=1&limit=2'), 400, 'INVALID_ARGUMENT', 'limit');
    assertError(await call('GET', '/v1/jobs/%E0%A4%A'), 400, 'INVALID_ARGUMENT');
    assertError(await postJson('/v1/datasets', { reference: 'builtin:nope' }), 400, 'INVALID_ARGUMENT', 'reference');
    assert.equal(await rt.ctx.prisma.job.count(), before);
  });
});

describe('models and datasets', () => {
  test('a multipart upload of model.json + weights is validated and summarised', async () => {
    const form = new FormData();
    form.append('name', 'my-mlp');
    for (const f of modelFiles) form.append('files', new Blob([f.bytes]), f.name);
    const r = await call('POST', '/v1/models', { body: form });
    assert.equal(r.status, 201, r.text);
    const m = r.json as { id: string; name: string; architecture: { inputShape: number[]; numClasses: number; params: number }; files: { name: string; sha256: string }[] };
    assert.equal(r.res.headers.get('location'), `/v1/models/${m.id}`);
    assert.equal(m.name, 'my-mlp');
    assert.deepEqual(m.architecture.inputShape, [28, 28, 1]);
    assert.equal(m.architecture.numClasses, 10);
    assert.equal(m.architecture.params, 784 * 16 + 16 + 16 * 10 + 10);
    const weights = modelFiles.find((f) => f.name === 'weights.bin')!;
    assert.equal(m.files.find((f) => f.name === 'weights.bin')!.sha256, sha(weights.bytes));
    assert.equal((await acme.getModel(m.id)).id, m.id);
    await assert.rejects(globex.getModel(m.id), (e: unknown) => e instanceof ApiError && e.status === 404);
  });

  test('a zip (multipart part or raw body) is the same model; broken and oversized uploads are refused', async () => {
    const zip = zipSync(Object.fromEntries(modelFiles.map((f) => [`mlp/${f.name}`, f.bytes])));
    const viaClient = await acme.uploadModel({ archive: zip, filename: 'mlp.zip' });
    const raw = await call('POST', '/v1/models?name=raw', { body: zip, headers: { 'content-type': 'application/zip' } });
    assert.equal(raw.status, 201, raw.text);
    assert.equal((raw.json as { sha256: string }).sha256, viaClient.sha256);
    assert.equal((raw.json as { name: string }).name, 'raw');
    const direct = await acme.uploadModel({ files: modelFiles });
    assert.equal(direct.sha256, viaClient.sha256);

    const modelJson = modelFiles.find((f) => f.name === 'model.json')!;
    const onlyJson = new FormData();
    onlyJson.append('files', new Blob([modelJson.bytes]), 'model.json');
    assertError(await call('POST', '/v1/models', { body: onlyJson }), 400, 'INVALID_ARGUMENT', 'model.json.weightsManifest[0].paths[0]');
    assertError(await call('POST', '/v1/models', { body: JSON.stringify({}), headers: { 'content-type': 'application/json' } }), 400, 'INVALID_ARGUMENT', 'content-type');
    assertError(await call('POST', '/v1/models', { body: new Uint8Array([1, 2, 3, 4]), headers: { 'content-type': 'application/zip' } }), 400, 'INVALID_ARGUMENT', 'archive');
    // The harness caps uploads at 1 MiB.
    const big = new FormData();
    big.append('files', new Blob([modelJson.bytes]), 'model.json');
    big.append('files', new Blob([new Uint8Array(1536 * 1024)]), 'weights.bin');
    assertError(await call('POST', '/v1/models', { body: big }), 413, 'PAYLOAD_TOO_LARGE');
  });

  test('datasets register once per tenant and are private', async () => {
    const a = await acme.registerDataset('builtin:mnist');
    const b = await acme.registerDataset('builtin:mnist');
    assert.equal(a.id, b.id);
    assert.deepEqual({ inputShape: a.shapes.inputShape, numClasses: a.shapes.numClasses, counts: a.shapes.counts }, { inputShape: [28, 28, 1], numClasses: 10, counts: { train: 8004, test: 1996 } });
    assertError(await call('GET', `/v1/datasets/${a.id}`, { key: globexKey }), 404, 'NOT_FOUND');
  });
});

describe('jobs (no worker yet: they stay queued)', () => {
  const queued: string[] = [];
  after(async () => {
    // Leave nothing for the worker that starts in the next suite.
    for (const id of queued) await acme.cancelJob(id).catch(() => {});
  });

  test('pagination: 3 jobs, limit 2 → a next cursor (body and Link) → the last one', async () => {
    for (let seed = 0; seed < 3; seed++) {
      const r = await postJson('/v1/jobs', { ...tiny, model: 'lenet-20-10', seed: 100 + seed });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.status, 'queued');
      queued.push(r.json.id as string);
    }
    const first = await call('GET', '/v1/jobs?limit=2');
    assert.equal(first.status, 200);
    const items = first.json.items as { id: string }[];
    assert.deepEqual(items.map((j) => j.id), [queued[2], queued[1]]);
    const cursor = first.json.next_cursor as string;
    assert.ok(cursor, "cursor");
    const link = first.res.headers.get('link') ?? '';
    const m = /^<([^>]+)>; rel="next"$/.exec(link);
    assert.ok(m, link);
    const second = await call('GET', m[1]!);
    assert.deepEqual((second.json.items as { id: string }[]).map((j) => j.id), [queued[0]]);
    assert.equal(second.json.next_cursor, null);
    assert.equal(second.res.headers.get('link'), null);
    // The client walks the same pages.
    const page = await acme.listJobs({ limit: 2, cursor });
    assert.deepEqual(page.items.map((j) => j.id), [queued[0]]);
    assert.equal((await acme.listJobs({ status: 'queued' })).items.length, 3);
  });

  test('Idempotency-Key: the same key returns the same job; another body with it is 422', async () => {
    const body = { model: 'lenet-20-10', dataset: 'builtin:mnist', spec: { rounds: 1, iterations: 10, seed: 7 } };
    const a = await postJson('/v1/jobs', body, { 'idempotency-key': 'ci-run-1' });
    const b = await postJson('/v1/jobs', body, { 'idempotency-key': 'ci-run-1' });
    assert.equal(a.status, 201);
    assert.equal(b.status, 200);
    assert.equal(b.res.headers.get('idempotent-replayed'), 'true');
    assert.equal(a.json.id, b.json.id);
    queued.push(a.json.id as string);
    const c = await acme.submitJob({ model: 'lenet-20-10', dataset: 'builtin:mnist', rounds: 1, iterations: 10, seed: 7 }, { idempotencyKey: 'ci-run-1' });
    assert.equal(c.job.id, a.json.id);
    assert.equal(c.created, false);
    assertError(await postJson('/v1/jobs', { ...body, spec: { ...body.spec, seed: 8 } }, { 'idempotency-key': 'ci-run-1' }), 422, 'IDEMPOTENCY_KEY_REUSED');
  });

  test('another tenant sees nothing: 404 on every job route, an empty list', async () => {
    const id = queued[0]!;
    for (const path of [`/v1/jobs/${id}`, `/v1/jobs/${id}/rounds`, `/v1/jobs/${id}/artifacts`, `/v1/jobs/${id}/events`]) {
      assertError(await call('GET', path, { key: globexKey }), 404, 'NOT_FOUND');
    }
    assertError(await call('POST', `/v1/jobs/${id}/cancel`, { key: globexKey }), 404, 'NOT_FOUND');
    const list = await globex.listJobs();
    assert.deepEqual(list.items, []);
    assert.equal(list.nextCursor, null);
    // A malformed id is the client's mistake, named (the path documents format: uuid); a well-formed unknown one is 404.
    assertError(await call('GET', '/v1/jobs/not-a-uuid'), 400, 'INVALID_ARGUMENT', 'id');
  });

  test('the SSE wire format: id/event/data frames, heartbeats while idle, a final end event', async () => {
    const id = queued[0]!;
    assertError(await call('GET', `/v1/jobs/${id}/events`, { headers: { 'last-event-id': 'yesterday' } }), 400, 'INVALID_ARGUMENT', 'afterId');
    const res = await fetch(`${base}/v1/jobs/${id}/events`, { headers: { authorization: `Bearer ${acmeKey}` }, signal: AbortSignal.timeout(20_000) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (re: RegExp) => {
      while (!re.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
    };
    // A queued job with no worker is silent: only heartbeats (every 300 ms here) arrive.
    await readUntil(/: heartbeat\n\n[\s\S]*: heartbeat\n\n/);
    const queuedEvent = /id: (\d+)\nevent: queued\ndata: (.*)\n\n/.exec(text);
    assert.ok(queuedEvent, text);
    assert.deepEqual(JSON.parse(queuedEvent[2]!).id, Number(queuedEvent[1]));
    await acme.cancelJob(id);
    await readUntil(/event: end\ndata: .*\n\n/);
    assert.match(text, /event: finished\ndata: .*"status":"cancelled"/);
    assert.match(text, /event: end\ndata: \{"status":"cancelled"\}\n\n$/);
    assert.equal((await reader.read()).done, true, 'the server closes the stream after end');
  });

  test('cancelling a queued job ends it at once (200); its event stream then ends by itself', async () => {
    const id = queued.pop()!;
    const r = await call('POST', `/v1/jobs/${id}/cancel`);
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 'cancelled');
    const kinds: string[] = [];
    for await (const e of acme.watchJob(id)) kinds.push(e.kind);
    assert.deepEqual(kinds, ['queued', 'finished']);
  });

  test('metrics count requests by route and status, and jobs by state', async () => {
    const r = await call('GET', '/metrics', { key: null });
    assert.equal(r.status, 200);
    assert.match(r.res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(r.text, /ticketsmith_http_requests_total\{method="GET",route="\/v1\/jobs",status="200"\} \d+/);
    assert.match(r.text, /ticketsmith_http_requests_total\{method="GET",route="\/v1\/jobs",status="401"\} [1-9]/);
    // prom-client writes `le` first.
    assert.match(r.text, /ticketsmith_http_request_duration_seconds_bucket\{le="\+Inf",method="POST",route="\/v1\/jobs",status="201"\} [1-9]/);
    assert.match(r.text, /ticketsmith_jobs\{state="queued"\} [1-9]/);
    assert.match(r.text, /ticketsmith_jobs\{state="cancelled"\} [1-9]/);
    assert.match(r.text, /ticketsmith_queue_depth [1-9]/);
  });
});

describe('with a worker running the real engine', () => {
  before(async () => {
    await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, progressIntervalMs: 200 } });
  });

  test('an uploaded model: 2 rounds followed by SSE, rounds read back, ticket downloaded and loaded with its density', async () => {
    const model = await acme.uploadModel({ files: modelFiles }, { name: 'ticket-source' });
    const dataset = await acme.registerDataset('builtin:mnist');
    // Bare ids of an uploaded model and a registered dataset are accepted.
    const { job } = await acme.submitJob({ ...tiny, model: model.id, dataset: dataset.id });
    assert.equal(job.modelId, model.id);
    assert.equal(job.datasetId, dataset.id);

    const events: EventDto[] = [];
    const done = await acme.waitForJob(job.id, { onEvent: (e) => events.push(e), signal: AbortSignal.timeout(120_000) });
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    const ids = events.map((e) => e.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'event ids increase');
    const kinds = events.map((e) => e.kind);
    for (const k of ['queued', 'started', 'run-start', 'round', 'result', 'finished']) assert.ok(kinds.includes(k), `${k} in ${kinds.join(',')}`);
    assert.deepEqual(events.filter((e) => e.kind === 'round').map((e) => (e.payload as { round: number }).round), [0, 1, 2]);

    // Resuming after an event replays only what came after it, then ends (the job is finished).
    const mid = events[Math.floor(events.length / 2)]!.id;
    const resumed: EventDto[] = [];
    for await (const e of acme.watchJob(job.id, { afterId: mid })) resumed.push(e);
    assert.deepEqual(resumed.map((e) => e.id), ids.filter((i) => i > mid));

    // Rounds through REST are the rows in Postgres.
    const rounds = await acme.listRounds(job.id);
    assert.deepEqual(rounds.map((r) => r.index), [0, 1, 2]);
    const rows = await rt.ctx.prisma.round.findMany({ where: { jobId: job.id }, orderBy: { index: 'asc' } });
    assert.deepEqual(rounds.map((r) => [r.density, r.testAccuracy, r.earlyStopIteration]), rows.map((r) => [r.density, r.testAccuracy, r.earlyStopIteration]));
    assert.equal(rounds[0]!.density, 1);
    // One round a page gives the same rounds, and one artifact a page the same artifacts, in the listing's order.
    const paged: { rounds: number[]; artifacts: string[] } = { rounds: [], artifacts: [] };
    for (const [what, path] of [['rounds', `/v1/jobs/${job.id}/rounds`], ['artifacts', `/v1/jobs/${job.id}/artifacts`]] as const) {
      let cursor: string | null = null;
      for (let i = 0; i < 200; i++) {
        const page = await call('GET', `${path}?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        const items = page.json.items as { index?: number; id?: string }[];
        assert.ok(items.length <= 1);
        if (what === 'rounds') paged.rounds.push(...items.map((r) => r.index!));
        else paged.artifacts.push(...items.map((a) => a.id!));
        cursor = page.json.nextCursor as string | null;
        if (cursor === null) break;
      }
    }
    assert.deepEqual(paged.rounds, [0, 1, 2]);
    assert.deepEqual(paged.artifacts, (await acme.listArtifacts(job.id)).map((a) => a.id));
    // The uploaded net is a plain MLP: on the WASM, cpu and native CPU backends its rounds train on the simd MLP engine.
    for (const r of rounds) assert.equal(r.trainingLoop, ['wasm', 'cpu', 'tensorflow'].includes(r.backend) ? 'mlp-simd' : 'tfjs', `round ${r.index} on ${r.backend}`);
    assert.ok(rounds[2]!.density < rounds[1]!.density && rounds[1]!.density < 1, "rounds[2]!.density < rounds[1]!.density && rounds[1]!.density < 1");
    for (const r of rounds) assert.ok(r.testAccuracy >= 0 && r.testAccuracy <= 1 && r.paramsTotal === 784 * 16 + 16 + 16 * 10 + 10, "r.testAccuracy >= 0 && r.testAccuracy <= 1 && r.paramsTotal === 784 * 16 + 16 + 16 * 10...");

    // Download the ticket, verify it, load it in TF.js: its zeros are the pruned weights.
    const ticket = await acme.listArtifacts(job.id, { kind: 'ticket' });
    const names = ticket.map((a) => a.name).sort();
    assert.ok(names.includes('ticket/model.json') && names.includes('ticket/weights.bin'), names.join(','));
    const dir = await mkdtemp(join(t.dir, 'ticket-'));
    for (const a of ticket.filter((x) => x.name === 'ticket/model.json' || x.name === 'ticket/weights.bin')) {
      const d = await acme.download(a.id);
      assert.equal(d.status, 200);
      assert.equal(d.sha256, a.sha256);
      assert.equal(sha(d.bytes), a.sha256);
      assert.equal(d.etag, `"${a.sha256}"`);
      assert.equal(d.bytes.length, a.size);
      await writeFile(join(dir, a.name.slice('ticket/'.length)), d.bytes);
    }
    const loaded = await loadModelFrom(dir);
    try {
      let alive = 0;
      let total = 0;
      const weights = getWeightMap(loaded);
      const prunable = prunableWeights(loaded);
      assert.deepEqual(prunable.map((w) => w.name), ['fc1/kernel', 'out/kernel']);
      for (const w of prunable) {
        const { values } = weights[w.name]!;
        total += values.length;
        for (const x of values) if (x !== 0) alive++;
      }
      const reported = (done.result as { summary: { density: number } }).summary.density;
      assert.equal(reported, rounds[2]!.density);
      assert.ok(Math.abs(alive / total - reported) < 2e-3, `nonzero fraction ${alive / total} vs reported density ${reported}`);
    } finally {
      loaded.dispose();
    }

    // HTTP caching and partial downloads on the weights.
    const w = ticket.find((a) => a.name === 'ticket/weights.bin')!;
    const whole = (await acme.download(w.id)).bytes;
    const part = await call('GET', `/v1/artifacts/${w.id}`, { headers: { range: 'bytes=10-109' } });
    assert.equal(part.status, 206);
    assert.equal(part.res.headers.get('content-range'), `bytes 10-109/${w.size}`);
    const partBytes = new Uint8Array(await (await fetch(`${base}/v1/artifacts/${w.id}`, { headers: { authorization: `Bearer ${acmeKey}`, range: 'bytes=10-109' } })).arrayBuffer());
    assert.deepEqual(partBytes, whole.slice(10, 110));
    const tail = await acme.download(w.id, { range: { start: w.size - 4 } });
    assert.equal(tail.status, 206);
    assert.deepEqual(tail.bytes, whole.slice(w.size - 4));
    const suffix = await fetch(`${base}/v1/artifacts/${w.id}`, { headers: { authorization: `Bearer ${acmeKey}`, range: 'bytes=-8' } });
    assert.deepEqual(new Uint8Array(await suffix.arrayBuffer()), whole.slice(w.size - 8));
    const outside = await call('GET', `/v1/artifacts/${w.id}`, { headers: { range: `bytes=${w.size}-${w.size + 10}` } });
    assertError(outside, 416, 'RANGE_NOT_SATISFIABLE', 'range');
    assert.equal(outside.res.headers.get('content-range'), `bytes */${w.size}`);
    const cached = await call('GET', `/v1/artifacts/${w.id}`, { headers: { 'if-none-match': `"${w.sha256}"` } });
    assert.equal(cached.status, 304);
    assert.equal(cached.res.headers.get('etag'), `"${w.sha256}"`);
    const stale = await call('GET', `/v1/artifacts/${w.id}`, { headers: { 'if-none-match': '"something-else"' } });
    assert.equal(stale.status, 200);
    const head = await call('HEAD', `/v1/artifacts/${w.id}`);
    assert.equal(head.status, 200);
    assert.equal(head.res.headers.get('content-length'), String(w.size));
    assert.equal(head.res.headers.get('x-content-sha256'), w.sha256);
    // A Range that no longer matches If-Range gets the whole artifact.
    const changed = await call('GET', `/v1/artifacts/${w.id}`, { headers: { range: 'bytes=0-9', 'if-range': '"old"' } });
    assert.equal(changed.status, 200);
    assertError(await call('GET', `/v1/artifacts/${w.id}`, { key: globexKey }), 404, 'NOT_FOUND');
  });

  test('cancelling a running job: it ends cancelled and keeps its finished rounds', async () => {
    const { job } = await acme.submitJob({ model: 'lenet-20-10', dataset: 'builtin:mnist', rounds: 5, iterations: 300, evalEvery: 50, batchSize: 30, maxTrainExamples: 300, controls: 'none', seed: 3 });
    let cancelStatus = 0;
    const kinds: string[] = [];
    const done = await acme.waitForJob(job.id, {
      signal: AbortSignal.timeout(120_000),
      onEvent: (e) => {
        kinds.push(e.kind);
        // As soon as round 0 is committed, ask it to stop (from inside the live stream).
        if (e.kind === 'round' && cancelStatus === 0) {
          cancelStatus = -1;
          void call('POST', `/v1/jobs/${job.id}/cancel`).then((r) => (cancelStatus = r.status));
        }
      },
    });
    assert.equal(done.status, 'cancelled');
    assert.ok(cancelStatus === 202 || cancelStatus === 200, `cancel answered ${cancelStatus}`);
    assert.ok(kinds.includes('cancel-requested'), kinds.join(','));
    const rounds = await acme.listRounds(job.id);
    assert.ok(rounds.length >= 1 && rounds.length < 6, `kept ${rounds.length} rounds`);
    assert.deepEqual(rounds.map((r) => r.index), rounds.map((_, i) => i));
    const again = await call('POST', `/v1/jobs/${job.id}/cancel`);
    assert.equal(again.status, 200, 'cancelling a cancelled job is a no-op');
    assert.equal(again.json.status, 'cancelled');
  });
});

test('every REST response above matched the OpenAPI document', () => {
  assert.deepEqual(responses?.failures, []);
  assert.ok((responses?.checker.checked ?? 0) > 0);
});
