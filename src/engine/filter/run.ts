// One filter-pruning run (method `filter`; Li et al. 2017): round 0 trains
// (or just evaluates) the dense model and, when asked, measures each layer's
// sensitivity; each later round is one pruning step: rank filters by
// importance, cut them out by surgery (a new, smaller model), evaluate,
// fine-tune, and record parameters, FLOPs, bytes, measured latency and
// accuracy before / after. One-shot is a single step; iterative spreads the
// same final fractions over filterSteps steps. Rounds go to the same
// checkpoint sink as IMP rounds, each with the step's model, so a rerun
// resumes after the last one. With thenImp, IMP rounds on the shrunken model
// follow, numbered after the filter steps.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { RunContext } from '../run.js';
import type { Dataset } from '../types.js';
import type {
  CheckpointSink, EngineEvent, FilterRoundMetrics, FilterSensitivity, RoundMetrics, RoundRecord, RunResultRecord, TrainingMetrics, Verdict,
} from '../sink.js';
import { resolveSpec, runName, SpecError, totalIterations, type RunSpec } from '../spec.js';
import { checkFits, loadDataset } from '../data/index.js';
import { createOrLoadModel, saveModelTo } from '../models/load.js';
import { countFlops, countParams, describeModel, getWeightMap, prunableWeights } from '../models/inspect.js';
import { childSeed } from '../rng.js';
import { compressTicket } from '../export.js';
import { evaluate, RunCancelled, toTensors, trainConfigFor, trainModel, type TrainConfig, type TrainData } from '../training/train.js';
import { buildGraph, filtersPerLayer, type DependencyGraph } from '../pruning/structure/graph.js';
import { planStep, resolveTargets, type FilterTargets } from '../pruning/structure/algorithm.js';
import { shrinkModel } from '../pruning/structure/surgery.js';
import { initBackend } from '../../runtime/backend.js';
import { latencyProfile, type LatencyOptions } from './latency.js';
import { analyseSensitivity, fractionsForFlopTarget, sensitivitySvg } from './sensitivity.js';
import { modelFromFiles, modelToFiles } from '../models/files.js';

/** Validation examples the sensitivity analysis evaluates (each layer x fraction is one evaluation). */
const SENSITIVITY_EXAMPLES = 1000;
const ROUND_MODEL = 'model.json';
const ROUND_WEIGHTS = 'model.weights.bin';

/** Spec checks that only concern method `filter` (resolveSpec covers the rest). */
function evalOnly(model: tf.LayersModel, data: TrainData): TrainingMetrics {
  const test = evaluate(model, data.test);
  const val = evaluate(model, data.validation);
  return {
    finalTestAccuracy: test.accuracy,
    finalTestLoss: test.loss,
    earlyStopIteration: 0,
    earlyStopTestAccuracy: test.accuracy,
    earlyStopValidationLoss: val.loss,
    curve: [[0, val.loss, val.accuracy]],
    trainSeconds: 0,
    examplesPerSecond: 0,
  };
}

/** IMP after filter pruning writes through this: its rounds numbered after the filter steps, its state apart. */
class OffsetSink implements CheckpointSink {
  result: RunResultRecord | null = null;
  constructor(
    private readonly inner: CheckpointSink,
    private readonly offset: number,
  ) {}

  async finishedRounds(): Promise<RoundRecord[]> {
    return (await this.inner.finishedRounds())
      .filter((r) => r.index >= this.offset)
      .map((r) => ({ ...r, index: r.index - this.offset, metrics: { ...r.metrics, round: r.metrics.round - this.offset } }));
  }

  getState(key: string): Promise<Uint8Array | null> {
    return this.inner.getState(`imp.${key}`);
  }

  putState(key: string, bytes: Uint8Array): Promise<void> {
    return this.inner.putState(`imp.${key}`, bytes);
  }

  commitRound(r: RoundRecord): Promise<void> {
    return this.inner.commitRound({ ...r, index: r.index + this.offset, metrics: { ...r.metrics, round: r.metrics.round + this.offset } });
  }

  async commitResult(result: RunResultRecord): Promise<void> {
    this.result = result;
  }
}

function shiftEvent(e: EngineEvent, offset: number): EngineEvent | null {
  switch (e.kind) {
    case 'run-start':
    case 'run-end':
      return null;
    case 'round-end':
      return { ...e, round: e.round + offset, metrics: { ...e.metrics, round: e.metrics.round + offset } };
    default:
      return { ...e, round: e.round + offset };
  }
}

export async function runFilterPruning(specInput: RunSpec | unknown, ctx: RunContext): Promise<RunResultRecord> {
  const spec = resolveSpec(specInput);
  if (spec.method !== 'filter') throw new SpecError(`method: runFilterPruning runs method 'filter', got '${spec.method}'`, 'method');
  const emit = (e: EngineEvent) => ctx.onEvent?.(e);
  const backend = await initBackend();
  const name = runName(spec);
  const { sink } = ctx;
  const ds: Dataset = ctx.dataset ?? (await loadDataset(spec.dataset, { seed: spec.seed, maxTrain: spec.maxTrainExamples, access: ctx.data }));
  let model = await createOrLoadModel(spec.model, { inputShape: ds.inputShape, numClasses: ds.numClasses, seed: spec.seed }, ctx.modelLimits);
  let data: TrainData | null = null;
  try {
    checkFits(ds, describeModel(model));
    data = toTensors(ds);
    const steps = spec.filterSchedule === 'one-shot' ? 1 : spec.filterSteps;
    const graph0 = buildGraph(model);
    const filtersTotal = filtersPerLayer(graph0);
    const originalSizes = Object.fromEntries(graph0.groups.map((g) => [g.name, g.size]));
    const kernelSizes = new Map(prunableWeights(model).map((w) => [w.name, w.shape.reduce((a, b) => a * b, 1)]));
    const prunableTotal = [...kernelSizes.values()].reduce((a, b) => a + b, 0);
    const paramsTotal = countParams(model);
    const latencyOpts: LatencyOptions = { warmup: 1, minRepeats: 3, minSeconds: 0.5 };
    const finished = await sink.finishedRounds();
    const filterRounds = finished.filter((r) => r.index <= steps);
    const impRounds = spec.thenImp ? (spec.schedule === 'one-shot' ? 2 : spec.rounds + 1) : 0;
    emit({ kind: 'run-start', name, backend: backend.name, rounds: steps + impRounds, resumedFrom: finished.length });

    const cfgFor = (iterations: number, seed: number): TrainConfig => trainConfigFor(spec, iterations, seed, ctx.engine?.loop);
    const train = async (round: number, iterations: number, seed: number): Promise<TrainingMetrics> => {
      const m = iterations > 0
        ? await trainModel(model, data!, null, cfgFor(iterations, seed), {
            signal: ctx.signal,
            onProgress: (p) => emit({ kind: 'progress', round, trial: 'ticket', ...p }),
          })
        : evalOnly(model, data!);
      emit({ kind: 'trial-end', round, trial: 'ticket', metrics: m });
      return m;
    };

    /** RoundMetrics of the current model after its training / fine-tuning. */
    const measure = async (
      round: number,
      training: TrainingMetrics,
      f: Omit<FilterRoundMetrics, 'params' | 'flops' | 'modelBytes' | 'latencyBatch1Ms' | 'latencyBatch64Ms' | 'filtersKept' | 'filtersTotal' | 'accuracyAfterFineTuning'>,
    ): Promise<{ metrics: RoundMetrics; artifacts: Record<string, Uint8Array> }> => {
      const files = await modelToFiles(model, ROUND_WEIGHTS);
      const weights = getWeightMap(model);
      const latency = await latencyProfile(model, latencyOpts);
      const params = countParams(model);
      const flops = countFlops(model);
      const layerDensity: Record<string, number> = {};
      let prunableNow = 0;
      for (const w of prunableWeights(model)) {
        const size = w.shape.reduce((a, b) => a * b, 1);
        prunableNow += size;
        layerDensity[w.name] = size / (kernelSizes.get(w.name) ?? size);
      }
      const metrics: RoundMetrics = {
        round,
        ...training,
        density: prunableNow / prunableTotal,
        layerDensity,
        paramsRemaining: params,
        paramsTotal,
        flops,
        denseBytes: params * 4,
        compressedBytes: compressTicket(weights, {}, { float16: spec.float16 }).length,
        backend: backend.name,
        controls: {},
        filter: {
          ...f,
          params,
          flops,
          modelBytes: files.json.length + files.bin.length,
          latencyBatch1Ms: latency.batch1Ms,
          latencyBatch64Ms: latency.batch64Ms,
          accuracyAfterFineTuning: training.finalTestAccuracy,
          filtersKept: filtersPerLayer(buildGraph(model)),
          filtersTotal,
        },
      };
      return { metrics, artifacts: { [ROUND_MODEL]: files.json, [ROUND_WEIGHTS]: files.bin } };
    };

    // Round 0: the dense model, trained unless it comes trained; the targets are fixed here.
    let targets: FilterTargets;
    let round0: RoundMetrics;
    if (filterRounds.length === 0) {
      emit({ kind: 'round-start', round: 0, density: 1 });
      const training = spec.pretrain ? await train(0, totalIterations(spec, ds.train.n), childSeed(spec.seed, 'data')) : await train(0, 0, 0);
      let sensitivity: FilterSensitivity | undefined;
      const extra: Record<string, Uint8Array> = {};
      if (spec.sensitivity || spec.targetFlopReduction !== undefined) {
        const candidates = resolveTargets(graph0, { fraction: 0.5, skip: spec.skipLayers });
        const split = data.validation.n > 0 ? data.validation : data.test;
        const s = await analyseSensitivity(model, graph0, split, {
          groups: Object.keys(candidates.fractions),
          importance: spec.filterImportance,
          seed: childSeed(spec.seed, 'filter'),
          maxExamples: SENSITIVITY_EXAMPLES,
          signal: ctx.signal,
        });
        sensitivity = { fractions: s.fractions, baselineAccuracy: s.baselineAccuracy, examples: s.examples, groups: s.groups };
        extra['sensitivity.svg'] = new TextEncoder().encode(sensitivitySvg(s));
      }
      targets = spec.targetFlopReduction !== undefined
        ? resolveTargets(graph0, { fractions: fractionsForFlopTarget(graph0, sensitivity!, spec.targetFlopReduction), skip: spec.skipLayers })
        : resolveTargets(graph0, { fraction: spec.filterFraction, fractions: spec.filterFractions, skip: spec.skipLayers });
      if (Object.keys(targets.fractions).length === 0) {
        throw new Error(`filter pruning: no layer of '${model.name}' would be pruned: ${Object.entries(targets.skipped).map(([g, why]) => `${g}: ${why}`).join('; ')}`);
      }
      const acc = training.finalTestAccuracy;
      const r = await measure(0, training, {
        step: 0,
        steps,
        importance: spec.filterImportance,
        accuracyBeforePruning: acc,
        accuracyAfterPruning: acc,
        targets: targets.fractions,
        skipped: targets.skipped,
        ...(sensitivity ? { sensitivity } : {}),
      });
      await sink.commitRound({ index: 0, metrics: r.metrics, artifacts: { ...r.artifacts, ...extra } });
      emit({ kind: 'round-end', round: 0, metrics: r.metrics });
      round0 = r.metrics;
    } else {
      round0 = filterRounds[0]!.metrics;
      const f = round0.filter;
      if (f === undefined) throw new Error(`run '${name}': round 0 in the sink has no filter metrics; is it an IMP run's checkpoint?`);
      targets = { fractions: f.targets, skipped: f.skipped };
      const last = filterRounds.at(-1)!;
      model.dispose();
      model = await modelFromFiles({ json: last.artifacts[ROUND_MODEL]!, bin: last.artifacts[ROUND_WEIGHTS]! });
    }

    let previous = filterRounds.at(-1)?.metrics ?? round0;
    for (let step = Math.max(1, filterRounds.length); step <= steps; step++) {
      if (ctx.signal?.aborted) throw new RunCancelled();
      const graph: DependencyGraph = buildGraph(model);
      const plan = planStep(graph, getWeightMap(model), {
        targets,
        originalSizes,
        step,
        steps,
        importance: spec.filterImportance,
        seed: childSeed(spec.seed, 'filter'),
      });
      const smaller = await shrinkModel(model, plan, graph);
      model.dispose();
      model = smaller;
      const density = prunableWeights(model).reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0) / prunableTotal;
      emit({ kind: 'round-start', round: step, density });
      const afterPruning = evaluate(model, data.test).accuracy;
      const training = await train(step, spec.fineTuneIterations, childSeed(spec.seed, 'finetune', step));
      const r = await measure(step, training, {
        step,
        steps,
        importance: spec.filterImportance,
        accuracyBeforePruning: previous.finalTestAccuracy,
        accuracyAfterPruning: afterPruning,
        targets: targets.fractions,
        skipped: targets.skipped,
      });
      await sink.commitRound({ index: step, metrics: r.metrics, artifacts: r.artifacts });
      emit({ kind: 'round-end', round: step, metrics: r.metrics });
      previous = r.metrics;
    }

    const filterFiles = await modelToFiles(model, 'weights.bin');
    const artifacts: Record<string, Uint8Array> = { 'ticket/model.json': filterFiles.json, 'ticket/weights.bin': filterFiles.bin };
    const svg = (await sink.finishedRounds()).find((r) => r.index === 0)?.artifacts['sensitivity.svg'];
    if (svg) artifacts['sensitivity.svg'] = svg;
    let verdict: Verdict = filterVerdict(round0, previous);
    let impSummary: Record<string, unknown> | undefined;

    if (spec.thenImp) {
      // IMP reads models from directories; the shrunken model goes through one for its duration.
      const dir = await mkdtemp(join(tmpdir(), 'ticketsmith-filter-'));
      try {
        await saveModelTo(model, dir);
        const { runCompression } = await import('../run.js');
        const sub = new OffsetSink(sink, steps + 1);
        const impSpec: RunSpec = { ...spec, method: 'imp', model: dir };
        await runCompression(impSpec, {
          ...ctx,
          sink: sub,
          dataset: ds,
          onEvent: (e) => {
            const shifted = shiftEvent(e, steps + 1);
            if (shifted) emit(shifted);
          },
        });
        const imp = sub.result!;
        Object.assign(artifacts, imp.artifacts);
        verdict = { ...imp.verdict, summary: `${verdict.summary}; then IMP: ${imp.verdict.summary}` };
        impSummary = imp.summary;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }

    const rounds = (await sink.finishedRounds()).map((r) => r.metrics);
    const last = rounds.at(-1)!;
    const result: RunResultRecord = {
      name,
      verdict,
      artifacts,
      summary: {
        spec,
        backend,
        method: 'filter',
        ticketRound: last.round,
        density: last.density,
        finalTestAccuracy: last.finalTestAccuracy,
        filter: {
          paramsBefore: round0.paramsRemaining,
          paramsAfter: previous.paramsRemaining,
          flopsBefore: round0.flops,
          flopsAfter: previous.flops,
          latencyBatch64MsBefore: round0.filter?.latencyBatch64Ms,
          latencyBatch64MsAfter: previous.filter?.latencyBatch64Ms,
          accuracyBefore: round0.finalTestAccuracy,
          accuracyAfter: previous.finalTestAccuracy,
          filtersKept: previous.filter?.filtersKept,
        },
        ...(impSummary ? { imp: { ticketRound: impSummary.ticketRound, density: impSummary.density, finalTestAccuracy: impSummary.finalTestAccuracy } } : {}),
        rounds,
      },
    };
    await sink.commitResult(result);
    emit({ kind: 'run-end', name, verdict });
    return result;
  } finally {
    data?.dispose();
    model.dispose();
  }
}

function filterVerdict(before: RoundMetrics, after: RoundMetrics): Verdict {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');
  const b = before.filter;
  const a = after.filter;
  const speed = b && a ? `, batch-64 latency ${b.latencyBatch64Ms.toFixed(1)} -> ${a.latencyBatch64Ms.toFixed(1)} ms (${ratio(b.latencyBatch64Ms, a.latencyBatch64Ms)} faster)` : '';
  return {
    ticketBeatsControls: [],
    roundsCompared: [],
    summary:
      `filter pruning: ${before.paramsRemaining} -> ${after.paramsRemaining} parameters (${pct(after.paramsRemaining / before.paramsRemaining)}), ` +
      `${before.flops} -> ${after.flops} FLOPs (${pct(after.flops / before.flops)})${speed}; ` +
      `test accuracy ${pct(before.finalTestAccuracy)} -> ${pct(after.finalTestAccuracy)} after fine-tuning`,
  };
}
