// One filter-pruning run (method `filter`; Li et al. 2017): round 0 trains
// (or just evaluates) the dense model and, when asked, measures each layer's
// sensitivity; each later round is one pruning step: rank filters by
// importance, cut them out by surgery (a new, smaller model), evaluate,
// fine-tune, and record parameters, FLOPs, bytes, measured latency and
// accuracy before / after. One-shot is a single step; iterative spreads the
// same final fractions over filterSteps steps. Rounds go to the same
// checkpoint sink as IMP rounds, each with the step's model, so a rerun
// resumes after the last one. With thenImp, the imp method runs on the shrunken
// model (in memory, in the same session's sink), its rounds numbered after
// the filter steps.
import type * as tf from '@tensorflow/tfjs';
import type { FilterRoundMetrics, FilterSensitivity, RoundMetrics, TrainingMetrics, Verdict } from '../metrics.js';
import type { RunResultRecord } from '../sink.js';
import { totalIterations } from '../spec.js';
import { checkFits } from '../data/index.js';
import { countFlops, countParams, describeModel, getWeightMap, prunableWeights } from '../models/inspect.js';
import { childSeed } from '../rng.js';
import { compressTicket } from '../export.js';
import { evaluate, RunCancelled, toTensors, trainConfigFor, trainModel, type TrainConfig, type TrainData } from '../training/train.js';
import { buildGraph, filtersPerLayer, type DependencyGraph } from '../pruning/structure/graph.js';
import { planStep, resolveTargets, type FilterTargets } from '../pruning/structure/algorithm.js';
import { shrinkModel } from '../pruning/structure/surgery.js';
import { latencyProfile, type LatencyOptions } from '../filter/latency.js';
import { analyseSensitivity, fractionsForFlopTarget, sensitivitySvg } from '../filter/sensitivity.js';
import { modelFromFiles, modelToFiles } from '../models/files.js';
import type { RunSession } from '../session.js';
import type { RunMethod } from './method.js';
import { imp, impLastRound } from './imp.js';
import { pct } from '../report/format.js';

/** Validation examples the sensitivity analysis evaluates (each layer x fraction is one evaluation). */
const SENSITIVITY_EXAMPLES = 1000;
const ROUND_MODEL = 'model.json';
const ROUND_WEIGHTS = 'model.weights.bin';

/** Metrics of a model that is only evaluated, not trained (round 0 with pretrain: false, or no fine-tuning). */
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

export const filter: RunMethod = {
  run: runFilter,
};

async function runFilter(s: RunSession): Promise<RunResultRecord> {
  const { spec, dataset: ds, backend, name, sink } = s;
  const emit = s.emit.bind(s);
  const opened = await s.openModel();
  let model = opened.model;
  /** Whether `model` is ours to dispose (a step's smaller model always is). */
  let ownsModel = opened.owned;
  const replaceModel = (next: tf.LayersModel) => {
    if (ownsModel) model.dispose();
    model = next;
    ownsModel = true;
  };
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
    const finished = await s.finishedRounds();
    const filterRounds = finished.filter((r) => r.index <= steps);
    // IMP's rounds (its dense round 0 included) follow the filter steps.
    s.runStarted(steps + (spec.thenImp ? impLastRound(spec) + 1 : 0), finished.length);

    const cfgFor = (iterations: number, seed: number): TrainConfig => trainConfigFor(spec, iterations, seed, s.loop);
    const train = async (round: number, iterations: number, seed: number): Promise<TrainingMetrics> => {
      const m = iterations > 0
        ? await trainModel(model, data!, null, cfgFor(iterations, seed), {
            signal: s.signal,
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
        const a = await analyseSensitivity(model, graph0, split, {
          groups: Object.keys(candidates.fractions),
          importance: spec.filterImportance,
          seed: childSeed(spec.seed, 'filter'),
          maxExamples: SENSITIVITY_EXAMPLES,
          signal: s.signal,
        });
        sensitivity = { fractions: a.fractions, baselineAccuracy: a.baselineAccuracy, examples: a.examples, groups: a.groups };
        extra['sensitivity.svg'] = new TextEncoder().encode(sensitivitySvg(a));
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
      replaceModel(await modelFromFiles({ json: last.artifacts[ROUND_MODEL]!, bin: last.artifacts[ROUND_WEIGHTS]! }));
    }

    let previous = filterRounds.at(-1)?.metrics ?? round0;
    for (let step = Math.max(1, filterRounds.length); step <= steps; step++) {
      if (s.signal?.aborted) throw new RunCancelled();
      const graph: DependencyGraph = buildGraph(model);
      const plan = planStep(graph, getWeightMap(model), {
        targets,
        originalSizes,
        step,
        steps,
        importance: spec.filterImportance,
        seed: childSeed(spec.seed, 'filter'),
      });
      replaceModel(await shrinkModel(model, plan, graph));
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
      // IMP on the shrunken model, in this run: its rounds follow the filter steps, its state keys apart.
      const sub = s.withModel(model, { firstRound: steps + 1, statePrefix: 'imp.', spec: { ...spec, method: 'imp' } });
      const impResult = await imp.run(sub);
      Object.assign(artifacts, impResult.artifacts);
      verdict = { ...impResult.verdict, summary: `${verdict.summary}; then IMP: ${impResult.verdict.summary}` };
      impSummary = impResult.summary;
    }

    const rounds = (await sink.finishedRounds()).map((r) => r.metrics);
    const last = rounds.at(-1)!;
    return {
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
  } finally {
    data?.dispose();
    if (ownsModel) model.dispose();
  }
}

function filterVerdict(before: RoundMetrics, after: RoundMetrics): Verdict {
  const ONE = { digits: 1 };
  const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');
  const b = before.filter;
  const a = after.filter;
  const speed = b && a ? `, batch-64 latency ${b.latencyBatch64Ms.toFixed(1)} -> ${a.latencyBatch64Ms.toFixed(1)} ms (${ratio(b.latencyBatch64Ms, a.latencyBatch64Ms)} faster)` : '';
  return {
    ticketBeatsControls: [],
    roundsCompared: [],
    summary:
      `filter pruning: ${before.paramsRemaining} -> ${after.paramsRemaining} parameters (${pct(after.paramsRemaining / before.paramsRemaining, ONE)}), ` +
      `${before.flops} -> ${after.flops} FLOPs (${pct(after.flops / before.flops, ONE)})${speed}; ` +
      `test accuracy ${pct(before.finalTestAccuracy, ONE)} -> ${pct(after.finalTestAccuracy, ONE)} after fine-tuning`,
  };
}
