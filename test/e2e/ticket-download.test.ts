// ONNX out and ticket.zip through the service, end to end (issue 11): a small
// uploaded CNN runs an IMP job and a filter job on a real worker (real engine,
// builtin MNIST); the IMP ticket's model.onnx, downloaded over REST, runs in
// onnxruntime-node with the TF.js ticket's outputs within 1e-4 and the
// reported density of zeros; the filter job's model.onnx has the reported,
// smaller parameter count; ticket.zip comes over REST (sha256 header, ETag)
// and gRPC (DownloadTicket) as the same bytes, unpacks with every listed file
// and a matching sha256, and `ticketsmith download --zip` saves it verified.
// A job that has not succeeded answers FAILED_PRECONDITION.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { unzipSync } from 'fflate';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { ApiError, TicketsmithClient, type JobDto } from '../../src/client/index.js';
import { GrpcError, TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { downloadCommand } from '../../src/cli/client-verbs.js';
import { modelFromFiles } from '../../src/engine/models/files.js';
import { countParams, prunableWeights } from '../../src/engine/models/inspect.js';
import type { OnnxFileMetrics } from '../../src/engine/export/onnx-ticket.js';
import type { BundleManifest } from '../../src/engine/report/bundle.js';
import { createApiKey, type ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, type TestDb, uploadFiles } from '../integration/fixtures/harness.js';
import { floatInitializers, onnxVsTfjs } from '../fixtures/onnx-check.js';
import { checkResponsesOf } from '../fixtures/openapi-check.js';


/** Every REST response this file sees is checked against /openapi.json (test/fixtures/openapi-check.ts). */
let responses: Awaited<ReturnType<typeof checkResponsesOf>> | undefined;
let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let grpcServer: GrpcServerHandle;
let client: TicketsmithClient;
let grpcClient: TicketsmithGrpcClient;
let apiKey: string;
let modelId: string;

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const TRAIN = { dataset: 'builtin:mnist', iterations: 10, evalEvery: 10, batchSize: 30, maxTrainExamples: 300, seed: 1 };

/** conv 8 -> BN -> ReLU -> pool -> conv 8 (ReLU) -> pool -> flatten -> dense 10. */
function smallCnn(): tf.LayersModel {
  const m = tf.sequential({ name: 'small_cnn' });
  m.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, padding: 'same', useBias: false, name: 'conv1' }));
  m.add(tf.layers.batchNormalization({ name: 'bn1' }));
  m.add(tf.layers.activation({ activation: 'relu', name: 'relu1' }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }));
  m.add(tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv2' }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }));
  m.add(tf.layers.flatten({ name: 'flatten' }));
  m.add(tf.layers.dense({ units: 10, name: 'logits' }));
  return m;
}

/** Downloads the job's ticket/<name> artifacts over REST, each checked against its sha256. */
async function ticketFiles(jobId: string): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for (const a of await client.listArtifacts(jobId, { kind: 'ticket' })) {
    const { bytes } = await client.downloadVerified(a.id, a.sha256);
    out[a.name.replace(/^ticket\//, '')] = bytes;
  }
  return out;
}

async function succeeded(spec: Parameters<TicketsmithClient['submitJob']>[0]): Promise<JobDto> {
  const { job } = await client.submitJob(spec);
  const done = await client.waitForJob(job.id, { signal: AbortSignal.timeout(120_000) });
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  return done;
}

before(async () => {
  t = await startTestDb();
  rt = await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.3, progressIntervalMs: 200 } });
  rest = await startRestServer(rt, { port: 0, sseHeartbeatMs: 300 });
  responses = await checkResponsesOf(rest.url);
  grpcServer = await startGrpcServer(rt, { host: '127.0.0.1', port: 0 });
  apiKey = (await createApiKey(rt.ctx, 'acme')).key;
  client = new TicketsmithClient({ baseUrl: rest.url, apiKey });
  grpcClient = new TicketsmithGrpcClient({ address: `127.0.0.1:${grpcServer.port}`, apiKey, chunkBytes: 4096 });
  const model = smallCnn();
  modelId = (await client.uploadModel({ files: await uploadFiles(model) }, { name: 'small-cnn' })).id;
  model.dispose();
});

after(async () => {
  responses?.restore();
  grpcClient?.close();
  await rest?.stop(500);
  await grpcServer?.stop();
  await t?.stop();
});

describe('model.onnx and ticket.zip through the doors', () => {
  let impJob: JobDto;

  test('IMP: model.onnx runs in onnxruntime with the ticket\'s outputs and the reported density', async () => {
    impJob = await succeeded({ ...TRAIN, model: modelId, method: 'imp', rounds: 2, controls: 'none' });
    const summary = (impJob.result as { summary: { density: number; onnx: OnnxFileMetrics } }).summary;
    const files = await ticketFiles(impJob.id);
    assert.ok(files['model.onnx'], `ticket files: ${Object.keys(files).join(', ')}`);
    const listed = (await client.listArtifacts(impJob.id, { kind: 'ticket' })).find((a) => a.name === 'ticket/model.onnx')!;
    assert.equal(listed.mediaType, 'application/octet-stream');
    const bytes = files['model.onnx'];
    assert.equal(sha(bytes), summary.onnx.sha256);
    assert.equal(bytes.length, summary.onnx.bytes);
    assert.equal(summary.onnx.opset, 13);

    const ticket = await modelFromFiles({ json: files['model.json']!, bin: files['weights.bin']! });
    try {
      const diff = await onnxVsTfjs(ticket, bytes);
      assert.ok(diff <= 1e-4, `ONNX vs TF.js ticket: max |diff| ${diff}`);
      assert.equal(summary.onnx.params, countParams(ticket));
      const inits = floatInitializers(bytes);
      let prunable = 0;
      let zeros = 0;
      for (const w of prunableWeights(ticket)) {
        const values = inits.get(w.name)!;
        prunable += values.length;
        for (const v of values) if (v === 0) zeros++;
      }
      assert.ok(summary.density < 1, `pruned (density ${summary.density})`);
      assert.equal(zeros, Math.round(prunable * (1 - summary.density)), `zeros ${zeros} of ${prunable} at density ${summary.density}`);
    } finally {
      ticket.dispose();
    }
  });

  test('ticket.zip over REST and gRPC: the same bytes, the sha256 in the header, every listed file present', async () => {
    const d = await client.downloadTicketZip(impJob.id);
    assert.equal(d.status, 200);
    assert.equal(d.contentType, 'application/zip');
    assert.equal(d.filename, 'ticket.zip');
    assert.equal(d.sha256, sha(d.bytes), 'X-Content-SHA256 is the sha256 of the bytes');
    assert.equal(d.etag, `"${d.sha256}"`);
    const listed = (await client.listArtifacts(impJob.id, { kind: 'result' })).find((a) => a.name === 'ticket.zip');
    assert.equal(listed?.sha256, d.sha256, 'the listing shows the same archive');
    const again = await client.downloadTicketZip(impJob.id, { ifNoneMatch: d.etag! });
    assert.equal(again.status, 304);
    const doc = (await (await fetch(`${rest.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>> };
    const op = doc.paths['/v1/jobs/{id}/ticket.zip']?.get;
    assert.equal(op?.operationId, 'downloadTicket');
    for (const status of ['200', '304', '404', '409']) assert.ok(op.responses[status], `OpenAPI documents ${status}`);

    const files = unzipSync(d.bytes);
    const manifest = JSON.parse(new TextDecoder().decode(files['MANIFEST.json']!)) as BundleManifest;
    const names = manifest.files.map((f) => f.name);
    for (const n of ['model.json', 'weights.bin', 'model.onnx', 'mask.json', 'mask.npz', 'compressed.bin', 'result.json', 'accuracy.svg']) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
    for (const f of manifest.files) assert.equal(sha(files[f.name]!), f.sha256, `${f.name}: sha256`);
    const onnxInfo = (impJob.result as { summary: { onnx: OnnxFileMetrics } }).summary.onnx;
    assert.equal(sha(files['model.onnx']!), onnxInfo.sha256);
    const result = JSON.parse(new TextDecoder().decode(files['result.json']!)) as { summary: { rounds: unknown[] } };
    assert.equal(result.summary.rounds.length, 3, 'every round (0, 1, 2)');

    const g = await grpcClient.downloadTicket(impJob.id);
    assert.equal(g.sha256, d.sha256);
    assert.equal(g.size, d.bytes.length);
    assert.equal(g.mediaType, 'application/zip');
    assert.equal(sha(g.bytes), d.sha256, 'gRPC sends the same bytes');
    const tail = await grpcClient.downloadTicket(impJob.id, { offset: 100 });
    assert.equal(sha(tail.bytes), sha(d.bytes.subarray(100)));
  });

  test('ticketsmith download --zip saves the archive and verifies its sha256', async () => {
    const out = join(t.dir, 'cli', 'ticket.zip');
    const lines: string[] = [];
    const errs: string[] = [];
    const code = await downloadCommand([impJob.id, '--zip', '--out', out, '--url', rest.url, '--key', apiKey], { out: (s) => lines.push(s), err: (s) => errs.push(s) });
    assert.equal(code, 0, errs.join(''));
    assert.equal(lines.join('').trim(), out);
    const bytes = new Uint8Array(await readFile(out));
    const listed = (await client.listArtifacts(impJob.id, { kind: 'result' })).find((a) => a.name === 'ticket.zip')!;
    assert.equal(sha(bytes), listed.sha256);
    assert.match(errs.join(''), new RegExp(`sha256 ${listed.sha256} verified`));
  });

  test('a job that has not succeeded: 409 / FAILED_PRECONDITION naming its state', async () => {
    const { job } = await client.submitJob({ ...TRAIN, model: modelId, method: 'imp', rounds: 5, iterations: 5000, controls: 'none', seed: 2 });
    await client.cancelJob(job.id);
    await client.waitForJob(job.id, { signal: AbortSignal.timeout(60_000) });
    await assert.rejects(client.downloadTicketZip(job.id), (e: unknown) => {
      assert.ok(e instanceof ApiError, String(e));
      assert.equal(e.status, 409);
      assert.equal(e.code, 'FAILED_PRECONDITION');
      assert.match(e.message, /is cancelled; its ticket\.zip exists once it has succeeded/);
      return true;
    });
    await assert.rejects(grpcClient.downloadTicket(job.id), (e: unknown) => {
      assert.ok(e instanceof GrpcError, String(e));
      assert.equal(e.code, 'FAILED_PRECONDITION');
      return true;
    });
  });

  test('filter: model.onnx has the reported, smaller parameter count', async () => {
    const done = await succeeded({ ...TRAIN, model: modelId, method: 'filter', filterFraction: 0.5, fineTuneIterations: 5 });
    const summary = (done.result as { summary: { onnx: OnnxFileMetrics; filter: { paramsBefore: number; paramsAfter: number } } }).summary;
    const files = await ticketFiles(done.id);
    let params = 0;
    for (const v of floatInitializers(files['model.onnx']!).values()) params += v.length;
    assert.equal(params, summary.filter.paramsAfter, 'the file holds the shrunken model');
    assert.equal(summary.onnx.params, summary.filter.paramsAfter);
    assert.ok(summary.onnx.params < summary.filter.paramsBefore, `${summary.onnx.params} < ${summary.filter.paramsBefore}`);
    const shrunk = await modelFromFiles({ json: files['model.json']!, bin: files['weights.bin']! });
    try {
      const diff = await onnxVsTfjs(shrunk, files['model.onnx']!);
      assert.ok(diff <= 1e-4, `ONNX vs TF.js filter-pruned model: max |diff| ${diff}`);
    } finally {
      shrunk.dispose();
    }
    const zip = unzipSync((await client.downloadTicketZip(done.id)).bytes);
    assert.equal(sha(zip['model.onnx']!), summary.onnx.sha256);
  });

  test('a succeeded job whose result has no archive (stored before there was one): 404 saying so', async () => {
    await rt.ctx.prisma.artifact.deleteMany({ where: { jobId: impJob.id, name: 'ticket.zip' } });
    await assert.rejects(client.downloadTicketZip(impJob.id), (e: unknown) => {
      assert.ok(e instanceof ApiError, String(e));
      assert.equal(e.status, 404);
      assert.equal(e.code, 'NOT_FOUND');
      assert.match(e.message, /has no ticket\.zip/);
      return true;
    });
  });
});

test('every REST response above matched the OpenAPI document', () => {
  assert.deepEqual(responses?.failures, []);
  assert.ok((responses?.checker.checked ?? 0) > 0);
});
