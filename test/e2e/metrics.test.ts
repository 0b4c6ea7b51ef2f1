// Prometheus metrics end to end (runtime/metrics.ts). A real REST and gRPC
// server with an in-process worker (the test engine): after a few REST and
// gRPC calls and a tiny job, /metrics is parsed as exposition text and the
// histogram counts for those routes / methods / codes, the jobs by state, the
// rounds committed and the round samples are what the calls made them. Then
// a real `ticketsmith worker` process on the same database serves its own
// /metrics and /healthz on its metrics port, and stops on SIGTERM.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { GrpcError, TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { countWebhookDelivery } from '../../src/runtime/metrics.js';
import { createApiKey, getJob, type ServiceRuntime } from '../../src/service/index.js';
import { makeTestEngine } from '../integration/fixtures/test-engine.js';
import { startTestDb, until, type TestDb } from '../integration/fixtures/harness.js';

const BIN = fileURLToPath(new URL('../../bin/ticketsmith', import.meta.url));

let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let grpcServer: GrpcServerHandle;
let grpcClient: TicketsmithGrpcClient;
let key: string;

/** Exposition text → `name{a="x",b="y"}` (labels sorted) → value. */
function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `exposition line: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}="${l[2]}"`).sort();
    out.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return out;
}

/** One sample's value; labels given in any order. */
function sample(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort();
  return samples.get(`${name}{${l.join(',')}}`);
}

const call = (method: string, path: string, opts: { key?: string | null; body?: unknown } = {}) =>
  fetch(`${rest.url}${path}`, {
    method,
    headers: {
      ...(opts.key === null ? {} : { authorization: `Bearer ${opts.key ?? key}` }),
      ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });

before(async () => {
  t = await startTestDb();
  rt = await t.open({ worker: { heartbeatSeconds: 0.5, pollSeconds: 0.2, progressIntervalMs: 100 }, runner: makeTestEngine({ stepMs: 1 }) });
  rest = await startRestServer(rt, { host: '127.0.0.1', port: 0, sseHeartbeatMs: 300 });
  grpcServer = await startGrpcServer(rt, { host: '127.0.0.1', port: 0 });
  key = (await createApiKey(rt.ctx, 'acme')).key;
  grpcClient = new TicketsmithGrpcClient({ address: `127.0.0.1:${grpcServer.port}`, apiKey: key });
});

after(async () => {
  grpcClient?.close();
  await grpcServer?.stop();
  await rest?.stop(300);
  await t?.stop();
});

test('/metrics after REST and gRPC calls and a tiny job: histograms by route/method and code, jobs by state, rounds', async () => {
  for (let i = 0; i < 2; i++) assert.equal((await call('GET', '/v1/jobs')).status, 200);
  assert.equal((await call('GET', '/v1/jobs', { key: null })).status, 401);
  assert.equal((await call('GET', `/v1/jobs/${randomUUID()}`)).status, 404);
  const submitted = await call('POST', '/v1/jobs', { body: { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 2, iterations: 2 } });
  assert.equal(submitted.status, 201);
  const jobId = ((await submitted.json()) as { id: string }).id;
  await until(async () => (await getJob(rt.ctx, 'acme', jobId)).status === 'succeeded', 30_000, 'the job');

  await grpcClient.listJobs();
  await assert.rejects(grpcClient.getJob(randomUUID()), (e: unknown) => e instanceof GrpcError);
  await grpcClient.getJob(jobId);
  countWebhookDelivery('delivered');

  const res = await call('GET', '/metrics', { key: null });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const m = parseExposition(await res.text());
  const http = (method: string, route: string, status: string) => sample(m, 'ticketsmith_http_request_duration_seconds_count', { method, route, status });
  assert.equal(http('GET', '/v1/jobs', '200'), 2);
  assert.equal(http('GET', '/v1/jobs', '401'), 1);
  assert.equal(http('GET', '/v1/jobs/:id', '404'), 1, 'the route template, not the raw path');
  assert.equal(http('POST', '/v1/jobs', '201'), 1);
  assert.equal(sample(m, 'ticketsmith_http_request_duration_seconds_bucket', { method: 'GET', route: '/v1/jobs', status: '200', le: '+Inf' }), 2);
  assert.equal(sample(m, 'ticketsmith_http_requests_total', { method: 'GET', route: '/v1/jobs', status: '200' }), 2);
  assert.ok(![...m.keys()].some((k) => k.includes(jobId)), 'no id in any label');

  const grpcCount = (method: string, code: string) => sample(m, 'ticketsmith_grpc_server_handling_seconds_count', { method, code });
  assert.equal(grpcCount('ListJobs', 'OK'), 1);
  assert.equal(grpcCount('GetJob', 'NOT_FOUND'), 1);
  assert.equal(grpcCount('GetJob', 'OK'), 1);
  assert.equal(sample(m, 'ticketsmith_grpc_server_handled_total', { method: 'GetJob', code: 'OK' }), 1);

  assert.equal(sample(m, 'ticketsmith_jobs', { state: 'succeeded' }), 1);
  assert.equal(sample(m, 'ticketsmith_jobs', { state: 'queued' }), 0);
  assert.equal(sample(m, 'ticketsmith_jobs', { state: 'running' }), 0);
  assert.equal(sample(m, 'ticketsmith_queue_depth'), 0);
  assert.equal(sample(m, 'ticketsmith_scrape_ok'), 1);
  // Rounds 0, 1 and 2, committed by the worker in this process; the test engine reports 1234 examples/s.
  assert.equal(sample(m, 'ticketsmith_rounds_committed_total'), 3);
  assert.equal(sample(m, 'ticketsmith_round_duration_seconds_count'), 3);
  assert.equal(sample(m, 'ticketsmith_training_examples_per_second'), 1234);
  assert.equal(sample(m, 'ticketsmith_webhook_deliveries_total', { outcome: 'delivered' }), 1);
  assert.equal(sample(m, 'ticketsmith_webhook_deliveries_total', { outcome: 'failed' }), 0);
  assert.equal(sample(m, 'ticketsmith_uncaught_errors_total', { kind: 'exception' }), 0);
  assert.ok((sample(m, 'process_cpu_user_seconds_total') ?? 0) > 0, 'default process metrics');
  assert.ok((sample(m, 'nodejs_heap_size_used_bytes') ?? 0) > 0, 'default Node.js metrics');
});

/** A port free now on loopback (the worker binds it a moment later). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

test('a `ticketsmith worker` process serves its own /metrics and /healthz', async () => {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env, DATABASE_URL: t.db.url, TICKETSMITH_DATA_DIR: t.dir, TICKETSMITH_WORKER_METRICS_PORT: String(port), LOG_LEVEL: 'warn',
  };
  delete env.NODE_TEST_CONTEXT;
  const worker = spawn(BIN, ['worker'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
  let stderr = '';
  worker.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      worker.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /worker metrics on (http:\/\/\S+)\/metrics/.exec(out);
        if (m) resolve(m[1]!);
      });
      void exited.then((code) => reject(new Error(`worker exited (${code}) before serving metrics: ${stderr.slice(-2000)}`)));
    });
    assert.equal(url, `http://127.0.0.1:${port}`, 'loopback by default');
    const health = await fetch(`${url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const res = await fetch(`${url}/metrics`);
    assert.equal(res.status, 200);
    const m = parseExposition(await res.text());
    assert.ok((sample(m, 'process_cpu_user_seconds_total') ?? 0) > 0, 'process metrics of the worker');
    assert.equal(sample(m, 'ticketsmith_rounds_committed_total'), 0, 'its own counters: this process committed nothing yet');
    assert.equal(sample(m, 'ticketsmith_jobs', { state: 'succeeded' }), 1, 'the database gauges, read by the worker');
    assert.equal((await fetch(`${url}/v1/jobs`)).status, 404);
  } finally {
    worker.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000).unref())]);
    if (code === 'timeout') process.kill(-worker.pid!, 'SIGKILL');
    assert.equal(code, 0, `worker exit on SIGTERM: ${stderr.slice(-2000)}`);
  }
});
