// Submit-time validation through both doors, on real REST and gRPC servers on
// loopback over the embedded Postgres: every spec that could only fail later
// on a worker (or be silently ignored) is a 400 / INVALID_ARGUMENT naming its
// field, and queues nothing; oversized model.json uploads are refused naming
// the layer; unknown body fields and bad query parameters are 400s naming them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { startRestServer, type RestServer } from '../../src/api/rest/server.js';
import { GrpcError, TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { createApiKey, type ServiceRuntime } from '../../src/service/index.js';
import { resolveSpec, runName } from '../../src/engine/spec.js';
import { startTestDb, uploadFiles, type TestDb } from './fixtures/harness.js';

let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let grpcServer: GrpcServerHandle;
let key: string;
let client: TicketsmithGrpcClient;
let denseModelId: string;

type ErrorBody = { error?: { code: string; message: string; field?: string } };

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: ErrorBody & Record<string, unknown> }> {
  const res = await fetch(rest.url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  return { status: res.status, json: (await res.json()) as ErrorBody & Record<string, unknown> };
}

function assert400(r: { status: number; json: ErrorBody }, field: string, message?: RegExp): void {
  assert.equal(r.status, 400, JSON.stringify(r.json));
  assert.equal(r.json.error?.code, 'INVALID_ARGUMENT', JSON.stringify(r.json));
  assert.equal(r.json.error?.field, field, JSON.stringify(r.json));
  if (message) assert.match(r.json.error!.message, message);
}

async function grpcRefused(promise: Promise<unknown>, field: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof GrpcError, String(e));
    assert.equal(e.status, grpc.status.INVALID_ARGUMENT, e.message);
    assert.equal(e.field, field, e.message);
    return true;
  });
}

const tiny = { dataset: 'builtin:mnist', rounds: 1, iterations: 20, evalEvery: 10, batchSize: 30, maxTrainExamples: 300, controls: 'none' } as const;

before(async () => {
  t = await startTestDb();
  rt = await t.open();
  rest = await startRestServer(rt, { port: 0 });
  grpcServer = await startGrpcServer(rt, { port: 0 });
  key = (await createApiKey(rt.ctx, 'acme')).key;
  client = new TicketsmithGrpcClient({ address: `127.0.0.1:${grpcServer.port}`, apiKey: key });
  // An uploaded dense-only model: its stored architecture is what the checks read.
  const model = tf.sequential({ name: 'mlp' });
  model.add(tf.layers.flatten({ inputShape: [28, 28, 1], name: 'flat' }));
  model.add(tf.layers.dense({ units: 8, activation: 'relu', name: 'hidden' }));
  model.add(tf.layers.dense({ units: 10, name: 'logits' }));
  const uploaded = await client.uploadModel({ files: await uploadFiles(model) }, { name: 'mlp' });
  model.dispose();
  denseModelId = uploaded.id;
});

after(async () => {
  client?.close();
  await grpcServer?.stop();
  await rest?.stop(500);
  await t?.stop();
});

/** Spec -> field it must be refused for; model defaults to lenet-300-100. */
const CASES: Array<[string, Record<string, unknown>, string]> = [
  ['an unknown skip layer', { skipLayers: ['fc1', 'nope'] }, 'skipLayers[1]'],
  ['a skip layer without prunable weights', { skipLayers: ['flatten'] }, 'skipLayers[0]'],
  ['every prunable layer skipped', { skipLayers: ['fc1', 'fc2', 'out'] }, 'skipLayers'],
  ['an unknown filterFractions layer', { model: 'conv-2', method: 'filter', filterFractions: { conv1: 0.5, ghost: 0.5 } }, 'filterFractions.ghost'],
  ['filterFractions on the output layer', { model: 'conv-2', method: 'filter', filterFractions: { out: 0.5 } }, 'filterFractions.out'],
  ['filter pruning on a model without conv layers', { method: 'filter', filterFraction: 0.5 }, 'method'],
  ['maxTrainExamples too small to split', { maxTrainExamples: 1, batchSize: 1 }, 'maxTrainExamples'],
  ['batchSize above the training examples left', { maxTrainExamples: 20, batchSize: 30 }, 'batchSize'],
  ['rewindIteration without rewind iteration', { rewindIteration: 5 }, 'rewindIteration'],
  ['rewindFraction without rewind fraction', { rewind: 'iteration', rewindIteration: 5, rewindFraction: 0.1 }, 'rewindFraction'],
  ['targetDensity with zero rounds', { rounds: 0, targetDensity: 0.5 }, 'targetDensity'],
  ['a filter-only field on an imp job', { filterFraction: 0.5 }, 'filterFraction'],
  ['a lenet width over the model caps', { model: 'lenet-40000000' }, 'model'],
  ['validationFraction above its bound', { validationFraction: 0.9 }, 'validationFraction'],
  ['validationFraction below its bound', { validationFraction: 0 }, 'validationFraction'],
  ['batchSize above what validationFraction leaves', { maxTrainExamples: 20, batchSize: 15, validationFraction: 0.5 }, 'batchSize'],
  // JSON.parse keeps `__proto__` as an own key; parsing into a plain object would drop it and queue `{}`.
  ['a __proto__ key in filterFractions', { model: 'conv-2', method: 'filter', filterFractions: JSON.parse('{"__proto__":0.5}') as object }, 'filterFractions'],
  ['a __proto__ key beside a real layer', { model: 'conv-2', method: 'filter', filterFractions: JSON.parse('{"conv1":0.5,"__proto__":0.5}') as object }, 'filterFractions'],
  ['filterFractions that remove nothing', { model: 'conv-2', method: 'filter', filterFractions: { conv1: 0, conv2: 0 } }, 'filterFractions'],
  ['warmupIterations above iterations', { warmupIterations: 1_000_000 }, 'warmupIterations'],
  ['warmupIterations above the model default iterations', { iterations: undefined, warmupIterations: 60_000 }, 'warmupIterations'],
  ['a control kind listed twice', { controlKinds: ['reinit', 'reinit'] }, 'controlKinds'],
];

describe('submit refuses what can only fail later, over REST and gRPC', () => {
  for (const [what, extra, field] of CASES) {
    test(`${what}: 400 naming ${field}`, async () => {
      const spec = { model: 'lenet-300-100', ...tiny, ...extra };
      const before = await rt.ctx.prisma.job.count();
      assert400(await call('POST', '/v1/jobs', spec), field);
      // The nested form names the field inside `spec`.
      const { model, dataset, ...rest } = spec;
      assert400(await call('POST', '/v1/jobs', { model, dataset, spec: rest }), field === 'model' ? 'model' : `spec.${field}`);
      // The gRPC client sends every field in the RunSpec message, model included.
      await grpcRefused(client.submitJob(spec as Parameters<TicketsmithGrpcClient['submitJob']>[0]), `spec.${field}`);
      assert.equal(await rt.ctx.prisma.job.count(), before, 'nothing queued');
    });
  }

  test('an uploaded model is judged by its stored architecture', async () => {
    const spec = { model: `model:${denseModelId}`, ...tiny };
    assert400(await call('POST', '/v1/jobs', { ...spec, skipLayers: ['conv1'] }), 'skipLayers[0]', /no layer 'conv1'/);
    assert400(await call('POST', '/v1/jobs', { ...spec, method: 'filter', filterFraction: 0.5 }), 'method', /no convolution layers/);
    await grpcRefused(client.submitJob({ ...spec, skipLayers: ['conv1'] }), 'spec.skipLayers[0]');
    assert400(await call('POST', '/v1/jobs', { ...spec, method: 'filter', filterFractions: { logits: 0.5 } }), 'filterFractions.logits', /output/);
    // What is valid still goes through: a real layer skipped, units of a named hidden Dense removed.
    const ok = await call('POST', '/v1/jobs', { ...spec, skipLayers: ['logits'] });
    assert.equal(ok.status, 201, JSON.stringify(ok.json));
    const filter = await call('POST', '/v1/jobs', { ...spec, method: 'filter', filterFractions: { hidden: 0.5 } });
    assert.equal(filter.status, 201, JSON.stringify(filter.json));
  });

  test('a dataset that does not fit the model is named as the request names it (dataset, or spec.dataset inside a gRPC spec)', async () => {
    const model = tf.sequential({ name: 'three' });
    model.add(tf.layers.flatten({ inputShape: [28, 28, 1], name: 'flat' }));
    model.add(tf.layers.dense({ units: 3, name: 'logits' }));
    const three = await client.uploadModel({ files: await uploadFiles(model) }, { name: 'three' });
    model.dispose();
    const spec = { ...tiny, model: `model:${three.id}` };
    assert400(await call('POST', '/v1/jobs', spec), 'dataset', /^dataset: .*outputs 3 classes/);
    const { model: m, dataset, ...rest } = spec;
    assert400(await call('POST', '/v1/jobs', { model: m, dataset, spec: rest }), 'dataset', /^dataset: /);
    await grpcRefused(client.submitJob(spec), 'spec.dataset');
  });

  test('a valid validationFraction crosses both doors into the job and its run name', async () => {
    const spec = { model: 'lenet-300-100', ...tiny, seed: 7, validationFraction: 0.2 };
    const { seed: _s, ...sameAsDefault } = { ...spec, validationFraction: 0.1 };
    const r = await call('POST', '/v1/jobs', spec);
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.equal((r.json.spec as { validationFraction: number }).validationFraction, 0.2);
    assert.equal(r.json.runName, runName(resolveSpec(spec)));
    assert.notEqual(r.json.runName, runName(resolveSpec({ ...spec, validationFraction: 0.1 })));
    const g = await client.submitJob({ ...spec, seed: 8 });
    assert.equal(g.job.spec.validationFraction, 0.2);
    assert.equal(g.job.runName, runName(resolveSpec({ ...spec, seed: 8 })));
    // At its default the field leaves the name as it was before it existed (computed then).
    const d = await client.submitJob(sameAsDefault);
    assert.equal(d.job.runName, 'imp_a47926c017d5');
  });

  test('an empty filterFractions is refused over REST (over gRPC an empty map is an unset one)', async () => {
    const spec = { model: 'conv-2', ...tiny, method: 'filter', filterFractions: {} };
    assert400(await call('POST', '/v1/jobs', spec), 'filterFractions', /at least one layer/);
    await grpcRefused(client.submitJob(spec as Parameters<TicketsmithGrpcClient['submitJob']>[0]), 'spec.filterFraction');
    // Zero for some layers is still allowed beside one that is pruned; warm-up up to the training length too.
    const ok = await call('POST', '/v1/jobs', { ...spec, filterFractions: { conv1: 0, conv2: 0.5 }, warmupIterations: tiny.iterations });
    assert.equal(ok.status, 201, JSON.stringify(ok.json));
  });

  test('valid zoo specs with layer names are accepted', async () => {
    const ok = await call('POST', '/v1/jobs', { model: 'lenet-300-100', ...tiny, skipLayers: ['out'] });
    assert.equal(ok.status, 201, JSON.stringify(ok.json));
    const filter = await client.submitJob({ model: 'conv-2', ...tiny, method: 'filter', filterFractions: { conv1: 0.5 } });
    assert.equal(filter.created, true);
  });
});

describe('oversized model.json is refused at upload, naming the layer', () => {
  const huge = {
    modelTopology: {
      class_name: 'Sequential',
      config: {
        name: 'bomb',
        layers: [
          { class_name: 'Dense', config: { name: 'fc1', units: 784, batch_input_shape: [null, 784] } },
          { class_name: 'Dense', config: { name: 'huge', units: 20_000_000 } },
        ],
      },
    },
    format: 'layers-model',
    weightsManifest: [{ paths: ['weights.bin'], weights: [] }],
  };
  const files = [
    { name: 'model.json', bytes: new TextEncoder().encode(JSON.stringify(huge)) },
    { name: 'weights.bin', bytes: new Uint8Array(0) },
  ];

  test('over REST (multipart)', async () => {
    const form = new FormData();
    for (const f of files) form.append('files', new Blob([f.bytes]), f.name);
    const res = await fetch(`${rest.url}/v1/models`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form, signal: AbortSignal.timeout(60_000) });
    const json = (await res.json()) as ErrorBody;
    assert400({ status: res.status, json }, 'model.json', /layer 'huge' \(Dense\): 20,000,000 units x 784 inputs: 15,700,000,000 parameters/);
  });

  test('over gRPC (client stream)', async () => {
    await grpcRefused(client.uploadModel({ files }), 'model.json');
    assert.equal(await rt.ctx.prisma.model.count({ where: { name: 'bomb' } }), 0);
  });
});

describe('strict bodies and query parameters', () => {
  test('an unknown field in a dataset registration is 400 naming it', async () => {
    assert400(await call('POST', '/v1/datasets', { reference: 'builtin:mnist', shapes: {} }), 'shapes');
    assert.equal((await call('POST', '/v1/datasets', { reference: 'builtin:mnist' })).status, 201);
  });

  test('an unknown field in a job submission is 400 naming it (flat and nested)', async () => {
    assert400(await call('POST', '/v1/jobs', { model: 'lenet-300-100', ...tiny, roundz: 3 }), 'roundz');
    assert400(await call('POST', '/v1/jobs', { model: 'lenet-300-100', dataset: 'builtin:mnist', spec: { roundz: 3 } }), 'spec.roundz');
  });

  test('a path id that is not a UUID is 400 naming it on every route; a well-formed unknown id stays 404', async () => {
    const unknown = '6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11';
    const routes: Array<[string, string]> = [
      ['GET', '/v1/jobs/abc'],
      ['DELETE', '/v1/jobs/abc'],
      ['GET', '/v1/jobs/abc/rounds'],
      ['GET', '/v1/jobs/abc/artifacts'],
      ['GET', '/v1/jobs/abc/events'],
      ['GET', '/v1/jobs/abc/plots/accuracy'],
      ['POST', '/v1/jobs/abc/cancel'],
      ['GET', '/v1/jobs/abc/ticket.zip'],
      ['GET', '/v1/artifacts/abc'],
      ['GET', '/v1/models/abc'],
      ['DELETE', '/v1/models/abc'],
      ['GET', '/v1/datasets/abc'],
      ['DELETE', '/v1/datasets/abc'],
      ['DELETE', '/v1/webhooks/abc'],
    ];
    for (const [method, path] of routes) {
      assert400(await call(method, path), 'id', /^id: not an id \(a UUID\)/);
      const known = await call(method, path.replace('abc', unknown));
      assert.equal(known.status, 404, `${method} ${path}: ${JSON.stringify(known.json)}`);
    }
    await grpcRefused(client.getJob('abc'), 'jobId');
    await grpcRefused(client.cancelJob('abc'), 'jobId');
    await grpcRefused(client.deleteJob('abc'), 'jobId');
    await grpcRefused(client.listRounds('abc'), 'jobId');
    await grpcRefused(client.getModel('abc'), 'modelId');
    await grpcRefused(client.deleteModel('abc'), 'modelId');
    await grpcRefused(client.deleteDataset('abc'), 'datasetId');
    await grpcRefused(client.listArtifacts({ jobId: 'abc' }), 'jobId');
    await grpcRefused(client.listArtifacts({ modelId: 'abc' }), 'modelId');
    await grpcRefused(client.downloadTicket('abc'), 'jobId');
    await grpcRefused(client.download('abc'), 'artifactId');
    await assert.rejects(client.getJob(unknown), (e: unknown) => e instanceof GrpcError && e.status === grpc.status.NOT_FOUND);
  });

  test('a body on cancel is refused naming its field', async () => {
    const { json } = await call('POST', '/v1/jobs', { model: 'lenet-300-100', ...tiny });
    assert400(await call('POST', `/v1/jobs/${String(json.id)}/cancel`, { force: true }), 'force');
  });

  test('query parameters: enums, uuids, limits, unknown names', async () => {
    assert400(await call('GET', '/v1/artifacts?kind=bogus'), 'kind', /one of round, ticket, result/);
    assert400(await call('GET', '/v1/artifacts?jobId=not-a-uuid'), 'jobId');
    assert400(await call('GET', '/v1/artifacts?colour=red'), 'colour', /unknown query parameter/);
    assert400(await call('GET', '/v1/jobs?status=done'), 'status');
    assert400(await call('GET', '/v1/jobs?limit=0'), 'limit');
    assert400(await call('GET', '/v1/jobs?limit=1e2'), 'limit');
    assert400(await call('GET', '/v1/jobs?cursor=garbage'), 'cursor');
    assert400(await call('GET', '/v1/jobs?stauts=running'), 'stauts');
    assert400(await call('GET', '/v1/jobs?status=queued&status=running'), 'status');
    assert400(await call('GET', '/v1/models?page=2'), 'page');
    assert400(await call('GET', '/v1/datasets?x=1'), 'x');
    const { json } = await call('GET', '/v1/jobs?limit=1');
    const id = (json.items as { id: string }[])[0]!.id;
    assert400(await call('GET', `/v1/jobs/${id}/artifacts?kind=weights`), 'kind');
    assert400(await call('GET', `/v1/jobs/${id}/rounds?all=1`), 'all');
    assert.equal((await call('GET', `/v1/jobs/${id}/artifacts?kind=ticket`)).status, 200);
    assert.equal((await call('GET', '/v1/artifacts?kind=model-file')).status, 200);
    await grpcRefused(client.listArtifacts({ kind: 'bogus' }), 'kind');
  });
});
