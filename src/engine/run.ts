// One compression run (iterative magnitude pruning with rewinding): round 0
// trains the dense net; each later round prunes the previous round's trained
// weights, resets the survivors to the rewind point and retrains, next to the
// random-reinit and random-structure controls. Every finished round goes to
// the checkpoint sink whole, so a rerun resumes after the last one.
import * as tf from '@tensorflow/tfjs';
import type { Dataset, Mask, WeightMap } from './types.js';
import type { CheckpointSink, ControlKind, EngineEvent, RoundMetrics, RunResultRecord, TrainingMetrics, Verdict } from './sink.js';
import { resolveSpec, rewindIteration, roundHasControls, runName, totalIterations, type RunSpec } from './spec.js';
import { loadDataset, checkFits, type DataAccess } from './data/index.js';
import { createOrLoadModel } from './models/load.js';
import type { ModelLimits } from './models/budget.js';
import { modelToFiles } from './models/files.js';
import { createModel, isZooModel } from './models/registry.js';
import { countFlops, countParams, describeModel, getWeightMap, prunableWeights, setWeightMap } from './models/inspect.js';
import { getStrategy } from './pruning/registry.js';
import { applyMaskTo, countAlive, deserializeMask, globalDensity, layerDensity, onesMask, serializeMask } from './pruning/mask.js';
import { shuffleMask } from './pruning/random.js';
import { childSeed, mulberry32 } from './rng.js';
import { RunCancelled, trainConfigFor } from './training/train.js';
import { TrialRunner, WorkerPool, type ModelSource, type TrialExecutor, type TrialJob, type TrialResult } from './training/trial.js';
import { availableParallelism } from 'node:os';
import { decodeWeights, encodeWeights, packWeights, unpackWeights } from './checkpoint.js';
import { compressTicket } from './export.js';
import { initBackend } from '../runtime/backend.js';
import type { EngineConfig } from '../runtime/engine-config.js';
import { runFilterPruning } from './filter/run.js';

export { RunCancelled };

export interface RunContext {
  sink: CheckpointSink;
  signal?: AbortSignal;
  onEvent?: (e: EngineEvent) => void;
  /** Pre-loaded dataset (tests, the service's validation step); otherwise loaded from the spec. */
  dataset?: Dataset;
  /** What loading the spec's dataset may fetch and read (the worker passes the operator's policy for tenant input). */
  data?: DataAccess;
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

function parallelism(spec: RunSpec, ctx: RunContext): number {
  if (ctx.parallelism !== undefined) return Math.max(1, ctx.parallelism);
  const workers = ctx.engine?.workers;
  if (workers !== undefined) return Math.max(1, workers);
  if (spec.controls === 'none') return 1;
  return Math.max(1, Math.min(3, availableParallelism()));
}

function modelSource(spec: RunSpec, model: tf.LayersModel, ds: Dataset): ModelSource {
  if (isZooModel(spec.model)) return { zoo: spec.model, inputShape: ds.inputShape, numClasses: ds.numClasses, seed: spec.seed };
  return { topology: model.toJSON(null, false) };
}

/**
 * The weights survivors are reset to before round `round` trains: the
 * initialisation (rewind=init, and always in round 0), the weights at
 * iteration k (late resetting), or the previous round's trained weights
 * (learning-rate rewinding, which only replays the schedule).
 */
export function rewindSource(
  spec: RunSpec,
  round: number,
  w: { init: WeightMap; rewind: WeightMap | null; trained: WeightMap | null },
): WeightMap {
  if (round === 0) return w.init;
  if (spec.rewind === 'learning-rate') return w.trained!;
  if ((spec.rewind === 'iteration' || spec.rewind === 'fraction') && w.rewind) return w.rewind;
  return w.init;
}


function maskOf(artifacts: Record<string, Uint8Array>): Mask {
  return deserializeMask(artifacts['mask.json']!);
}

function weightsOf(artifacts: Record<string, Uint8Array>): WeightMap {
  return decodeWeights(artifacts['weights.bin']!, artifacts['weights.json']!);
}

/** Compare the ticket with its controls on final test accuracy. */
export function verdictOf(rounds: RoundMetrics[]): Verdict {
  const compared = rounds.filter((r) => Object.keys(r.controls).length > 0);
  const wins = compared.filter((r) =>
    Object.values(r.controls).every((c) => c !== undefined && r.finalTestAccuracy > c.finalTestAccuracy),
  );
  const pct = (d: number) => `${(d * 100).toFixed(1)}%`;
  const summary =
    compared.length === 0
      ? 'no controls were trained, so no verdict'
      : `ticket beat every control in ${wins.length} of ${compared.length} compared rounds` +
        (wins.length > 0 ? ` (densities ${wins.map((r) => pct(r.density)).join(', ')})` : '');
  return { ticketBeatsControls: wins.map((r) => r.round), roundsCompared: compared.map((r) => r.round), summary };
}

export async function runCompression(specInput: RunSpec | unknown, ctx: RunContext): Promise<RunResultRecord> {
  const spec = resolveSpec(specInput);
  if (spec.method === 'filter') return runFilterPruning(spec, ctx);
  const emit = (e: EngineEvent) => ctx.onEvent?.(e);
  const backend = await initBackend();
  const name = runName(spec);
  const ds = ctx.dataset ?? (await loadDataset(spec.dataset, { seed: spec.seed, maxTrain: spec.maxTrainExamples, access: ctx.data }));
  const model = await createOrLoadModel(spec.model, { inputShape: ds.inputShape, numClasses: ds.numClasses, seed: spec.seed }, ctx.modelLimits);
  let disposeExecutor: () => Promise<void> = async () => undefined;
  try {
    checkFits(ds, describeModel(model));
    const prunable = prunableWeights(model);
    const paramsTotal = countParams(model);
    const flops = countFlops(model);
    const prunableTotal = prunable.reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0);
    const iterations = totalIterations(spec, ds.train.n);
    const k = rewindIteration(spec, iterations);
    const lastRound = spec.schedule === 'one-shot' ? 1 : spec.rounds;
    const { sink } = ctx;

    // The initial weights are state of the run: stored once, so a resumed run
    // rewinds to the very same values.
    let init = await sink.getState('init.weights');
    if (!init) {
      init = packWeights(getWeightMap(model));
      await sink.putState('init.weights', init);
    }
    const initWeights = unpackWeights(init);

    const finished = await sink.finishedRounds();
    emit({ kind: 'run-start', name, backend: backend.name, rounds: lastRound, resumedFrom: finished.length });
    const executor: TrialExecutor =
      parallelism(spec, ctx) > 1
        ? new WorkerPool(parallelism(spec, ctx), ds, modelSource(spec, model, ds), backend.name)
        : new TrialRunner(ds, modelSource(spec, model, ds));
    disposeExecutor = () => executor.dispose();

    const baseCfg = trainConfigFor(spec, iterations, childSeed(spec.seed, 'data'), ctx.engine?.loop);
    const lateReset = spec.rewind === 'iteration' || spec.rewind === 'fraction';

    const train = async (job: TrialJob): Promise<TrialResult> => {
      const r = await executor.run(job, {
        signal: ctx.signal,
        onProgress: (p) => emit({ kind: 'progress', round: job.round, trial: job.trial, ...p }),
      });
      emit({ kind: 'trial-end', round: job.round, trial: job.trial, metrics: r.metrics });
      return r;
    };

    let prevMask = finished.length ? maskOf(finished.at(-1)!.artifacts) : onesMask(prunable);
    let prevWeights = finished.length ? weightsOf(finished.at(-1)!.artifacts) : null;
    for (let round = finished.length; round <= lastRound; round++) {
      if (ctx.signal?.aborted) throw new RunCancelled();
      // The mask for this round: all ones for the dense round, else prune the last round's trained weights.
      let mask: Mask;
      if (round === 0) mask = onesMask(prunable);
      else {
        if (spec.targetDensity !== undefined && spec.schedule === 'iterative' && globalDensity(prevMask) <= spec.targetDensity) break;
        const values: Record<string, Float32Array> = {};
        for (const w of prunable) values[w.name] = prevWeights![w.name]!.values;
        mask = getStrategy('magnitude').prune({
          ...spec,
          weights: values,
          mask: prevMask,
          prunable,
          toDensity: spec.schedule === 'one-shot' ? spec.targetDensity : undefined,
          seed: childSeed(spec.seed, 'prune', round),
        });
      }
      const density = globalDensity(mask);
      emit({ kind: 'round-start', round, density });

      const rewindState = round > 0 && lateReset && k > 0 ? await sink.getState('rewind.weights') : null;
      if (round > 0 && lateReset && k > 0 && !rewindState) throw new Error(`rewind point (iteration ${k}) is missing from the run's state`);
      const rewindTo = rewindSource(spec, round, { init: initWeights, rewind: rewindState ? unpackWeights(rewindState) : null, trained: prevWeights });
      const cfg = { ...baseCfg, startIteration: round > 0 && lateReset ? k : 0 };

      const jobs: TrialJob[] = [
        { round, trial: 'ticket', start: applyMaskTo(rewindTo, mask), mask, cfg, captureAt: round === 0 && lateReset && k > 0 ? k : undefined },
      ];
      if (roundHasControls(spec, round, lastRound)) {
        for (const kind of spec.controlKinds) {
          if (kind === 'reinit') {
            const fresh = freshWeights(spec, model, ds, childSeed(spec.seed, 'reinit', round));
            jobs.push({ round, trial: 'reinit', start: applyMaskTo(fresh, mask), mask, cfg });
          } else {
            const shuffled = shuffleMask(mask, childSeed(spec.seed, 'shuffle', round));
            jobs.push({ round, trial: 'shuffle', start: applyMaskTo(rewindTo, shuffled), mask: shuffled, cfg });
          }
        }
      }
      const results = await Promise.all(jobs.map(train));
      const ticket = results[0]!.metrics;
      const trained = results[0]!.weights;
      if (results[0]!.captured) await sink.putState('rewind.weights', packWeights(results[0]!.captured));
      const controls: Partial<Record<ControlKind, TrainingMetrics>> = {};
      jobs.forEach((j, i) => {
        if (j.trial !== 'ticket') controls[j.trial] = results[i]!.metrics;
      });

      let alive = 0;
      for (const m of Object.values(mask)) alive += countAlive(m);
      const { bin, json } = encodeWeights(trained);
      const metrics: RoundMetrics = {
        round,
        ...ticket,
        density,
        layerDensity: layerDensity(mask),
        paramsRemaining: paramsTotal - prunableTotal + alive,
        paramsTotal,
        flops,
        denseBytes: paramsTotal * 4,
        compressedBytes: compressTicket(trained, mask, { float16: spec.float16 }).length,
        backend: backend.name,
        controls,
      };
      await sink.commitRound({
        index: round,
        metrics,
        artifacts: { 'mask.json': serializeMask(mask), 'weights.bin': bin, 'weights.json': json },
      });
      emit({ kind: 'round-end', round, metrics });
      prevMask = mask;
      prevWeights = trained;
    }

    // The winning ticket: the sparsest committed round, as a Layers model with zeros in place.
    const rounds = await sink.finishedRounds();
    const last = rounds.at(-1)!;
    const ticketWeights = weightsOf(last.artifacts);
    const ticketMask = maskOf(last.artifacts);
    setWeightMap(model, ticketWeights, { requireAll: true });
    const files = await modelToFiles(model);
    const modelFiles = { 'ticket/model.json': files.json, 'ticket/weights.bin': files.bin };
    const verdict = verdictOf(rounds.map((r) => r.metrics));
    const result: RunResultRecord = {
      name,
      verdict,
      artifacts: {
        ...modelFiles,
        'ticket/mask.json': serializeMask(ticketMask),
        'ticket/compressed.bin': compressTicket(ticketWeights, ticketMask, { float16: spec.float16 }),
      },
      summary: {
        spec,
        backend,
        ticketRound: last.index,
        density: last.metrics.density,
        finalTestAccuracy: last.metrics.finalTestAccuracy,
        rounds: rounds.map((r) => r.metrics),
      },
    };
    await sink.commitResult(result);
    emit({ kind: 'run-end', name, verdict });
    return result;
  } finally {
    await disposeExecutor();
    model.dispose();
  }
}

/** A fresh initialisation of the same architecture (the random-reinit control). */
function freshWeights(spec: RunSpec, model: tf.LayersModel, ds: Dataset, seed: number): WeightMap {
  if (isZooModel(spec.model)) {
    const m = createModel(spec.model, { inputShape: ds.inputShape, numClasses: ds.numClasses, seed });
    const w = getWeightMap(m);
    m.dispose();
    return w;
  }
  // Uploaded models (possibly pretrained): a seeded Glorot-uniform draw for every kernel and
  // the standard initial values for everything else, so nothing trained leaks into the control.
  const next = mulberry32(seed);
  const out: WeightMap = {};
  for (const [name, { shape, values }] of Object.entries(getWeightMap(model))) {
    const short = name.slice(name.lastIndexOf('/') + 1);
    if (short === 'kernel' || short.endsWith('_kernel')) {
      const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const fanOut = shape.at(-1)! * (shape.length > 2 ? shape.slice(0, -2).reduce((a, b) => a * b, 1) : 1);
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      out[name] = { shape, values: Float32Array.from(values, () => (next() * 2 - 1) * limit) };
    } else {
      const one = short === 'gamma' || short === 'moving_variance';
      out[name] = { shape, values: new Float32Array(values.length).fill(one ? 1 : 0) };
    }
  }
  return out;
}
