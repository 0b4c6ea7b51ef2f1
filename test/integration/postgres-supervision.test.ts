// Losing Postgres is survived. A service that owns its embedded database has
// its postmaster SIGKILLed twice in the middle of a multi-round job: while it
// is away REST answers 503 with Retry-After (never 500), gRPC UNAVAILABLE,
// /readyz 503 then 200 and /healthz 200 throughout; the supervisor brings the
// server back by itself and the job finishes with each round exactly once. A
// service on an external DATABASE_URL has that database stopped and started
// under it and recovers (Prisma pool, pg-boss, LISTEN) without a restart. An
// orphaned embedded server is stopped by the process that attached to it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { GrpcError, TicketsmithGrpcClient } from '../../src/client/grpc.js';
import type { WorkerOptions } from '../../src/queue/worker.js';
import { startDatabase, type DatabaseHandle } from '../../src/runtime/postgres.js';
import { CHANNELS } from '../../src/store/notify.js';
import { Prisma } from '../../src/store/db.js';
import { createApiKey, getJob, toServiceError, type ServiceContext, type ServiceRuntime } from '../../src/service/index.js';
import { makeTestEngine } from './fixtures/test-engine.js';
import { sleep, startTestDb, until, type TestDb } from './fixtures/harness.js';
import { isAlive, postmasterPidOf, startOwnedDbService, type OwnedDbService } from './fixtures/owned-db.js';

/** No suite may hang the run. */
const LIMIT_MS = 180_000;
/** A long heartbeat staleness: the job keeps its lease through the outages, so it continues rather than being reaped. */
const WORKER: WorkerOptions = { heartbeatSeconds: 0.3, staleSeconds: 60, reapSeconds: 1, pollSeconds: 0.5, progressIntervalMs: 100, maxAttempts: 3 };
const spec = (rounds: number, iterations: number) => ({ model: 'lenet-300-100', dataset: 'builtin:mnist', rounds, iterations, seed: 0 });

async function roundsPerIndex(ctx: ServiceContext, jobId: string): Promise<number[]> {
  const rows = await ctx.prisma.$queryRaw<{ index: number; n: bigint }[]>`SELECT index, count(*) AS n FROM round WHERE job_id = ${jobId}::uuid GROUP BY index ORDER BY index`;
  return rows.map((r) => Number(r.n));
}

async function roundEventsPerIndex(ctx: ServiceContext, jobId: string): Promise<number[]> {
  const rows = await ctx.prisma.$queryRaw<{ index: number; n: bigint }[]>`
    SELECT (payload->>'round')::int AS index, count(*) AS n FROM event WHERE job_id = ${jobId}::uuid AND kind = 'round' GROUP BY 1 ORDER BY 1`;
  return rows.map((r) => Number(r.n));
}

interface Observed {
  rest: number[];
  restUnavailable: number;
  retryAfter: Set<string | null>;
  restCodes: Set<string>;
  grpcUnavailable: number;
  grpcOther: string[];
  ready: number[];
  health: number[];
}

/**
 * Polls the doors (job read over REST and gRPC, /readyz, /healthz) until
 * /readyz has said 503 and then 200 again, or `timeoutMs` passes.
 */
async function watchOutage(server: RestServer, client: TicketsmithGrpcClient, key: string, jobId: string, timeoutMs = 90_000): Promise<Observed> {
  const seen: Observed = { rest: [], restUnavailable: 0, retryAfter: new Set(), restCodes: new Set(), grpcUnavailable: 0, grpcOther: [], ready: [], health: [] };
  const deadline = Date.now() + timeoutMs;
  const get = (path: string, auth = false) =>
    fetch(server.url + path, { headers: auth ? { authorization: `Bearer ${key}` } : {}, signal: AbortSignal.timeout(20_000) });
  while (Date.now() < deadline) {
    const [job, ready, health] = await Promise.all([get(`/v1/jobs/${jobId}`, true), get('/readyz'), get('/healthz')]);
    seen.rest.push(job.status);
    if (job.status !== 200) {
      seen.restCodes.add(((await job.json()) as { error: { code: string } }).error.code);
      if (job.status === 503) {
        seen.restUnavailable++;
        seen.retryAfter.add(job.headers.get('retry-after'));
      }
    } else await job.arrayBuffer();
    seen.ready.push(ready.status);
    seen.health.push(health.status);
    await Promise.all([ready.arrayBuffer(), health.arrayBuffer()]);
    try {
      await client.getJob(jobId);
    } catch (e) {
      if (e instanceof GrpcError && e.status === grpc.status.UNAVAILABLE) seen.grpcUnavailable++;
      else seen.grpcOther.push(String(e));
    }
    const down = seen.ready.indexOf(503);
    if (down >= 0 && seen.ready.slice(down).includes(200)) return seen;
    await sleep(50);
  }
  throw new Error(`the database did not go away and come back within ${timeoutMs} ms: readyz ${seen.ready.slice(-20).join(',')}, REST ${seen.rest.slice(-20).join(',')}`);
}

function assertOutageAnsweredWell(seen: Observed): void {
  assert.ok(!seen.rest.some((s) => s >= 500 && s !== 503), `REST answered ${seen.rest.join(',')}`);
  assert.ok(seen.restUnavailable > 0, `no REST call saw the outage: ${seen.rest.join(',')}`);
  assert.deepEqual([...seen.restCodes], ['UNAVAILABLE']);
  assert.deepEqual([...seen.retryAfter], ['2']);
  assert.ok(seen.grpcUnavailable > 0, 'no gRPC call saw UNAVAILABLE');
  assert.deepEqual(seen.grpcOther, []);
  assert.ok(seen.health.every((s) => s === 200), `/healthz answered ${seen.health.join(',')}`);
  const down = seen.ready.indexOf(503);
  assert.ok(down >= 0 && seen.ready.slice(down).includes(200), `/readyz answered ${seen.ready.join(',')}`);
}

describe('a service that owns its embedded Postgres', { timeout: LIMIT_MS }, () => {
  let svc: OwnedDbService;
  let server: RestServer;
  let grpcServer: GrpcServerHandle;
  let client: TicketsmithGrpcClient;
  let key: string;
  const committed: number[] = [];

  before(async () => {
    svc = await startOwnedDbService({
      worker: WORKER,
      runner: makeTestEngine({ stepMs: 40, onRoundCommitted: (i) => committed.push(i) }),
      // A first wait long enough for the test to watch the outage, short enough to keep it quick.
      supervise: { initialDelayMs: 1500, maxDelayMs: 5000, probeMs: 200 },
    });
    server = await startRestServer(svc.rt, { host: '127.0.0.1', port: 0, dashboard: false });
    grpcServer = await startGrpcServer(svc.rt, { host: '127.0.0.1', port: 0 });
    key = (await createApiKey(svc.rt.ctx, 'acme')).key;
    client = new TicketsmithGrpcClient({ address: `127.0.0.1:${grpcServer.port}`, apiKey: key });
  });
  after(async () => {
    client?.close();
    await grpcServer?.stop();
    await server?.stop();
    await svc?.stop();
  });

  test('SIGKILLed postmaster mid-job, twice: 503 + Retry-After and gRPC UNAVAILABLE while away, back by itself, each round once', async () => {
    const res = await fetch(`${server.url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(spec(4, 25)),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const jobId = ((await res.json()) as { id: string }).id;

    for (const afterRound of [1, 3]) {
      await until(async () => committed.includes(afterRound), 60_000, `round ${afterRound} to commit`);
      const pid = await postmasterPidOf(svc.pgDir);
      process.kill(pid, 'SIGKILL');
      const seen = await watchOutage(server, client, key, jobId);
      assertOutageAnsweredWell(seen);
      assert.notEqual(await postmasterPidOf(svc.pgDir), pid, 'a new postmaster runs');
    }
    assert.equal(svc.rt.db.health?.().restarts, 2);
    assert.equal(svc.rt.db.health?.().state, 'up');

    const done = await until(async () => {
      const j = await getJob(svc.rt.ctx, 'acme', jobId);
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
    }, 60_000, 'the job to finish');
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.error, null);
    assert.deepEqual(await roundsPerIndex(svc.rt.ctx, jobId), [1, 1, 1, 1, 1]);
    assert.deepEqual(await roundEventsPerIndex(svc.rt.ctx, jobId), [1, 1, 1, 1, 1]);
    assert.deepEqual(committed, [0, 1, 2, 3, 4], 'the engine committed each round once, in order');
  });

  test('a data directory that is gone cannot be recovered from: the supervisor gives up and /healthz fails', async () => {
    // Last in this suite: the cluster is unusable afterwards (stop() still ends the server).
    await rename(join(svc.pgDir, 'PG_VERSION'), join(svc.pgDir, 'PG_VERSION.moved'));
    process.kill(await postmasterPidOf(svc.pgDir), 'SIGKILL');
    const health = await until(async () => {
      const r = await fetch(`${server.url}/healthz`);
      return r.status === 200 ? null : r;
    }, 30_000, '/healthz to fail');
    assert.equal(health.status, 503);
    const body = (await health.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'UNAVAILABLE');
    assert.ok(!body.error.message.includes(svc.dir), 'no server path in the answer');
    assert.equal(svc.rt.db.health?.().state, 'failed');
    assert.equal((await fetch(`${server.url}/readyz`)).status, 503);
  });
});

describe('a service on an external DATABASE_URL', { timeout: LIMIT_MS }, () => {
  let t: TestDb;
  let restarted: DatabaseHandle | null = null;
  let server: RestServer;
  let key: string;
  let ctx: ServiceContext;
  let rt: ServiceRuntime;

  before(async () => {
    t = await startTestDb();
    rt = await t.open({ worker: WORKER, runner: makeTestEngine({ stepMs: 20 }) });
    ctx = rt.ctx;
    server = await startRestServer(rt, { host: '127.0.0.1', port: 0, dashboard: false });
    key = (await createApiKey(ctx, 'acme')).key;
  });
  after(async () => {
    await server?.stop();
    // The service first (it needs the database to stop cleanly), then the restarted server, then the files.
    await rt?.stop();
    await restarted?.stop();
    await t?.stop();
  });

  const submit = async () => {
    const res = await fetch(`${server.url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(spec(2, 10)),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { id?: string; error?: { code: string } } };
  };

  test('the database stopped and started again on the same port: 503 meanwhile, then requests, the queue and LISTEN work without a restart', async () => {
    const port = Number(new URL(t.db.url).port);
    await t.db.stop();
    const during = await submit();
    assert.equal(during.status, 503, JSON.stringify(during.body));
    assert.equal(during.body.error?.code, 'UNAVAILABLE');
    assert.equal(during.retryAfter, '2');
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(ready.headers.get('retry-after'), '2');

    restarted = await startDatabase({ dataDir: join(t.dir, 'pg'), port, ephemeral: true, url: undefined });
    assert.equal(restarted.url, t.db.url, 'same server address and credentials');

    // The pool reconnects on its own: the same request succeeds once the server answers.
    const created = await until(async () => {
      const r = await submit();
      assert.ok(r.status === 201 || r.status === 503, `submit answered ${r.status} ${JSON.stringify(r.body)}`);
      return r.status === 201 ? r.body : null;
    }, 30_000, 'a submit to succeed again');
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);

    // pg-boss delivers to the worker again: the job runs to the end.
    const done = await until(async () => {
      const j = await getJob(ctx, 'acme', created.id!);
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
    }, 60_000, 'the job submitted after the restart to finish');
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.deepEqual(await roundsPerIndex(ctx, created.id!), [1, 1, 1]);

    // The LISTEN connection came back: a NOTIFY sent now reaches the service.
    const payload = `probe-${Date.now()}`;
    let heard = false;
    const off = ctx.notifier.on(CHANNELS.jobs, (p) => (heard ||= p === payload));
    const notifier = new pg.Client({ connectionString: restarted.url });
    await notifier.connect();
    try {
      await until(async () => {
        await notifier.query('SELECT pg_notify($1, $2)', [CHANNELS.jobs, payload]);
        await sleep(200);
        return heard;
      }, 20_000, 'the LISTEN connection to hear a NOTIFY');
    } finally {
      off();
      await notifier.end();
    }
  });
});

describe('an orphaned embedded Postgres', { timeout: LIMIT_MS }, () => {
  let t: TestDb;
  const children: ChildProcess[] = [];
  before(async () => {
    // Only for its temp directory and traversal set-up; the orphans run their own clusters.
    t = await startTestDb();
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await t?.stop();
  });

  const fixture = new URL('./fixtures/orphan-db.ts', import.meta.url).pathname;

  /** Runs the fixture and returns the child and its first stdout line as JSON. */
  async function child(mode: 'start' | 'serve', dataDir: string): Promise<{ proc: ChildProcess; first: Record<string, unknown> }> {
    const proc = spawn(process.execPath, ['--import', 'tsx', fixture, mode, dataDir], {
      env: { ...process.env, DATABASE_URL: '', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(proc);
    const lines = createInterface({ input: proc.stdout! });
    const first = await Promise.race([
      once(lines, 'line').then(([l]) => JSON.parse(String(l)) as Record<string, unknown>),
      once(proc, 'exit').then(([code]) => Promise.reject(new Error(`orphan-db ${mode} exited with ${String(code)} before answering`))),
      sleep(90_000).then(() => Promise.reject(new Error(`orphan-db ${mode} did not answer`))),
    ]);
    return { proc, first };
  }

  async function orphan(dataDir: string): Promise<number> {
    const { proc, first } = await child('start', dataDir);
    const pid = Number(first.pid);
    proc.kill('SIGKILL'); // no exit hook runs: the postmaster is left behind
    await once(proc, 'exit');
    assert.ok(isAlive(pid), 'the orphaned postmaster still runs');
    return pid;
  }

  test('attaching adopts the orphan; stop() and a service SIGTERM both stop it', async () => {
    const dataDir = join(t.dir, 'orphan-pg');
    await mkdir(t.dir, { recursive: true });

    const first = await orphan(dataDir);
    const attached = await startDatabase({ dataDir, url: undefined });
    const c = new pg.Client({ connectionString: attached.url });
    await c.connect();
    await c.end();
    await attached.stop();
    await until(async () => !isAlive(first), 30_000, 'the orphan to stop with its adopter');

    const second = await orphan(dataDir);
    const { proc } = await child('serve', dataDir);
    proc.kill('SIGTERM');
    const [code] = (await once(proc, 'exit')) as [number | null];
    assert.equal(code, 0, "a clean SIGTERM shutdown exits 0");
    await until(async () => !isAlive(second), 30_000, 'the orphan to stop with the service on SIGTERM');
  });
});

describe('connection-class errors', () => {
  const known = (code: string, meta?: Record<string, unknown>) => new Prisma.PrismaClientKnownRequestError('x', { code, clientVersion: '7', meta });
  const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

  test('each one answers UNAVAILABLE; other failures keep their codes', () => {
    const unavailable = [
      known('P1001'),
      known('P1017'),
      known('P2024'),
      known('P2010', { driverAdapterError: Object.assign(new Error('x'), { name: 'DriverAdapterError', cause: { kind: 'DatabaseNotReachable' } }) }),
      known('P2010', { driverAdapterError: Object.assign(new Error('x'), { name: 'DriverAdapterError', cause: { kind: 'ConnectionClosed' } }) }),
      known('P2039', { driverAdapterError: Object.assign(new Error('x'), { name: 'DriverAdapterError', cause: { kind: 'postgres', code: '57P03' } }) }),
      withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
      withCode('terminating connection due to administrator command', '57P01'),
      withCode('the database system is starting up', '57P03'),
      withCode('connection failure', '08006'),
      withCode('SSL connection has been closed unexpectedly', '08003'),
      new Error('Connection terminated unexpectedly'),
      new Error('Client has encountered a connection error and is not queryable'),
      // pg-boss hands on pg's errors, sometimes wrapped.
      Object.assign(new Error('pg-boss: fetch failed'), { cause: new Error('Connection terminated') }),
    ];
    for (const e of unavailable) assert.equal(toServiceError(e).code, 'UNAVAILABLE', String((e as Error).message ?? e));
    assert.equal(toServiceError(known('P2002')).code, 'ALREADY_EXISTS');
    assert.equal(toServiceError(known('P2010', { driverAdapterError: { cause: { kind: 'postgres', code: '42P01' } } })).code, 'INTERNAL');
    assert.equal(toServiceError(withCode('duplicate key', '23505')).code, 'INTERNAL');
    assert.equal(toServiceError(new Error('boom')).code, 'INTERNAL');
  });
});
