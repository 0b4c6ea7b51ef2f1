// The OpenAPI document against the server that serves it, both ways. Every
// response here goes through the document check (test/fixtures/openapi-check.ts:
// status, content type and JSON body against the entry for its route), and
// for each listed request the document accepts it exactly when the server
// does: the drifts of issue 13 (builtin:cifar10, an empty Idempotency-Key,
// one-shot without targetDensity, targetFlopReduction with filterFraction,
// `status=`), 405 with Allow on every documented path, `errors` listing every
// problem, and `{ items, nextCursor }` on every list. The walk over paths
// comes from the document itself, so routes added later are covered.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { TicketsmithClient } from '../../src/client/index.js';
import { createApiKey, type ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, type TestDb, uploadFiles } from '../integration/fixtures/harness.js';
import { checkResponsesOf, type OpenApiChecker } from '../fixtures/openapi-check.js';

let t: TestDb;
let rt: ServiceRuntime;
let server: RestServer;
let base: string;
let key: string;
let checker: OpenApiChecker;
let failures: string[];
let restore: () => void;

const MISSING = '00000000-0000-4000-8000-000000000000';
/** A job the tiny engine could run in seconds (no worker runs here: it stays queued). */
const tiny = { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 10, evalEvery: 10, batchSize: 30, maxTrainExamples: 300, controls: 'none' } as const;

interface Sent {
  status: number;
  headers: Headers;
  json: { error?: { code: string; message: string; field?: string }; errors?: { field: string; message: string }[]; [k: string]: unknown };
}

async function send(method: string, path: string, init: { json?: unknown; headers?: Record<string, string>; key?: string | null } = {}): Promise<Sent> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  const k = init.key === undefined ? key : init.key;
  if (k) headers.authorization = `Bearer ${k}`;
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: init.json === undefined ? undefined : JSON.stringify(init.json), signal: AbortSignal.timeout(30_000) });
  // An event stream (GET /v1/events) never ends by itself: its status and type are what is checked.
  const stream = res.headers.get('content-type')?.startsWith('text/event-stream') ?? false;
  if (stream) await res.body?.cancel();
  const text = method === 'HEAD' || stream ? '' : await res.text();
  let json: Sent['json'] = {};
  try {
    json = JSON.parse(text) as Sent['json'];
  } catch {
    // not JSON (metrics, SSE)
  }
  return { status: res.status, headers: res.headers, json };
}

/** A template with a missing id in each id parameter, and a documented value in a parameter that takes only listed ones (a plot's name). */
function concrete(template: string): string {
  const params = Object.values((checker.doc.paths[template] ?? {}) as Record<string, { parameters?: Array<{ name: string; in: string; schema?: { enum?: unknown[] } }> }>).flatMap((op) => op.parameters ?? []);
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const listed = params.find((p) => p.in === 'path' && p.name === name)?.schema?.enum;
    return listed?.length ? encodeURIComponent(String(listed[0])) : MISSING;
  });
}

before(async () => {
  t = await startTestDb();
  rt = await t.open();
  server = await startRestServer(rt, { port: 0, sseHeartbeatMs: 300 });
  base = server.url;
  key = (await createApiKey(rt.ctx, 'acme')).key;
  ({ checker, failures, restore } = await checkResponsesOf(base));
});

after(async () => {
  restore?.();
  await server?.stop(500);
  await t?.stop();
});

describe('every documented path', () => {
  test('a method the path does not take answers 405 with Allow and the error body', async () => {
    const paths = Object.keys(checker.doc.paths);
    assert.ok(paths.length >= 10, 'the document lists the routes');
    let refused = 0;
    for (const template of paths) {
      const documented = checker.methods(template);
      for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
        if (documented.includes(method.toLowerCase())) continue;
        const r = await send(method, concrete(template));
        assert.equal(r.status, 405, `${method} ${template}`);
        assert.equal(r.json.error?.code, 'METHOD_NOT_ALLOWED', `${method} ${template}`);
        const allow = (r.headers.get('allow') ?? '').split(', ');
        for (const m of documented) assert.ok(allow.includes(m.toUpperCase()), `${method} ${template}: Allow ${allow.join(', ')} lacks ${m}`);
        refused += 1;
      }
    }
    assert.ok(refused > 20, `405 checked on ${refused} method/path pairs`);
    const options = await send('OPTIONS', '/v1/jobs');
    assert.equal(options.status, 204);
    assert.equal(options.headers.get('allow'), 'GET, HEAD, POST, OPTIONS');
  });

  test('without a key every /v1 operation answers a documented 401; with one, a documented answer for ids it does not own', async () => {
    for (const [template, ops] of Object.entries(checker.doc.paths)) {
      if (!template.startsWith('/v1/')) continue;
      for (const method of Object.keys(ops)) {
        const r = await send(method.toUpperCase(), concrete(template), { key: null });
        assert.equal(r.status, 401, `${method} ${template}`);
        if (method !== 'get') continue;
        // GETs are safe to repeat with a key: a missing id is 404, a list its empty page; the wrapper checks either.
        const g = await send('GET', concrete(template), { headers: { accept: 'application/json' } });
        assert.ok([200, 404].includes(g.status), `GET ${template} → ${g.status}`);
      }
    }
  });

  test('an unknown query parameter is a documented 400 on every /v1 operation, each problem in errors', async () => {
    for (const [template, ops] of Object.entries(checker.doc.paths)) {
      if (!template.startsWith('/v1/')) continue;
      for (const method of Object.keys(ops)) {
        if (method === 'post' && ops[method]!.requestBody?.content['multipart/form-data']) continue;
        const r = await send(method.toUpperCase(), `${concrete(template)}?bogus=1&alsoBogus=2`, method === 'post' ? { json: {} } : {});
        assert.equal(r.status, 400, `${method} ${template}: ${JSON.stringify(r.json)}`);
        assert.equal(r.json.error?.field, 'bogus');
        assert.deepEqual(r.json.errors?.map((e) => e.field), ['bogus', 'alsoBogus'], `${method} ${template}`);
      }
    }
  });
});

describe('the document accepts a request exactly when the server does', () => {
  const cases: { name: string; method: string; path: string; headers?: Record<string, string>; json?: unknown; accepted: boolean; field?: string }[] = [
    { name: 'a tiny job', method: 'POST', path: '/v1/jobs', json: tiny, accepted: true },
    { name: 'the nested form', method: 'POST', path: '/v1/jobs', json: { model: tiny.model, dataset: tiny.dataset, spec: { ...tiny, model: undefined, dataset: undefined, seed: 2 } }, accepted: true },
    { name: 'builtin:cifar10', method: 'POST', path: '/v1/jobs', json: { ...tiny, dataset: 'builtin:cifar10' }, accepted: false, field: 'dataset' },
    { name: 'builtin:cifar10 registered', method: 'POST', path: '/v1/datasets', json: { reference: 'builtin:cifar10' }, accepted: false, field: 'reference' },
    { name: 'builtin:mnist registered', method: 'POST', path: '/v1/datasets', json: { reference: 'builtin:mnist' }, accepted: true },
    { name: 'an empty Idempotency-Key', method: 'POST', path: '/v1/jobs', headers: { 'idempotency-key': '' }, json: { ...tiny, seed: 3 }, accepted: false, field: 'idempotencyKey' },
    { name: 'an Idempotency-Key with a space', method: 'POST', path: '/v1/jobs', headers: { 'idempotency-key': 'a b' }, json: { ...tiny, seed: 3 }, accepted: false, field: 'idempotencyKey' },
    { name: 'an Idempotency-Key', method: 'POST', path: '/v1/jobs', headers: { 'idempotency-key': 'run-42' }, json: { ...tiny, seed: 3 }, accepted: true },
    { name: 'one-shot without targetDensity', method: 'POST', path: '/v1/jobs', json: { ...tiny, schedule: 'one-shot' }, accepted: false, field: 'targetDensity' },
    { name: 'one-shot with targetDensity', method: 'POST', path: '/v1/jobs', json: { ...tiny, schedule: 'one-shot', targetDensity: 0.2 }, accepted: true },
    { name: 'targetFlopReduction with filterFraction', method: 'POST', path: '/v1/jobs', json: { ...tiny, method: 'filter', filterFraction: 0.5, targetFlopReduction: 0.3 }, accepted: false, field: 'targetFlopReduction' },
    { name: 'targetFlopReduction with filterFractions', method: 'POST', path: '/v1/jobs', json: { ...tiny, method: 'filter', filterFractions: { conv1: 0.5 }, targetFlopReduction: 0.3 }, accepted: false, field: 'targetFlopReduction' },
    { name: 'filter with no fraction', method: 'POST', path: '/v1/jobs', json: { ...tiny, method: 'filter' }, accepted: false, field: 'filterFraction' },
    { name: 'an unknown spec field', method: 'POST', path: '/v1/jobs', json: { ...tiny, roundz: 3 }, accepted: false, field: 'roundz' },
    { name: 'status= (empty)', method: 'GET', path: '/v1/jobs?status=', accepted: false, field: 'status' },
    { name: 'status=queued', method: 'GET', path: '/v1/jobs?status=queued', accepted: true },
    { name: 'limit=0', method: 'GET', path: '/v1/jobs?limit=0', accepted: false, field: 'limit' },
    { name: 'limit=200', method: 'GET', path: '/v1/models?limit=200', accepted: true },
    { name: 'limit=201', method: 'GET', path: '/v1/datasets?limit=201', accepted: false, field: 'limit' },
    { name: 'cursor= (empty)', method: 'GET', path: '/v1/artifacts?cursor=', accepted: false, field: 'cursor' },
    { name: 'kind=bogus', method: 'GET', path: '/v1/artifacts?kind=bogus', accepted: false, field: 'kind' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const docProblems = checker.requestProblems(c.method, base + c.path, { headers: c.headers, json: c.json });
      const r = await send(c.method, c.path, { headers: c.headers, json: c.json });
      const serverAccepts = r.status < 400;
      assert.equal(serverAccepts, c.accepted, `server: ${r.status} ${JSON.stringify(r.json)}`);
      assert.equal(docProblems.length === 0, c.accepted, `document: ${docProblems.join('; ') || 'accepts it'}`);
      if (c.field !== undefined) {
        assert.equal(r.status, 400);
        assert.equal(r.json.error?.field, c.field, JSON.stringify(r.json));
        assert.equal(r.json.errors?.[0]?.field, c.field, 'errors starts with error');
      }
    });
  }
});

describe('errors lists every problem of a request', () => {
  test('a spec with three bad fields names all three, the first as error', async () => {
    const r = await send('POST', '/v1/jobs', { json: { ...tiny, rounds: -1, batchSize: 0, iterations: 'many' } });
    assert.equal(r.status, 400);
    const fields = r.json.errors?.map((e) => e.field) ?? [];
    assert.deepEqual([...fields].sort(), ['batchSize', 'iterations', 'rounds']);
    assert.deepEqual({ field: r.json.error?.field, message: r.json.error?.message }, r.json.errors?.[0]);
  });

  test('nested under spec, the fields carry the prefix; a bad key and a bad spec come together', async () => {
    const nested = await send('POST', '/v1/jobs', { json: { model: tiny.model, dataset: tiny.dataset, spec: { rounds: -1, batchSize: 0 } } });
    assert.deepEqual(nested.json.errors?.map((e) => e.field).sort(), ['spec.batchSize', 'spec.rounds']);
    const both = await send('POST', '/v1/jobs', { headers: { 'idempotency-key': '' }, json: { ...tiny, rounds: -1 } });
    assert.deepEqual(both.json.errors?.map((e) => e.field), ['idempotencyKey', 'rounds']);
  });

  test('the typed client carries them', async () => {
    const client = new TicketsmithClient({ baseUrl: base, apiKey: key });
    await assert.rejects(client.submitJob({ ...tiny, rounds: -1, batchSize: 0 }), (e: { field?: string; errors?: { field: string }[] }) => {
      assert.deepEqual(e.errors?.map((i) => i.field).sort(), ['batchSize', 'rounds']);
      return true;
    });
  });

  test('a cross-field rule and a field error are reported together when the field is valid JSON Schema-wise', async () => {
    // The rules run on a spec whose fields parsed; two rules broken at once are both named.
    const r = await send('POST', '/v1/jobs', { json: { ...tiny, method: 'filter', schedule: 'one-shot' } });
    assert.equal(r.status, 400);
    assert.deepEqual(r.json.errors?.map((e) => e.field), ['filterFraction', 'targetDensity']);
  });
});

describe('every list answers { items, nextCursor } and pages the same way', () => {
  test('jobs page with nextCursor (and the deprecated next_cursor beside it)', async () => {
    for (let seed = 10; seed < 13; seed++) assert.equal((await send('POST', '/v1/jobs', { json: { ...tiny, seed } })).status, 201);
    const seen = new Set<string>();
    let path = '/v1/jobs?limit=2';
    for (let i = 0; i < 20; i++) {
      const page = await send('GET', path);
      assert.equal(page.status, 200);
      assert.equal(page.json.next_cursor, page.json.nextCursor);
      for (const j of page.json.items as { id: string }[]) seen.add(j.id);
      if (page.json.nextCursor === null) break;
      path = `/v1/jobs?limit=2&cursor=${encodeURIComponent(page.json.nextCursor as string)}`;
    }
    const all = await new TicketsmithClient({ baseUrl: base, apiKey: key }).listJobs({ limit: 200 });
    assert.equal(seen.size, all.items.length);
    assert.ok(seen.size >= 3);
  });

  test('models page by cursor; the client follows every page', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 2, name: 'fc' })] });
    const files = await uploadFiles(model);
    model.dispose();
    for (const name of ['a', 'b', 'c']) {
      const form = new FormData();
      form.append('name', name);
      for (const f of files) form.append('files', new Blob([f.bytes]), f.name);
      const r = await fetch(`${base}/v1/models`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
      assert.equal(r.status, 201, await r.text());
    }
    const first = await send('GET', '/v1/models?limit=2');
    assert.equal((first.json.items as unknown[]).length, 2);
    assert.equal(typeof first.json.nextCursor, 'string');
    const second = await send('GET', `/v1/models?limit=2&cursor=${encodeURIComponent(first.json.nextCursor as string)}`);
    assert.equal((second.json.items as unknown[]).length, 1);
    assert.equal(second.json.nextCursor, null);
    const ids = [...(first.json.items as { id: string }[]), ...(second.json.items as { id: string }[])].map((m) => m.id);
    assert.equal(new Set(ids).size, 3);
    const listed = await new TicketsmithClient({ baseUrl: base, apiKey: key }).listModels();
    assert.deepEqual(listed.items.map((m) => m.id), ids);
    // A model's files are artifacts: page them one at a time, in the listing's order.
    const artifacts = await send('GET', `/v1/artifacts?modelId=${ids[0]}`);
    const names: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const page = await send('GET', `/v1/artifacts?modelId=${ids[0]}&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      names.push(...(page.json.items as { name: string }[]).map((a) => a.name));
      cursor = page.json.nextCursor as string | null;
      if (cursor === null) break;
    }
    assert.deepEqual(names, (artifacts.json.items as { name: string }[]).map((a) => a.name));
    assert.ok(names.length >= 2);
  });

  test('datasets and a job with no rounds yet answer a last page; a foreign cursor is a 400 naming cursor', async () => {
    const datasets = await send('GET', '/v1/datasets');
    assert.equal(datasets.json.nextCursor, null);
    const job = (await send('GET', '/v1/jobs?limit=1')).json.items as { id: string }[];
    const rounds = await send('GET', `/v1/jobs/${job[0]!.id}/rounds`);
    assert.deepEqual(rounds.json, { items: [], nextCursor: null });
    const bad = await send('GET', `/v1/jobs/${job[0]!.id}/rounds?cursor=bm90LWEtY3Vyc29y`);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error?.field, 'cursor');
  });
});

test('every response above matched the document', () => {
  assert.deepEqual(failures, []);
  assert.ok(checker.checked > 100, `${checker.checked} responses checked`);
});

test('the checker itself fails an undocumented status and an undocumented content type', () => {
  const ok = { contentLength: null };
  assert.throws(() => checker.checkResponse('GET', `${base}/v1/jobs`, { ...ok, status: 418, contentType: 'application/json' }, '{}'), /status 418 is not documented/);
  assert.throws(() => checker.checkResponse('GET', `${base}/v1/jobs`, { ...ok, status: 200, contentType: 'text/html' }, null), /content type text\/html is not documented/);
  assert.throws(() => checker.checkResponse('GET', `${base}/v1/jobs`, { ...ok, status: 200, contentType: 'application/json' }, '{"items":[]}'), /does not match/);
  assert.throws(() => checker.checkResponse('PUT', `${base}/v1/jobs`, { ...ok, status: 404, contentType: 'application/json' }, '{"error":{"code":"NOT_FOUND","message":"x"}}'), /must answer 405/);
  assert.doesNotThrow(() => checker.checkResponse('GET', `${base}/v1/artifacts/${MISSING}`, { ...ok, status: 200, contentType: 'application/json' }, '{"any":"json"}'));
  assert.doesNotThrow(() => checker.checkResponse('GET', `${base}/v1/artifacts/${MISSING}`, { ...ok, status: 206, contentType: 'application/json' }, '{"any":'));
});
