// Bring your own model and data, end to end (issue 11, must-show 2): on a real
// Postgres, real REST and gRPC servers on loopback, a real worker, real TF.js
// training and real onnxruntime-node. Every model fixture (four ONNX, a Keras
// .keras and .h5) is uploaded over REST (resnet-bn also over gRPC UploadModel);
// its stored converted model, fetched as the model's artifacts, reproduces the
// fixture's onnxruntime (or Keras) outputs within 1e-4. An RGB image folder of
// ten classes (resnet-bn's outputs), made here with pngjs at a size other than the model's input,
// is uploaded as a .zip over POST /v1/datasets and as a .tar.gz over gRPC
// UploadDataset; an IMP job (2 rounds) and a filter job then run on the
// uploaded resnet-bn with it. The IMP ticket's model.onnx runs in
// onnxruntime-node with the TF.js ticket's outputs within 1e-4 and holds as
// many zeros in its Conv/Gemm weights as the reported density says; the filter
// job's model.onnx holds the reported, smaller parameter count; ticket.zip
// (REST and gRPC DownloadTicket) unpacks with every listed file, each sha256 as
// listed, the archive's sha256 as its header says, and the image folder's
// class names in result.json.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import onnxProto from 'onnx-proto';
import { unzipSync, zipSync } from 'fflate';
import { PNG } from 'pngjs';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { TicketsmithClient, type ArtifactDto, type DatasetDto, type JobDto } from '../../src/client/index.js';
import { TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { modelFromFiles } from '../../src/engine/models/files.js';
import { countParams, prunableWeights } from '../../src/engine/models/inspect.js';
import type { OnnxFileMetrics } from '../../src/engine/export/onnx-ticket.js';
import type { BundleManifest } from '../../src/engine/report/bundle.js';
import { mulberry32 } from '../../src/engine/rng.js';
import { createApiKey, type ServiceRuntime } from '../../src/service/index.js';
import { tgzOf } from '../corpus/files.js';
import { startTestDb, type TestDb } from '../integration/fixtures/harness.js';
import { floatInitializers, onnxVsTfjs } from '../fixtures/onnx-check.js';
import { checkResponsesOf } from '../fixtures/openapi-check.js';

const { onnx } = onnxProto;
const DIR = new URL('../fixtures/models/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, DIR)));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface IoCase { input: number[]; onnxruntime?: number[]; keras?: number[] }
interface Io { layout: string; input: { shape: number[] }; output: { shape: number[] }; cases: IoCase[] }
const ioOf = (name: string) => JSON.parse(readFileSync(new URL(name, DIR), 'utf8')) as Io;

/** Each fixture and the io.json that holds its inputs and reference outputs. */
const FIXTURES: [file: string, io: string][] = [
  ['resnet-bn.onnx', 'resnet-bn.io.json'],
  ['resnet-folded.onnx', 'resnet-folded.io.json'],
  ['mlp-gemm.onnx', 'mlp-gemm.io.json'],
  ['dw-separable.onnx', 'dw-separable.io.json'],
  ['keras-functional.keras', 'keras-functional.io.json'],
  ['keras-functional.h5', 'keras-functional.io.json'],
];

// resnet-bn outputs 10 classes, and an uploaded model takes data with exactly its classes.
const CLASSES = ['ant', 'bee', 'cat', 'dog', 'eel', 'fox', 'gnu', 'hen', 'ibis', 'jay'];
const IMAGE = 12; // not resnet-bn's 32x32: the worker resizes

/** An RGB PNG: a colour of its own per class, with noise so images differ. */
function png(k: number, seed: number): Uint8Array {
  const image = new PNG({ width: IMAGE, height: IMAGE });
  const next = mulberry32(seed);
  const base = [(k * 70) % 256, (k * 130 + 40) % 256, (k * 190 + 90) % 256];
  for (let i = 0; i < IMAGE * IMAGE; i++) {
    const rgb = base.map((v) => (v + Math.floor(next() * 30)) & 255);
    image.data.set([...rgb, 255], i * 4);
  }
  return new Uint8Array(PNG.sync.write(image));
}

/** train/<class>/*.png (4 a class) and test/<class>/*.png (2 a class). */
function imageFolder(): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  CLASSES.forEach((c, k) => {
    for (let i = 0; i < 4; i++) out[`train/${c}/${i}.png`] = png(k, 1000 * k + i);
    for (let i = 0; i < 2; i++) out[`test/${c}/${i}.png`] = png(k, 1000 * k + 500 + i);
  });
  return out;
}

/** Every REST response this file sees is checked against /openapi.json (test/fixtures/openapi-check.ts). */
let responses: Awaited<ReturnType<typeof checkResponsesOf>> | undefined;
let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let grpcServer: GrpcServerHandle;
let client: TicketsmithClient;
let grpcClient: TicketsmithGrpcClient;
let apiKey: string;
let resnetId = '';
let zipDataset: DatasetDto;
let tgzDataset: DatasetDto;

const TRAIN = { iterations: 6, evalEvery: 3, batchSize: 10, seed: 1, controls: 'none' } as const;

/** The tenant's artifacts of an uploaded model, over REST (GET /v1/artifacts?modelId=). */
async function modelArtifacts(modelId: string): Promise<ArtifactDto[]> {
  const res = await fetch(`${rest.url}/v1/artifacts?modelId=${modelId}`, { headers: { authorization: `Bearer ${apiKey}` } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { items: ArtifactDto[] }).items;
}

/** Downloads model.json + weights.bin of `artifacts` (REST, sha256 checked) and rebuilds the model. */
async function storedModel(artifacts: ArtifactDto[]): Promise<tf.LayersModel> {
  const bytes = async (name: string) => {
    const a = artifacts.find((x) => x.name === name);
    assert.ok(a, `${name} among ${artifacts.map((x) => x.name).join(', ')}`);
    return (await client.downloadVerified(a.id, a.sha256)).bytes;
  };
  return modelFromFiles({ json: await bytes('model.json'), bin: await bytes('weights.bin') });
}

/** max |model - reference| over the io.json cases (NCHW inputs transposed to NHWC). */
function ioDiff(model: tf.LayersModel, io: Io): number {
  let d = 0;
  for (const c of io.cases) {
    const expected = c.onnxruntime ?? c.keras;
    assert.ok(expected, 'the case has reference outputs');
    const got = tf.tidy(() => {
      const x = tf.tensor(c.input, io.input.shape);
      return (model.predict(io.layout === 'NCHW' ? tf.transpose(x, [0, 2, 3, 1]) : x) as tf.Tensor).dataSync();
    });
    assert.equal(got.length, expected.length);
    got.forEach((v, i) => { d = Math.max(d, Math.abs(v - expected[i]!)); });
  }
  return d;
}

/** Downloads the job's ticket/<name> artifacts over REST, each checked against its sha256. */
async function ticketFiles(jobId: string): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for (const a of await client.listArtifacts(jobId, { kind: 'ticket' })) {
    out[a.name.replace(/^ticket\//, '')] = (await client.downloadVerified(a.id, a.sha256)).bytes;
  }
  return out;
}

/** The weight initializers (input 1) of the file's Conv and Gemm nodes. */
function convGemmWeights(bytes: Uint8Array): Float32Array[] {
  const inits = floatInitializers(bytes);
  const out: Float32Array[] = [];
  for (const node of onnx.ModelProto.decode(bytes).graph?.node ?? []) {
    if (node.opType !== 'Conv' && node.opType !== 'Gemm') continue;
    const w = inits.get(node.input?.[1] ?? '');
    assert.ok(w, `${node.opType} ${node.name}: weight ${node.input?.[1]} is an initializer`);
    out.push(w);
  }
  return out;
}

async function succeeded(spec: Parameters<TicketsmithClient['submitJob']>[0]): Promise<JobDto> {
  const { job } = await client.submitJob(spec);
  const done = await client.waitForJob(job.id, { signal: AbortSignal.timeout(180_000) });
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  return done;
}

/** ticket.zip's files: every one listed in MANIFEST.json is there with its sha256. */
function unpacked(bytes: Uint8Array, expected: string[]): { files: Record<string, Uint8Array>; result: { summary: Record<string, unknown> } } {
  const files = unzipSync(bytes);
  const manifest = JSON.parse(new TextDecoder().decode(files['MANIFEST.json']!)) as BundleManifest;
  const names = manifest.files.map((f) => f.name);
  for (const n of expected) assert.ok(names.includes(n), `${n} listed in ${names.join(', ')}`);
  for (const f of manifest.files) {
    assert.ok(files[f.name], `${f.name} is in the archive`);
    assert.equal(files[f.name]!.length, f.bytes, `${f.name}: size`);
    assert.equal(sha(files[f.name]!), f.sha256, `${f.name}: sha256`);
  }
  assert.deepEqual(Object.keys(files).sort(), [...names, 'MANIFEST.json'].sort(), 'nothing unlisted');
  return { files, result: JSON.parse(new TextDecoder().decode(files['result.json']!)) as { summary: Record<string, unknown> } };
}

before(async () => {
  t = await startTestDb();
  rt = await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.3, progressIntervalMs: 200 } });
  rest = await startRestServer(rt, { port: 0, sseHeartbeatMs: 300 });
  responses = await checkResponsesOf(rest.url);
  grpcServer = await startGrpcServer(rt, { host: '127.0.0.1', port: 0 });
  apiKey = (await createApiKey(rt.ctx, 'acme')).key;
  client = new TicketsmithClient({ baseUrl: rest.url, apiKey });
  grpcClient = new TicketsmithGrpcClient({ address: `127.0.0.1:${grpcServer.port}`, apiKey, chunkBytes: 16 * 1024 });
});

after(async () => {
  responses?.restore();
  grpcClient?.close();
  await rest?.stop(500);
  await grpcServer?.stop();
  await t?.stop();
});

describe('each model fixture, uploaded, matches its reference outputs', { timeout: 240_000 }, () => {
  for (const [file, ioName] of FIXTURES) {
    test(`${file} over REST`, async () => {
      const io = ioOf(ioName);
      const m = await client.uploadModel({ files: [{ name: file, bytes: read(file) }] }, { name: file });
      assert.equal(m.format, file.split('.').pop());
      const nhwc = io.layout === 'NCHW' ? [io.input.shape[2], io.input.shape[3], io.input.shape[1]] : io.input.shape.slice(1);
      assert.deepEqual(m.architecture.inputShape, nhwc);
      assert.equal(m.architecture.numClasses, io.output.shape[1]);
      if (file === 'resnet-bn.onnx') resnetId = m.id;
      const model = await storedModel(await modelArtifacts(m.id));
      try {
        const d = ioDiff(model, io);
        assert.ok(d <= 1e-4, `${file}: stored model vs reference outputs: max |diff| ${d}`);
      } finally {
        model.dispose();
      }
    });
  }

  test('resnet-bn.onnx over gRPC UploadModel, its files listed and downloaded over gRPC', async () => {
    const m = await grpcClient.uploadModel({ files: [{ name: 'resnet-bn.onnx', bytes: read('resnet-bn.onnx') }] }, { name: 'resnet-grpc' });
    assert.equal(m.format, 'onnx');
    const artifacts = await grpcClient.listArtifacts({ modelId: m.id });
    assert.deepEqual(artifacts.map((a) => a.name).sort(), ['model.json', 'source.onnx', 'weights.bin']);
    const bytes = async (name: string) => {
      const a = artifacts.find((x) => x.name === name)!;
      const d = await grpcClient.download(a.id);
      assert.equal(sha(d.bytes), a.sha256);
      return new Uint8Array(d.bytes);
    };
    assert.deepEqual(await bytes('source.onnx'), read('resnet-bn.onnx'), 'the original is kept as uploaded');
    const model = await modelFromFiles({ json: await bytes('model.json'), bin: await bytes('weights.bin') });
    try {
      const d = ioDiff(model, ioOf('resnet-bn.io.json'));
      assert.ok(d <= 1e-4, `resnet-bn over gRPC vs onnxruntime: max |diff| ${d}`);
    } finally {
      model.dispose();
    }
  });
});

describe('an image folder uploaded, and jobs on the uploaded resnet-bn', { timeout: 600_000 }, () => {
  let impJob: JobDto;
  let filterJob: JobDto;

  test('the image folder as a .zip over REST and as a .tar.gz over gRPC', async () => {
    const files = imageFolder();
    zipDataset = await client.uploadDataset({ archive: zipSync(files), filename: 'pets.zip' });
    assert.equal(zipDataset.format, 'images');
    const shapes = zipDataset.shapes as { inputShape: number[]; numClasses: number; classNames: string[]; counts: { train: number; test: number } };
    assert.deepEqual(shapes.classNames, CLASSES);
    assert.equal(shapes.numClasses, CLASSES.length);
    assert.deepEqual(shapes.inputShape, [IMAGE, IMAGE, 3]);
    assert.deepEqual(shapes.counts, { train: 40, test: 20 });
    tgzDataset = await grpcClient.uploadDataset({ archive: tgzOf(Object.entries(files).map(([name, bytes]) => ({ name: `pets/${name}`, bytes }))) });
    assert.equal(tgzDataset.format, 'images');
    assert.deepEqual((tgzDataset.shapes as { classNames: string[] }).classNames, CLASSES);
  });

  test('IMP, 2 rounds: model.onnx runs in onnxruntime with the ticket\'s outputs and holds the reported zeros', async () => {
    assert.ok(resnetId, 'resnet-bn was uploaded');
    impJob = await succeeded({ ...TRAIN, model: `model:${resnetId}`, dataset: `dataset:${zipDataset.id}`, method: 'imp', rounds: 2 });
    const summary = (impJob.result as { summary: { density: number; rounds: { density: number }[]; onnx: OnnxFileMetrics; classNames?: string[] } }).summary;
    assert.deepEqual(summary.classNames, CLASSES);
    assert.equal(summary.rounds.length, 3, 'rounds 0, 1 and 2');
    assert.equal(summary.rounds.at(-1)!.density, summary.density);
    const files = await ticketFiles(impJob.id);
    const bytes = files['model.onnx'];
    assert.ok(bytes, `ticket files: ${Object.keys(files).join(', ')}`);
    assert.equal(sha(bytes), summary.onnx.sha256);
    assert.equal(bytes.length, summary.onnx.bytes);
    assert.ok(summary.onnx.opset >= 13);

    const ticket = await modelFromFiles({ json: files['model.json']!, bin: files['weights.bin']! });
    try {
      const diff = await onnxVsTfjs(ticket, bytes);
      assert.ok(diff <= 1e-4, `ONNX vs TF.js ticket: max |diff| ${diff}`);
      assert.equal(summary.onnx.params, countParams(ticket));
      let prunable = 0;
      for (const w of prunableWeights(ticket)) prunable += w.shape.reduce((a, b) => a * b, 1);
      let total = 0;
      let zeros = 0;
      for (const w of convGemmWeights(bytes)) {
        total += w.length;
        for (const v of w) if (v === 0) zeros++;
      }
      assert.equal(total, prunable, 'the Conv/Gemm weights are the prunable weights');
      assert.ok(summary.density < 1, `pruned (density ${summary.density})`);
      assert.equal(zeros, Math.round(prunable * (1 - summary.density)), `zeros ${zeros} of ${prunable} at density ${summary.density}`);
    } finally {
      ticket.dispose();
    }
  });

  test('IMP ticket.zip over REST: the sha256 header, every listed file, the class names', async () => {
    const d = await client.downloadTicketZip(impJob.id);
    assert.equal(d.status, 200);
    assert.equal(d.contentType, 'application/zip');
    assert.equal(d.sha256, sha(d.bytes), 'X-Content-SHA256 is the sha256 of the bytes');
    const { files, result } = unpacked(d.bytes, ['model.json', 'weights.bin', 'model.onnx', 'mask.json', 'mask.npz', 'compressed.bin', 'result.json', 'accuracy.svg']);
    assert.deepEqual(result.summary.classNames, CLASSES);
    assert.equal((result.summary.rounds as unknown[]).length, 3);
    assert.match(new TextDecoder().decode(files['accuracy.svg']!), /^<svg[\s>]/);
    // mask.npz: one uint8 .npy per masked weight; its zeros are the pruned weights the density reports.
    const npz = unzipSync(files['mask.npz']!);
    assert.ok(Object.keys(npz).length > 0 && Object.keys(npz).every((n) => n.endsWith('.npy')), `mask.npz: ${Object.keys(npz).join(', ')}`);
    let kept = 0;
    let masked = 0;
    for (const npy of Object.values(npz)) {
      assert.deepEqual([...npy.subarray(0, 6)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59], 'NPY magic');
      const values = npy.subarray(10 + (npy[8]! | (npy[9]! << 8)));
      masked += values.length;
      for (const v of values) kept += v;
    }
    const density = (impJob.result as { summary: { density: number } }).summary.density;
    assert.equal(kept, Math.round(masked * density), `mask.npz keeps ${kept} of ${masked} at density ${density}`);
    const onnxInfo = (impJob.result as { summary: { onnx: OnnxFileMetrics } }).summary.onnx;
    assert.equal(sha(files['model.onnx']!), onnxInfo.sha256);
  });

  test('filter on the gRPC-uploaded data: model.onnx has the reported, smaller parameter count; ticket.zip over gRPC', async () => {
    filterJob = await succeeded({ ...TRAIN, model: `model:${resnetId}`, dataset: `dataset:${tgzDataset.id}`, method: 'filter', filterFraction: 0.5, fineTuneIterations: 3, sensitivity: true });
    const summary = (filterJob.result as { summary: { onnx: OnnxFileMetrics; filter: { paramsBefore: number; paramsAfter: number }; classNames?: string[] } }).summary;
    const original = await storedModel(await modelArtifacts(resnetId));
    const originalParams = countParams(original);
    original.dispose();
    assert.equal(summary.filter.paramsBefore, originalParams, 'paramsBefore is the uploaded model\'s');
    const files = await ticketFiles(filterJob.id);
    let params = 0;
    for (const v of floatInitializers(files['model.onnx']!).values()) params += v.length;
    assert.equal(summary.onnx.params, summary.filter.paramsAfter);
    assert.equal(params, summary.onnx.params, 'counted from the file\'s initializers');
    assert.ok(params < originalParams, `${params} < ${originalParams}`);
    const shrunk = await modelFromFiles({ json: files['model.json']!, bin: files['weights.bin']! });
    try {
      const diff = await onnxVsTfjs(shrunk, files['model.onnx']!);
      assert.ok(diff <= 1e-4, `ONNX vs TF.js filter-pruned model: max |diff| ${diff}`);
    } finally {
      shrunk.dispose();
    }

    const g = await grpcClient.downloadTicket(filterJob.id);
    assert.equal(g.mediaType, 'application/zip');
    assert.equal(sha(g.bytes), g.sha256, 'the sha256 gRPC announces is that of the bytes');
    // A filter-pruned model is dense (smaller, no mask): no mask or compressed export, both plots.
    const { files: zipped, result } = unpacked(g.bytes, ['model.json', 'weights.bin', 'model.onnx', 'result.json', 'accuracy.svg', 'sensitivity.svg']);
    assert.equal(zipped['mask.json'], undefined);
    assert.equal(sha(zipped['model.onnx']!), summary.onnx.sha256);
    assert.deepEqual(result.summary.classNames, CLASSES);
  });
});

test('every REST response above matched the OpenAPI document', () => {
  assert.deepEqual(responses?.failures, []);
  assert.ok((responses?.checker.checked ?? 0) > 0);
});
