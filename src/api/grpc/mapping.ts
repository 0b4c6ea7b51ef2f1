// The one translation between ticketsmith.v1 messages and the service's JSON
// shapes, both ways (the server answers with it, the client reads with it):
// the RunSpec message <-> RunSpecSchema JSON, derived field by field from the
// schema's field descriptors (engine/spec/fields.ts) so a new spec field needs
// only a proto field; proto enums
// <-> schema strings by name; google.protobuf.Struct/Value <-> JSON; and each
// DTO (job, round, event, artifact, model, dataset) <-> its message.
//
// From the service this module loads only dto.ts at run time (the job states;
// the rest is types), so the client can use it without pulling in the
// database layer (test/unit/client-imports.test.ts). Bad input raises
// WireError naming the field; the server turns it into INVALID_ARGUMENT.
import type { z } from 'zod';
import { describeFields, RUN_SPEC_FIELDS, RunSpecSchema, UNSUPPORTED_SPEC_FIELDS, type FieldDescriptor, type ScalarKind } from '../../engine/spec.js';
import type { ArtifactDto, DatasetDto, EventDto, JobDto, JobState, ModelDto, RoundDto } from '../../service/index.js';
import { JOB_STATES } from '../../service/dto.js';
import { messageFields } from './proto.js';
import type {
  ArtifactMessage,
  DatasetMessage,
  EnumWire,
  JobEventMessage,
  JobMessage,
  JobProgressMessage,
  JsonValue,
  ModelMessage,
  RoundMessage,
  RunSpecMessage,
  SpecWireValue,
  StructMessage,
  ValueMessage,
} from './messages.js';

/** A message field that cannot be mapped; `field` is its lowerCamelCase path. */
export class WireError extends Error {
  override name = 'WireError';

  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

// ---- enums ---------------------------------------------------------------

/** 'LrSchedule' -> 'LR_SCHEDULE': the prefix every value of that enum carries. */
export function enumPrefix(enumType: string): string {
  return enumType.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** The proto name of a schema string: enumName('Schedule', 'one-shot') = 'SCHEDULE_ONE_SHOT'. */
export function enumName(enumType: string, value: string): string {
  return `${enumPrefix(enumType)}_${value.toUpperCase().replace(/-/g, '_')}`;
}

/**
 * The schema string a proto enum value stands for, null for the UNSPECIFIED
 * zero ("not set"); WireError for a name outside `options` or a bare number
 * (a value this contract does not define).
 */
export function enumFromWire(enumType: string, wire: EnumWire, options: readonly string[], field: string): string | null {
  if (wire === 0 || wire === `${enumPrefix(enumType)}_UNSPECIFIED`) return null;
  const hit = typeof wire === 'string' ? options.find((o) => enumName(enumType, o) === wire) : undefined;
  if (hit === undefined) {
    throw new WireError(field, `unknown ${enumType} value ${JSON.stringify(wire)}; expected one of ${options.map((o) => enumName(enumType, o)).join(', ')}`);
  }
  return hit;
}

export function jobStateToProto(state: JobState): string {
  return enumName('JobState', state);
}

export function jobStateFromProto(wire: EnumWire, field = 'status'): JobState | null {
  return enumFromWire('JobState', wire, JOB_STATES, field) as JobState | null;
}

// ---- the run spec --------------------------------------------------------

export type SpecScalar = 'string' | 'int' | 'double' | 'bool' | 'enum';

/** One RunSpecSchema field as the wire sees it. */
export interface SpecField {
  key: string;
  /** The type of the value, of each list entry, or of each map value. */
  scalar: SpecScalar;
  repeated: boolean;
  /** A string-keyed record (a proto map<string, _>). */
  map: boolean;
  /** The allowed strings of an enum field. */
  options: readonly string[] | null;
}

const SCALARS: Record<ScalarKind, SpecScalar> = { string: 'string', int: 'int', number: 'double', boolean: 'bool', enum: 'enum' };

/** A field descriptor as the wire sees it: lists are repeated fields, maps proto maps. */
export function specFieldOf(f: FieldDescriptor): SpecField {
  return { key: f.name, repeated: f.kind === 'list', map: f.kind === 'map', scalar: SCALARS[f.item], options: f.values };
}

/**
 * The wire view of every field of a zod object schema (RunSpecSchema by
 * default), and the keys whose type has no wire form yet (no descriptor kind
 * fits it; the contract test fails while any is left, the service runs).
 */
export function specFields(schema: z.ZodObject = RunSpecSchema): { fields: SpecField[]; unmapped: string[] } {
  const { fields, unsupported } = describeFields(schema);
  return { fields: fields.map(specFieldOf), unmapped: unsupported };
}

export const SPEC_FIELDS: readonly SpecField[] = Object.freeze(RUN_SPEC_FIELDS.map(specFieldOf));
export const UNMAPPED_SPEC_FIELDS: readonly string[] = UNSUPPORTED_SPEC_FIELDS;

/** RunSpec enum fields -> their proto enum type, read from the contract. */
const SPEC_ENUM_TYPES: ReadonlyMap<string, string> = new Map(
  messageFields('RunSpec')
    .filter((f) => f.type === 'TYPE_ENUM')
    .map((f) => [f.name, f.typeName]),
);

function enumTypeOf(key: string): string {
  const t = SPEC_ENUM_TYPES.get(key);
  if (!t) throw new WireError(`spec.${key}`, 'not an enum field of RunSpec in this contract');
  return t;
}

/**
 * A RunSpec message -> the schema's JSON input: only the fields that are set
 * (absent, UNSPECIFIED and empty lists are left out, so the schema's defaults
 * apply). Values are not validated here: RunSpecSchema does that, once.
 * `emptyLists` is for resolved specs (Job.spec), where an empty list is a value.
 */
export function specFromProto(msg: RunSpecMessage | null | undefined, path = 'spec', opts: { emptyLists?: boolean } = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!msg) return out;
  for (const f of SPEC_FIELDS) {
    const wire = msg[f.key];
    const field = `${path}.${f.key}`;
    if (f.repeated) {
      if (!Array.isArray(wire) || wire.length === 0) {
        if (opts.emptyLists) out[f.key] = [];
        continue;
      }
      out[f.key] =
        f.scalar === 'enum'
          ? wire.map((w, i) => enumFromWire(enumTypeOf(f.key), w, f.options!, `${field}[${i}]`) ?? invalidUnspecified(`${field}[${i}]`))
          : [...wire];
      continue;
    }
    if (wire === undefined || wire === null) continue;
    if (f.map) {
      // An empty map cannot be told from an unset one on the wire: both mean the default.
      if (typeof wire === 'object' && !Array.isArray(wire) && Object.keys(wire).length > 0) out[f.key] = { ...wire };
      continue;
    }
    if (f.scalar === 'enum') {
      const value = enumFromWire(enumTypeOf(f.key), wire as EnumWire, f.options!, field);
      if (value !== null) out[f.key] = value;
      continue;
    }
    out[f.key] = wire;
  }
  return out;
}

function invalidUnspecified(field: string): never {
  throw new WireError(field, 'UNSPECIFIED is not a value');
}

/**
 * Schema JSON (input or resolved spec) -> a RunSpec message; unknown keys and
 * enum strings are WireErrors. `lenient` skips them instead: a stored job's
 * spec written before a schema change must still be readable.
 */
export function specToProto(spec: Record<string, unknown>, path = 'spec', opts: { lenient?: boolean } = {}): RunSpecMessage {
  if (opts.lenient) {
    const out: RunSpecMessage = {};
    for (const [key, value] of Object.entries(spec)) {
      try {
        Object.assign(out, specToProto({ [key]: value }, path));
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
      }
    }
    return out;
  }
  const byKey = new Map(SPEC_FIELDS.map((f) => [f.key, f]));
  const out: RunSpecMessage = {};
  for (const [key, value] of Object.entries(spec)) {
    const f = byKey.get(key);
    if (!f) throw new WireError(`${path}.${key}`, 'not a run spec field');
    if (value === undefined || value === null) continue;
    const field = `${path}.${key}`;
    const one = (v: unknown, where: string): string | number | boolean => {
      if (f.scalar === 'enum') {
        if (typeof v !== 'string' || !f.options!.includes(v)) throw new WireError(where, `expected one of ${f.options!.join(', ')}`);
        return enumName(enumTypeOf(key), v);
      }
      const want = f.scalar === 'bool' ? 'boolean' : f.scalar === 'string' ? 'string' : 'number';
      if (typeof v !== want) throw new WireError(where, `expected a ${want}`);
      return v as string | number | boolean;
    };
    if (f.repeated) {
      if (!Array.isArray(value)) throw new WireError(field, 'expected a list');
      out[key] = value.map((v, i) => one(v, `${field}[${i}]`)) as SpecWireValue;
    } else if (f.map) {
      if (typeof value !== 'object' || Array.isArray(value)) throw new WireError(field, 'expected an object of name -> value');
      if (f.scalar !== 'double' && f.scalar !== 'int') throw new WireError(field, 'only number-valued maps are mapped');
      out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, one(v, `${field}.${k}`) as number]));
    } else {
      out[key] = one(value, field);
    }
  }
  return out;
}

// ---- google.protobuf.Struct / Value --------------------------------------

export function toValue(x: unknown): ValueMessage {
  if (x === null || x === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof x === 'number') return { numberValue: x };
  if (typeof x === 'string') return { stringValue: x };
  if (typeof x === 'boolean') return { boolValue: x };
  if (Array.isArray(x)) return { listValue: { values: x.map(toValue) } };
  if (typeof x === 'object') return { structValue: toStruct(x as Record<string, unknown>) };
  return { stringValue: String(x) };
}

export function toStruct(obj: Record<string, unknown>): StructMessage {
  const fields: Record<string, ValueMessage> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) fields[k] = toValue(v);
  return { fields };
}

export function fromValue(v: ValueMessage | null | undefined): JsonValue {
  if (!v) return null;
  const kind = v.kind ?? (['numberValue', 'stringValue', 'boolValue', 'structValue', 'listValue'] as const).find((k) => v[k] !== undefined);
  switch (kind) {
    case 'numberValue':
      return v.numberValue ?? 0;
    case 'stringValue':
      return v.stringValue ?? '';
    case 'boolValue':
      return v.boolValue ?? false;
    case 'structValue':
      return fromStruct(v.structValue);
    case 'listValue':
      return (v.listValue?.values ?? []).map(fromValue);
    default:
      return null;
  }
}

export function fromStruct(s: StructMessage | null | undefined): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = fromValue(v);
  return out;
}

// ---- DTOs <-> messages ---------------------------------------------------

const opt = <T>(x: T | null | undefined): T | undefined => (x === null ? undefined : x);
const nul = <T>(x: T | null | undefined): T | null => (x === undefined ? null : x);

export function jobToProto(j: JobDto): JobMessage {
  const p = j.progress;
  const progress: JobProgressMessage | null = p
    ? {
        round: p.round,
        rounds: opt(p.rounds),
        roundsCompleted: p.roundsCompleted,
        trial: opt(p.trial),
        step: p.step,
        totalSteps: p.totalSteps,
        examplesPerSecond: p.examplesPerSecond,
        etaSeconds: opt(p.etaSeconds),
        updatedAt: p.updatedAt,
      }
    : null;
  return {
    id: j.id,
    status: jobStateToProto(j.status),
    runName: j.runName,
    specHash: j.specHash,
    spec: specToProto(j.spec, 'spec', { lenient: true }),
    modelId: opt(j.modelId),
    datasetId: opt(j.datasetId),
    progress,
    backend: opt(j.backend),
    error: j.error,
    result: j.result ? toStruct(j.result) : null,
    attempts: j.attempts,
    idempotencyKey: opt(j.idempotencyKey),
    cancelRequested: j.cancelRequested,
    createdAt: j.createdAt,
    startedAt: opt(j.startedAt),
    finishedAt: opt(j.finishedAt),
  };
}

export function jobFromProto(m: JobMessage): JobDto {
  const p = m.progress;
  return {
    id: m.id,
    status: jobStateFromProto(m.status) ?? 'queued',
    runName: m.runName,
    specHash: m.specHash,
    spec: specFromProto(m.spec, 'spec', { emptyLists: true }),
    modelId: nul(m.modelId),
    datasetId: nul(m.datasetId),
    progress: p
      ? {
          round: p.round,
          rounds: nul(p.rounds),
          roundsCompleted: p.roundsCompleted,
          trial: nul(p.trial) as NonNullable<JobDto['progress']>['trial'],
          step: p.step,
          totalSteps: p.totalSteps,
          examplesPerSecond: p.examplesPerSecond,
          etaSeconds: nul(p.etaSeconds),
          updatedAt: p.updatedAt,
        }
      : null,
    backend: nul(m.backend),
    error: m.error ? { code: m.error.code, message: m.error.message } : null,
    result: m.result ? fromStruct(m.result) : null,
    attempts: m.attempts,
    idempotencyKey: nul(m.idempotencyKey),
    cancelRequested: m.cancelRequested,
    createdAt: m.createdAt,
    startedAt: nul(m.startedAt),
    finishedAt: nul(m.finishedAt),
  };
}

export function roundToProto(r: RoundDto): RoundMessage {
  return {
    ...r,
    flops: opt(r.flops),
    controls: toStruct(r.controls),
    validationCurve: r.validationCurve.map(([iteration, validationLoss, validationAccuracy]) => ({ iteration, validationLoss, validationAccuracy })),
    filter: r.filter ? toStruct(r.filter) : undefined,
    trainingLoop: opt(r.trainingLoop),
  };
}

export function roundFromProto(m: RoundMessage): RoundDto {
  return {
    index: m.index,
    density: m.density,
    sparsity: m.sparsity,
    layerDensity: { ...m.layerDensity },
    testAccuracy: m.testAccuracy,
    testLoss: m.testLoss,
    earlyStopIteration: m.earlyStopIteration,
    earlyStopTestAccuracy: m.earlyStopTestAccuracy,
    earlyStopValidationLoss: m.earlyStopValidationLoss,
    paramsRemaining: m.paramsRemaining,
    paramsTotal: m.paramsTotal,
    flops: nul(m.flops),
    denseBytes: m.denseBytes,
    compressedBytes: m.compressedBytes,
    durationSeconds: m.durationSeconds,
    examplesPerSecond: m.examplesPerSecond,
    backend: m.backend,
    controls: fromStruct(m.controls),
    validationCurve: m.validationCurve.map((c) => [c.iteration, c.validationLoss, c.validationAccuracy] as [number, number, number]),
    filter: m.filter ? fromStruct(m.filter) : null,
    trainingLoop: nul(m.trainingLoop),
    createdAt: m.createdAt,
  };
}

export function eventToProto(e: EventDto): JobEventMessage {
  return { id: e.id, jobId: e.jobId, time: e.time, kind: e.kind, payload: toValue(e.payload) };
}

export function eventFromProto(m: JobEventMessage): EventDto {
  return { id: m.id, jobId: m.jobId, time: m.time, kind: m.kind, payload: fromValue(m.payload) };
}

export function artifactToProto(a: ArtifactDto): ArtifactMessage {
  return { ...a, jobId: opt(a.jobId), roundIndex: opt(a.roundIndex), modelId: opt(a.modelId) };
}

export function artifactFromProto(m: ArtifactMessage): ArtifactDto {
  return {
    id: m.id,
    jobId: nul(m.jobId),
    roundIndex: nul(m.roundIndex),
    modelId: nul(m.modelId),
    kind: m.kind,
    name: m.name,
    sha256: m.sha256,
    size: m.size,
    mediaType: m.mediaType,
    createdAt: m.createdAt,
  };
}

export function modelToProto(m: ModelDto): ModelMessage {
  return { ...m, architecture: toStruct(m.architecture), files: m.files.map((f) => ({ ...f })) };
}

export function modelFromProto(m: ModelMessage): ModelDto {
  return {
    id: m.id,
    name: m.name,
    format: m.format,
    sha256: m.sha256,
    size: m.size,
    architecture: fromStruct(m.architecture),
    files: m.files.map((f) => ({ name: f.name, sha256: f.sha256, size: f.size })),
    createdAt: m.createdAt,
  };
}

export function datasetToProto(d: DatasetDto): DatasetMessage {
  return { ...d, shapes: toStruct(d.shapes), sha256: opt(d.sha256) };
}

export function datasetFromProto(m: DatasetMessage): DatasetDto {
  return { id: m.id, reference: m.reference, format: m.format, shapes: fromStruct(m.shapes), sha256: nul(m.sha256), createdAt: m.createdAt };
}
