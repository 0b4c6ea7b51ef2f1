// The per-key rate limit against real servers on loopback: two REST apps over
// two service runtimes (two API processes) on one database share one count,
// the 429 carries Retry-After, requests pass again once the window is over,
// operations routes and other keys are not limited, gRPC answers
// RESOURCE_EXHAUSTED with a retry-after trailer, and a limit of 0 is off.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { GrpcError, TicketsmithGrpcClient } from '../../src/client/grpc.js';
import type { Config } from '../../src/runtime/config.js';
import { createApiKey, type ServiceRuntime } from '../../src/service/index.js';
import { sleep, startTestDb, type TestDb } from './fixtures/harness.js';

const LIMIT = 5;
const WINDOW_S = 3;

let t: TestDb;
let a: RestServer;
let b: RestServer;
let rpc: GrpcServerHandle;
let rtA: ServiceRuntime;
let key: string;
let otherKey: string;

const limited = (rateLimit: number): Config => ({ ...t.config, limits: { ...t.config.limits, rateLimit, rateWindowSeconds: WINDOW_S } });

before(async () => {
  t = await startTestDb();
  rtA = await t.open({ config: limited(LIMIT) });
  const rtB = await t.open({ config: limited(LIMIT) });
  a = await startRestServer(rtA, { port: 0, dashboard: false });
  b = await startRestServer(rtB, { port: 0, dashboard: false });
  rpc = await startGrpcServer(rtA, { host: '127.0.0.1', port: 0 });
  key = (await createApiKey(rtA.ctx, 'acme')).key;
  otherKey = (await createApiKey(rtA.ctx, 'acme')).key;
});
after(async () => {
  await a?.stop();
  await b?.stop();
  await rpc?.stop();
  await t?.stop();
});

const get = (server: RestServer, path: string, k: string | null = key) => fetch(server.url + path, { headers: k ? { authorization: `Bearer ${k}` } : {} });

/** Waits until a new window has just begun (windows start at multiples of WINDOW_S since the epoch), so a burst fits in one. */
async function freshWindow(): Promise<void> {
  const into = Date.now() % (WINDOW_S * 1000);
  await sleep(WINDOW_S * 1000 - into + 50);
}

describe('rate limit', () => {
  test('two API processes share one count per key; the 429 has Retry-After; the next window passes', async () => {
    await freshWindow();
    const statuses = [];
    for (let i = 0; i < LIMIT; i++) statuses.push((await get(i % 2 === 0 ? a : b, '/v1/jobs')).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
    for (const server of [b, a]) {
      const res = await get(server, '/v1/jobs');
      assert.equal(res.status, 429);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'RATE_LIMITED');
      assert.match(body.error.message, /at most 5 requests per 3 s per API key/);
      const retry = Number(res.headers.get('retry-after'));
      assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= WINDOW_S, `Retry-After ${res.headers.get('retry-after')}`);
    }
    // Not limited: operations routes (no key) and another key.
    for (const path of ['/healthz', '/readyz', '/metrics']) assert.equal((await get(a, path, null)).status, 200, path);
    assert.equal((await get(a, '/v1/jobs', otherKey)).status, 200);

    const res = await get(a, '/v1/jobs');
    assert.equal(res.status, 429);
    await sleep(Number(res.headers.get('retry-after')) * 1000 + 100);
    assert.equal((await get(b, '/v1/jobs')).status, 200, 'a new window lets requests through');
  });

  test('gRPC answers RESOURCE_EXHAUSTED with RATE_LIMITED and a retry-after trailer', async () => {
    const client = new TicketsmithGrpcClient({ address: `127.0.0.1:${rpc.port}`, apiKey: key, timeoutMs: 10_000 });
    try {
      await freshWindow();
      for (let i = 0; i < LIMIT; i++) await client.listJobs();
      await assert.rejects(client.listJobs(), (e: unknown) => {
        assert.ok(e instanceof GrpcError, String(e));
        assert.equal(e.status, grpc.status.RESOURCE_EXHAUSTED);
        assert.equal(e.code, 'RATE_LIMITED');
        assert.ok(e.retryAfterSeconds !== undefined && e.retryAfterSeconds >= 1 && e.retryAfterSeconds <= WINDOW_S, `retry-after ${e.retryAfterSeconds}`);
        return true;
      });
      // The REST door counts the same key.
      assert.equal((await get(b, '/v1/jobs')).status, 429);
    } finally {
      client.close();
    }
  });

  test('a limit of 0 turns it off', async () => {
    const rt = await t.open({ config: limited(0) });
    const c = await startRestServer(rt, { port: 0, dashboard: false });
    try {
      const statuses = new Set<number>();
      for (let i = 0; i < 3 * LIMIT; i++) statuses.add((await get(c, '/v1/jobs')).status);
      assert.deepEqual([...statuses], [200]);
    } finally {
      await c.stop();
    }
  });
});
