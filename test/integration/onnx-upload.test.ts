// ONNX model uploads end to end on real servers (REST and gRPC on loopback,
// embedded Postgres, the upload worker threads that convert and check the
// model against onnxruntime-node): resnet-bn.onnx goes up as a multipart
// file, as a raw body and as a gRPC file stream; each is stored as format
// 'onnx' with the converted model.json + weights.bin (which rebuild to a
// model matching the fixture's onnxruntime outputs) and the original
// source.onnx. Every refusal answers 400 with its code and a message naming
// the op, node or problem, over REST (and one over gRPC).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs';
import onnxProto from 'onnx-proto';
import type { RestServer } from '../../src/api/rest/index.js';
import { GrpcError, TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { modelFromFiles } from '../../src/engine/models/files.js';
import { listArtifactRows } from '../../src/store/artifacts.js';
import { type ServiceRuntime } from '../../src/service/index.js';
import { startDoors, type Doors } from './fixtures/harness.js';

const { onnx } = onnxProto;
const DIR = new URL('../fixtures/models/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, DIR)));
const io = JSON.parse(readFileSync(new URL('resnet-bn.io.json', DIR), 'utf8')) as { input: { shape: number[] }; cases: { input: number[]; onnxruntime: number[] }[] };

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

type Reply = { status: number; json: { id?: string; format?: string; architecture?: { inputShape: number[]; numClasses: number }; error?: { code: string; message: string } } };

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

/** The stored converted model rebuilds and matches the fixture's onnxruntime outputs. */
async function storedMatches(modelId: string): Promise<void> {
  const rows = await listArtifactRows(rt.ctx.prisma, 'acme', { modelId });
  assert.deepEqual(rows.map((r) => r.name).sort(), ['model.json', 'source.onnx', 'weights.bin']);
  const file = async (name: string) => rt.ctx.blobs.get(rows.find((r) => r.name === name)!.storageKey);
  assert.deepEqual(await file('source.onnx'), read('resnet-bn.onnx'), 'the original is kept as uploaded');
  const model = await modelFromFiles({ json: await file('model.json'), bin: await file('weights.bin') });
  for (const c of io.cases) {
    const got = tf.tidy(() => (model.predict(tf.transpose(tf.tensor(c.input, io.input.shape), [0, 2, 3, 1])) as tf.Tensor).dataSync());
    let d = 0;
    got.forEach((v, i) => { d = Math.max(d, Math.abs(v - c.onnxruntime[i]!)); });
    assert.ok(d < 1e-4, `stored model vs onnxruntime: ${d}`);
  }
  model.dispose();
}

describe('uploading resnet-bn.onnx', { timeout: 180_000 }, () => {
  test('REST multipart', async () => {
    const r = await multipart('resnet-bn.onnx', read('resnet-bn.onnx'));
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.equal(r.json.format, 'onnx');
    assert.deepEqual(r.json.architecture?.inputShape, [32, 32, 3]);
    assert.equal(r.json.architecture?.numClasses, 10);
    await storedMatches(r.json.id!);
  });

  test('REST raw body (application/octet-stream)', async () => {
    const r = await raw(read('resnet-bn.onnx'));
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.equal(r.json.format, 'onnx');
    await storedMatches(r.json.id!);
  });

  test('two at once: onnxruntime loads in each upload thread', async () => {
    const events: number[] = [];
    const { uploadPool } = await import('../../src/service/upload-pool.js');
    const pool = uploadPool(rt.ctx.config.uploadThreads);
    const onStart = (e: { threadId: number }) => events.push(e.threadId);
    pool.events.on('task-start', onStart);
    const [a, b] = await Promise.all([multipart('a.onnx', read('resnet-folded.onnx')), raw(read('dw-separable.onnx'))]);
    pool.events.off('task-start', onStart);
    assert.equal(a.status, 201, JSON.stringify(a.json));
    assert.equal(b.status, 201, JSON.stringify(b.json));
    if (rt.ctx.config.uploadThreads > 1) assert.equal(new Set(events).size, 2, `threads used: ${events.join(', ')}`);
  });

  test('gRPC UploadModel, as a file and as a raw archive stream', async () => {
    const m = await client.uploadModel({ files: [{ name: 'resnet-bn.onnx', bytes: read('resnet-bn.onnx') }] }, { name: 'resnet' });
    assert.equal(m.format, 'onnx');
    assert.equal(m.name, 'resnet');
    await storedMatches(m.id);
    const m2 = await client.uploadModel({ archive: read('resnet-bn.onnx') });
    assert.equal(m2.format, 'onnx');
  });
});

/** A copy of mlp-gemm.onnx with its first layer's weights scaled up: converted exactly, but float32 sums then differ by far more than 1e-4. */
function hugeWeights(): Uint8Array {
  const proto = onnx.ModelProto.decode(read('mlp-gemm.onnx'));
  const w = proto.graph!.initializer!.find((i) => i.name === 'net.1.weight')!;
  const values = new Float32Array(w.rawData!.slice().buffer);
  for (let i = 0; i < values.length; i++) values[i] = values[i]! * 1e6;
  w.rawData = new Uint8Array(values.buffer);
  return onnx.ModelProto.encode(proto).finish();
}

describe('refusals', { timeout: 180_000 }, () => {
  const cases: [string, Uint8Array, string, RegExp][] = [
    ['unsupported-op.onnx', read('unsupported-op.onnx'), 'UNSUPPORTED_MODEL', /Einsum \(first used by node 'einsum_0'\), Erf \(first used by node 'erf_0'\); supported ops: .*Conv.*Gemm/],
    ['corrupt.onnx', read('corrupt.onnx'), 'INVALID_ARGUMENT', /not a valid ONNX protobuf/],
    ['opset8.onnx', read('opset8.onnx'), 'UNSUPPORTED_MODEL', /opset 8 is not supported; re-export with an opset from 9 to 21/],
    ['external-data.onnx', read('external-data.onnx'), 'UNSUPPORTED_MODEL', /initializer 'net\.1\.weight' keeps its data in the external file 'external-data\.onnx\.data'/],
    ['dynamic-spatial.onnx', read('dynamic-spatial.onnx'), 'UNSUPPORTED_MODEL', /input 'input' has dynamic dims \(H=height, W=width\)/],
    ['two-inputs.onnx', read('two-inputs.onnx'), 'UNSUPPORTED_MODEL', /the graph has 2 inputs \('a', 'b'\); exactly one input is supported/],
    ['two-outputs.onnx', read('two-outputs.onnx'), 'UNSUPPORTED_MODEL', /the graph has 2 outputs \('logits', 'probs'\); exactly one output is supported/],
    ['huge-weights.onnx', hugeWeights(), 'UNSUPPORTED_MODEL', /differs from onnxruntime by up to \d\.\d+e[-+]\d+ \(more than 0\.0001\)/],
  ];
  for (const [name, bytes, code, re] of cases) {
    test(`${name}: 400 ${code}`, async () => {
      const r = await multipart(name, bytes);
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json.error?.code, code, JSON.stringify(r.json));
      assert.match(r.json.error!.message, re);
    });
  }

  test('an opset above the highest supported', async () => {
    const proto = onnx.ModelProto.decode(read('mlp-gemm.onnx'));
    proto.opsetImport = [{ domain: '', version: 22 }];
    const r = await multipart('new.onnx', onnx.ModelProto.encode(proto).finish());
    assert.equal(r.status, 400);
    assert.equal(r.json.error?.code, 'UNSUPPORTED_MODEL');
    assert.match(r.json.error!.message, /opset 22 is not supported/);
  });

  test('a raw body that is no archive and no ONNX model says both', async () => {
    const r = await raw(read('corrupt.onnx'));
    assert.equal(r.status, 400);
    assert.equal(r.json.error?.code, 'INVALID_ARGUMENT');
    assert.match(r.json.error!.message, /not a \.zip, \.tar\.gz or \.tar archive, a Keras or HDF5 file, nor a valid ONNX model \(model\.onnx: not a valid ONNX protobuf/);
  });

  test('an .onnx with other files is refused: one model file alone', async () => {
    const form = new FormData();
    form.append('files', new Blob([read('external-data.onnx').slice()]), 'external-data.onnx');
    form.append('files', new Blob([read('external-data.onnx.data').slice()]), 'external-data.onnx.data');
    const r = await post(form);
    assert.equal(r.status, 400);
    assert.match(r.json.error!.message, /send one model file \(external-data\.onnx\) alone/);
  });

  test('over gRPC: INVALID_ARGUMENT status with UNSUPPORTED_MODEL and the op named', async () => {
    await assert.rejects(client.uploadModel({ files: [{ name: 'bad.onnx', bytes: read('unsupported-op.onnx') }] }), (e: unknown) => {
      assert.ok(e instanceof GrpcError, String(e));
      assert.equal(e.code, 'UNSUPPORTED_MODEL');
      assert.equal(e.status, grpc.status.INVALID_ARGUMENT);
      assert.match(e.message, /Einsum \(first used by node 'einsum_0'\)/);
      return true;
    });
  });
});
