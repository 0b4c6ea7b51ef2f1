// The real `bin/ticketsmith serve` in its own process (embedded PostgreSQL in
// a temp dir, REST, gRPC; --no-worker), as an operator runs it:
// a fresh process accepts a model upload as its very first request (no job
// has initialised TF.js yet); the cut-off multipart upload that used to kill
// the process is answered 400 and the process keeps serving; and SIGTERM lets
// a slow upload in flight finish, ends an open SSE stream, stops Postgres and
// exits 0 within the bound.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { embeddedBinariesDir, openTraversal } from '../../src/runtime/postgres.js';
import { uploadFiles } from '../integration/fixtures/harness.js';

const BIN = fileURLToPath(new URL('../../bin/ticketsmith', import.meta.url));
const GRACE_SECONDS = 20;

let dir: string;
let env: NodeJS.ProcessEnv;
let serve: ChildProcess;
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
let restUrl: string;
let key: string;
let stderr = '';
let modelFiles: { name: string; bytes: Uint8Array<ArrayBuffer> }[];

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    p.on('exit', (code) => resolve({ code, out, err }));
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ticketsmith-serve-'));
  await chmod(dir, 0o755);
  await openTraversal([embeddedBinariesDir()]);
  env = { ...process.env, TICKETSMITH_DATA_DIR: dir, TICKETSMITH_SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS), LOG_LEVEL: 'warn' };
  delete env.NODE_TEST_CONTEXT;
  delete env.DATABASE_URL;
  // No worker: a job stays queued, so SSE watches a job that does not finish by itself.
  // Its own process group: bin/ticketsmith runs tsx, which runs node; a kill must reach all of them.
  serve = spawn(BIN, ['serve', '--port', '0', '--grpc-port', '0', '--no-worker'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  exited = new Promise((resolve) => serve.once('exit', (code, signal) => resolve({ code, signal })));
  serve.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  restUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    serve.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /^REST\s+(http:\/\/\S+)/m.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then((e) => reject(new Error(`serve exited (${e.code ?? e.signal}) before listening: ${stderr.slice(-2000)}`)));
  });
  const created = await run(['keys', 'create', '--tenant', 'acme']);
  assert.equal(created.code, 0, created.err);
  key = created.out.trim();
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 4, inputShape: [8], activation: 'relu' }), tf.layers.dense({ units: 2, activation: 'softmax' })] });
  modelFiles = await uploadFiles(model);
  model.dispose();
});

after(async () => {
  if (serve?.pid !== undefined) {
    // Whatever a failed test left running (tsx's node child included) goes with the group, so no pipe keeps this file alive.
    try {
      process.kill(-serve.pid, 'SIGKILL');
    } catch {
      // the group is gone already
    }
    if (serve.exitCode === null && serve.signalCode === null) await exited;
    serve.stdout?.destroy();
    serve.stderr?.destroy();
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

function multipartBody(files: { name: string; bytes: Uint8Array }[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    parts.push(Buffer.from(`--XYZ\r\nContent-Disposition: form-data; name="files"; filename="${f.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`), Buffer.from(f.bytes), Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('--XYZ--\r\n'));
  return Buffer.concat(parts);
}

/** A request on a raw socket: `pieces` are written one after another, `between` runs after the first. */
function rawPost(path: string, contentType: string, pieces: Buffer[], between?: () => Promise<void>): Promise<{ status: number | null; text: string }> {
  const { port } = new URL(restUrl);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? NaN) || null, text }));
    const length = pieces.reduce((n, p) => n + p.length, 0);
    socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\nContent-Type: ${contentType}\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`);
    void (async () => {
      socket.write(pieces[0]!);
      await between?.();
      for (const p of pieces.slice(1)) socket.write(p);
    })();
  });
}

test('a freshly started server accepts a model upload as its first request', async () => {
  const form = new FormData();
  for (const f of modelFiles) form.append('files', new Blob([f.bytes]), f.name);
  const res = await fetch(`${restUrl}/v1/models`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  assert.ok(!/not yet been initialized/.test(text));
});

test('the cut-off multipart upload is answered 400 and the process keeps serving', async () => {
  const answer = await rawPost('/v1/models', 'multipart/form-data; boundary=XYZ', [Buffer.from('--XYZ\r\nContent-Disposition: form-data; name="files"; filename="a.bin"\r\n\r\nxx')]);
  assert.equal(answer.status, 400, answer.text);
  const health = await fetch(`${restUrl}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(serve.exitCode, null, 'still running');
  const metrics = await (await fetch(`${restUrl}/metrics`)).text();
  assert.match(metrics, /ticketsmith_uncaught_errors_total\{kind="exception"\} 0/, 'handled where it happened, not by the last line of defence');
});

test('SIGTERM: a slow upload in flight completes, an SSE stream ends, Postgres stops, exit 0 in bounded time', async () => {
  const pidFile = join(dir, 'postgres', 'postmaster.pid');
  assert.ok(existsSync(pidFile), 'the embedded Postgres runs');
  // An open SSE watcher on a queued job that will not finish by itself. Its submit is this process's first
  // zoo-model check (skipLayers makes the door build the model): no job has chosen a TF.js backend yet.
  const submit = await fetch(`${restUrl}/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'lenet-20-10', dataset: 'builtin:mnist', rounds: 50, iterations: 100000, controls: 'none', skipLayers: ['fc1'] }),
  });
  assert.equal(submit.status, 201);
  const job = (await submit.json()) as { id: string };
  const sse = await fetch(`${restUrl}/v1/jobs/${job.id}/events`, { headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' } });
  assert.equal(sse.status, 200);
  const sseText = sse.text();

  const body = multipartBody(modelFiles);
  const half = Math.floor(body.length / 2);
  let signalledAt = 0;
  const upload = rawPost('/v1/models', 'multipart/form-data; boundary=XYZ', [body.subarray(0, half), body.subarray(half)], async () => {
    await new Promise((r) => setTimeout(r, 300));
    serve.kill('SIGTERM');
    signalledAt = Date.now();
    // The rest of the body arrives while the server is already shutting down.
    await new Promise((r) => setTimeout(r, 1_000));
  });
  const answer = await upload;
  assert.equal(answer.status, 201, `${answer.text.slice(0, 500)}\n${stderr.slice(-3000)}`);
  // The SSE stream ended (cleanly: the body is complete, not an error).
  const events = await sseText;
  assert.match(events, /shutting down/);
  const { code, signal } = await exited;
  assert.equal(signal, null);
  assert.equal(code, 0, stderr.slice(-3000));
  assert.ok(Date.now() - signalledAt < (GRACE_SECONDS + 45) * 1000, 'exited within the grace period and the stop steps');
  assert.ok(!existsSync(pidFile), 'the embedded Postgres was stopped');
});
