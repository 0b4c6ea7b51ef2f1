// Iterative magnitude pruning with rewinding (method `imp`): round 0 trains
// the dense net; each later round prunes the previous round's trained
// weights, resets the survivors to the rewind point and retrains, next to the
// random controls (controls/). Every finished round goes to the checkpoint
// sink whole, so a rerun resumes after the last one.
//
// Rounds are numbered from the session's firstRound (0, or after the filter
// steps when filter pruning runs IMP on its shrunken model); the seeds and the
// dense-round logic use the round's number within IMP.
import type * as tf from '@tensorflow/tfjs';
import type { Dataset, Mask, WeightMap } from '../types.js';
import type { ControlKind, RoundMetrics, TrainingMetrics, Verdict } from '../metrics.js';
import type { RunResultRecord } from '../sink.js';
import { rewindIteration, roundHasControls, totalIterations, type RunSpec } from '../spec.js';
import { checkFits } from '../data/index.js';
import { modelToFiles } from '../models/files.js';
import type { ModelSource } from '../models/source.js';
import { countFlops, countParams, describeModel, getWeightMap, prunableWeights, setWeightMap } from '../models/inspect.js';
import { getStrategy } from '../pruning/registry.js';
import { applyMaskTo, countAlive, deserializeMask, globalDensity, layerDensity, onesMask, serializeMask } from '../pruning/mask.js';
import { childSeed } from '../rng.js';
import { RunCancelled, trainConfigFor, type TrainConfig } from '../training/train.js';
import { TrialRunner, WorkerPool, type ModelSource as TrialModel, type TrialExecutor, type TrialJob, type TrialResult } from '../training/trial.js';
import { decodeWeights, encodeWeights, packWeights, unpackWeights } from '../checkpoint.js';
import { compressTicket } from '../export.js';
import { ONNX_TICKET, onnxTicket } from '../export/onnx-ticket.js';
import type { RunSession } from '../session.js';
import { getControl } from './controls/registry.js';
import { classNamesOf, type RunMethod } from './method.js';
import { pct } from '../report/format.js';

/** How trial threads build the architecture: the zoo model by name, anything else from its topology. */
function trialModel(source: ModelSource, spec: RunSpec, model: tf.LayersModel, ds: Dataset): TrialModel {
  if (source.kind === 'zoo') return { zoo: source.name, inputShape: ds.inputShape, numClasses: ds.numClasses, seed: spec.seed };
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
  const summary =
    compared.length === 0
      ? 'no controls were trained, so no verdict'
      : `ticket beat every control in ${wins.length} of ${compared.length} compared rounds` +
        (wins.length > 0 ? ` (densities ${wins.map((r) => pct(r.density, { digits: 1 })).join(', ')})` : '');
  return { ticketBeatsControls: wins.map((r) => r.round), roundsCompared: compared.map((r) => r.round), summary };
}

/** IMP's last round within the method (round 0 is the dense one). */
export function impLastRound(spec: RunSpec): number {
  return spec.schedule === 'one-shot' ? 1 : spec.rounds;
}

export const imp: RunMethod = {
  async run(s: RunSession): Promise<RunResultRecord> {
    const run = new ImpRun(s, await s.openModel());
    try {
      const resumeAt = await run.start();
      for (let r = resumeAt; r <= run.lastRound; r++) {
        if (!(await run.round(r))) break;
      }
      return await run.result();
    } finally {
      await run.dispose();
    }
  },
};

/** What the model fixes for every round: its prunable weights and its dense size. */
interface ModelProfile {
  prunable: ReturnType<typeof prunableWeights>;
  paramsTotal: number;
  prunableTotal: number;
  flops: number;
}

/**
 * One IMP run's state, shared by its steps: the model, the trial executor,
 * the initial weights, and the previous round's mask and trained weights
 * (what the next round prunes from).
 */
class ImpRun {
  private readonly spec: RunSpec;
  readonly lastRound: number;
  /** The iteration survivors are reset to (0 = init); late resetting captures it in round 0. */
  private readonly k: number;
  private readonly lateReset: boolean;
  private readonly baseCfg: TrainConfig;
  private readonly model: tf.LayersModel;
  private readonly ownsModel: boolean;
  private profile!: ModelProfile;
  private initWeights!: WeightMap;
  private executor: TrialExecutor | null = null;
  private prevMask!: Mask;
  private prevWeights: WeightMap | null = null;

  constructor(
    private readonly s: RunSession,
    opened: { model: tf.LayersModel; owned: boolean },
  ) {
    const spec = s.spec;
    this.spec = spec;
    this.model = opened.model;
    this.ownsModel = opened.owned;
    const iterations = totalIterations(spec, s.dataset.train.n);
    this.k = rewindIteration(spec, iterations);
    this.lastRound = impLastRound(spec);
    this.lateReset = spec.rewind === 'iteration' || spec.rewind === 'fraction';
    this.baseCfg = trainConfigFor(spec, iterations, childSeed(spec.seed, 'data'), s.loop);
  }

  /** Checks the model, loads or stores the initial weights, starts the run and its executor; returns the round to resume at. */
  async start(): Promise<number> {
    const { s, model } = this;
    const ds = s.dataset;
    checkFits(ds, describeModel(model));
    const prunable = prunableWeights(model);
    this.profile = {
      prunable,
      paramsTotal: countParams(model),
      flops: countFlops(model),
      prunableTotal: prunable.reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0),
    };

    // The initial weights are state of the run: stored once, so a resumed run
    // rewinds to the very same values.
    let init = await s.getState('init.weights');
    if (!init) {
      init = packWeights(getWeightMap(model));
      await s.putState('init.weights', init);
    }
    this.initWeights = unpackWeights(init);

    const finished = await s.finishedRounds();
    s.runStarted(s.firstRound + this.lastRound, finished.length);
    const workers = s.parallelism();
    const source = trialModel(s.source, this.spec, model, ds);
    this.executor = workers > 1 ? new WorkerPool(workers, ds, source, s.backend.name) : new TrialRunner(ds, source);

    this.prevMask = finished.length ? maskOf(finished.at(-1)!.artifacts) : onesMask(prunable);
    this.prevWeights = finished.length ? weightsOf(finished.at(-1)!.artifacts) : null;
    return finished.length;
  }

  /**
   * Trains and commits round `r` (the round within IMP; its number in the run
   * is firstRound + r). False when the target density is already reached.
   */
  async round(r: number): Promise<boolean> {
    const { s } = this;
    if (s.signal?.aborted) throw new RunCancelled();
    const index = s.firstRound + r;
    const mask = this.maskFor(r);
    if (!mask) return false;
    const density = globalDensity(mask);
    s.emit({ kind: 'round-start', round: index, density });

    const jobs = await this.trials(r, index, mask);
    const results = await Promise.all(jobs.map((j) => this.train(j)));
    const trained = results[0]!.weights;
    if (results[0]!.captured) await s.putState('rewind.weights', packWeights(results[0]!.captured));
    const controls: Partial<Record<ControlKind, TrainingMetrics>> = {};
    jobs.forEach((j, i) => {
      if (j.trial !== 'ticket') controls[j.trial] = results[i]!.metrics;
    });

    const { bin, json } = encodeWeights(trained);
    const metrics = this.roundMetrics(index, mask, density, results[0]!.metrics, trained, controls);
    await s.sink.commitRound({
      index,
      metrics,
      artifacts: { 'mask.json': serializeMask(mask), 'weights.bin': bin, 'weights.json': json },
    });
    s.emit({ kind: 'round-end', round: index, metrics });
    this.prevMask = mask;
    this.prevWeights = trained;
    return true;
  }

  /** The mask for round `r`: all ones for the dense round, else the previous round's trained weights pruned; none once an iterative run reached its target. */
  private maskFor(r: number): Mask | null {
    const { spec, prevMask } = this;
    const { prunable } = this.profile;
    if (r === 0) return onesMask(prunable);
    if (spec.targetDensity !== undefined && spec.schedule === 'iterative' && globalDensity(prevMask) <= spec.targetDensity) return null;
    const values: Record<string, Float32Array> = {};
    for (const w of prunable) values[w.name] = this.prevWeights![w.name]!.values;
    return getStrategy('magnitude').prune({
      ...spec,
      weights: values,
      mask: prevMask,
      prunable,
      toDensity: spec.schedule === 'one-shot' ? spec.targetDensity : undefined,
      seed: childSeed(spec.seed, 'prune', r),
    });
  }

  /** Round `r`'s trials: the ticket (reset to its rewind point; round 0 captures the late-reset point), then the controls the spec asks for. */
  private async trials(r: number, index: number, mask: Mask): Promise<TrialJob[]> {
    const { s, spec, lateReset, k } = this;
    const rewindState = r > 0 && lateReset && k > 0 ? await s.getState('rewind.weights') : null;
    if (r > 0 && lateReset && k > 0 && !rewindState) throw new Error(`rewind point (iteration ${k}) is missing from the run's state`);
    const rewindTo = rewindSource(spec, r, { init: this.initWeights, rewind: rewindState ? unpackWeights(rewindState) : null, trained: this.prevWeights });
    const cfg = { ...this.baseCfg, startIteration: r > 0 && lateReset ? k : 0 };

    const jobs: TrialJob[] = [
      { round: index, trial: 'ticket', start: applyMaskTo(rewindTo, mask), mask, cfg, captureAt: r === 0 && lateReset && k > 0 ? k : undefined },
    ];
    if (roundHasControls(spec, r, this.lastRound)) {
      for (const kind of spec.controlKinds) {
        const c = getControl(kind).start({ spec, round: r, mask, rewindTo, model: this.model, source: s.source, dataset: s.dataset });
        jobs.push({ round: index, trial: kind, start: c.start, mask: c.mask, cfg });
      }
    }
    return jobs;
  }

  private async train(job: TrialJob): Promise<TrialResult> {
    const { s } = this;
    const r = await this.executor!.run(job, {
      signal: s.signal,
      onProgress: (p) => s.emit({ kind: 'progress', round: job.round, trial: job.trial, ...p }),
    });
    s.emit({ kind: 'trial-end', round: job.round, trial: job.trial, metrics: r.metrics });
    return r;
  }

  private roundMetrics(
    index: number,
    mask: Mask,
    density: number,
    ticket: TrainingMetrics,
    trained: WeightMap,
    controls: Partial<Record<ControlKind, TrainingMetrics>>,
  ): RoundMetrics {
    const { paramsTotal, prunableTotal, flops } = this.profile;
    let alive = 0;
    for (const m of Object.values(mask)) alive += countAlive(m);
    return {
      round: index,
      ...ticket,
      density,
      layerDensity: layerDensity(mask),
      paramsRemaining: paramsTotal - prunableTotal + alive,
      paramsTotal,
      flops,
      denseBytes: paramsTotal * 4,
      compressedBytes: compressTicket(trained, mask, { float16: this.spec.float16 }).length,
      backend: this.s.backend.name,
      controls,
    };
  }

  /** The winning ticket: the sparsest committed round, as a Layers model (and ONNX) with zeros in place; the verdict and the summary. */
  async result(): Promise<RunResultRecord> {
    const { s, spec, model } = this;
    const rounds = await s.finishedRounds();
    const last = rounds.at(-1)!;
    const ticketWeights = weightsOf(last.artifacts);
    const ticketMask = maskOf(last.artifacts);
    setWeightMap(model, ticketWeights, { requireAll: true });
    const files = await modelToFiles(model);
    const onnxOut = onnxTicket(model, s.name);
    return {
      name: s.name,
      verdict: verdictOf(rounds.map((r) => r.metrics)),
      artifacts: {
        'ticket/model.json': files.json,
        'ticket/weights.bin': files.bin,
        'ticket/mask.json': serializeMask(ticketMask),
        'ticket/compressed.bin': compressTicket(ticketWeights, ticketMask, { float16: spec.float16 }),
        ...(onnxOut.bytes ? { [ONNX_TICKET]: onnxOut.bytes } : {}),
      },
      summary: {
        spec,
        backend: s.backend,
        ticketRound: last.index,
        density: last.metrics.density,
        finalTestAccuracy: last.metrics.finalTestAccuracy,
        onnx: onnxOut.summary,
        rounds: rounds.map((r) => r.metrics),
        ...classNamesOf(s.dataset),
      },
    };
  }

  async dispose(): Promise<void> {
    await this.executor?.dispose();
    if (this.ownsModel) this.model.dispose();
  }
}
