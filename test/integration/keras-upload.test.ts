// Keras model uploads end to end on real servers (REST and gRPC on loopback,
// embedded Postgres, the upload threads that convert the model): the Keras 3
// fixture goes up as a multipart `.keras` file and as a raw zip body, the
// legacy one as a raw HDF5 body and over the gRPC stream; each is stored with
// the converted model.json + weights.bin (rebuilding to a model within 1e-4
// of Keras's own outputs) and the original file, format 'keras' or 'h5'.
// Refusals answer 400 with their code and a message naming the layer or the
// problem.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { unzipSync, zipSync } from 'fflate';
import type { RestServer } from '../../src/api/rest/index.js';
import { TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { modelFromFiles } from '../../src/engine/models/files.js';
import { listArtifactRows } from '../../src/store/artifacts.js';
import { type ServiceRuntime } from '../../src/service/index.js';
import { startDoors, type Doors } from './fixtures/harness.js';

const DIR = new URL('../fixtures/models/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, DIR)));
const io = JSON.parse(readFileSync(new URL('keras-functional.io.json', DIR), 'utf8')) as { input: { shape: number[] }; cases: { input: number[]; keras: number[] }[] };

let rt: ServiceRuntime;
let rest: RestServer;
let key: string;
let client: TicketsmithGrpcClient;

let doors: Doors;

before(async () => {
  doors = await startDoors();
  ({ rt, rest, key, client } = doors);
});

after(async () => {
  await doors?.stop();
});

type Reply = { status: number; json: { id?: string; format?: string; error?: { code: string; message: string; field?: string } } };

async function post(body: FormData | Uint8Array, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(`${rest.url}/v1/models`, { method: 'POST', headers: { authorization: `Bearer ${key}`, ...headers }, body: body as BodyInit, signal: AbortSignal.timeout(60_000) });
  return { status: res.status, json: (await res.json()) as Reply['json'] };
}

const multipart = (name: string, bytes: Uint8Array) => {
  const form = new FormData();
  form.append('files', new Blob([bytes.slice()]), name);
  return post(form);
};
const raw = (bytes: Uint8Array) => post(bytes, { 'content-type': 'application/octet-stream' });

/** The stored converted model rebuilds and matches Keras's outputs; the original is kept as sent. */
async function storedMatches(modelId: string, original: string, source: string): Promise<void> {
  const rows = await listArtifactRows(rt.ctx.prisma, 'acme', { modelId });
  assert.deepEqual(rows.map((r) => r.name).sort(), ['model.json', source, 'weights.bin'].sort());
  const file = async (name: string) => rt.ctx.blobs.get(rows.find((r) => r.name === name)!.storageKey);
  assert.deepEqual(await file(source), read(original));
  const model = await modelFromFiles({ json: await file('model.json'), bin: await file('weights.bin') });
  try {
    for (const c of io.cases) {
      const got = tf.tidy(() => (model.predict(tf.tensor(c.input, io.input.shape)) as tf.Tensor).dataSync());
      let d = 0;
      got.forEach((v, i) => { d = Math.max(d, Math.abs(v - c.keras[i]!)); });
      assert.ok(d < 1e-4, `stored model vs Keras: ${d}`);
    }
  } finally {
    model.dispose();
  }
}

/** The Keras 3 fixture with one layer's class renamed in config.json. */
function withLayerClass(layer: string, cls: string): Uint8Array {
  const files = unzipSync(read('keras-functional.keras'));
  const config = JSON.parse(new TextDecoder().decode(files['config.json'])) as { config: { layers: { name: string; class_name: string }[] } };
  config.config.layers.find((l) => l.name === layer)!.class_name = cls;
  files['config.json'] = new TextEncoder().encode(JSON.stringify(config));
  return zipSync(files);
}

describe('Keras uploads', () => {
  test('a .keras file (multipart) and the same archive as a raw body: format keras, converted within 1e-4', async () => {
    const a = await multipart('net.keras', read('keras-functional.keras'));
    assert.equal(a.status, 201, JSON.stringify(a.json));
    assert.equal(a.json.format, 'keras');
    assert.equal((a.json as { name?: string }).name, 'net', 'named after the file when no name is given');
    await storedMatches(a.json.id!, 'keras-functional.keras', 'source.keras');
    const b = await raw(read('keras-functional.keras'));
    assert.equal(b.status, 201, JSON.stringify(b.json));
    assert.equal(b.json.format, 'keras');
    assert.equal((b.json as { name?: string }).name, 'model', 'a raw body has no file name');
  });

  test('a legacy .h5 as a raw body and over gRPC: format h5, converted within 1e-4', async () => {
    const a = await raw(read('keras-functional.h5'));
    assert.equal(a.status, 201, JSON.stringify(a.json));
    assert.equal(a.json.format, 'h5');
    await storedMatches(a.json.id!, 'keras-functional.h5', 'source.h5');
    const g = await client.uploadModel({ files: [{ name: 'net.h5', bytes: read('keras-functional.h5') }] });
    assert.equal(g.format, 'h5');
    await storedMatches(g.id, 'keras-functional.h5', 'source.h5');
  });

  test('an unsupported layer class: 400 UNSUPPORTED_MODEL naming the class and its layer', async () => {
    const r = await multipart('custom.keras', withLayerClass('branch_a', 'MyAttention'));
    assert.equal(r.status, 400);
    assert.equal(r.json.error?.code, 'UNSUPPORTED_MODEL');
    assert.match(r.json.error!.message, /MyAttention \(first used by layer 'branch_a'\)/);
  });

  test('a truncated .h5 and a .keras without its weights: 400 INVALID_ARGUMENT naming the file', async () => {
    const h5 = read('keras-functional.h5');
    const cut = await multipart('cut.h5', h5.subarray(0, Math.floor(h5.length / 2)));
    assert.equal(cut.status, 400);
    assert.equal(cut.json.error?.code, 'INVALID_ARGUMENT');
    assert.match(cut.json.error!.message, /cut\.h5/);
    const files = unzipSync(read('keras-functional.keras'));
    delete files['model.weights.h5'];
    const noWeights = await multipart('empty.keras', zipSync(files));
    assert.equal(noWeights.status, 400);
    assert.equal(noWeights.json.error?.code, 'INVALID_ARGUMENT');
    assert.match(noWeights.json.error!.message, /empty\.keras.*model\.weights\.h5|model\.weights\.h5.*empty\.keras/);
  });
});

test('an upload thread that failed 16 checks is replaced by a fresh one (HDF5 leaks on broken files)', async () => {
  const { UploadPool } = await import('../../src/service/upload-pool.js');
  const pool = new UploadPool(1);
  const threads: number[] = [];
  pool.events.on('task-start', (e: { threadId: number }) => threads.push(e.threadId));
  const h5 = read('keras-functional.h5');
  const broken = h5.slice();
  broken.fill(0x5a, 2048, 4096);
  try {
    for (let i = 0; i < 17; i++) {
      await assert.rejects(pool.check({ files: [{ name: `bad-${i}.h5`, bytes: broken }] }, 1 << 24, rt.ctx.config.modelLimits));
    }
    assert.equal(new Set(threads.slice(0, 16)).size, 1, 'the first 16 failures share one thread');
    assert.notEqual(threads[16], threads[0], 'the 17th check runs on a fresh thread');
    const ok = await pool.check({ files: [{ name: 'good.h5', bytes: h5 }] }, 1 << 24, rt.ctx.config.modelLimits);
    assert.equal(ok.format, 'h5');
  } finally {
    await pool.close();
  }
});
