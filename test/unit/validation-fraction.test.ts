// validationFraction, the share of the training set held out for validation
// (fixed at 10% before it was a spec field): its default leaves every old run
// name as it was, its bounds are the schema's, it crosses the CLI and the gRPC
// wire, and the engine splits the data by it (IMP and filter runs alike).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalSpec, resolveSpec, RUN_SPEC_FIELDS, runName, SpecError } from '../../src/engine/spec.js';
import { loadDataset, DEFAULT_VALIDATION_FRACTION } from '../../src/engine/data/index.js';
import { runCompression } from '../../src/engine/run.js';
import type { EngineEvent } from '../../src/engine/sink.js';
import { FileSink } from '../../src/engine/sinks/file.js';
import { flagsOf, parseFlags } from '../../src/cli/flags.js';
import { RunSpecSchema } from '../../src/engine/spec.js';
import { specFromProto, specToProto } from '../../src/api/grpc/mapping.js';
import { packageDefinition } from '../../src/api/grpc/proto.js';
import type { RunSpecMessage } from '../../src/api/grpc/messages.js';
import { checkSpecFields } from '../../src/service/checks.js';
import { initBackend } from '../../src/runtime/backend.js';
import { saveModelTo } from '../../src/engine/models/load.js';
import * as tf from '@tensorflow/tfjs';

/** Run names computed at the commit before validationFraction existed. */
const NAMES_BEFORE: Array<[Record<string, unknown>, string]> = [
  [{}, 'imp_69757e001ca2'],
  [{ model: 'conv-2', rounds: 3, dataset: 'builtin:mnist' }, 'imp_d0a13c99b4cc'],
  [{ method: 'filter', model: 'vgg-11', filterFraction: 0.5 }, 'filter_fd43eaf41c86'],
];

describe('run names', () => {
  test('absent or at its default 0.1, the name is the one it was before the field existed', () => {
    for (const [spec, name] of NAMES_BEFORE) {
      assert.equal(runName(resolveSpec(spec)), name, JSON.stringify(spec));
      assert.equal(runName(resolveSpec({ ...spec, validationFraction: 0.1 })), name, JSON.stringify(spec));
      assert.equal(canonicalSpec(resolveSpec({ ...spec, validationFraction: 0.1 })).validationFraction, undefined);
    }
  });

  test('any other value names another run', () => {
    const [spec, name] = NAMES_BEFORE[1]!;
    const other = resolveSpec({ ...spec, validationFraction: 0.2 });
    assert.notEqual(runName(other), name);
    assert.equal(canonicalSpec(other).validationFraction, 0.2);
    assert.notEqual(runName(other), runName(resolveSpec({ ...spec, validationFraction: 0.25 })));
  });
});

describe('the field', () => {
  test('defaults to the data layer default, bounded to [0.01, 0.5], in the training concern', () => {
    assert.equal(resolveSpec({}).validationFraction, 0.1);
    assert.equal(DEFAULT_VALIDATION_FRACTION, 0.1);
    const f = RUN_SPEC_FIELDS.find((d) => d.name === 'validationFraction')!;
    assert.deepEqual(
      { kind: f.kind, min: f.min, max: f.max, default: f.default, concern: f.concern },
      { kind: 'number', min: { value: 0.01, exclusive: false }, max: { value: 0.5, exclusive: false }, default: 0.1, concern: 'training' },
    );
    for (const ok of [0.01, 0.2, 0.5]) assert.equal(resolveSpec({ validationFraction: ok }).validationFraction, ok);
    for (const bad of [0, 0.009, 0.51, 1, -0.1, '0.2']) {
      assert.throws(
        () => resolveSpec({ validationFraction: bad }),
        (e: unknown) => e instanceof SpecError && e.field === 'validationFraction' && e.message.startsWith('validationFraction: '),
        String(bad),
      );
    }
  });

  test('the CLI flag and the gRPC field carry it', () => {
    assert.deepEqual(parseFlags(['--validation-fraction', '0.2'], flagsOf(RunSpecSchema)).spec, { validationFraction: 0.2 });
    const def = packageDefinition['ticketsmith.v1.RunSpec'] as unknown as { serialize: (v: unknown) => Buffer; deserialize: (b: Buffer) => RunSpecMessage };
    const msg = def.deserialize(def.serialize(specToProto({ validationFraction: 0.2 })));
    assert.deepEqual(specFromProto(msg), { validationFraction: 0.2 });
    assert.deepEqual(specFromProto(def.deserialize(def.serialize({}))), {}, 'unset on the wire: the default applies');
  });

  test('the submit check counts the training examples the chosen share leaves', () => {
    const spec = { maxTrainExamples: 20, batchSize: 15 };
    assert.doesNotThrow(() => checkSpecFields(resolveSpec(spec)), '18 examples train at the default 10%');
    assert.throws(() => checkSpecFields(resolveSpec({ ...spec, validationFraction: 0.5 })), (e: unknown) => (e as { field?: string }).field === 'batchSize' && /10 training examples/.test(String(e)));
  });
});

describe('the engine splits by it', () => {
  before(async () => {
    await initBackend();
  });

  test('the data split: 0.2 of a 500-example pool is 100 validation examples', async () => {
    const split = async (spec: Record<string, unknown>) => {
      const s = resolveSpec({ maxTrainExamples: 500, ...spec });
      return loadDataset(s.dataset, { seed: s.seed, maxTrain: s.maxTrainExamples, validationFraction: s.validationFraction });
    };
    const [dflt, wider] = [await split({}), await split({ validationFraction: 0.2 })];
    assert.deepEqual([dflt.train.n, dflt.validation.n], [450, 50]);
    assert.deepEqual([wider.train.n, wider.validation.n], [400, 100]);
  });

  /** Training steps per epoch the engine plans for `spec`: train.n / batchSize, so it shows the split it made. */
  async function stepsOfOneEpoch(spec: Record<string, unknown>): Promise<number> {
    const dir = await mkdtemp(join(tmpdir(), 'ts-vf-'));
    try {
      const events: EngineEvent[] = [];
      await runCompression(
        { dataset: 'builtin:mnist', maxTrainExamples: 100, epochs: 1, batchSize: 10, evalEvery: 1, rounds: 0, controls: 'none', ...spec },
        { sink: new FileSink(dir), parallelism: 1, onEvent: (e) => events.push(e) },
      );
      const totals = new Set(events.flatMap((e) => (e.kind === 'progress' ? [e.totalSteps] : [])));
      assert.equal(totals.size, 1, `one training length: ${[...totals].join(', ')}`);
      return [...totals][0]!;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  test('an IMP run trains on what the split leaves: 90 examples at 0.1, 50 at 0.5', async () => {
    assert.equal(await stepsOfOneEpoch({ model: 'lenet-30-10' }), 9);
    assert.equal(await stepsOfOneEpoch({ model: 'lenet-30-10', validationFraction: 0.5 }), 5);
  });

  test('a filter run pre-trains on what the split leaves', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ts-vf-model-'));
    try {
      // A conv net small enough that pre-training, the latency profile and the test pass take a moment.
      const m = tf.sequential({ name: 'tiny-conv' });
      m.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3, strides: 2, activation: 'relu', name: 'conv1' }));
      m.add(tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: 'relu', name: 'conv2' }));
      m.add(tf.layers.flatten({ name: 'flatten' }));
      m.add(tf.layers.dense({ units: 10, name: 'out' }));
      await saveModelTo(m, join(dir, 'model'));
      m.dispose();
      const filter = { model: join(dir, 'model'), method: 'filter', filterFraction: 0.5, fineTuneIterations: 0 };
      assert.equal(await stepsOfOneEpoch(filter), 9);
      assert.equal(await stepsOfOneEpoch({ ...filter, validationFraction: 0.5 }), 5);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
