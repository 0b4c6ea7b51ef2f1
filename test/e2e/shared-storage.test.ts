// Two machines, one database and one bucket (issue 13, item 9): two service
// runtimes configured only by environment (TICKETSMITH_BLOB_STORE=s3 and the
// TICKETSMITH_S3_* settings, credentials in AWS_* for the SDK's default
// chain) over one Postgres and one s3rver bucket. One runtime is a worker
// only; the other serves REST with no worker. A model uploaded through the
// server is read by the worker from the bucket; the worker's real training
// job writes its artifacts there; the server streams every one of them back
// over REST with its sha256. Neither runtime writes a local blob folder.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { TicketsmithClient } from '../../src/client/index.js';
import { createApiKey, type ServiceRuntime } from '../../src/service/index.js';
import { S3BlobStore } from '../../src/store/s3-blobs.js';
import { startTestDb, uploadFiles, type TestDb } from '../integration/fixtures/harness.js';
import { S3_CREDENTIALS, startS3, type TestS3 } from '../integration/fixtures/s3.js';

let s3: TestS3;
let t: TestDb;
let workerRt: ServiceRuntime;
let serverRt: ServiceRuntime;
let rest: RestServer;
let client: TicketsmithClient;
let apiKey: string;
const savedEnv = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

before(async () => {
  s3 = await startS3('ticketsmith-shared');
  // What an operator sets on both machines; the SDK reads the credentials itself.
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
  t = await startTestDb(s3.env('team-a'));
  workerRt = await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.3, progressIntervalMs: 200 } });
  serverRt = await t.open();
  rest = await startRestServer(serverRt, { port: 0, sseHeartbeatMs: 300 });
  apiKey = (await createApiKey(serverRt.ctx, 'acme')).key;
  client = new TicketsmithClient({ baseUrl: rest.url, apiKey });
});

after(async () => {
  await rest?.stop(500);
  await t?.stop();
  await s3?.dispose();
  for (const [k, v] of [['AWS_ACCESS_KEY_ID', savedEnv.id], ['AWS_SECRET_ACCESS_KEY', savedEnv.secret]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

test('a job run by one runtime is downloaded from the other, every artifact through the bucket with its sha256', { timeout: 600_000 }, async () => {
  assert.equal(serverRt.worker, null, 'the server runs no worker');
  assert.ok(workerRt.worker);
  assert.ok(serverRt.ctx.blobs !== workerRt.ctx.blobs, 'two stores, one bucket');
  assert.equal(serverRt.ctx.blobs.location, `s3://ticketsmith-shared/team-a/`);

  const model = tf.sequential({
    layers: [tf.layers.flatten({ inputShape: [28, 28, 1], name: 'flat' }), tf.layers.dense({ units: 16, activation: 'relu', name: 'fc1' }), tf.layers.dense({ units: 10, name: 'out' })],
  });
  const modelId = (await client.uploadModel({ files: await uploadFiles(model) }, { name: 'tiny-mlp' })).id;
  model.dispose();

  const { job } = await client.submitJob({
    model: modelId, dataset: 'builtin:mnist', method: 'imp', rounds: 1, iterations: 4, evalEvery: 4, batchSize: 20, maxTrainExamples: 200, controls: 'none', seed: 3,
  });
  const done = await client.waitForJob(job.id, { signal: AbortSignal.timeout(500_000) });
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));

  const artifacts = await client.listArtifacts(job.id);
  assert.ok(artifacts.some((a) => a.name.startsWith('round_')) && artifacts.some((a) => a.name.startsWith('ticket/')), artifacts.map((a) => a.name).join(', '));
  for (const a of artifacts) {
    const res = await fetch(`${rest.url}/v1/artifacts/${a.id}`, { headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(res.status, 200, a.name);
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.equal(sha(bytes), a.sha256, a.name);
    assert.equal(res.headers.get('x-content-sha256'), a.sha256);
    assert.equal(bytes.byteLength, a.size);
  }

  // The bytes are in the bucket under the prefix, one object per distinct blob, and nowhere on local disk.
  const bucket = new S3BlobStore(s3.settings('team-a/'), { credentials: S3_CREDENTIALS });
  try {
    const stored = new Set<string>();
    for await (const b of bucket.list()) stored.add(b.key);
    for (const a of artifacts) assert.ok(stored.has(a.sha256), `${a.name} is in the bucket`);
  } finally {
    bucket.destroy();
  }
  await assert.rejects(access(t.config.blobDir), { code: 'ENOENT' }, 'no local blob folder');
});
