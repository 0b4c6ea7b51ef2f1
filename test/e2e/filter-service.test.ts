// Filter pruning through the service, end to end (issue #5, "Must show 2"): a
// user's functional TF.js model with a residual block is uploaded over REST,
// a `filter` job runs on a real worker (real engine, builtin MNIST), the job
// is followed over SSE, and the shrunken model is downloaded and loaded in
// TF.js: fewer parameters (counted by hand), the same output shape, each
// conv's filters as the round metrics report, and it predicts. A filter spec
// without a fraction is refused at submit, before anything is queued.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { ApiError, TicketsmithClient, type EventDto, type RoundDto } from '../../src/client/index.js';
import type { FilterRoundMetrics, RoundMetrics } from '../../src/engine/sink.js';
import { loadModelFrom } from '../../src/engine/models/load.js';
import { countParams } from '../../src/engine/models/inspect.js';
import { createApiKey, type ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, type TestDb, uploadFiles } from '../integration/fixtures/harness.js';
import { checkResponsesOf } from '../fixtures/openapi-check.js';

/** Every REST response this file sees is checked against /openapi.json (test/fixtures/openapi-check.ts). */
let responses: Awaited<ReturnType<typeof checkResponsesOf>> | undefined;
let t: TestDb;
let rt: ServiceRuntime;
let server: RestServer;
let client: TicketsmithClient;
let modelFiles: { name: string; bytes: Uint8Array<ArrayBuffer> }[];

const CONVS = ['stem', 'res_a', 'res_b'] as const;
/**
 * Hand count: 3x3 convs with bias, each followed by a BatchNormalization (4
 * weights per channel: gamma, beta, moving mean and variance), then a Dense
 * from the pooled channels to 10 classes.
 */
function paramsFor(width: number): number {
  const conv = (cin: number) => 3 * 3 * cin * width + width;
  const bn = 4 * width;
  return conv(1) + bn + conv(width) + bn + conv(width) + bn + (width * 10 + 10);
}

/** input -> stem conv/BN/relu -> [conv/BN/relu -> conv/BN] + skip -> relu -> GAP -> dense (logits). */
function residualNet(): tf.LayersModel {
  const conv = (name: string) => tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', name });
  const bn = (name: string) => tf.layers.batchNormalization({ name });
  const input = tf.input({ shape: [28, 28, 1], name: 'image' });
  const stemBn = bn('stem_bn').apply(conv('stem').apply(input)) as tf.SymbolicTensor;
  const stem = tf.layers.reLU({ name: 'stem_relu' }).apply(stemBn) as tf.SymbolicTensor;
  const a = tf.layers.reLU({ name: 'res_a_relu' }).apply(bn('res_a_bn').apply(conv('res_a').apply(stem))) as tf.SymbolicTensor;
  const b = bn('res_b_bn').apply(conv('res_b').apply(a)) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: 'skip_add' }).apply([b, stem]) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(tf.layers.reLU({ name: 'block_relu' }).apply(sum)) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: 10, name: 'logits' }).apply(pooled) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: 'tiny_resnet' });
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

before(async () => {
  t = await startTestDb();
  rt = await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, progressIntervalMs: 200 } });
  server = await startRestServer(rt, { port: 0, sseHeartbeatMs: 300 });
  responses = await checkResponsesOf(server.url);
  client = new TicketsmithClient({ baseUrl: server.url, apiKey: (await createApiKey(rt.ctx, 'acme')).key });
  const model = residualNet();
  assert.equal(countParams(model), paramsFor(8));
  modelFiles = await uploadFiles(model);
  model.dispose();
});

after(async () => {
  responses?.restore();
  await server?.stop(500);
  await t?.stop();
});

describe('filter pruning through the REST door', () => {
  test('a filter spec with no fraction (or a FLOP target beside one) is 400 naming the field, and queues nothing', async () => {
    const uploaded = await client.uploadModel({ files: modelFiles }, { name: 'unqueued' });
    const jobsBefore = await rt.ctx.prisma.job.count();
    const refused = async (spec: Parameters<TicketsmithClient['submitJob']>[0], field: string) => {
      await assert.rejects(client.submitJob(spec), (e: unknown) => {
        assert.ok(e instanceof ApiError, String(e));
        assert.equal(e.status, 400, e.message);
        assert.equal(e.code, 'INVALID_ARGUMENT', e.message);
        assert.equal(e.field, field, e.message);
        return true;
      });
    };
    await refused({ model: uploaded.id, dataset: 'builtin:mnist', method: 'filter', fineTuneIterations: 5 }, 'filterFraction');
    await refused({ model: uploaded.id, dataset: 'builtin:mnist', method: 'filter', filterFraction: 0.5, targetFlopReduction: 0.3 }, 'targetFlopReduction');
    await refused({ model: uploaded.id, dataset: 'builtin:mnist', method: 'filter', filterFraction: 1 }, 'filterFraction');
    assert.equal(await rt.ctx.prisma.job.count(), jobsBefore);
    assert.equal((await client.listJobs()).items.length, 0);
  });

  test('upload a residual net, run a filter job, download the smaller model and run it in TF.js', async () => {
    const uploaded = await client.uploadModel({ files: modelFiles }, { name: 'tiny-resnet' });
    const uploadedParams = Number(uploaded.architecture.params);
    assert.equal(uploadedParams, paramsFor(8));

    const { job } = await client.submitJob({
      model: uploaded.id,
      dataset: 'builtin:mnist',
      method: 'filter',
      filterFraction: 0.5,
      pretrain: true,
      iterations: 20,
      fineTuneIterations: 10,
      evalEvery: 10,
      batchSize: 30,
      maxTrainExamples: 300,
      seed: 1,
    });
    assert.equal(job.status, 'queued');
    assert.equal(job.spec.method, 'filter');

    const events: EventDto[] = [];
    const done = await client.waitForJob(job.id, { onEvent: (e) => events.push(e), signal: AbortSignal.timeout(90_000) });
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    const kinds = events.map((e) => e.kind);
    for (const k of ['queued', 'started', 'run-start', 'round', 'result', 'finished']) assert.ok(kinds.includes(k), `${k} in ${kinds.join(',')}`);
    // One-shot: round 0 is the trained dense model, round 1 the single prune-and-fine-tune step.
    assert.deepEqual(events.filter((e) => e.kind === 'round').map((e) => (e.payload as { round: number }).round), [0, 1]);

    // Parameters and FLOPs of each step, through REST and as the job's result reports them.
    const rounds: RoundDto[] = await client.listRounds(job.id);
    assert.deepEqual(rounds.map((r) => r.index), [0, 1]);
    assert.deepEqual(rounds.map((r) => r.paramsRemaining), [paramsFor(8), paramsFor(4)]);
    assert.ok(rounds[1]!.flops! < rounds[0]!.flops!, `FLOPs ${rounds[0]!.flops} -> ${rounds[1]!.flops}`);
    const summary = (done.result as { summary: { method: string; rounds: RoundMetrics[]; filter: { paramsBefore: number; paramsAfter: number } } }).summary;
    assert.equal(summary.method, 'filter');
    assert.equal(summary.filter.paramsBefore, paramsFor(8));
    assert.equal(summary.filter.paramsAfter, paramsFor(4));
    const f: FilterRoundMetrics[] = summary.rounds.map((r) => r.filter!);
    assert.equal(f.length, 2);
    // stem and res_b meet at the Add, so they lose the same filters as one group; res_a is its own group.
    assert.deepEqual(f[1]!.targets, { stem: 0.5, res_a: 0.5 });
    // The classifier's units are the model's output: never pruned.
    assert.match(f[1]!.skipped.logits ?? '', /output/);
    for (const conv of CONVS) {
      assert.equal(f[0]!.filtersTotal[conv], 8, conv);
      assert.equal(f[0]!.filtersKept[conv], 8, conv);
      assert.equal(f[1]!.filtersKept[conv], 4, conv);
    }
    assert.equal(f[1]!.filtersKept.logits, 10);
    assert.equal(f[1]!.params, paramsFor(4));
    // Each step's filter metrics are served with its round, while the job runs too.
    assert.deepEqual(rounds.map((r) => (r.filter as { filtersKept?: unknown } | null)?.filtersKept), f.map((x) => x.filtersKept));
    for (const x of f) {
      assert.ok(x.latencyBatch1Ms > 0 && x.latencyBatch64Ms > 0, JSON.stringify(x));
      for (const a of [x.accuracyBeforePruning, x.accuracyAfterPruning, x.accuracyAfterFineTuning]) assert.ok(a >= 0 && a <= 1, String(a));
    }
    // The same metrics are kept with the round row in Postgres.
    const rows = await rt.ctx.prisma.round.findMany({ where: { jobId: job.id }, orderBy: { index: 'asc' } });
    assert.deepEqual(rows.map((r) => (r.metrics as unknown as RoundMetrics).filter!.filtersKept), f.map((x) => x.filtersKept));

    // Download the shrunken model, verified, into a fresh directory.
    const ticket = (await client.listArtifacts(job.id, { kind: 'ticket' })).filter((a) => a.name === 'ticket/model.json' || a.name === 'ticket/weights.bin');
    assert.deepEqual(ticket.map((a) => a.name).sort(), ['ticket/model.json', 'ticket/weights.bin']);
    const dir = await mkdtemp(join(t.dir, 'shrunk-'));
    for (const a of ticket) {
      const d = await client.download(a.id);
      assert.equal(d.status, 200);
      assert.equal(sha(d.bytes), a.sha256);
      await writeFile(join(dir, a.name.slice('ticket/'.length)), d.bytes);
    }
    const original = residualNet();
    const shrunk = await loadModelFrom(dir);
    try {
      assert.equal(countParams(shrunk), paramsFor(4));
      assert.ok(countParams(shrunk) < uploadedParams, 'fewer parameters than the upload');
      assert.deepEqual(shrunk.outputs[0]!.shape, original.outputs[0]!.shape);
      assert.deepEqual(shrunk.inputs[0]!.shape, [null, 28, 28, 1]);
      for (const conv of CONVS) {
        const layer = shrunk.getLayer(conv);
        const kernel = layer.getWeights()[0]!;
        assert.equal(kernel.shape[3], f[1]!.filtersKept[conv], `${conv} filters`);
        assert.equal(shrunk.getLayer(`${conv}_bn`).getWeights()[0]!.shape[0], f[1]!.filtersKept[conv], `${conv}_bn channels`);
      }
      assert.deepEqual(shrunk.getLayer('logits').getWeights()[0]!.shape, [4, 10]);

      // It predicts: finite logits for a batch, and the weights are the trained ones, not zeros.
      const batch = 16;
      const x = tf.randomUniform([batch, 28, 28, 1], 0, 1, 'float32', 3);
      const y = shrunk.predict(x) as tf.Tensor;
      assert.deepEqual(y.shape, [batch, 10]);
      const values = await y.data();
      assert.ok(values.every(Number.isFinite), 'finite logits');
      assert.ok(values.some((v) => v !== 0), 'non-zero logits');
      tf.dispose([x, y]);
    } finally {
      shrunk.dispose();
      original.dispose();
    }
  });
});

test('every REST response above matched the OpenAPI document', () => {
  assert.deepEqual(responses?.failures, []);
  assert.ok((responses?.checker.checked ?? 0) > 0);
});
