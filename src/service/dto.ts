// What the service returns, as zod schemas (the doors derive the OpenAPI
// document and the proto mapping from them) and the mappers from database
// rows. Plain JSON only: ids are strings, counts are numbers, times ISO 8601.
import { z } from 'zod';
import type { ArtifactRow } from '../store/artifacts.js';
import type { DatasetRow } from '../store/datasets.js';
import type { Prisma } from '../store/db.js';
import type { EventRow } from '../store/events.js';
import type { JobRow, RoundRow } from '../store/jobs.js';
import type { ApiKeyRow } from '../store/keys.js';
import type { ModelRow } from '../store/models.js';
import { JOB_STATES, type JobState } from '../store/states.js';

/** For the doors' wire mappings, which import this module and not the service's index (the client shares them). */
export { JOB_STATES };

const isoTime = z.string().describe('ISO 8601 time');
const json = z.unknown();

export const JobErrorSchema = z.object({ code: z.string(), message: z.string() });

export const JobProgressSchema = z.object({
  round: z.number().int(),
  rounds: z.number().int().nullable(),
  roundsCompleted: z.number().int(),
  trial: z.enum(['ticket', 'reinit', 'shuffle']).nullable(),
  step: z.number().int(),
  totalSteps: z.number().int(),
  examplesPerSecond: z.number(),
  etaSeconds: z.number().nullable(),
  updatedAt: isoTime,
});

export const JobSchema = z.object({
  id: z.string().uuid(),
  status: z.enum(JOB_STATES),
  runName: z.string(),
  specHash: z.string(),
  spec: z.record(z.string(), json).describe('The resolved run spec (defaults filled in)'),
  modelId: z.string().uuid().nullable(),
  datasetId: z.string().uuid().nullable(),
  progress: JobProgressSchema.nullable(),
  backend: z.string().nullable(),
  error: JobErrorSchema.nullable(),
  result: z.record(z.string(), json).nullable().describe('Verdict and summary once succeeded'),
  attempts: z.number().int(),
  idempotencyKey: z.string().nullable(),
  cancelRequested: z.boolean(),
  createdAt: isoTime,
  startedAt: isoTime.nullable(),
  finishedAt: isoTime.nullable(),
});
export type JobDto = z.infer<typeof JobSchema>;

export const RoundSchema = z.object({
  index: z.number().int(),
  density: z.number(),
  sparsity: z.number(),
  layerDensity: z.record(z.string(), z.number()),
  testAccuracy: z.number(),
  testLoss: z.number(),
  earlyStopIteration: z.number().int(),
  earlyStopTestAccuracy: z.number(),
  earlyStopValidationLoss: z.number(),
  paramsRemaining: z.number().int(),
  paramsTotal: z.number().int(),
  flops: z.number().int().nullable(),
  denseBytes: z.number().int(),
  compressedBytes: z.number().int(),
  durationSeconds: z.number(),
  examplesPerSecond: z.number(),
  backend: z.string(),
  trainingLoop: z
    .string()
    .nullable()
    .describe("Loop that trained the ticket: 'tfjs' (TF.js kernels on the backend) or 'mlp-simd' / 'mlp-csr' (Ticketsmith's WebAssembly MLP engines) or 'cnn-simd' / 'cnn-sparse' (its conv engine; cnn-sparse: some conv or dense layers trained on their surviving weights only); null if not recorded"),
  controls: z.record(z.string(), json),
  validationCurve: z.array(z.tuple([z.number(), z.number(), z.number()])),
  /** Filter-pruning steps only: filters kept per layer, latency, model bytes, accuracy before/after pruning and fine-tuning. */
  filter: z.record(z.string(), json).nullable(),
  createdAt: isoTime,
});
export type RoundDto = z.infer<typeof RoundSchema>;

export const ArtifactSchema = z.object({
  id: z.string().uuid(),
  jobId: z.string().uuid().nullable(),
  roundIndex: z.number().int().nullable(),
  modelId: z.string().uuid().nullable(),
  kind: z.string().describe("'round' | 'ticket' | 'result' | 'plot' | 'model-file' | 'dataset-file' | 'state'"),
  name: z.string(),
  sha256: z.string(),
  size: z.number().int(),
  mediaType: z.string(),
  createdAt: isoTime,
});
export type ArtifactDto = z.infer<typeof ArtifactSchema>;

export const EventSchema = z.object({
  id: z.number().int().describe('Increasing per job: resume a stream after the last id seen'),
  jobId: z.string().uuid(),
  time: isoTime,
  kind: z.string().describe("'queued' | 'started' | 'run-start' | 'round-start' | 'progress' | 'trial-end' | 'round-end' | 'round' | 'result' | 'run-end' | 'cancel-requested' | 'requeued' | 'finished'"),
  payload: json,
});
export type EventDto = z.infer<typeof EventSchema>;

export const ModelFileSchema = z.object({ name: z.string(), sha256: z.string(), size: z.number().int() });

export const ModelSchema = z.object({
  id: z.string().uuid(),
  name: z.string(),
  format: z.string(),
  sha256: z.string(),
  size: z.number().int(),
  architecture: z.record(z.string(), json),
  files: z.array(ModelFileSchema),
  createdAt: isoTime,
});
export type ModelDto = z.infer<typeof ModelSchema>;

export const DatasetSchema = z.object({
  id: z.string().uuid(),
  reference: z.string(),
  format: z.string(),
  shapes: z.record(z.string(), json),
  sha256: z.string().nullable(),
  createdAt: isoTime,
});
export type DatasetDto = z.infer<typeof DatasetSchema>;

export const ApiKeySchema = z.object({
  id: z.string().uuid(),
  tenant: z.string(),
  prefix: z.string(),
  createdAt: isoTime,
  lastUsedAt: isoTime.nullable(),
  revokedAt: isoTime.nullable(),
});
export type ApiKeyDto = z.infer<typeof ApiKeySchema>;

export interface Page<T> {
  items: T[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

const iso = (d: Date | null) => (d === null ? null : d.toISOString());
const num = (b: bigint | null) => (b === null ? null : Number(b));
const obj = (v: Prisma.JsonValue | null) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);


export function jobDto(j: JobRow): JobDto {
  return {
    id: j.id,
    status: j.status as JobState,
    runName: j.runName,
    specHash: j.specHash,
    spec: obj(j.spec) ?? {},
    modelId: j.modelId,
    datasetId: j.datasetId,
    progress: obj(j.progress) as JobDto['progress'],
    backend: j.backend,
    error: j.errorCode ? { code: j.errorCode, message: j.errorMessage ?? '' } : null,
    result: obj(j.result),
    attempts: j.attempts,
    idempotencyKey: j.idempotencyKey,
    cancelRequested: j.cancelRequestedAt !== null,
    createdAt: j.createdAt.toISOString(),
    startedAt: iso(j.startedAt),
    finishedAt: iso(j.finishedAt),
  };
}

export function roundDto(r: RoundRow): RoundDto {
  return {
    index: r.index,
    density: r.density,
    sparsity: r.sparsity,
    layerDensity: (obj(r.layerDensity) ?? {}) as Record<string, number>,
    testAccuracy: r.testAccuracy,
    testLoss: r.testLoss,
    earlyStopIteration: r.earlyStopIteration,
    earlyStopTestAccuracy: r.earlyStopTestAccuracy,
    earlyStopValidationLoss: r.earlyStopValidationLoss,
    paramsRemaining: Number(r.paramsRemaining),
    paramsTotal: Number(r.paramsTotal),
    flops: num(r.flops),
    denseBytes: Number(r.denseBytes),
    compressedBytes: Number(r.compressedBytes),
    durationSeconds: r.durationSeconds,
    examplesPerSecond: r.examplesPerSecond,
    backend: r.backend,
    trainingLoop: typeof obj(r.metrics)?.trainingLoop === 'string' ? (obj(r.metrics)!.trainingLoop as string) : null,
    controls: obj(r.controls) ?? {},
    validationCurve: (Array.isArray(r.validationCurve) ? r.validationCurve : []) as RoundDto['validationCurve'],
    filter: (obj((obj(r.metrics)?.filter ?? null) as Prisma.JsonValue | null) ?? null) as RoundDto['filter'],
    createdAt: r.createdAt.toISOString(),
  };
}

export function artifactDto(a: ArtifactRow): ArtifactDto {
  return {
    id: a.id,
    jobId: a.jobId,
    roundIndex: a.round?.index ?? null,
    modelId: a.modelId,
    kind: a.kind,
    name: a.name,
    sha256: a.sha256,
    size: Number(a.sizeBytes),
    mediaType: a.mediaType,
    createdAt: a.createdAt.toISOString(),
  };
}

export function eventDto(e: EventRow): EventDto {
  return { id: Number(e.id), jobId: e.jobId, time: e.time.toISOString(), kind: e.kind, payload: e.payload };
}

export function modelDto(m: ModelRow): ModelDto {
  return {
    id: m.id,
    name: m.name,
    format: m.format,
    sha256: m.sha256,
    size: Number(m.sizeBytes),
    architecture: obj(m.architecture) ?? {},
    files: (Array.isArray(m.files) ? m.files : []) as ModelDto['files'],
    createdAt: m.createdAt.toISOString(),
  };
}

export function datasetDto(d: DatasetRow): DatasetDto {
  return { id: d.id, reference: d.reference, format: d.format, shapes: obj(d.shapes) ?? {}, sha256: d.sha256, createdAt: d.createdAt.toISOString() };
}

export function apiKeyDto(k: ApiKeyRow): ApiKeyDto {
  return { id: k.id, tenant: k.tenant, prefix: k.prefix, createdAt: k.createdAt.toISOString(), lastUsedAt: iso(k.lastUsedAt), revokedAt: iso(k.revokedAt) };
}
