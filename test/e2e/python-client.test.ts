// The Python client (clients/python/ticketsmith_client.py) against a real
// service on 127.0.0.1: the system python3, with no packages, runs
// fixtures/python_client_check.py, which uploads an ONNX model fixture,
// submits (and resubmits with the same Idempotency-Key), watches the events
// (and resumes after one with Last-Event-ID), waits, reads the rounds, pages
// through the jobs, downloads an artifact with its sha256 checked, meets
// NotFound, InvalidArgument (with its field), Unauthenticated and Unavailable,
// cancels a job (FailedPrecondition for a finished one) and checks webhook signatures; this test asserts on the JSON
// it prints. Jobs run on the test engine: training is not the point here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { createApiKey, type ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, type TestDb } from '../integration/fixtures/harness.js';
import { makeTestEngine } from '../integration/fixtures/test-engine.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/python_client_check.py', import.meta.url));
const MODEL = fileURLToPath(new URL('../fixtures/models/mlp-gemm.onnx', import.meta.url));
const hasPython = spawnSync('python3', ['--version']).status === 0;
// Under CI a missing python3 is a failure, not a skip.
const skip = !hasPython && !process.env.CI ? 'python3 is not installed' : false;

let t: TestDb;
let rt: ServiceRuntime;
let server: RestServer;
let key: string;

before(async () => {
  if (skip) return;
  t = await startTestDb();
  rt = await t.open({ worker: { heartbeatSeconds: 0.5, pollSeconds: 0.2, progressIntervalMs: 100 }, runner: makeTestEngine({ stepMs: 5 }) });
  server = await startRestServer(rt, { host: '127.0.0.1', port: 0, sseHeartbeatMs: 300 });
  key = (await createApiKey(rt.ctx, 'py')).key;
});

after(async () => {
  await server?.stop(500);
  await t?.stop();
});

interface ErrorSeen {
  class: string;
  code: string;
  field: string | null;
  status: number;
  message: string;
  is_base: boolean;
}

test('the Python client, end to end with the system python3', { skip, timeout: 300_000 }, async () => {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile('python3', ['-I', SCRIPT, server.url, key, MODEL], { timeout: 240_000, maxBuffer: 1 << 20, env: { PATH: process.env.PATH ?? '' } }, (err, out, errOut) =>
      err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
    );
  });
  const r = JSON.parse(stdout) as Record<string, any>;

  assert.equal(r.model.name, 'py-mlp');
  assert.equal(r.model.format, 'onnx');
  assert.equal(r.model.fetched, r.model.id);
  assert.deepEqual({ created: r.submit.created, again_same: r.submit.again_same, again_created: r.submit.again_created }, { created: true, again_same: true, again_created: false });

  const kinds = r.events.kinds as string[];
  assert.equal(kinds[0], 'queued');
  assert.equal(kinds.at(-1), 'finished');
  assert.ok(kinds.includes('round'), kinds.join(','));
  assert.ok(r.events.ids_increase);
  assert.equal(r.resumed_ids, true, 'Last-Event-ID resumes after the event named');
  assert.equal(r.final_status, 'succeeded');
  assert.deepEqual(r.rounds, [0, 1, 2]);

  // Four jobs of this tenant (the long one comes later), two per page.
  assert.deepEqual(r.pages, [2, 2]);
  assert.equal(new Set(r.listed_ids).size, 4);
  assert.deepEqual(r.iter_ids, r.listed_ids);

  assert.equal(r.download.sha256, r.download.listed);
  assert.ok(r.download.file_equal && r.download.size > 0);
  assert.deepEqual(r.data_loss, { code: 'DATA_LOSS', no_file_left: true });

  const e = r.errors as Record<string, ErrorSeen>;
  assert.deepEqual([e.not_found?.class, e.not_found?.code, e.not_found?.status, e.not_found?.is_base], ['NotFound', 'NOT_FOUND', 404, true], JSON.stringify(e));
  assert.deepEqual([e.invalid?.class, e.invalid?.code, e.invalid?.status, e.invalid?.field], ['InvalidArgument', 'INVALID_ARGUMENT', 400, 'rounds'], JSON.stringify(e));
  assert.deepEqual([e.unauthenticated?.class, e.unauthenticated?.status], ['Unauthenticated', 401], JSON.stringify(e));
  assert.deepEqual([e.unavailable?.class, e.unavailable?.code], ['Unavailable', 'UNAVAILABLE'], JSON.stringify(e));

  assert.ok(['queued', 'running', 'cancelled'].includes(r.cancel.answer), r.cancel.answer);
  assert.equal(r.cancel.final, 'cancelled');
  assert.equal(r.cancel.again, 'cancelled', 'cancelling a cancelled job again answers it as it is');
  assert.deepEqual([r.cancel.finished_one?.class, r.cancel.finished_one?.code, r.cancel.finished_one?.status], ['FailedPrecondition', 'FAILED_PRECONDITION', 409], JSON.stringify(r.cancel));

  assert.deepEqual(r.webhook, { valid: true, lowercase_headers: true, tampered: false, wrong_secret: false, too_old: false, missing: false });
});
