// One run's session: what every method works with, resolved once: the spec
// and its run name, the dataset, the model source, the backend, the
// checkpoint sink, the event callback and the abort signal. A method numbers
// its rounds from `firstRound` and keeps its state under `statePrefix`, so
// one method can run another on a model it made (filter pruning's "then
// IMP": `withModel`) through the same sink, without a temp folder or a
// second spec resolution.
import type * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendInfo } from '../runtime/backend.js';
import type { Dataset } from './types.js';
import { loadDataset, type DataAccess } from './data/index.js';
import type { EngineEvent } from './events.js';
import type { ModelLimits } from './models/budget.js';
import { modelInputShape, modelSourceFor, openModel, type ModelSource } from './models/source.js';
import type { CheckpointSink, RoundRecord } from './sink.js';
import { runName, type RunSpec } from './spec.js';
import type { EngineConfig } from '../runtime/engine-config.js';

export interface RunContext {
  sink: CheckpointSink;
  signal?: AbortSignal;
  onEvent?: (e: EngineEvent) => void;
  /** Pre-loaded dataset (tests, scripts/bench-filter.ts); otherwise loaded from the spec. */
  dataset?: Dataset;
  /** What loading the spec's dataset may fetch and read (the worker passes the operator's policy for tenant input). */
  data?: DataAccess;
  /**
   * The spec's model when the caller resolved it: the worker unpacks an
   * uploaded `model:<id>` into a folder and passes `{ kind: 'files', dir, ref: 'model:<id>' }`.
   * The spec keeps the reference, so the run name does not depend on the folder.
   */
  model?: ModelSource;
  /** What to load when the spec names a registered dataset (`dataset:<id>`) the caller resolved; the spec keeps the id. */
  datasetReference?: string;
  /**
   * Trainings run side by side (the ticket and its controls are independent).
   * Default: the engine config's `workers`, else the number of cores (at most 3) when the run trains controls.
   */
  parallelism?: number;
  /** Caps a model directory is checked against before it is built (default: budget.ts's). */
  modelLimits?: ModelLimits;
  /**
   * The engine's settings, loaded from the environment by the caller (runtime/config.ts).
   * Default: DEFAULT_ENGINE_CONFIG. Its dataset caps reach the loaders through `data` (withEngineConfig).
   */
  engine?: EngineConfig;
}

export interface SessionParts {
  spec: RunSpec;
  name: string;
  dataset: Dataset;
  source: ModelSource;
  backend: BackendInfo;
  ctx: RunContext;
  /** Trainings side by side for this run (asked only by methods that train trials in parallel). */
  parallelism: () => number;
}

export class RunSession {
  readonly spec: RunSpec;
  /** The run's storage name: a hash of the spec as given (references, not where their files are). */
  readonly name: string;
  readonly dataset: Dataset;
  readonly source: ModelSource;
  readonly backend: BackendInfo;
  readonly sink: CheckpointSink;
  readonly signal: AbortSignal | undefined;
  readonly modelLimits: ModelLimits | undefined;
  readonly parallelism: () => number;
  /** The training loop the engine config asks for (TrainConfig.loop; default: chosen per round). */
  readonly loop: EngineConfig['loop'] | undefined;
  /** Index of this session's first round (0, or the one after the filter steps for "then IMP"). */
  readonly firstRound: number;
  /** Prefix of this session's state keys in the sink (a nested method keeps its own). */
  readonly statePrefix: string;
  private readonly onEvent: ((e: EngineEvent) => void) | undefined;
  /** Whether this session starts and ends the run (a nested one runs inside another's). */
  readonly root: boolean;
  private readonly parts: SessionParts;

  constructor(parts: SessionParts, nested?: { firstRound: number; statePrefix: string; spec: RunSpec }) {
    this.spec = nested?.spec ?? parts.spec;
    this.name = parts.name;
    this.dataset = parts.dataset;
    this.source = parts.source;
    this.backend = parts.backend;
    this.sink = parts.ctx.sink;
    this.signal = parts.ctx.signal;
    this.onEvent = parts.ctx.onEvent;
    this.modelLimits = parts.ctx.modelLimits;
    this.parallelism = parts.parallelism;
    this.loop = parts.ctx.engine?.loop;
    this.firstRound = nested?.firstRound ?? 0;
    this.statePrefix = nested?.statePrefix ?? '';
    this.root = nested === undefined;
    this.parts = parts;
  }

  emit(e: EngineEvent): void {
    this.onEvent?.(e);
  }

  /** The run-start event, once per run: a nested session's method runs inside its parent's run. */
  runStarted(lastRound: number, resumedFrom: number): void {
    if (this.root) this.emit({ kind: 'run-start', name: this.name, backend: this.backend.name, lastRound, resumedFrom });
  }

  /** The model to run on; `owned`: the method disposes it. */
  openModel(): Promise<{ model: tf.LayersModel; owned: boolean }> {
    const ds = this.dataset;
    return openModel(this.source, { inputShape: ds.inputShape, numClasses: ds.numClasses, seed: this.spec.seed }, this.modelLimits);
  }

  /** This session's committed rounds (from firstRound on), ascending. */
  async finishedRounds(): Promise<RoundRecord[]> {
    const all = await this.sink.finishedRounds();
    return this.firstRound === 0 ? all : all.filter((r) => r.index >= this.firstRound);
  }

  getState(key: string): Promise<Uint8Array | null> {
    return this.sink.getState(this.statePrefix + key);
  }

  putState(key: string, bytes: Uint8Array): Promise<void> {
    return this.sink.putState(this.statePrefix + key, bytes);
  }

  /**
   * A session for another method on `model` (kept in memory, owned by the
   * caller), in the same run: rounds from `firstRound` on, state under
   * `statePrefix`, no run-start or run-end of its own.
   */
  withModel(model: tf.LayersModel, opts: { firstRound: number; statePrefix: string; spec: RunSpec }): RunSession {
    return new RunSession({ ...this.parts, source: { kind: 'memory', model } }, opts);
  }
}

/** Resolves what a run needs, once: the backend, the dataset, and the spec's model reference as a source. */
export async function openSession(spec: RunSpec, ctx: RunContext, parallelism: () => number): Promise<RunSession> {
  const source = modelSourceFor(spec.model, ctx.model);
  const backend = await initBackend();
  // An image folder is resized to the model's input: asked of the model only when the data is one.
  const modelInput = () => modelInputShape(source, ctx.modelLimits);
  const dataset = ctx.dataset ?? (await loadDataset(ctx.datasetReference ?? spec.dataset, { seed: spec.seed, maxTrain: spec.maxTrainExamples, validationFraction: spec.validationFraction, access: ctx.data, modelInput }));
  return new RunSession({ spec, name: runName(spec), dataset, source, backend, ctx, parallelism });
}
