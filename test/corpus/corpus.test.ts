// Runs the bad-input corpus (cases.ts) against real REST and gRPC servers on
// loopback over an embedded Postgres: every case must get its 4xx (or the
// matching gRPC status) with the error table's code, the field and a message
// naming the problem and no server path; afterwards the process still serves
// and /readyz is green. The tally is printed for docs/reliability.md.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { compressionService } from '../../src/api/grpc/proto.js';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { GrpcError, TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { createApiKey, ERRORS, isErrorCode, type ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, type TestDb } from '../integration/fixtures/harness.js';
import { CASES, DATASETS, type Env, type Expect, type RestRequest } from './cases.js';
import { goodModel } from './files.js';

let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let grpcServer: GrpcServerHandle;
let key: string;
let env: Env;
let root: string;
const rawClients: grpc.Client[] = [];
const tally = { rest: 0, grpc: 0, fiveHundreds: 0 };
/** What would have crashed a server process: collected here and asserted empty at the end. */
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);
process.on('uncaughtException', onUncaught);
process.on('unhandledRejection', onUncaught);

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ticketsmith-corpus-data-'));
  for (const [name, files] of Object.entries(DATASETS)) {
    await mkdir(join(root, name), { recursive: true });
    for (const f of files) await writeFile(join(root, name, f.name), f.bytes);
  }
  t = await startTestDb({ TICKETSMITH_ALLOW_FILE_DATASETS: 'true', TICKETSMITH_FILE_ROOTS: root });
  rt = await t.open();
  rest = await startRestServer(rt, { port: 0 });
  grpcServer = await startGrpcServer(rt, { host: '127.0.0.1', port: 0 });
  key = (await createApiKey(rt.ctx, 'corpus')).key;
  const address = `127.0.0.1:${grpcServer.port}`;
  const client = new TicketsmithGrpcClient({ address, apiKey: key, timeoutMs: 60_000 });
  const model = await client.uploadModel({ files: goodModel() }, { name: 'corpus-good' });
  env = {
    ds: (name, options = '') => `${pathToFileURL(join(root, name)).href}${options}`,
    modelId: model.id,
    grpc: client,
    grpcNoKey: new TicketsmithGrpcClient({ address, timeoutMs: 60_000 }),
    grpcRaw(method, bytes) {
      const def = compressionService[method];
      assert.ok(def, `Compression.${method} is in the contract`);
      const raw = new grpc.Client(address, grpc.credentials.createInsecure());
      rawClients.push(raw);
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${key}`);
      return new Promise((resolve, reject) => {
        raw.makeUnaryRequest(def.path, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(bytes), md, { deadline: Date.now() + 30_000 }, (err, res) =>
          err ? reject(err) : resolve(res),
        );
      });
    },
  };
});

after(async () => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
  for (const c of rawClients) c.close();
  env?.grpc.close();
  env?.grpcNoKey.close();
  await grpcServer?.stop();
  await rest?.stop();
  await t?.stop();
  if (root) await rm(root, { recursive: true, force: true });
  console.log(`# corpus: ${tally.rest} REST + ${tally.grpc} gRPC cases, ${tally.fiveHundreds} answered 5xx`);
});

async function send(r: RestRequest) {
  const headers: Record<string, string> = { ...(r.headers ?? {}) };
  const k = r.key === undefined ? key : r.key;
  if (k) headers.authorization = `Bearer ${k}`;
  const res = await fetch(rest.url + r.path, { method: r.method, headers, body: r.body as BodyInit | undefined, signal: AbortSignal.timeout(120_000) });
  const text = await res.text();
  let body: { error?: { code?: string; message?: string; field?: string } } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // checked below: an error must be JSON
  }
  return { status: res.status, text, error: body.error };
}

function checkError(name: string, got: { code?: string; message?: string; field?: string }, expect: Expect): void {
  assert.equal(got.code, expect.code, `${name}: code (${JSON.stringify(got)})`);
  assert.ok(got.message && expect.message.test(got.message), `${name}: message ${JSON.stringify(got.message)} should match ${expect.message}`);
  if (expect.field !== undefined) {
    const ok = typeof expect.field === 'string' ? got.field === expect.field : got.field !== undefined && expect.field.test(got.field);
    assert.ok(ok, `${name}: field ${JSON.stringify(got.field)} should be ${expect.field}`);
  }
  // The answer does not grow with the request (ids, field lists are cut).
  assert.ok(got.message.length <= 1000 && (got.field ?? '').length <= 200, `${name}: a ${got.message.length}-character message`);
  // No server paths: not the temp folder the data and blobs live in, not the dataset root.
  assert.ok(!got.message.includes(t.dir) && !got.message.includes(root), `${name}: the message leaks a server path: ${got.message}`);
}

describe('bad-input corpus', () => {
  test('has at least 100 cases over both doors', () => {
    assert.ok(CASES.length >= 100, `${CASES.length} cases`);
    assert.ok(CASES.some((c) => c.door === 'grpc') && CASES.some((c) => c.door === 'rest'));
    assert.equal(new Set(CASES.map((c) => `${c.door}:${c.name}`)).size, CASES.length, 'case names are unique');
  });

  for (const c of CASES) {
    test(`${c.door}: ${c.name}`, async () => {
      if (c.door === 'rest') {
        tally.rest++;
        const r = await send(c.request(env));
        if (r.status >= 500) tally.fiveHundreds++;
        assert.equal(r.status, c.expect.status, `${c.name}: status (${r.text.slice(0, 300)})`);
        assert.ok(r.error, `${c.name}: the answer is a JSON error (${r.text.slice(0, 200)})`);
        checkError(c.name, r.error, c.expect);
        return;
      }
      tally.grpc++;
      const err = await c.call(env).then(
        () => assert.fail(`${c.name}: the call succeeded`),
        (e: unknown) => e,
      );
      const g = err as Partial<grpc.ServiceError>;
      const status = err instanceof GrpcError ? err.status : g.code;
      assert.ok(isErrorCode(c.expect.code));
      if ([grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.UNAVAILABLE, grpc.status.DATA_LOSS].includes(status as number)) tally.fiveHundreds++;
      assert.equal(status, ERRORS[c.expect.code as keyof typeof ERRORS].grpc, `${c.name}: gRPC status (${(err as Error).message})`);
      const code = err instanceof GrpcError ? err.code : String(g.metadata?.get('ticketsmith-error-code')[0] ?? '');
      const field = err instanceof GrpcError ? err.field : (g.metadata?.get('ticketsmith-error-field')[0] as string | undefined);
      checkError(c.name, { code, message: err instanceof GrpcError ? err.message : g.details, field }, c.expect);
    });
  }

  test('afterwards the service is ready and nothing answered 5xx', async () => {
    const ready = await fetch(`${rest.url}/readyz`);
    assert.equal(ready.status, 200);
    const health = await fetch(`${rest.url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(tally.fiveHundreds, 0);
    assert.deepEqual(uncaught.map(String), [], 'no uncaught exception or unhandled rejection');
    // The doors still do real work: a valid job is accepted.
    const ok = await send({
      method: 'POST',
      path: '/v1/jobs',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'lenet-20-10', dataset: env.ds('good'), rounds: 1, iterations: 20, evalEvery: 10, batchSize: 30, maxTrainExamples: 60, controls: 'none' }),
    });
    assert.equal(ok.status, 201, ok.text);
  });
});
