// The gRPC door end to end: a real server on 127.0.0.1 (port 0) over the
// embedded Postgres, an in-process worker and the real engine on a tiny spec.
// Health answers as standard clients expect (reflection has its own test,
// grpc-reflection.test.ts); a TF.js model goes
// up as a client stream; a 2-round job on it is watched to the end; its
// rounds, its ticket (sha256, loads in TF.js at the reported density) and
// byte offsets come back; a longer job is cancelled; other tenants, missing
// keys and bad fields get the right status codes and field names.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import * as tf from '@tensorflow/tfjs';
import { zipSync } from 'fflate';
import { service as healthService } from 'grpc-health-check';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { streamsInFlight } from '../../src/api/grpc/call.js';
import { compressionService } from '../../src/api/grpc/proto.js';
import { GrpcError, TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { getWeightMap, prunableWeights } from '../../src/engine/models/inspect.js';
import { loadModelFrom, saveModelTo } from '../../src/engine/models/load.js';
import { createApiKey, getJob, listRounds, type EventDto, type ModelDto, type ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, until, type TestDb } from '../integration/fixtures/harness.js';

let t: TestDb;
let rt: ServiceRuntime;
let server: GrpcServerHandle;
let address: string;
let acmeKey: string;
let acme: TicketsmithGrpcClient;
let globex: TicketsmithGrpcClient;
let modelFiles: { name: string; bytes: Uint8Array }[];
let model: ModelDto;
let jobId: string;

/** No suite may hang the run: each fails after this long. */
const LIMIT_MS = 180_000;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Asserts a GrpcError with this status, service code and (when given) field. */
function grpcError(status: grpc.status, code: string, field?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof GrpcError, `expected a GrpcError, got ${String(e)}`);
    assert.equal(e.status, status, `${e.code}: ${e.message}`);
    assert.equal(e.code, code, e.message);
    if (field !== undefined) assert.equal(e.field, field, e.message);
    return true;
  };
}

/** One unary call with nothing but grpc-js and a service definition: what any other client would do. */
interface RawMethod<Res> {
  path: string;
  requestSerialize: (value: object) => Buffer;
  responseDeserialize: (bytes: Buffer) => Res;
}

function rawUnary<Res>(def: object, name: string, req: object, md = new grpc.Metadata()): Promise<Res> {
  const m = (def as Record<string, RawMethod<Res>>)[name]!;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<Res>((resolve, reject) => {
    client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, req, md, { deadline: Date.now() + 10_000 }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res!);
    });
  });
}

// A job names its model at the API (issue 9); most calls here replace it with an uploaded one.
const tiny = (extra: Record<string, unknown> = {}) => ({
  model: 'lenet-20-10', dataset: 'builtin:mnist', rounds: 2, iterations: 20, evalEvery: 10, batchSize: 30, maxTrainExamples: 300, controls: 'none' as const, seed: 1, ...extra,
});

before(async () => {
  t = await startTestDb();
  rt = await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, progressIntervalMs: 200 } });
  server = await startGrpcServer(rt, { host: '127.0.0.1', port: 0 });
  address = `127.0.0.1:${server.port}`;
  acmeKey = (await createApiKey(rt.ctx, 'acme')).key;
  acme = new TicketsmithGrpcClient({ address, apiKey: acmeKey, chunkBytes: 4096 });
  globex = new TicketsmithGrpcClient({ address, apiKey: (await createApiKey(rt.ctx, 'globex')).key });

  // A small Sequential model for MNIST, saved the way a user would export it.
  const m = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [28, 28, 1], name: 'flat' }),
      tf.layers.dense({ units: 16, activation: 'relu', name: 'fc1' }),
      tf.layers.dense({ units: 10, activation: 'softmax', name: 'out' }),
    ],
  });
  const dir = await mkdtemp(join(t.dir, 'upload-'));
  await saveModelTo(m, dir);
  m.dispose();
  modelFiles = await Promise.all((await readdir(dir)).sort().map(async (name) => ({ name, bytes: new Uint8Array(await readFile(join(dir, name))) })));
}, { timeout: LIMIT_MS });

after(async () => {
  acme?.close();
  globex?.close();
  await server?.stop();
  await t?.stop();
});

describe('standard services', { timeout: LIMIT_MS }, () => {
  test('health: SERVING for the server and for ticketsmith.v1.Compression; unknown services NOT_FOUND', async () => {
    assert.deepEqual(await rawUnary(healthService, 'Check', { service: '' }), { status: 'SERVING' });
    assert.deepEqual(await rawUnary(healthService, 'Check', { service: 'ticketsmith.v1.Compression' }), { status: 'SERVING' });
    await assert.rejects(rawUnary(healthService, 'Check', { service: 'nope.Service' }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  });
});

describe('auth', { timeout: LIMIT_MS }, () => {
  test('no key, an unknown key or a non-Bearer scheme: UNAUTHENTICATED; x-api-key works like Bearer', async () => {
    const anon = new TicketsmithGrpcClient({ address });
    const wrong = new TicketsmithGrpcClient({ address, apiKey: `tsk_${'x'.repeat(43)}` });
    try {
      await assert.rejects(anon.listJobs(), grpcError(grpc.status.UNAUTHENTICATED, 'UNAUTHENTICATED'));
      await assert.rejects(wrong.listJobs(), grpcError(grpc.status.UNAUTHENTICATED, 'UNAUTHENTICATED'));
      await assert.rejects(anon.uploadModel({ files: modelFiles }), grpcError(grpc.status.UNAUTHENTICATED, 'UNAUTHENTICATED'));
      const watching = (async () => {
        for await (const _ of anon.watchJob('6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11')) void _;
      })();
      await assert.rejects(watching, grpcError(grpc.status.UNAUTHENTICATED, 'UNAUTHENTICATED'));
    } finally {
      anon.close();
      wrong.close();
    }
    const basic = new grpc.Metadata();
    basic.set('authorization', `Basic ${acmeKey}`);
    await assert.rejects(rawUnary(compressionService, 'ListJobs', {}, basic), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED);
    const md = new grpc.Metadata();
    md.set('x-api-key', acmeKey);
    const res = await rawUnary<{ jobs: unknown[] }>(compressionService, 'ListJobs', {}, md);
    assert.ok(Array.isArray(res.jobs), 'x-api-key authenticates');
  });
});

describe('models', { timeout: LIMIT_MS }, () => {
  test('UploadModel streams model.json + weights in chunks; the model is checked and described', async () => {
    const weights = modelFiles.find((f) => f.name === 'weights.bin')!;
    assert.ok(weights.bytes.length > 4096 * 3, 'the weights take several 4 KiB chunks');
    model = await acme.uploadModel({ files: modelFiles }, { name: 'tiny-mlp' });
    assert.equal(model.name, 'tiny-mlp');
    assert.equal(model.format, 'tfjs-layers');
    assert.deepEqual(model.architecture.inputShape, [28, 28, 1]);
    assert.equal(model.architecture.numClasses, 10);
    assert.equal(model.architecture.params, 784 * 16 + 16 + 16 * 10 + 10);
    assert.deepEqual(model.files.map((f) => [f.name, f.sha256, f.size]), modelFiles.map((f) => [f.name, sha256(f.bytes), f.bytes.length]));
    assert.deepEqual(await acme.getModel(model.id), model);
  });

  test('one .zip archive gives the same model; a truncated weight file is INVALID_ARGUMENT and stores nothing', async () => {
    const zipped = await acme.uploadModel({ archive: zipSync(Object.fromEntries(modelFiles.map((f) => [`tiny/${f.name}`, f.bytes]))) });
    assert.equal(zipped.sha256, model.sha256);
    const before = await rt.ctx.prisma.model.count();
    const broken = modelFiles.map((f) => (f.name === 'weights.bin' ? { name: f.name, bytes: f.bytes.slice(0, 100) } : f));
    // The field names the manifest entry whose bytes are missing (budget.ts), not just 'files'.
    await assert.rejects(acme.uploadModel({ files: broken }), grpcError(grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'model.json.weightsManifest[0].weights[0]'));
    assert.equal(await rt.ctx.prisma.model.count(), before);
  });

  test('RegisterDataset answers with the known shapes', async () => {
    const d = await acme.registerDataset('builtin:mnist');
    assert.deepEqual({ inputShape: d.shapes.inputShape, numClasses: d.shapes.numClasses, counts: d.shapes.counts }, { inputShape: [28, 28, 1], numClasses: 10, counts: { train: 8004, test: 1996 } });
    await assert.rejects(acme.registerDataset('ftp://x/y'), grpcError(grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'reference'));
  });
});

describe('a 2-round job on the uploaded model', { timeout: LIMIT_MS }, () => {
  test('SubmitJob (idempotent), WatchJob until it ends by itself, with events in order', async () => {
    const spec = tiny({ model: `model:${model.id}` });
    const first = await acme.submitJob(spec, { idempotencyKey: 'grpc-e2e-1' });
    assert.equal(first.created, true);
    assert.equal(first.job.status, 'queued');
    assert.equal(first.job.modelId, model.id);
    assert.equal(first.job.spec.rounds, 2);
    assert.deepEqual(first.job.spec.skipLayers, [], 'the resolved spec comes back whole');
    jobId = first.job.id;
    const again = await acme.submitJob(spec, { idempotencyKey: 'grpc-e2e-1' });
    assert.equal(again.created, false);
    assert.equal(again.job.id, jobId);

    const events: EventDto[] = [];
    for await (const e of acme.watchJob(jobId, { signal: AbortSignal.timeout(120_000) })) events.push(e);
    const kinds = events.map((e) => e.kind);
    assert.equal(kinds[0], 'queued');
    assert.equal(kinds.at(-1), 'finished', kinds.join(','));
    assert.deepEqual(events.at(-1)!.payload, { status: 'succeeded' });
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.id > events[i - 1]!.id, 'ids increase');
    for (const k of ['started', 'run-start', 'round', 'result']) assert.ok(kinds.includes(k), `${k} in ${kinds.join(',')}`);
    assert.ok(kinds.indexOf('started') < kinds.indexOf('round') && kinds.lastIndexOf('round') < kinds.indexOf('result'), kinds.join(','));
    // Resuming after an id gives exactly the rest.
    const rest: number[] = [];
    for await (const e of acme.watchJob(jobId, { afterId: events[2]!.id })) rest.push(e.id);
    assert.deepEqual(rest, events.slice(3).map((e) => e.id));
  });

  test('GetJob and ListRounds return exactly what the service returns; metrics are real', async () => {
    const job = await acme.getJob(jobId);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    assert.deepEqual(job, await getJob(rt.ctx, 'acme', jobId));
    const rounds = await acme.listRounds(jobId);
    assert.deepEqual(rounds, await listRounds(rt.ctx, 'acme', jobId));
    assert.deepEqual(rounds.map((r) => r.index), [0, 1, 2]);
    assert.equal(rounds[0]!.density, 1);
    assert.ok(rounds[1]!.density < 1 && rounds[2]!.density < rounds[1]!.density, rounds.map((r) => r.density).join(','));
    for (const r of rounds) {
      assert.ok(r.testAccuracy >= 0 && r.testAccuracy <= 1, `round ${r.index} accuracy ${r.testAccuracy}`);
      assert.deepEqual(Object.keys(r.layerDensity).sort(), ['fc1/kernel', 'out/kernel']);
      assert.ok(r.validationCurve.length > 0, `round ${r.index} has a validation curve`);
      assert.equal(r.paramsTotal, model.architecture.params);
    }
  });

  test('DownloadArtifact: the ticket files match their sha256 and load in TF.js at the reported density', async () => {
    const arts = await acme.listArtifacts({ jobId });
    const ticket = arts.filter((a) => a.name.startsWith('ticket/'));
    const dir = await mkdtemp(join(t.dir, 'ticket-'));
    for (const name of ['model.json', 'weights.bin']) {
      const a = ticket.find((x) => x.name === `ticket/${name}`);
      assert.ok(a, `ticket/${name} in ${arts.map((x) => x.name).join(',')}`);
      const dl = await acme.download(a.id);
      assert.equal(dl.size, a.size);
      assert.equal(dl.bytes.length, a.size);
      assert.equal(sha256(dl.bytes), dl.sha256);
      assert.equal(dl.sha256, a.sha256);
      await writeFile(join(dir, name), dl.bytes);
    }
    const rounds = await acme.listRounds(jobId);
    const job = await acme.getJob(jobId);
    const reported = (job.result as { summary: { density: number } }).summary.density;
    assert.equal(reported, rounds.at(-1)!.density);
    const loaded = await loadModelFrom(dir);
    try {
      const weights = getWeightMap(loaded);
      let alive = 0;
      let total = 0;
      for (const w of prunableWeights(loaded)) {
        const values = weights[w.name]!.values;
        total += values.length;
        for (const v of values) if (v !== 0) alive++;
      }
      assert.equal(total, 784 * 16 + 16 * 10);
      assert.ok(Math.abs(alive / total - reported) < 1e-9, `ticket density ${alive / total} vs reported ${reported}`);
    } finally {
      loaded.dispose();
    }
  });

  test('DownloadArtifact from an offset sends the tail; past the end is OUT_OF_RANGE on offset', async () => {
    const a = (await acme.listArtifacts({ jobId })).find((x) => x.name === 'ticket/weights.bin')!;
    const whole = await acme.download(a.id);
    const tail = await acme.download(a.id, { offset: 1000 });
    assert.equal(tail.offset, 1000);
    assert.equal(tail.size, a.size, 'the header describes the whole artifact');
    assert.deepEqual(tail.bytes, whole.bytes.subarray(1000));
    await assert.rejects(acme.download(a.id, { offset: a.size }), grpcError(grpc.status.OUT_OF_RANGE, 'RANGE_NOT_SATISFIABLE', 'offset'));
  });

  test('ListJobs pages newest first with page tokens and filters by status', async () => {
    const extra: string[] = [];
    for (let seed = 10; seed < 12; seed++) extra.push((await acme.submitJob(tiny({ model: `model:${model.id}`, seed, rounds: 0 }))).job.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await acme.listJobs({ limit: 1, cursor });
      seen.push(...page.items.map((j) => j.id));
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    assert.deepEqual(seen, [...extra].reverse().concat(jobId));
    for (const id of extra) await acme.cancelJob(id).catch(() => undefined);
    // The extra jobs may have run to the end before their cancel arrived: only the filter itself is checked.
    const succeeded = (await acme.listJobs({ status: 'succeeded' })).items;
    assert.ok(succeeded.some((j) => j.id === jobId), 'the finished job is listed as succeeded');
    assert.ok(succeeded.every((j) => j.status === 'succeeded'), succeeded.map((j) => j.status).join(','));
    const cancelled = (await acme.listJobs({ status: 'cancelled' })).items;
    assert.ok(cancelled.every((j) => j.status === 'cancelled' && extra.includes(j.id)), 'only the extra jobs are cancelled');
  });
});

describe('cancel and stream clean-up', { timeout: LIMIT_MS }, () => {
  test('a client that cancels WatchJob leaves no stream behind', async () => {
    const ac = new AbortController();
    const got: string[] = [];
    for await (const e of acme.watchJob(jobId, { signal: ac.signal, afterId: 0 })) {
      got.push(e.kind);
      ac.abort();
    }
    assert.equal(got.length, 1);
    // A watch on a job that never ends by itself: only the client's cancel stops it.
    const { job } = await acme.submitJob(tiny({ model: `model:${model.id}`, seed: 77, rounds: 50, iterations: 100_000, evalEvery: 1000 }));
    const ac2 = new AbortController();
    let received = 0;
    const watching = (async () => {
      for await (const _ of acme.watchJob(job.id, { signal: ac2.signal })) received++;
    })();
    await until(async () => received > 0, 10_000, 'the first event of the open watch');
    await until(async () => streamsInFlight() === 1, 10_000, 'the other watches to have ended');
    ac2.abort();
    await watching;
    await until(async () => streamsInFlight() === 0, 10_000, 'the server to drop the cancelled watch');
    await acme.cancelJob(job.id);
  });

  test('CancelJob stops a running job; its watch ends by itself with the cancelled state', async () => {
    const { job } = await acme.submitJob(tiny({ model: `model:${model.id}`, seed: 5, rounds: 50, iterations: 100_000, evalEvery: 1000 }));
    await until(async () => ((await acme.getJob(job.id)).status === 'running' ? true : null), 60_000, 'the long job to start');
    const kinds: string[] = [];
    const watching = (async () => {
      for await (const e of acme.watchJob(job.id, { signal: AbortSignal.timeout(60_000) })) kinds.push(e.kind);
    })();
    const c = await acme.cancelJob(job.id);
    assert.equal(c.cancelRequested, true);
    await watching;
    assert.equal(kinds.at(-1), 'finished');
    const done = await acme.getJob(job.id);
    assert.equal(done.status, 'cancelled');
    assert.ok(done.finishedAt, 'a cancelled job has finished');
    await assert.rejects(acme.cancelJob(jobId), grpcError(grpc.status.FAILED_PRECONDITION, 'FAILED_PRECONDITION'));
  });
});

describe('isolation and bad input', { timeout: LIMIT_MS }, () => {
  test("another tenant gets NOT_FOUND for acme's job, rounds, events, artifacts and model", async () => {
    const art = (await acme.listArtifacts({ jobId }))[0]!;
    const notFound = grpcError(grpc.status.NOT_FOUND, 'NOT_FOUND');
    await assert.rejects(globex.getJob(jobId), notFound);
    await assert.rejects(globex.listRounds(jobId), notFound);
    await assert.rejects(globex.cancelJob(jobId), notFound);
    await assert.rejects(globex.listArtifacts({ jobId }), notFound);
    await assert.rejects(globex.download(art.id), notFound);
    await assert.rejects(globex.getModel(model.id), notFound);
    await assert.rejects(
      (async () => {
        for await (const _ of globex.watchJob(jobId)) void _;
      })(),
      notFound,
    );
    await assert.rejects(globex.submitJob(tiny({ model: `model:${model.id}` })), grpcError(grpc.status.NOT_FOUND, 'NOT_FOUND', 'spec.model'));
    assert.deepEqual((await globex.listJobs()).items, []);
  });

  test('bad fields are INVALID_ARGUMENT naming the field (never INTERNAL), and nothing is queued', async () => {
    const jobs = await rt.ctx.prisma.job.count();
    const bad = (field: string) => grpcError(grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', field);
    await assert.rejects(acme.submitJob(tiny({ rounds: 1000 })), bad('spec.rounds'));
    await assert.rejects(acme.submitJob(tiny({ targetDensity: 1.5 })), bad('spec.targetDensity'));
    await assert.rejects(acme.submitJob(tiny({ schedule: 'one-shot' })), bad('spec.targetDensity'));
    await assert.rejects(acme.submitJob(tiny({ dataset: 'builtin:nope' })), bad('spec.dataset'));
    await assert.rejects(acme.submitJob(tiny({ model: '/etc/passwd' })), bad('spec.model'));
    await assert.rejects(acme.submitJob(tiny(), { idempotencyKey: 'has spaces' }), bad('idempotencyKey'));
    await assert.rejects(acme.listJobs({ limit: 1000 }), bad('pageSize'));
    await assert.rejects(acme.listJobs({ cursor: 'garbage' }), bad('pageToken'));
    await assert.rejects(acme.getJob(''), bad('jobId'));
    // Fields a generated client could send that the schema's strings cannot express.
    await assert.rejects(rawUnary(compressionService, 'SubmitJob', { spec: { method: 9 } }, bearer()), statusWithField(grpc.status.INVALID_ARGUMENT, 'spec.method'));
    await assert.rejects(rawUnary(compressionService, 'ListJobs', { status: 42 }, bearer()), statusWithField(grpc.status.INVALID_ARGUMENT, 'status'));
    // model given twice, differently.
    await assert.rejects(
      rawUnary(compressionService, 'SubmitJob', { model: 'lenet-300-100', spec: { model: 'conv-2' } }, bearer()),
      statusWithField(grpc.status.INVALID_ARGUMENT, 'model'),
    );
    // The same idempotency key with another request.
    await assert.rejects(acme.submitJob(tiny({ model: `model:${model.id}`, rounds: 3 }), { idempotencyKey: 'grpc-e2e-1' }), grpcError(grpc.status.FAILED_PRECONDITION, 'IDEMPOTENCY_KEY_REUSED', 'idempotencyKey'));
    assert.equal(await rt.ctx.prisma.job.count(), jobs);
  });

  test('an upload stream that does not start with metadata, or mixes formats, is INVALID_ARGUMENT', async () => {
    const m = compressionService.UploadModel as MethodDefinition<object, object>;
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    const upload = (msgs: object[]) =>
      new Promise<object>((resolve, reject) => {
        const call = client.makeClientStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, bearer(), {}, (err, res) => (err ? reject(err) : resolve(res!)));
        for (const msg of msgs) call.write(msg);
        call.end();
      });
    try {
      await assert.rejects(upload([{ fileChunk: { name: 'model.json', data: Buffer.from('{}') } }]), statusWithField(grpc.status.INVALID_ARGUMENT, 'metadata'));
      await assert.rejects(upload([]), statusWithField(grpc.status.INVALID_ARGUMENT, 'metadata'));
      await assert.rejects(
        upload([{ metadata: { name: 'x', format: 'UPLOAD_FORMAT_ARCHIVE' } }, { fileChunk: { name: 'model.json', data: Buffer.from('{}') } }]),
        statusWithField(grpc.status.INVALID_ARGUMENT, 'fileChunk'),
      );
      const big = Buffer.alloc(600 * 1024);
      await assert.rejects(
        upload([{ metadata: { name: 'x' } }, { archiveChunk: big }, { archiveChunk: big }]),
        (e: grpc.ServiceError) => e.code === grpc.status.RESOURCE_EXHAUSTED && e.metadata.get('ticketsmith-error-code')[0] === 'PAYLOAD_TOO_LARGE',
      );
    } finally {
      client.close();
    }
  });
});

function bearer(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${acmeKey}`);
  return md;
}

function statusWithField(code: grpc.status, field: string) {
  return (e: grpc.ServiceError) => {
    assert.equal(e.code, code, e.details);
    assert.equal(e.metadata.get('ticketsmith-error-field')[0], field, e.details);
    return true;
  };
}
