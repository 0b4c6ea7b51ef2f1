// No server paths in a failed job's error when a builtin dataset is missing
// on the server: builtin:fashion-mnist is read from the operator's folder
// (TICKETSMITH_FASHION_MNIST_DIR, the engine config), and the loader's error
// names the files it tried there. A tenant reads job.error: it names the
// dataset by its reference, never the folder.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getJob, listEvents, submitJob, type JobDto, type ServiceContext } from '../../src/service/index.js';
import { startTestDb, until, type TestDb } from './fixtures/harness.js';

let t: TestDb;
let ctx: ServiceContext;
let folder: string;

before(async () => {
  t = await startTestDb();
  // An operator's folder that holds no Fashion-MNIST files (not named like a job's temp folder,
  // which the worker's last guard would catch by its name alone).
  folder = await mkdtemp(join(tmpdir(), 'operator-datasets-'));
  ctx = (await t.open({ config: { ...t.config, engine: { ...t.config.engine, fashionMnistDir: folder } }, worker: { pollSeconds: 0.5 } })).ctx;
});
after(async () => {
  await t?.stop();
  if (folder) await rm(folder, { recursive: true, force: true });
});

test("a job on a builtin dataset the server lacks fails without naming the server's folder", async () => {
  const { job } = await submitJob(ctx, 'acme', {
    model: 'lenet-300-100', dataset: 'builtin:fashion-mnist', rounds: 1, iterations: 10, evalEvery: 5, batchSize: 30, maxTrainExamples: 120, controls: 'none',
  });
  const done = await until<JobDto>(async () => {
    const j = await getJob(ctx, 'acme', job.id);
    return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
  }, 120_000, 'the job to finish');
  assert.equal(done.status, 'failed');
  assert.equal(done.error?.code, 'INVALID_ARGUMENT', JSON.stringify(done.error));
  const message = done.error?.message ?? '';
  assert.match(message, /builtin:fashion-mnist/);
  assert.match(message, /train-images/, 'it still says which file is missing');
  for (const [what, text] of [['the error', JSON.stringify(done)], ['the events', JSON.stringify(await listEvents(ctx, 'acme', job.id))]] as const) {
    assert.ok(!text.includes(folder), `${what} names the server's folder: ${text}`);
    assert.ok(!text.includes(t.dir), `${what} names the data folder`);
  }
});
