// Deleting models, datasets and jobs over both doors (real REST and gRPC
// servers on 127.0.0.1, the embedded Postgres, a worker running the small
// test engine): 204 / OK then NOT_FOUND, another tenant's ids NOT_FOUND,
// FAILED_PRECONDITION while a queued or running job is involved, finished jobs
// keeping their results when their model goes, blobs gone once nothing
// references them and kept while something does, and the tenant's storage
// bytes following along.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import * as grpc from '@grpc/grpc-js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { startRestServer, type RestServer } from '../../src/api/rest/server.js';
import { ApiError, TicketsmithClient } from '../../src/client/index.js';
import { GrpcError, TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { createApiKey, type JobDto, type ModelDto, type ServiceRuntime } from '../../src/service/index.js';
import { tenantStorageBytes } from '../../src/store/artifacts.js';
import { startTestDb, until, uploadFiles, type TestDb } from './fixtures/harness.js';
import { makeTestEngine } from './fixtures/test-engine.js';

let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let rpc: GrpcServerHandle;
let acme: TicketsmithClient;
let globex: TicketsmithClient;
let acmeRpc: TicketsmithGrpcClient;
let globexRpc: TicketsmithGrpcClient;
let modelFiles: { name: string; bytes: Uint8Array }[];

const LIMIT_MS = 120_000;
const quick = { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 2, controls: 'none' as const };
/** Runs until cancelled (5 ms a step): keeps the one worker busy. */
const endless = { ...quick, iterations: 1_000_000 };

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function restError(status: number, code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof ApiError, `expected an ApiError, got ${String(e)}`);
    assert.equal(e.status, status, `${e.code}: ${e.message}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

function rpcError(status: grpc.status, code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof GrpcError, `expected a GrpcError, got ${String(e)}`);
    assert.equal(e.status, status, `${e.code}: ${e.message}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

async function waitFor(id: string, status: JobDto['status']): Promise<JobDto> {
  return until(async () => {
    const job = await acme.getJob(id);
    return job.status === status ? job : null;
  }, 30_000, `job ${id} ${status}`);
}

async function keysOf(where: { jobId?: string; modelId?: string }): Promise<string[]> {
  const rows = await rt.ctx.prisma.artifact.findMany({ where, select: { storageKey: true } });
  return [...new Set(rows.map((r) => r.storageKey))];
}

const blobExists = async (key: string) => (await rt.ctx.blobs.size(key)) !== null;

async function rowCounts(jobId: string) {
  const [jobs, rounds, events, artifacts] = await Promise.all([
    rt.ctx.prisma.job.count({ where: { id: jobId } }),
    rt.ctx.prisma.round.count({ where: { jobId } }),
    rt.ctx.prisma.event.count({ where: { jobId } }),
    rt.ctx.prisma.artifact.count({ where: { jobId } }),
  ]);
  return { jobs, rounds, events, artifacts };
}

async function finishedJob(client: TicketsmithClient | TicketsmithGrpcClient = acme, extra: Record<string, unknown> = {}): Promise<JobDto> {
  const { job } = await client.submitJob({ ...quick, ...extra });
  return waitFor(job.id, 'succeeded');
}

before(async () => {
  t = await startTestDb();
  // The storage pass is off here: collection must come from the deletes themselves.
  rt = await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, storageSweepSeconds: 0 }, runner: makeTestEngine({ stepMs: 5 }) });
  rest = await startRestServer(rt, { port: 0 });
  rpc = await startGrpcServer(rt, { host: '127.0.0.1', port: 0 });
  const acmeKey = (await createApiKey(rt.ctx, 'acme')).key;
  const globexKey = (await createApiKey(rt.ctx, 'globex')).key;
  acme = new TicketsmithClient({ baseUrl: rest.url, apiKey: acmeKey });
  globex = new TicketsmithClient({ baseUrl: rest.url, apiKey: globexKey });
  acmeRpc = new TicketsmithGrpcClient({ address: `127.0.0.1:${rpc.port}`, apiKey: acmeKey });
  globexRpc = new TicketsmithGrpcClient({ address: `127.0.0.1:${rpc.port}`, apiKey: globexKey });
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [28, 28, 1], name: 'flat' }), tf.layers.dense({ units: 4, activation: 'relu', name: 'fc1' }), tf.layers.dense({ units: 10, name: 'out' })] });
  modelFiles = await uploadFiles(model);
  model.dispose();
});

after(async () => {
  acmeRpc?.close();
  globexRpc?.close();
  await rpc?.stop();
  await rest?.stop(500);
  await t?.stop();
});

describe('deleting jobs', { timeout: LIMIT_MS }, () => {
  test('REST: a finished job goes with its rounds, events, artifacts and blobs; then 404; another tenant gets 404 and changes nothing', async () => {
    const job = await finishedJob();
    const keys = await keysOf({ jobId: job.id });
    assert.ok(keys.length >= 4, `the job stored blobs (${keys.length})`);
    for (const k of keys) assert.ok(await blobExists(k), `blob ${k} stored`);

    await assert.rejects(globex.deleteJob(job.id), restError(404, 'NOT_FOUND'));
    assert.equal((await acme.getJob(job.id)).status, 'succeeded', "another tenant's delete left the job alone");

    await acme.deleteJob(job.id);
    assert.deepEqual(await rowCounts(job.id), { jobs: 0, rounds: 0, events: 0, artifacts: 0 });
    for (const k of keys) assert.equal(await blobExists(k), false, `blob ${k} collected`);
    await assert.rejects(acme.getJob(job.id), restError(404, 'NOT_FOUND'));
    await assert.rejects(acme.deleteJob(job.id), restError(404, 'NOT_FOUND'));
    // Not an id at all: refused at the door, naming it (a well-formed unknown id is the 404 above).
    await assert.rejects(acme.deleteJob('not-a-uuid'), restError(400, 'INVALID_ARGUMENT'));
  });

  test('gRPC: DeleteJob, then NOT_FOUND; another tenant NOT_FOUND', async () => {
    const job = await finishedJob(acmeRpc);
    const keys = await keysOf({ jobId: job.id });
    await assert.rejects(globexRpc.deleteJob(job.id), rpcError(grpc.status.NOT_FOUND, 'NOT_FOUND'));
    await acmeRpc.deleteJob(job.id);
    assert.deepEqual(await rowCounts(job.id), { jobs: 0, rounds: 0, events: 0, artifacts: 0 });
    for (const k of keys) assert.equal(await blobExists(k), false, `blob ${k} collected`);
    await assert.rejects(acmeRpc.getJob(job.id), rpcError(grpc.status.NOT_FOUND, 'NOT_FOUND'));
    await assert.rejects(acmeRpc.deleteJob(job.id), rpcError(grpc.status.NOT_FOUND, 'NOT_FOUND'));
    await assert.rejects(acmeRpc.deleteJob(''), rpcError(grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT'));
  });

  test('blobs two jobs share stay while one of them references them, and go with the last', async () => {
    // The test engine writes the same bytes for every job: the two jobs share every blob.
    const a = await finishedJob();
    const b = await finishedJob();
    const keys = await keysOf({ jobId: a.id });
    assert.deepEqual(keys.sort(), (await keysOf({ jobId: b.id })).sort(), 'the jobs share their blobs');

    await acme.deleteJob(a.id);
    for (const k of keys) assert.ok(await blobExists(k), `blob ${k} kept: job b references it`);
    for (const art of await acme.listArtifacts(b.id)) {
      const bytes = (await acme.downloadVerified(art.id, art.sha256)).bytes;
      assert.equal(sha256(bytes), art.sha256);
    }
    await acme.deleteJob(b.id);
    for (const k of keys) assert.equal(await blobExists(k), false, `blob ${k} collected with the last reference`);
  });

  test('a queued or running job is FAILED_PRECONDITION (409) on both doors; once cancelled it can go', async () => {
    const { job: running } = await acme.submitJob(endless);
    await waitFor(running.id, 'running');
    const { job: queued } = await acme.submitJob({ ...endless, seed: 1 });
    assert.equal((await acme.getJob(queued.id)).status, 'queued', 'the one worker is busy');

    for (const id of [running.id, queued.id]) {
      await assert.rejects(acme.deleteJob(id), restError(409, 'FAILED_PRECONDITION'));
      await assert.rejects(acmeRpc.deleteJob(id), rpcError(grpc.status.FAILED_PRECONDITION, 'FAILED_PRECONDITION'));
    }
    await acme.cancelJob(queued.id);
    await acme.cancelJob(running.id);
    await waitFor(running.id, 'cancelled');
    await acme.deleteJob(running.id);
    await acmeRpc.deleteJob(queued.id);
    assert.deepEqual(await rowCounts(running.id), { jobs: 0, rounds: 0, events: 0, artifacts: 0 });
    assert.deepEqual(await rowCounts(queued.id), { jobs: 0, rounds: 0, events: 0, artifacts: 0 });
  });
});

describe('deleting models and datasets', { timeout: LIMIT_MS }, () => {
  let model: ModelDto;

  test('in use by a queued or running job: 409 on both doors; after the job finished: deleted, the job keeps its results', async () => {
    model = await acme.uploadModel({ files: modelFiles }, { name: 'to-delete' });
    const dataset = await acme.registerDataset('builtin:mnist');
    const modelKeys = await keysOf({ modelId: model.id });
    assert.equal(modelKeys.length, 2);

    const { job: running } = await acme.submitJob({ ...endless, model: `model:${model.id}`, dataset: `dataset:${dataset.id}` });
    await waitFor(running.id, 'running');
    await assert.rejects(acme.deleteModel(model.id), restError(409, 'FAILED_PRECONDITION'));
    await assert.rejects(acmeRpc.deleteModel(model.id), rpcError(grpc.status.FAILED_PRECONDITION, 'FAILED_PRECONDITION'));
    await assert.rejects(acme.deleteDataset(dataset.id), restError(409, 'FAILED_PRECONDITION'));
    await assert.rejects(acmeRpc.deleteDataset(dataset.id), rpcError(grpc.status.FAILED_PRECONDITION, 'FAILED_PRECONDITION'));

    // Queued behind it, naming the same model and dataset: still refused once the running one is gone.
    const { job: queued } = await acme.submitJob({ ...quick, model: `model:${model.id}`, dataset: `dataset:${dataset.id}` });
    await acme.cancelJob(running.id);
    await waitFor(running.id, 'cancelled');
    const finished = await waitFor(queued.id, 'succeeded');
    assert.equal(finished.modelId, model.id);
    const resultKeys = await keysOf({ jobId: queued.id });

    await acme.deleteModel(model.id);
    await acmeRpc.deleteDataset(dataset.id);
    for (const k of modelKeys) assert.equal(await blobExists(k), false, `model file blob ${k} collected`);
    await assert.rejects(acme.getModel(model.id), restError(404, 'NOT_FOUND'));
    await assert.rejects(acme.deleteModel(model.id), restError(404, 'NOT_FOUND'));
    await assert.rejects(acmeRpc.deleteModel(model.id), rpcError(grpc.status.NOT_FOUND, 'NOT_FOUND'));
    await assert.rejects(acme.deleteDataset(dataset.id), restError(404, 'NOT_FOUND'));

    // The finished job keeps its rounds and artifacts; its spec still names the model.
    const kept = await acme.getJob(queued.id);
    assert.equal(kept.status, 'succeeded');
    assert.equal(kept.spec.model, `model:${model.id}`);
    assert.equal(kept.spec.dataset, `dataset:${dataset.id}`);
    assert.equal(kept.modelId, null);
    assert.equal(kept.datasetId, null);
    assert.equal((await acme.listRounds(queued.id)).length, 2);
    for (const k of resultKeys) assert.ok(await blobExists(k), `the job's blob ${k} kept`);
    const ticket = (await acme.listArtifacts(queued.id, { kind: 'ticket' }))[0]!;
    assert.equal(sha256((await acme.downloadVerified(ticket.id, ticket.sha256)).bytes), ticket.sha256);

    // A deleted model or dataset cannot be named by a new job.
    await assert.rejects(acme.submitJob({ ...quick, model: `model:${model.id}` }), restError(404, 'NOT_FOUND'));
    await assert.rejects(acme.submitJob({ ...quick, dataset: `dataset:${dataset.id}` }), restError(404, 'NOT_FOUND'));
  });

  test('a submit racing the delete of its dataset: either the job exists and the delete is 409, or the delete wins and the submit is 404', async () => {
    const bothOrders = { deleted: 0, refused: 0 };
    for (let i = 0; i < 12; i++) {
      // Each round ends with the dataset deleted, so this registers a new one.
      const dataset = await acme.registerDataset('builtin:mnist');
      const [submit, del] = await Promise.allSettled([
        acme.submitJob({ ...endless, seed: 1000 + i, dataset: `dataset:${dataset.id}` }),
        (async () => {
          await new Promise((r) => setTimeout(r, Math.random() * 10));
          await acme.deleteDataset(dataset.id);
        })(),
      ]);
      if (del.status === 'fulfilled') {
        bothOrders.deleted++;
        // The dataset is gone: no queued or running job may name it.
        if (submit.status === 'fulfilled') assert.ok(['succeeded', 'failed', 'cancelled'].includes((await acme.getJob(submit.value.job.id)).status), 'a job of a deleted dataset is not active');
        else restError(404, 'NOT_FOUND')(submit.reason);
      } else {
        bothOrders.refused++;
        restError(409, 'FAILED_PRECONDITION')(del.reason);
        assert.equal(submit.status, 'fulfilled');
        if (submit.status === 'fulfilled') {
          await acme.cancelJob(submit.value.job.id);
          await waitFor(submit.value.job.id, 'cancelled');
        }
        await acme.deleteDataset(dataset.id);
      }
    }
    assert.equal(bothOrders.deleted + bothOrders.refused, 12);
  });

  test("another tenant's model or dataset is NOT_FOUND on both doors and stays", async () => {
    const m = await acme.uploadModel({ files: modelFiles }, { name: 'keep-me' });
    const d = await acme.registerDataset('builtin:fashion-mnist');
    await assert.rejects(globex.deleteModel(m.id), restError(404, 'NOT_FOUND'));
    await assert.rejects(globexRpc.deleteModel(m.id), rpcError(grpc.status.NOT_FOUND, 'NOT_FOUND'));
    await assert.rejects(globex.deleteDataset(d.id), restError(404, 'NOT_FOUND'));
    await assert.rejects(globexRpc.deleteDataset(d.id), rpcError(grpc.status.NOT_FOUND, 'NOT_FOUND'));
    assert.equal((await acme.getModel(m.id)).id, m.id);
    for (const k of await keysOf({ modelId: m.id })) assert.ok(await blobExists(k));
    await acmeRpc.deleteModel(m.id);
    await acme.deleteDataset(d.id);
    await assert.rejects(acmeRpc.getModel(m.id), rpcError(grpc.status.NOT_FOUND, 'NOT_FOUND'));
  });

  test('the same model uploaded twice shares its blobs: deleting one copy keeps them for the other', async () => {
    const one = await acme.uploadModel({ files: modelFiles }, { name: 'one' });
    const two = await acmeRpc.uploadModel({ files: modelFiles }, { name: 'two' });
    const keys = await keysOf({ modelId: one.id });
    assert.deepEqual(keys.sort(), (await keysOf({ modelId: two.id })).sort());
    await acmeRpc.deleteModel(one.id);
    for (const k of keys) assert.ok(await blobExists(k), `blob ${k} kept for the second copy`);
    await acme.deleteModel(two.id);
    for (const k of keys) assert.equal(await blobExists(k), false, `blob ${k} collected`);
  });
});

describe('tenant storage bytes', { timeout: LIMIT_MS }, () => {
  test('count each distinct blob of the tenant once, and shrink when things are deleted', async () => {
    const before = await tenantStorageBytes(rt.ctx.prisma, 'acme');
    const one = await acme.uploadModel({ files: modelFiles }, { name: 'one' });
    const size = modelFiles.reduce((n, f) => n + f.bytes.byteLength, 0);
    assert.equal(one.size, size);
    assert.equal(await tenantStorageBytes(rt.ctx.prisma, 'acme'), before + size);
    // A second copy of the same bytes costs nothing more.
    const two = await acme.uploadModel({ files: modelFiles }, { name: 'two' });
    assert.equal(await tenantStorageBytes(rt.ctx.prisma, 'acme'), before + size);
    // The same bytes held by another tenant count for that tenant too.
    const theirs = await globex.uploadModel({ files: modelFiles });
    assert.equal(await tenantStorageBytes(rt.ctx.prisma, 'globex'), size);

    await acme.deleteModel(one.id);
    assert.equal(await tenantStorageBytes(rt.ctx.prisma, 'acme'), before + size);
    await acme.deleteModel(two.id);
    assert.equal(await tenantStorageBytes(rt.ctx.prisma, 'acme'), before);
    await globex.deleteModel(theirs.id);
    assert.equal(await tenantStorageBytes(rt.ctx.prisma, 'globex'), 0);
    assert.equal(await tenantStorageBytes(rt.ctx.prisma, 'nobody'), 0);
  });
});

describe('the contract', () => {
  test('OpenAPI documents the three DELETE routes with 204, 404 and 409', async () => {
    const doc = (await (await fetch(`${rest.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    for (const path of ['/v1/models/{id}', '/v1/datasets/{id}', '/v1/jobs/{id}']) {
      const op = doc.paths[path]?.delete;
      assert.ok(op, `DELETE ${path}`);
      assert.deepEqual(['204', '404', '409'].filter((s) => s in op.responses), ['204', '404', '409'], path);
    }
  });
});
