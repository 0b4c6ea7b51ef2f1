// The gRPC contract cannot drift from the one sources of truth: the proto's
// JobState enum is JOB_STATES, the RunSpec message has exactly the fields of
// RunSpecSchema (each optional, with matching types and enum values), the
// resource messages carry every DTO field; and the mapping survives a real
// protobuf encode/decode both ways.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { RunSpecSchema, resolveSpec } from '../../src/engine/spec.js';
import { JOB_STATES } from '../../src/store/states.js';
import { ArtifactSchema, DatasetSchema, EventSchema, JobProgressSchema, JobSchema, ModelSchema, RoundSchema, type JobDto, type RoundDto } from '../../src/service/dto.js';
import { enumValues, messageFields, packageDefinition } from '../../src/api/grpc/proto.js';
import {
  SPEC_FIELDS,
  UNMAPPED_SPEC_FIELDS,
  WireError,
  enumName,
  enumPrefix,
  fromValue,
  jobFromProto,
  jobStateFromProto,
  jobToProto,
  roundFromProto,
  roundToProto,
  specFields,
  specFromProto,
  specToProto,
  toValue,
} from '../../src/api/grpc/mapping.js';
import type { JobMessage, RoundMessage, RunSpecMessage, ValueMessage } from '../../src/api/grpc/messages.js';

/** A real protobuf round trip through the loaded contract. */
function wire<T>(type: string, value: unknown): T {
  const def = packageDefinition[`ticketsmith.v1.${type}`] ?? packageDefinition[type];
  assert.ok(def && 'serialize' in def && typeof def.serialize === 'function', type);
  const { serialize, deserialize } = def as unknown as { serialize: (v: unknown) => Buffer; deserialize: (b: Buffer) => T };
  return deserialize(serialize(value));
}

const INT_TYPES = new Set(['TYPE_INT32', 'TYPE_INT64', 'TYPE_UINT32', 'TYPE_UINT64', 'TYPE_SINT32', 'TYPE_SINT64']);

describe('JobState', () => {
  test('the proto enum is JOB_STATES, in order, behind an UNSPECIFIED zero', () => {
    assert.deepEqual(enumValues('JobState'), ['JOB_STATE_UNSPECIFIED', ...JOB_STATES.map((s) => `JOB_STATE_${s.toUpperCase()}`)]);
    assert.deepEqual(enumValues('JobState'), ['JOB_STATE_UNSPECIFIED', 'JOB_STATE_QUEUED', 'JOB_STATE_RUNNING', 'JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED']);
  });

  test('names map both ways; UNSPECIFIED is "none"; unknown values name the field', () => {
    for (const s of JOB_STATES) assert.equal(jobStateFromProto(enumName('JobState', s)), s);
    assert.equal(jobStateFromProto('JOB_STATE_UNSPECIFIED'), null);
    assert.equal(jobStateFromProto(0), null);
    assert.throws(() => jobStateFromProto(9, 'status'), (e: unknown) => e instanceof WireError && e.field === 'status');
    assert.throws(() => jobStateFromProto('JOB_STATE_DONE'), WireError);
  });
});

describe('RunSpec', () => {
  const proto = new Map(messageFields('RunSpec').map((f) => [f.name, f]));

  test('has exactly one field per RunSpecSchema field, and every schema field has a wire form', () => {
    assert.deepEqual([...proto.keys()].sort(), Object.keys(RunSpecSchema.shape).sort());
    assert.deepEqual(UNMAPPED_SPEC_FIELDS, [], 'zod types with no wire mapping: extend scalarOf in src/engine/spec/fields.ts');
    assert.equal(SPEC_FIELDS.length, Object.keys(RunSpecSchema.shape).length);
  });

  test('a zod type without a wire form is reported, not fatal', () => {
    const probe = specFields(z.object({ n: z.number().int().default(1), nested: z.object({ a: z.string() }), tags: z.array(z.string()) }));
    assert.deepEqual(probe.unmapped, ['nested']);
    assert.deepEqual(probe.fields.map((f) => [f.key, f.scalar, f.repeated]), [['n', 'int', false], ['tags', 'string', true]]);
  });

  test('every field has the schema type; scalars are proto3 optional, lists repeated, records maps', () => {
    for (const f of SPEC_FIELDS) {
      const p = proto.get(f.key)!;
      assert.equal(p.map !== null, f.map, `${f.key}: map`);
      if (f.map) {
        assert.equal(p.map!.key, 'TYPE_STRING', `${f.key}: map keys`);
        assert.ok(f.scalar === 'int' ? INT_TYPES.has(p.map!.value) : p.map!.value === 'TYPE_DOUBLE', `${f.key}: map values ${p.map!.value}`);
        continue;
      }
      assert.equal(p.repeated, f.repeated, `${f.key}: repeated`);
      if (!f.repeated) assert.ok(p.optional, `${f.key} must be proto3 optional so "unset" means the default`);
      if (f.scalar === 'int') assert.ok(INT_TYPES.has(p.type), `${f.key}: ${p.type} for an integer`);
      if (f.scalar === 'double') assert.equal(p.type, 'TYPE_DOUBLE', f.key);
      if (f.scalar === 'bool') assert.equal(p.type, 'TYPE_BOOL', f.key);
      if (f.scalar === 'string') assert.equal(p.type, 'TYPE_STRING', f.key);
      if (f.scalar === 'enum') {
        assert.equal(p.type, 'TYPE_ENUM', f.key);
        assert.deepEqual(enumValues(p.typeName), [`${enumPrefix(p.typeName)}_UNSPECIFIED`, ...f.options!.map((o) => enumName(p.typeName, o))], `${f.key} -> ${p.typeName}`);
      }
    }
  });

  test('the introspection sees the schema as written (hand-checked sample)', () => {
    const byKey = new Map(SPEC_FIELDS.map((f) => [f.key, f]));
    assert.deepEqual(byKey.get('rounds'), { key: 'rounds', scalar: 'int', repeated: false, map: false, options: null });
    assert.deepEqual(byKey.get('targetDensity'), { key: 'targetDensity', scalar: 'double', repeated: false, map: false, options: null });
    assert.deepEqual(byKey.get('schedule'), { key: 'schedule', scalar: 'enum', repeated: false, map: false, options: ['iterative', 'one-shot'] });
    assert.deepEqual(byKey.get('controlKinds'), { key: 'controlKinds', scalar: 'enum', repeated: true, map: false, options: ['reinit', 'shuffle'] });
    assert.deepEqual(byKey.get('skipLayers'), { key: 'skipLayers', scalar: 'string', repeated: true, map: false, options: null });
    assert.deepEqual(byKey.get('filterFractions'), { key: 'filterFractions', scalar: 'double', repeated: false, map: true, options: null });
    assert.equal(enumName('LrSchedule', 'cosine'), 'LR_SCHEDULE_COSINE');
    assert.equal(enumName('Rewind', 'learning-rate'), 'REWIND_LEARNING_RATE');
  });

  test('an empty message is "all defaults" after the wire; zeros and false that were set survive', () => {
    assert.deepEqual(specFromProto(wire<RunSpecMessage>('RunSpec', {})), {});
    assert.deepEqual(resolveSpec(specFromProto(wire<RunSpecMessage>('RunSpec', {}))), resolveSpec({}));
    const zeros = specFromProto(wire<RunSpecMessage>('RunSpec', { rounds: 0, seed: 0, float16: false, rewindIteration: 0 }));
    assert.deepEqual(zeros, { rounds: 0, rewindIteration: 0, seed: 0, float16: false });
  });

  test('a full spec crosses the wire both ways unchanged', () => {
    const spec = resolveSpec({
      model: 'conv-4', dataset: 'builtin:fashion-mnist', method: 'imp', rounds: 3, schedule: 'one-shot', targetDensity: 0.25, ranking: 'global',
      fraction: 0.3, skipLayers: ['conv1', 'conv2'], rewind: 'learning-rate', rewindFraction: 0.05, controls: 'last', controlKinds: ['shuffle'],
      optimizer: 'momentum', learningRate: 0.01, momentum: 0.8, lrSchedule: 'cosine', warmupIterations: 10, batchSize: 32, iterations: 400,
      epochs: 1.5, evalEvery: 20, maxTrainExamples: 1000, seed: 2 ** 40, float16: true,
    });
    const msg = specToProto(spec);
    assert.equal(msg.schedule, 'SCHEDULE_ONE_SHOT');
    assert.equal(msg.rewind, 'REWIND_LEARNING_RATE');
    assert.deepEqual(msg.controlKinds, ['CONTROL_KIND_SHUFFLE']);
    const back = specFromProto(wire<RunSpecMessage>('RunSpec', msg));
    assert.deepEqual(back, spec);
    assert.deepEqual(resolveSpec(back), spec);
  });

  test('a filter-pruning spec with per-layer fractions crosses the wire unchanged', () => {
    const spec = resolveSpec({
      model: 'vgg-11', dataset: 'builtin:mnist', method: 'filter', filterImportance: 'l2', filterFractions: { conv1: 0.5, conv8: 0.25 },
      filterSchedule: 'iterative', filterSteps: 3, fineTuneIterations: 0, pretrain: false, sensitivity: true, thenImp: true,
    });
    const msg = specToProto(spec);
    assert.equal(msg.filterSchedule, 'FILTER_SCHEDULE_ITERATIVE');
    assert.deepEqual(msg.filterFractions, { conv1: 0.5, conv8: 0.25 });
    // A resolved spec's empty lists are values (Job.spec), hence emptyLists.
    assert.deepEqual(specFromProto(wire<RunSpecMessage>('RunSpec', msg), 'spec', { emptyLists: true }), spec);
    assert.deepEqual(specFromProto(wire<RunSpecMessage>('RunSpec', { filterFractions: {} })), {}, 'an empty map is unset');
  });

  test('unknown enum numbers and UNSPECIFIED list entries are refused naming the field; UNSPECIFIED scalars are unset', () => {
    assert.throws(() => specFromProto(wire<RunSpecMessage>('RunSpec', { method: 7 })), (e: unknown) => e instanceof WireError && e.field === 'spec.method');
    assert.throws(
      () => specFromProto(wire<RunSpecMessage>('RunSpec', { controlKinds: ['CONTROL_KIND_REINIT', 'CONTROL_KIND_UNSPECIFIED'] })),
      (e: unknown) => e instanceof WireError && e.field === 'spec.controlKinds[1]',
    );
    assert.deepEqual(specFromProto(wire<RunSpecMessage>('RunSpec', { optimizer: 'OPTIMIZER_UNSPECIFIED' })), {});
    assert.throws(() => specToProto({ method: 'prune-harder' }), (e: unknown) => e instanceof WireError && e.field === 'spec.method');
    assert.throws(() => specToProto({ bogus: 1 }), (e: unknown) => e instanceof WireError && e.field === 'spec.bogus');
  });
});

describe('resource messages carry every DTO field', () => {
  const pairs: Array<[string, z.ZodObject]> = [
    ['Job', JobSchema],
    ['JobProgress', JobProgressSchema],
    ['Round', RoundSchema],
    ['JobEvent', EventSchema],
    ['Artifact', ArtifactSchema],
    ['Model', ModelSchema],
    ['Dataset', DatasetSchema],
  ];
  for (const [message, schema] of pairs) {
    test(`${message} = ${Object.keys(schema.shape).length} DTO fields; nullable ones have presence`, () => {
      const fields = new Map(messageFields(message).map((f) => [f.name, f]));
      assert.deepEqual([...fields.keys()].sort(), Object.keys(schema.shape).sort());
      for (const [key, s] of Object.entries(schema.shape)) {
        if (!(s instanceof z.ZodNullable)) continue;
        const f = fields.get(key)!;
        assert.ok(f.optional || f.type === 'TYPE_MESSAGE', `${message}.${key} is nullable: it must be optional or a message`);
      }
    });
  }
});

describe('mapping over the wire', () => {
  test('JSON values (Struct/Value) survive, nested', () => {
    const doc = { a: 1.5, b: 'x', c: true, d: null, e: [1, 'two', { f: [] }], g: { h: { i: -3 } } };
    assert.deepEqual(fromValue(wire<ValueMessage>('google.protobuf.Value', toValue(doc))), doc);
    assert.deepEqual(fromValue(wire<ValueMessage>('google.protobuf.Value', toValue([]))), []);
    assert.equal(fromValue(wire<ValueMessage>('google.protobuf.Value', toValue(0))), 0);
  });

  test('a job and a round come back as the same DTOs', () => {
    const job: JobDto = {
      id: '6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11',
      status: 'running',
      runName: 'imp_0123456789ab',
      specHash: 'ab'.repeat(32),
      spec: resolveSpec({ model: 'lenet-300-100', rounds: 2, iterations: 20 }),
      modelId: null,
      datasetId: '7f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11',
      progress: { round: 1, rounds: 2, roundsCompleted: 1, trial: 'ticket', step: 0, totalSteps: 20, examplesPerSecond: 0, etaSeconds: null, updatedAt: '2025-01-01T00:00:00.000Z' },
      backend: null,
      error: null,
      result: { verdict: { summary: 'ok', roundsCompared: [1] } },
      attempts: 1,
      idempotencyKey: 'k-1',
      cancelRequested: false,
      createdAt: '2025-01-01T00:00:00.000Z',
      startedAt: '2025-01-01T00:00:01.000Z',
      finishedAt: null,
    };
    assert.deepEqual(jobFromProto(wire<JobMessage>('Job', jobToProto(job))), job);
    const failed: JobDto = { ...job, status: 'failed', progress: null, result: null, error: { code: 'ENGINE_ERROR', message: 'boom' }, idempotencyKey: null };
    assert.deepEqual(jobFromProto(wire<JobMessage>('Job', jobToProto(failed))), failed);

    const round: RoundDto = {
      index: 1, density: 0.8, sparsity: 0.2, layerDensity: { 'fc1/kernel': 0.8, 'out/kernel': 0.9 }, testAccuracy: 0.91, testLoss: 0.3,
      earlyStopIteration: 40, earlyStopTestAccuracy: 0.9, earlyStopValidationLoss: 0.25, paramsRemaining: 640, paramsTotal: 1000, flops: null,
      denseBytes: 4000, compressedBytes: 3200, durationSeconds: 1.25, examplesPerSecond: 1234.5, backend: 'cpu', trainingLoop: 'mlp-simd',
      controls: { reinit: { finalTestAccuracy: 0.5 } }, validationCurve: [[10, 0.5, 0.8], [20, 0.3, 0.9]], filter: null, createdAt: '2025-01-01T00:00:02.000Z',
    };
    assert.deepEqual(roundFromProto(wire<RoundMessage>('Round', roundToProto(round))), round);
    const unrecorded: RoundDto = { ...round, trainingLoop: null };
    assert.deepEqual(roundFromProto(wire<RoundMessage>('Round', roundToProto(unrecorded))), unrecorded);
    const step: RoundDto = { ...round, filter: { filtersKept: { conv1: 4, conv2: 8 }, latencyBatch64Ms: 12.5 } };
    assert.deepEqual(roundFromProto(wire<RoundMessage>('Round', roundToProto(step))), step);
    assert.equal(roundFromProto(wire<RoundMessage>('Round', roundToProto({ ...round, flops: 0 }))).flops, 0, 'flops 0 is not "unknown"');
  });
});
