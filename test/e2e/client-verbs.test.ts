// The pipeline verbs against a real server: `submit --watch` runs a tiny job
// on the real engine to the end, `watch` replays it, `download` saves the
// ticket with every sha256 checked (and it loads in TF.js); usage mistakes
// exit 2, API and connection failures exit 1 with one clear line.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { downloadCommand, roundRows, submitCommand, watchCommand, type VerbIo } from '../../src/cli/client-verbs.js';
import { roundsTable } from '../../src/cli/rounds-table.js';
import { loadModelFrom } from '../../src/engine/models/load.js';
import { createApiKey, listArtifacts } from '../../src/service/index.js';
import type { ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, type TestDb } from '../integration/fixtures/harness.js';
import { checkResponsesOf } from '../fixtures/openapi-check.js';

/** Every REST response this file sees is checked against /openapi.json (test/fixtures/openapi-check.ts). */
let responses: Awaited<ReturnType<typeof checkResponsesOf>> | undefined;
let t: TestDb;
let rt: ServiceRuntime;
let server: RestServer;
let key: string;

function io(): VerbIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (s) => stdout.push(s), err: (s) => stderr.push(s) };
}

before(async () => {
  t = await startTestDb();
  rt = await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, progressIntervalMs: 200 } });
  server = await startRestServer(rt, { port: 0 });
  responses = await checkResponsesOf(server.url);
  key = (await createApiKey(rt.ctx, 'pipeline')).key;
});

after(async () => {
  responses?.restore();
  await server?.stop(500);
  await t?.stop();
});

test('submit --watch, watch and download: a job from the command line to a ticket on disk', async () => {
  const conn = ['--url', server.url, '--key', key];
  const s = io();
  const code = await submitCommand(
    [...conn, '--model', 'lenet-20-10', '--dataset', 'builtin:mnist', '--rounds', '1', '--iterations', '20', '--eval-every', '10', '--batch-size', '30', '--max-train-examples', '300', '--controls', 'none', '--idempotency-key', 'ci-1', '--watch'],
    s,
  );
  assert.equal(code, 0, s.stderr.join(''));
  const jobId = s.stdout[0]!.trim();
  assert.match(jobId, /^[0-9a-f-]{36}$/);
  const log = s.stderr.join('');
  assert.match(log, /round 1 committed: 80\.\d\d% weights/);
  assert.match(log, new RegExp(`job ${jobId} succeeded`));
  assert.match(log, /round\s+weights\s+test acc/);

  // The same idempotency key gives back the same job, without queuing another.
  const again = io();
  assert.equal(await submitCommand([...conn, '--model', 'lenet-20-10', '--dataset', 'builtin:mnist', '--rounds', '1', '--iterations', '20', '--eval-every', '10', '--batch-size', '30', '--max-train-examples', '300', '--controls', 'none', '--idempotency-key', 'ci-1'], again), 0);
  assert.equal(again.stdout[0]!.trim(), jobId);
  assert.match(again.stderr.join(''), /already submitted/);

  const w = io();
  assert.equal(await watchCommand([jobId, ...conn, '--json'], w), 0);
  const kinds = w.stdout.map((l) => (JSON.parse(l) as { kind: string }).kind);
  assert.equal(kinds[0], 'queued');
  assert.equal(kinds.at(-1), 'finished');

  const dir = await mkdtemp(join(t.dir, 'ticket-'));
  const d = io();
  assert.equal(await downloadCommand([jobId, ...conn, '--out', dir], d), 0, d.stderr.join(''));
  const files = (await readdir(dir)).sort();
  assert.deepEqual(files, ['compressed.bin', 'mask.json', 'model.json', 'model.onnx', 'weights.bin']);
  const stored = await listArtifacts(rt.ctx, 'pipeline', { jobId, kind: 'ticket' });
  for (const a of stored) {
    const bytes = await readFile(join(dir, a.name.replace(/^ticket\//, '')));
    assert.equal(createHash('sha256').update(bytes).digest('hex'), a.sha256, a.name);
  }
  const model = await loadModelFrom(dir);
  assert.deepEqual(model.inputs[0]!.shape, [null, 28, 28, 1]);
  model.dispose();

  // One artifact by id lands under its own name.
  const one = io();
  const weights = stored.find((a) => a.name === 'ticket/weights.bin')!;
  const single = await mkdtemp(join(t.dir, 'one-'));
  assert.equal(await downloadCommand(['--artifact', weights.id, '--out', single, ...conn], one), 0, one.stderr.join(''));
  assert.deepEqual(await readdir(single), ['weights.bin']);
});

test('usage mistakes exit 2; API and connection failures exit 1 with the reason', async () => {
  const conn = ['--url', server.url, '--key', key];
  const a = io();
  assert.equal(await watchCommand([...conn], a), 2);
  assert.match(a.stderr.join(''), /exactly one JOB_ID/);
  const b = io();
  assert.equal(await submitCommand([...conn, '--bogus', '1'], b), 2);
  assert.match(b.stderr.join(''), /unknown flag --bogus/);
  const c = io();
  assert.equal(await submitCommand([...conn, '--rounds', '-1'], c), 1);
  assert.match(c.stderr.join(''), /INVALID_ARGUMENT \(rounds\)/);
  const d = io();
  assert.equal(await watchCommand(['6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11', ...conn], d), 1);
  assert.match(d.stderr.join(''), /NOT_FOUND/);
  const e = io();
  assert.equal(await submitCommand(['--url', server.url, '--key', 'tsk_wrong'], e), 1);
  assert.match(e.stderr.join(''), /UNAUTHENTICATED/);
  const f = io();
  const closed = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  assert.equal(await submitCommand(['--url', `http://127.0.0.1:${closed}`, '--key', key], f), 1);
  assert.match(f.stderr.join(''), /cannot reach the server/);
  const saved = process.env.TICKETSMITH_API_KEY;
  delete process.env.TICKETSMITH_API_KEY;
  try {
    const g = io();
    assert.equal(await submitCommand(['--url', server.url], g), 2);
    assert.match(g.stderr.join(''), /API key is needed/);
  } finally {
    if (saved !== undefined) process.env.TICKETSMITH_API_KEY = saved;
  }
});

test('roundsTable aligns one row per round', () => {
  const round = { index: 1, density: 0.8, testAccuracy: 0.9123, earlyStopIteration: 40, earlyStopTestAccuracy: 0.9, examplesPerSecond: 1234.4, compressedBytes: 2048, controls: { reinit: { finalTestAccuracy: 0.5 } } };
  const table = roundsTable(roundRows([round as unknown as Parameters<typeof roundRows>[0][number]])).split('\n');
  assert.equal(table.length, 3);
  assert.match(table[2]!, /^\s+1\s+80\.00%\s+91\.23%\s+40\s+90\.00%\s+50\.00%\s+-\s+1234\s+2 KiB$/);
  assert.equal(new Set(table.map((l) => l.length)).size, 1);
});

test('every REST response above matched the OpenAPI document', () => {
  assert.deepEqual(responses?.failures, []);
  assert.ok((responses?.checker.checked ?? 0) > 0);
});
