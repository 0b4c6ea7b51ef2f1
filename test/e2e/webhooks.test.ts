// Webhooks end to end: a receiver on 127.0.0.1 (allowed by the operator's
// TICKETSMITH_OUTBOUND_ALLOW, as the outbound-dataset tests allow it) that
// verifies every signature (HMAC recomputed, timestamp within 5 minutes) and
// records event ids; a real job through REST with a callbackUrl and two
// registered endpoints. Each event arrives exactly once per target by event
// id, one round.committed per committed round and the job.succeeded last; an
// endpoint answering 500 twice is retried and delivered on the third attempt,
// visible in the deliveries list; a failed job sends job.failed with its
// error; cancel sends job.cancelled; forbidden
// addresses are refused at registration, at submit (REST and gRPC) and again
// at delivery, without a connection. Nothing but loopback is contacted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { compressionService, ERROR_CODE_KEY, ERROR_FIELD_KEY } from '../../src/api/grpc/proto.js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { OutboundGuard } from '../../src/runtime/outbound.js';
import { WebhookDispatcher, deliveryBody, retryDelaySeconds, signatureHeader } from '../../src/queue/webhooks.js';
import { createApiKey, ServiceError, type ServiceRuntime } from '../../src/service/index.js';
import { checkWebhookUrl } from '../../src/service/webhooks.js';
import { WEBHOOK_QUEUE, redispatchLostDeliveries, webhookEventId, webhookEventOf, type QueuedDeliveryData } from '../../src/store/webhooks.js';
import { makeTestEngine } from '../integration/fixtures/test-engine.js';
import { startTestDb, until, type TestDb } from '../integration/fixtures/harness.js';

const REFUSED = /URL is not allowed: it does not resolve to a public address/;
const WINDOW_SECONDS = 300;

interface Received {
  path: string;
  eventId: string;
  type: string;
  body: { id: string; type: string; createdAt: string; data: { jobId: string; status: string; round?: number } };
  verified: boolean;
  answered: number;
}

/** The receiver's side of the contract: the check the README shows. */
function verify(secret: string, header: string | undefined, raw: string, nowSeconds: number): boolean {
  const parts = Object.fromEntries((header ?? '').split(',').map((kv) => kv.split('=') as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > WINDOW_SECONDS || !parts.v1) return false;
  const want = Buffer.from(createHmac('sha256', secret).update(`${t}.${raw}`).digest('hex'));
  const got = Buffer.from(parts.v1);
  return want.length === got.length && timingSafeEqual(want, got);
}

let t: TestDb;
let rx: Server;
let base = '';
let connections = 0;
const received: Received[] = [];
/** Path → the secret its deliveries must be signed with. */
const secrets = new Map<string, string>();
/** Path → answers still to give before 200. */
const failuresLeft = new Map<string, number>();

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

before(async () => {
  t = await startTestDb({
    TICKETSMITH_OUTBOUND_ALLOW: '127.0.0.1/32',
    TICKETSMITH_WEBHOOK_RETRY_SECONDS: '0.05',
    TICKETSMITH_WEBHOOK_RETRY_MAX_SECONDS: '0.2',
    TICKETSMITH_WEBHOOK_TIMEOUT_SECONDS: '5',
  });
  rx = createServer((req, res) => {
    void readBody(req).then(
      (raw) => {
        const path = req.url ?? '';
        const secret = secrets.get(path) ?? '';
        const left = failuresLeft.get(path) ?? 0;
        const answered = left > 0 ? 500 : 200;
        if (left > 0) failuresLeft.set(path, left - 1);
        received.push({
          path,
          eventId: String(req.headers['ticketsmith-event-id']),
          type: String(req.headers['ticketsmith-event']),
          body: JSON.parse(raw) as Received['body'],
          verified: verify(secret, req.headers['ticketsmith-signature'] as string | undefined, raw, Math.floor(Date.now() / 1000)),
          answered,
        });
        res.writeHead(answered, { 'content-type': 'text/plain' }).end(answered === 200 ? 'ok' : 'try again');
      },
      () => res.destroy(),
    );
  });
  rx.on('connection', () => connections++);
  await new Promise<void>((resolve) => rx.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(rx.address() as AddressInfo).port}`;
});

after(async () => {
  rx.closeAllConnections();
  await new Promise<void>((resolve) => rx.close(() => resolve()));
  await t?.stop();
});

async function call(rest: RestServer, key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${rest.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text) };
}

/** Every page of the deliveries list, following nextCursor (bounded). */
async function allDeliveries(rest: RestServer, key: string, query: string): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 50; i++) {
    const r = await call(rest, key, 'GET', `/v1/webhooks/deliveries?${query}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    items.push(...r.body.items);
    cursor = r.body.nextCursor;
    if (cursor === null) return items;
  }
  assert.fail('deliveries list did not end');
}

describe('a job with a callback URL and registered endpoints', () => {
  const engine = makeTestEngine({ stepMs: 1 });
  const failing = makeTestEngine({ stepMs: 1, failAtRound: 1 });
  let rt: ServiceRuntime;
  let rest: RestServer;
  let grpcServer: GrpcServerHandle;
  let key = '';

  before(async () => {
    rt = await t.open({
      worker: { heartbeatSeconds: 0.3, pollSeconds: 0.3, progressIntervalMs: 100, reapSeconds: 0 },
      // seed 13 fails in round 1 (an engine failure), every other job runs to the end.
      runner: (spec, ctx) => (spec.seed === 13 ? failing : engine)(spec, ctx),
      webhooks: { pollSeconds: 0.2 },
    });
    rest = await startRestServer(rt, { host: '127.0.0.1', port: 0 });
    grpcServer = await startGrpcServer(rt, { host: '127.0.0.1', port: 0 });
    key = (await createApiKey(rt.ctx, 'acme')).key;
  });
  after(async () => {
    await grpcServer?.stop();
    await rest?.stop(200);
    await rt?.stop();
  });

  test('a callbackUrl needs the callback secret first; then every event arrives once per target, signed, and a 500 is retried', async () => {
    const early = await call(rest, key, 'POST', '/v1/jobs', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 2, callbackUrl: `${base}/callback` });
    assert.equal(early.status, 409);
    assert.equal(early.body.error.code, 'FAILED_PRECONDITION');
    assert.equal(early.body.error.field, 'callbackUrl');

    const cs = await call(rest, key, 'POST', '/v1/webhooks/callback-secret');
    assert.equal(cs.status, 201);
    assert.match(cs.body.secret, /^whsec_/);
    secrets.set('/callback', cs.body.secret);

    const ep = await call(rest, key, 'POST', '/v1/webhooks', { url: `${base}/endpoint` });
    assert.equal(ep.status, 201, JSON.stringify(ep.body));
    assert.deepEqual(ep.body.events, ['round.committed', 'job.succeeded', 'job.failed', 'job.cancelled']);
    secrets.set('/endpoint', ep.body.secret);
    const flaky = await call(rest, key, 'POST', '/v1/webhooks', { url: `${base}/flaky`, events: ['job.succeeded'] });
    assert.equal(flaky.status, 201);
    secrets.set('/flaky', flaky.body.secret);
    failuresLeft.set('/flaky', 2);

    const listed = await call(rest, key, 'GET', '/v1/webhooks');
    assert.equal(listed.body.items.length, 2);
    assert.equal(listed.body.nextCursor, null);
    assert.ok(listed.body.items.every((e: { secret?: string }) => e.secret === undefined), 'secrets are shown once, not listed');

    const sub = await call(rest, key, 'POST', '/v1/jobs', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 2, iterations: 3, callbackUrl: `${base}/callback` });
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
    const jobId: string = sub.body.id;

    const done = await until(async () => {
      const items = await allDeliveries(rest, key, `jobId=${jobId}`);
      // 3 rounds + the end to two targets, and the end to the flaky one.
      return items.length === 9 && items.every((d) => d.status === 'delivered') ? items : null;
    }, 60_000, 'every delivery of the job');
    const job = await call(rest, key, 'GET', `/v1/jobs/${jobId}`);
    assert.equal(job.body.status, 'succeeded');
    const rounds = (await call(rest, key, 'GET', `/v1/jobs/${jobId}/rounds`)).body.items.map((r: { index: number }) => r.index);
    assert.deepEqual(rounds, [0, 1, 2]);

    const mine = received.filter((r) => r.body.data.jobId === jobId);
    assert.ok(mine.every((r) => r.verified), 'every signature verifies within the window');
    assert.ok(mine.every((r) => r.eventId === r.body.id && r.type === r.body.type), 'headers name the body event');
    for (const path of ['/callback', '/endpoint']) {
      const got = mine.filter((r) => r.path === path);
      const ids = got.map((r) => r.eventId);
      assert.equal(new Set(ids).size, ids.length, `${path}: each event exactly once`);
      const roundEvents = got.filter((r) => r.type === 'round.committed').map((r) => r.body.data.round).sort();
      assert.deepEqual(roundEvents, rounds, `${path}: one round.committed per round`);
      const ends = got.filter((r) => r.type.startsWith('job.'));
      assert.deepEqual(ends.map((r) => [r.type, r.body.data.status]), [['job.succeeded', 'succeeded']]);
      assert.equal(ends[0]!.eventId, webhookEventId(jobId, 'job.succeeded'));
    }
    // The same event carries the same id to every target.
    assert.deepEqual(
      mine.filter((r) => r.path === '/callback').map((r) => r.eventId).sort(),
      mine.filter((r) => r.path === '/endpoint').map((r) => r.eventId).sort(),
    );
    const flakyHits = mine.filter((r) => r.path === '/flaky');
    assert.deepEqual(flakyHits.map((r) => r.answered), [500, 500, 200]);
    assert.equal(new Set(flakyHits.map((r) => r.eventId)).size, 1, 'retries keep the event id');
    assert.ok(flakyHits.every((r) => r.verified));

    const flakyDelivery = done.find((d) => d.endpointId === flaky.body.id);
    assert.equal(flakyDelivery.attempts, 3);
    assert.equal(flakyDelivery.lastStatusCode, 200);
    assert.equal(flakyDelivery.status, 'delivered');
    assert.ok(done.filter((d) => d.endpointId !== flaky.body.id).every((d) => d.attempts === 1 && d.lastStatusCode === 200));
    assert.equal(done.filter((d) => d.endpointId === null).length, 4, 'four to the callback URL');

    const filtered = await call(rest, key, 'GET', `/v1/webhooks/deliveries?jobId=${jobId}&status=failed`);
    assert.deepEqual(filtered.body.items, []);
    const badStatus = await call(rest, key, 'GET', '/v1/webhooks/deliveries?status=lost');
    assert.equal(badStatus.status, 400);
    assert.equal(badStatus.body.error.field, 'status');

    // Another tenant sees none of it.
    const other = (await createApiKey(rt.ctx, 'globex')).key;
    assert.deepEqual((await call(rest, other, 'GET', `/v1/webhooks/deliveries?jobId=${jobId}`)).body.items, []);
    assert.deepEqual((await call(rest, other, 'GET', '/v1/webhooks')).body.items, []);
    assert.equal((await call(rest, other, 'DELETE', `/v1/webhooks/${ep.body.id}`)).status, 404);

    // Deleting the endpoints leaves the callback URL alone.
    assert.equal((await call(rest, key, 'DELETE', `/v1/webhooks/${ep.body.id}`)).status, 204);
    assert.equal((await call(rest, key, 'DELETE', `/v1/webhooks/${flaky.body.id}`)).status, 204);
    assert.equal((await call(rest, key, 'DELETE', `/v1/webhooks/${flaky.body.id}`)).status, 404);
  });

  test('cancelling a running job sends job.cancelled', async () => {
    const sub = await call(rest, key, 'POST', '/v1/jobs', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 100_000, callbackUrl: `${base}/callback` });
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
    const jobId: string = sub.body.id;
    await until(async () => (await call(rest, key, 'GET', `/v1/jobs/${jobId}`)).body.status === 'running', 20_000, 'the job to run');
    const c = await call(rest, key, 'POST', `/v1/jobs/${jobId}/cancel`);
    assert.ok(c.status === 202 || c.status === 200);
    const got = await until(async () => {
      const hits = received.filter((r) => r.path === '/callback' && r.body.data.jobId === jobId && r.type === 'job.cancelled');
      return hits.length > 0 ? hits : null;
    }, 30_000, 'job.cancelled at the receiver');
    assert.equal(got.length, 1);
    assert.equal(got[0]!.body.data.status, 'cancelled');
    assert.ok(got[0]!.verified);
    // The receiver answers before the dispatcher records the answer: wait for the row.
    await until(async () => {
      const d = (await call(rest, key, 'GET', `/v1/webhooks/deliveries?jobId=${jobId}&status=delivered`)).body.items;
      return d.some((x: { type: string }) => x.type === 'job.cancelled');
    }, 20_000, 'the job.cancelled delivery recorded as delivered');
  });

  test('a failed job sends its committed rounds, then job.failed with the error', async () => {
    const sub = await call(rest, key, 'POST', '/v1/jobs', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 2, iterations: 2, seed: 13, callbackUrl: `${base}/callback` });
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
    const jobId: string = sub.body.id;
    const got = await until(async () => {
      const hits = received.filter((r) => r.path === '/callback' && r.body.data.jobId === jobId);
      return hits.length >= 2 && hits.some((r) => r.type === 'job.failed') ? hits : null;
    }, 30_000, 'round 0 and job.failed at the receiver');
    // Deliveries go out side by side: their arrival order is not the events' order.
    const seen = got.map((r) => [r.type, r.body.data.round ?? null]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    assert.deepEqual(seen, [['job.failed', null], ['round.committed', 0]]);
    const failed = got.find((r) => r.type === 'job.failed')!.body.data as { status: string; error?: { code: string; message: string } };
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'ENGINE_ERROR');
    assert.match(failed.error?.message ?? '', /round 1/);
    assert.ok(got.every((r) => r.verified));
  });

  test('forbidden addresses are refused at registration and at submit, REST and gRPC, without a connection', async () => {
    const before = connections;
    const forbidden = ['http://169.254.169.254/latest/meta-data/', 'http://10.0.0.1/hook', 'http://[::1]/hook', `http://localhost:${new URL(base).port}/hook`, 'file:///etc/passwd'];
    for (const url of forbidden) {
      const reg = await call(rest, key, 'POST', '/v1/webhooks', { url });
      assert.equal(reg.status, 400, url);
      assert.equal(reg.body.error.code, 'INVALID_ARGUMENT');
      assert.equal(reg.body.error.field, 'url');
      const sub = await call(rest, key, 'POST', '/v1/jobs', { spec: { rounds: 1, iterations: 2 }, model: 'lenet-300-100', dataset: 'builtin:mnist', callbackUrl: url });
      assert.equal(sub.status, 400, url);
      assert.equal(sub.body.error.field, 'callbackUrl');
    }
    for (const url of forbidden.slice(0, 4)) {
      const reg = await call(rest, key, 'POST', '/v1/webhooks', { url });
      assert.match(reg.body.error.message, REFUSED);
    }
    const badEvents = await call(rest, key, 'POST', '/v1/webhooks', { url: `${base}/x`, events: ['job.succeeded', 'job.exploded'] });
    assert.equal(badEvents.status, 400);
    assert.equal(badEvents.body.error.field, 'events[1]');
    const creds = await call(rest, key, 'POST', '/v1/webhooks', { url: `http://user:pw@127.0.0.1:${new URL(base).port}/x` });
    assert.equal(creds.body.error.field, 'url');

    // gRPC: SubmitJob's callback_url.
    const m = compressionService.SubmitJob as MethodDefinition<object, object>;
    const client = new grpc.Client(`127.0.0.1:${grpcServer.port}`, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${key}`);
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, { model: 'lenet-300-100', dataset: 'builtin:mnist', spec: { rounds: 1, iterations: 2 }, callbackUrl: 'http://169.254.169.254/' }, md, { deadline: Date.now() + 10_000 }, (e) => resolve(e));
    });
    client.close();
    assert.ok(err);
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(err.metadata.get(ERROR_CODE_KEY)[0]?.toString(), 'INVALID_ARGUMENT');
    assert.equal(err.metadata.get(ERROR_FIELD_KEY)[0]?.toString(), 'callbackUrl');
    assert.match(err.details, REFUSED);
    assert.equal(connections, before, 'nothing was contacted');
  });
});

describe('the rules, without connecting', () => {
  test('a name that resolves to a private address is refused as callbackUrl; the resolver is asked, nothing is dialled', async () => {
    const asked: string[] = [];
    const guard = new OutboundGuard({
      resolve: async (host) => {
        asked.push(host);
        return host === 'hooks.example.test' ? [{ address: '10.1.2.3', family: 4 }] : [{ address: '93.184.216.34', family: 4 }];
      },
    });
    await assert.rejects(checkWebhookUrl(guard, 'https://hooks.example.test/in', 'callbackUrl'), (e: unknown) => {
      assert.ok(e instanceof ServiceError);
      assert.equal(e.code, 'INVALID_ARGUMENT');
      assert.equal(e.field, 'callbackUrl');
      assert.match(e.message, REFUSED);
      return true;
    });
    assert.equal(await checkWebhookUrl(guard, 'https://public.example.test/in', 'callbackUrl'), 'https://public.example.test/in');
    assert.deepEqual(asked, ['hooks.example.test', 'public.example.test']);
  });

  test('event ids are stable per (job, type, round); only rounds and ends are webhook events', () => {
    const job = '6f1c2a52-8d0e-4c59-9d7c-1a2b3c4d5e6f';
    assert.equal(webhookEventId(job, 'round.committed', 1), webhookEventId(job, 'round.committed', 1));
    assert.notEqual(webhookEventId(job, 'round.committed', 1), webhookEventId(job, 'round.committed', 2));
    assert.deepEqual(webhookEventOf(job, 'round', { round: 2 }), { jobId: job, type: 'round.committed', status: 'running', round: 2 });
    assert.deepEqual(webhookEventOf(job, 'finished', { status: 'failed', error: { code: 'ENGINE_ERROR', message: 'x' } }), {
      jobId: job,
      type: 'job.failed',
      status: 'failed',
      error: { code: 'ENGINE_ERROR', message: 'x' },
    });
    assert.equal(webhookEventOf(job, 'progress', { round: 1 }), null);
    assert.equal(webhookEventOf(job, 'round-end', { round: 1 }), null);
  });

  test('the signature is HMAC-SHA256 over "<t>.<body>"; retries wait 1, 2, 4 … capped', () => {
    const body = deliveryBody({ data: { status: 'succeeded', jobId: 'j' }, type: 'job.succeeded', id: 'evt_1', createdAt: '2026-01-01T00:00:00.000Z' });
    assert.equal(body, '{"id":"evt_1","type":"job.succeeded","createdAt":"2026-01-01T00:00:00.000Z","data":{"jobId":"j","status":"succeeded"}}');
    const header = signatureHeader('whsec_test', body, 1_700_000_000_500);
    assert.equal(header, `t=1700000000,v1=${createHmac('sha256', 'whsec_test').update(`1700000000.${body}`).digest('hex')}`);
    assert.ok(verify('whsec_test', header, body, 1_700_000_000 + 299));
    assert.ok(!verify('whsec_test', header, body, 1_700_000_000 + 301), 'outside the replay window');
    assert.ok(!verify('whsec_other', header, body, 1_700_000_000));
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((a) => retryDelaySeconds(a, 1, 30)), [1, 2, 4, 8, 16, 30, 30]);
  });
});

describe('the worker checks again at delivery', () => {
  test('a callback accepted under an allow list fails without a connection at a dispatcher without one', async () => {
    const door = await t.open({ config: t.config });
    const { ctx } = door;
    const rest = await startRestServer(door, { host: '127.0.0.1', port: 0 });
    const dispatcher = new WebhookDispatcher({ prisma: ctx.prisma, boss: ctx.boss, guard: new OutboundGuard() }, { pollSeconds: 0.2, retrySeconds: 0.05, sweepSeconds: 0 });
    try {
      const key = (await createApiKey(ctx, 'initech')).key;
      const cs = await call(rest, key, 'POST', '/v1/webhooks/callback-secret');
      assert.equal(cs.status, 201);
      // No worker runs here: the job stays queued, and cancelling it is its end.
      const sub = await call(rest, key, 'POST', '/v1/jobs', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 2, callbackUrl: `${base}/late` });
      assert.equal(sub.status, 201, JSON.stringify(sub.body));
      const c = await call(rest, key, 'POST', `/v1/jobs/${sub.body.id}/cancel`);
      assert.equal(c.status, 200);
      assert.equal(c.body.status, 'cancelled');
      const before = connections;
      dispatcher.start();
      const [d] = await until(async () => {
        const items = (await call(rest, key, 'GET', `/v1/webhooks/deliveries?jobId=${sub.body.id}`)).body.items;
        return items.length === 1 && items[0].status !== 'pending' ? items : null;
      }, 20_000, 'the delivery to end');
      assert.equal(d.type, 'job.cancelled');
      assert.equal(d.status, 'failed');
      assert.equal(d.attempts, 1);
      assert.equal(d.lastStatusCode, null);
      assert.match(d.lastError, REFUSED);
      assert.equal(connections, before, 'the receiver saw nothing');
      assert.equal(received.filter((r) => r.path === '/late').length, 0);
    } finally {
      await dispatcher.stop();
      await rest.stop(200);
      await door.stop();
    }
  });
});

describe('a dispatch lost with its dispatcher', () => {
  test('a pending delivery whose dispatch ended unanswered is dispatched again and delivered once', async () => {
    const door = await t.open({ config: t.config });
    const { ctx } = door;
    const rest = await startRestServer(door, { host: '127.0.0.1', port: 0 });
    const dispatcher = new WebhookDispatcher({ prisma: ctx.prisma, boss: ctx.boss, guard: new OutboundGuard({ allow: ['127.0.0.1/32'] }) }, { pollSeconds: 0.2, sweepSeconds: 0 });
    try {
      const key = (await createApiKey(ctx, 'umbrella')).key;
      const cs = await call(rest, key, 'POST', '/v1/webhooks/callback-secret');
      secrets.set('/swept', cs.body.secret);
      const sub = await call(rest, key, 'POST', '/v1/jobs', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 2, callbackUrl: `${base}/swept` });
      assert.equal(sub.status, 201, JSON.stringify(sub.body));
      assert.equal((await call(rest, key, 'POST', `/v1/jobs/${sub.body.id}/cancel`)).status, 200);
      // A dispatcher takes the dispatch and dies before it claims the row; pg-boss ends the entry (expiry).
      const [taken] = await ctx.boss.fetch<QueuedDeliveryData>(WEBHOOK_QUEUE, { batchSize: 10 });
      assert.ok(taken, 'the cancel enqueued a dispatch');
      await ctx.boss.complete(WEBHOOK_QUEUE, taken.id);
      assert.equal(await redispatchLostDeliveries(ctx.prisma, 0), 1);
      assert.equal(await redispatchLostDeliveries(ctx.prisma, 0), 0, 'a live dispatch is left alone');
      dispatcher.start();
      await until(async () => {
        const items = (await call(rest, key, 'GET', `/v1/webhooks/deliveries?jobId=${sub.body.id}&status=delivered`)).body.items;
        return items.length === 1;
      }, 20_000, 'the swept delivery to be delivered');
      const hits = received.filter((r) => r.path === '/swept');
      assert.equal(hits.length, 1);
      assert.equal(hits[0]!.type, 'job.cancelled');
      assert.ok(hits[0]!.verified);
    } finally {
      await dispatcher.stop();
      await rest.stop(200);
      await door.stop();
    }
  });
});
