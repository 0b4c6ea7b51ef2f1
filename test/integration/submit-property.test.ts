// The job-submit door under arbitrary input: fast-check sends JSON bodies
// (any JSON value, and run-spec-shaped objects with arbitrary values for the
// real fields) to POST /v1/jobs on loopback; every answer is 201 (queued) or
// a 4xx naming a `field`, never a 5xx or a dropped connection. Also the two
// empty requests of issue 9: REST `{}` and an empty gRPC SubmitJob.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { GrpcError, TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { RunSpecSchema } from '../../src/engine/spec.js';
import { createApiKey } from '../../src/service/index.js';
import { startTestDb, type TestDb } from './fixtures/harness.js';

let t: TestDb;
let rest: RestServer;
let rpc: GrpcServerHandle;
let key: string;

before(async () => {
  t = await startTestDb();
  // Room for every generated job that is valid: this test is about answers, not quotas.
  const rt = await t.open({ config: { ...t.config, limits: { ...t.config.limits, tenantMaxQueued: 100_000 } } });
  rest = await startRestServer(rt, { port: 0, dashboard: false });
  rpc = await startGrpcServer(rt, { host: '127.0.0.1', port: 0 });
  key = (await createApiKey(rt.ctx, 'fuzz')).key;
});
after(async () => {
  await rest?.stop();
  await rpc?.stop();
  await t?.stop();
});

async function post(body: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${rest.url}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // judged below: a 4xx must carry a JSON error
  }
  return { status: res.status, json };
}

const SPEC_KEYS = Object.keys(RunSpecSchema.shape);

/** Values that reach the interesting checks: bounds, types, enums, zoo names, references (only loopback or none). */
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, 1, -1, 0.5, 100, 101, 1e6, 2 ** 53, 1e12, 4096, 60),
  fc.constantFrom('adam', 'one-shot', 'iterative', 'global', 'filter', 'imp', 'all', 'none', 'last', 'reinit', 'l1', 'fraction'),
  fc.array(fc.constantFrom('reinit', 'shuffle', 'fc1', 'out', ''), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.double(), { maxKeys: 3 }),
);
const model = fc.oneof(
  fc.constantFrom('lenet-20-10', 'lenet-300-100', 'lenet-99999999-99999999', 'resnet-20', 'resnet-21', 'conv-2', 'vgg-11', '/etc/passwd', 'model:6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11', ''),
  fc.string({ maxLength: 20 }).map((s) => `x${s}`),
);
const dataset = fc.oneof(
  fc.constantFrom('builtin:mnist', 'builtin:fashion-mnist', 'builtin:nope', 'file:///etc', 'http://127.0.0.1:9/x.npz', 'dataset:6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11', ''),
  fc.string({ maxLength: 20 }).map((s) => `x${s}`),
);
const specLike = fc
  .record({ model, dataset, rest: fc.dictionary(fc.constantFrom(...SPEC_KEYS, 'bogus'), value, { maxKeys: 4 }) }, { requiredKeys: ['rest'] })
  .map(({ rest: fields, ...refs }) => ({ ...fields, ...refs }));
const body = fc.oneof(
  { arbitrary: specLike, weight: 4 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 1 },
  { arbitrary: fc.record({ model, dataset, spec: fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.dictionary(fc.constantFrom(...SPEC_KEYS), value, { maxKeys: 3 })) }), weight: 1 },
);

describe('POST /v1/jobs under arbitrary bodies', () => {
  test('201, or a 4xx naming a field; never a 5xx', async () => {
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const { status, json } = await post(JSON.stringify(b));
        seen.add(status);
        if (status === 201) return;
        assert.ok(status >= 400 && status < 500, `status ${status} for ${JSON.stringify(b)}: ${JSON.stringify(json)}`);
        const field = (json as { error?: { field?: unknown } } | null)?.error?.field;
        assert.ok(typeof field === 'string' && field.length > 0, `no field in ${JSON.stringify(json)} for ${JSON.stringify(b)}`);
      }),
      { numRuns: 200, seed: 9 },
    );
    assert.ok(seen.has(400) && seen.has(201), `the generator reaches both validation errors and valid jobs (saw ${[...seen].join(', ')})`);
  });

  test('an empty body {} is a 400 naming model; no job is created', async () => {
    const { status, json } = await post('{}');
    assert.equal(status, 400);
    assert.deepEqual((json as { error: { code: string; field: string } }).error.field, 'model');
    assert.match((json as { error: { message: string } }).error.message, /model: required/);
  });

  test('the OpenAPI document says so: model and dataset required, 429 documented', async () => {
    const doc = (await (await fetch(`${rest.url}/openapi.json`)).json()) as {
      components: { schemas: { SubmitJobRequest: { oneOf: Array<{ required?: string[]; properties: Record<string, { default?: unknown }> }> } } };
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    const flat = doc.components.schemas.SubmitJobRequest.oneOf[0]!;
    assert.ok(flat.required?.includes('model') && flat.required.includes('dataset'), JSON.stringify(flat.required));
    assert.equal(flat.properties.model!.default, undefined);
    assert.ok(doc.paths['/v1/jobs']!.post!.responses['429'], 'QUOTA_EXCEEDED / RATE_LIMITED documented');
  });

  test('an empty gRPC SubmitJob is INVALID_ARGUMENT naming model', async () => {
    const client = new TicketsmithGrpcClient({ address: `127.0.0.1:${rpc.port}`, apiKey: key, timeoutMs: 10_000 });
    try {
      await assert.rejects(client.submitJob({}), (e: unknown) => {
        assert.ok(e instanceof GrpcError, String(e));
        assert.equal(e.status, grpc.status.INVALID_ARGUMENT);
        assert.match(e.field ?? '', /model$/);
        return true;
      });
    } finally {
      client.close();
    }
  });
});
