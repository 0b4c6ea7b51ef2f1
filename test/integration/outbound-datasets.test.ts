// Tenant dataset URLs against the outbound guard, end to end on a real
// Postgres: registration and job submit refuse internal addresses (every
// spelling) with a 400 on the field before anything is stored or queued; the
// worker checks again when it fetches; the operator's allow list reaches the
// host. A TCP receiver on 127.0.0.1 counts connections and serves a small valid
// NPZ (registration reads it); nothing else is contacted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { startRestServer } from '../../src/api/rest/index.js';
import { zipSync } from 'fflate';
import { loadDataset } from '../../src/engine/data/index.js';
import { encodeNpy } from '../../src/engine/data/encode.js';
import type { Config } from '../../src/runtime/config.js';
import { JobWorker, type EngineRunner, type WorkerOptions } from '../../src/queue/worker.js';
import { openService, type ServiceRuntime } from '../../src/service/context.js';
import { tenantDataAccess } from '../../src/service/datasets.js';
import { createApiKey, getJob, registerDataset, ServiceError, submitJob, type ServiceContext } from '../../src/service/index.js';
import { makeTestEngine } from './fixtures/test-engine.js';
import { startTestDb, until, type TestDb } from './fixtures/harness.js';

const FAST: WorkerOptions = { heartbeatSeconds: 0.3, staleSeconds: 5, reapSeconds: 0, pollSeconds: 0.3, progressIntervalMs: 100, maxAttempts: 2 };
const REFUSED = /dataset URL is not allowed: it does not resolve to a public address/;

let t: TestDb;
let rx: Server;
let port = 0;
let connections = 0;

before(async () => {
  t = await startTestDb();
  // Serves one small MNIST-shaped NPZ for every request: reaching it is what counts.
  const x = encodeNpy('|u1', [20, 28, 28], new Array(20 * 784).fill(7));
  const y = encodeNpy('<i8', [20], Array.from({ length: 20 }, (_, i) => i % 10));
  const npz = Buffer.from(zipSync({ 'x_train.npy': x, 'y_train.npy': y, 'x_test.npy': x, 'y_test.npy': y }, { level: 0 }));
  rx = createServer((socket) => {
    connections++;
    socket.on('error', () => {});
    socket.resume();
    socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${npz.length}\r\ncontent-type: application/zip\r\nconnection: close\r\n\r\n`), npz]));
  });
  await new Promise<void>((resolve) => rx.listen(0, '127.0.0.1', resolve));
  port = (rx.address() as AddressInfo).port;
});
after(async () => {
  await new Promise<void>((resolve) => rx.close(() => resolve()));
  await t?.stop();
});

const rejectsOn = (field: string) => (e: unknown) => {
  assert.ok(e instanceof ServiceError, `ServiceError expected, got ${String(e)}`);
  assert.equal(e.code, 'INVALID_ARGUMENT');
  assert.equal(e.httpStatus, 400);
  assert.equal(e.field, field);
  assert.match(e.message, REFUSED);
  assert.ok(!e.message.includes(String(port)), 'the message does not echo the target');
  return true;
};

/** A runner that loads the job's dataset the way the engine does (with the worker's policy), then runs the test engine. */
const loadingRunner: EngineRunner = async (spec, ctx) => {
  await loadDataset(ctx.datasetReference ?? spec.dataset, { access: ctx.data });
  return makeTestEngine({ stepMs: 1 })(spec, ctx);
};

async function openWith(config: Config, worker = false): Promise<ServiceRuntime> {
  return openService({ config, database: { url: t.db.url }, ...(worker ? { worker: FAST, runner: loadingRunner } : {}) });
}

async function finished(ctx: ServiceContext, jobId: string) {
  return until(async () => {
    const j = await getJob(ctx, 'acme', jobId);
    return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
  }, 30_000, `job ${jobId} to finish`);
}

describe('without an allow list', () => {
  let rt: ServiceRuntime;
  before(async () => (rt = await openWith(t.config, true)));
  after(() => rt.stop());

  test('registration and submit refuse the loopback receiver in every spelling; nothing stored, queued or connected', async () => {
    const { ctx } = rt;
    const refs = [
      `http://127.0.0.1:${port}/d.npz`,
      `http://2130706433:${port}/d.npz`,
      `http://0x7f000001:${port}/d.npz`,
      `http://0177.0.0.1:${port}/d.npz`,
      `http://127.1:${port}/d.npz`,
      `http://[::ffff:127.0.0.1]:${port}/d.npz`,
      `http://[::ffff:7f00:1]:${port}/d.npz`,
      `http://[::1]:${port}/d.npz`,
      `http://localhost:${port}/d.npz`,
      `http://a.localhost.:${port}/d.npz`,
      'http://169.254.169.254/latest/meta-data/x.npz',
      'http://[fe80::1]/x.npz',
      'http://100.64.0.1/x.npz',
      // A public-looking base whose file option points inside.
      `http://93.184.216.34/ds/#format=idx&train_images=http://127.0.0.1:${port}/x`,
    ];
    const jobsBefore = await ctx.prisma.job.count();
    for (const ref of refs) {
      await assert.rejects(registerDataset(ctx, 'acme', ref), rejectsOn('reference'), ref);
      await assert.rejects(submitJob(ctx, 'acme', { model: 'lenet-300-100', dataset: ref, rounds: 1, iterations: 2 }), rejectsOn('dataset'), ref);
    }
    assert.equal(await ctx.prisma.dataset.count({ where: { tenant: 'acme' } }), 0);
    assert.equal(await ctx.prisma.job.count(), jobsBefore);
    assert.equal(connections, 0);
  });

  test('the REST door answers 400 INVALID_ARGUMENT naming the field', async () => {
    const server = await startRestServer(rt, { port: 0 });
    try {
      const { key } = await createApiKey(rt.ctx, 'acme');
      const post = async (path: string, body: unknown) => {
        const res = await fetch(`${server.url}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as { error?: { code: string; field?: string; message: string } } };
      };
      const ref = `http://0x7f000001:${port}/d.npz`;
      const reg = await post('/v1/datasets', { reference: ref });
      assert.equal(reg.status, 400);
      assert.equal(reg.body.error?.code, 'INVALID_ARGUMENT');
      assert.equal(reg.body.error?.field, 'reference');
      assert.match(reg.body.error?.message ?? '', REFUSED);
      const job = await post('/v1/jobs', { model: 'lenet-300-100', dataset: ref, rounds: 1, iterations: 2 });
      assert.equal(job.status, 400);
      assert.equal(job.body.error?.field, 'dataset');
      assert.match(job.body.error?.message ?? '', REFUSED);
      assert.equal(connections, 0);
    } finally {
      await server.stop();
    }
  });
});

describe('the worker checks again', () => {
  test('a job accepted under an allow list is refused by a worker without one, and the receiver sees nothing', async () => {
    const door = await openWith({ ...t.config, outboundAllow: ['127.0.0.1/32'] });
    const worker = new JobWorker(
      { prisma: door.ctx.prisma, blobs: door.ctx.blobs, boss: door.ctx.boss, runner: loadingRunner, data: tenantDataAccess(t.config) },
      FAST,
    );
    try {
      // The door (with the allow list) reads the file at submit; the worker without one must not.
      const { job } = await submitJob(door.ctx, 'acme', { model: 'lenet-300-100', dataset: `http://127.0.0.1:${port}/d.npz`, rounds: 1, iterations: 2 });
      const before = connections;
      worker.start();
      const done = await finished(door.ctx, job.id);
      assert.equal(done.status, 'failed');
      assert.equal(done.error?.code, 'INVALID_ARGUMENT');
      assert.match(done.error?.message ?? '', REFUSED);
      assert.equal(connections, before);
    } finally {
      await worker.stop();
      await door.stop();
    }
  });
});

describe('with the allow list', () => {
  let rt: ServiceRuntime;
  before(async () => (rt = await openWith({ ...t.config, outboundAllow: ['127.0.0.1/32'] }, true)));
  after(() => rt.stop());

  test('registration succeeds and the worker reaches the host', async () => {
    const { ctx } = rt;
    const ref = `http://127.0.0.1:${port}/d.npz`;
    const atStart = connections;
    const ds = await registerDataset(ctx, 'acme', ref);
    assert.equal(ds.reference, ref);
    assert.ok(connections > atStart, 'registration read the file');
    const before = connections;
    const { job } = await submitJob(ctx, 'acme', { model: 'lenet-300-100', dataset: `dataset:${ds.id}`, rounds: 1, iterations: 2 });
    const done = await finished(ctx, job.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.ok(connections > before, 'the worker reached the host');
  });
});
