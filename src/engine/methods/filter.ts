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
import type { RoundRecord, RunResultRecord } from '../sink.js';
import { totalIterations, type RunSpec } from '../spec.js';
import { checkFits } from '../data/index.js';
import { countFlops, countParams, describeModel, getWeightMap, prunableWeights } from '../models/inspect.js';
import { childSeed } from '../rng.js';
import { compressTicket } from '../export.js';
import { ONNX_TICKET, onnxTicket, type OnnxSummary } from '../export/onnx-ticket.js';
import { evaluate, RunCancelled, toTensors, trainConfigFor, trainModel, type TrainData } from '../training/train.js';
import { buildGraph, filtersPerLayer, type DependencyGraph } from '../pruning/structure/graph.js';
import { planStep, resolveTargets, type FilterTargets } from '../pruning/structure/algorithm.js';
import { shrinkModel } from '../pruning/structure/surgery.js';
import { latencyProfile, type LatencyOptions } from '../filter/latency.js';
import { analyseSensitivity, fractionsForFlopTarget, sensitivitySvg } from '../filter/sensitivity.js';
import { modelFromFiles, modelToFiles } from '../models/files.js';
import type { RunSession } from '../session.js';
import { classNamesOf, type RunMethod } from './method.js';
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
  const run = new FilterRun(s, await s.openModel());
  try {
    const done = await run.start();
    if (done.length === 0) await run.denseRound();
    else await run.resume(done);
    for (let step = Math.max(1, done.length); step <= run.steps; step++) await run.step(step);
    return await run.finish();
  } finally {
    run.dispose();
  }
}

/** What the dense model fixes for every step: the sizes densities are measured against, and the filter counts. */
interface DenseProfile {
  graph: DependencyGraph;
  filtersTotal: Record<string, number>;
  originalSizes: Record<string, number>;
  kernelSizes: Map<string, number>;
  prunableTotal: number;
  paramsTotal: number;
}

function profileOf(model: tf.LayersModel): DenseProfile {
  const graph = buildGraph(model);
  const kernelSizes = new Map(prunableWeights(model).map((w) => [w.name, w.shape.reduce((a, b) => a * b, 1)]));
  return {
    graph,
    filtersTotal: filtersPerLayer(graph),
    originalSizes: Object.fromEntries(graph.groups.map((g) => [g.name, g.size])),
    kernelSizes,
    prunableTotal: [...kernelSizes.values()].reduce((a, b) => a + b, 0),
    paramsTotal: countParams(model),
  };
}

/** The filter numbers a round states; measure() adds the ones read off the model. */
type StepFacts = Omit<FilterRoundMetrics, 'params' | 'flops' | 'modelBytes' | 'latencyBatch1Ms' | 'latencyBatch64Ms' | 'filtersKept' | 'filtersTotal' | 'accuracyAfterFineTuning'>;

/**
 * One filter run's state, shared by its steps: the current model (each step
 * replaces it with a smaller one), the data as tensors, what the dense model
 * fixed, the targets round 0 chose, and the rounds to compare.
 */
class FilterRun {
  readonly steps: number;
  private readonly spec: RunSpec;
  private model: tf.LayersModel;
  /** Whether `model` is ours to dispose (a step's smaller model always is). */
  private ownsModel: boolean;
  private data: TrainData | null = null;
  private dense!: DenseProfile;
  private targets!: FilterTargets;
  /** Round 0's metrics and the last filter round's (the before and after of the summary). */
  private round0!: RoundMetrics;
  private previous!: RoundMetrics;
  private readonly latencyOpts: LatencyOptions = { warmup: 1, minRepeats: 3, minSeconds: 0.5 };

  constructor(
    private readonly s: RunSession,
    opened: { model: tf.LayersModel; owned: boolean },
  ) {
    this.spec = s.spec;
    this.steps = s.spec.filterSchedule === 'one-shot' ? 1 : s.spec.filterSteps;
    this.model = opened.model;
    this.ownsModel = opened.owned;
  }

  /** Checks the model, profiles it, starts the run; returns the filter rounds already committed. */
  async start(): Promise<RoundRecord[]> {
    const { s, spec } = this;
    checkFits(s.dataset, describeModel(this.model));
    this.data = toTensors(s.dataset);
    this.dense = profileOf(this.model);
    const finished = await s.finishedRounds();
    // IMP's rounds (its dense round 0 included) follow the filter steps.
    s.runStarted(this.steps + (spec.thenImp ? impLastRound(spec) + 1 : 0), finished.length);
    return finished.filter((r) => r.index <= this.steps);
  }

  /** Round 0: the dense model, trained unless it comes trained; the targets are fixed here. */
  async denseRound(): Promise<void> {
    const { s, spec } = this;
    s.emit({ kind: 'round-start', round: 0, density: 1 });
    const training = spec.pretrain ? await this.train(0, totalIterations(spec, s.dataset.train.n), childSeed(spec.seed, 'data')) : await this.train(0, 0, 0);
    const extra: Record<string, Uint8Array> = {};
    const sensitivity = spec.sensitivity || spec.targetFlopReduction !== undefined ? await this.sensitivity(extra) : undefined;
    const { graph } = this.dense;
    const targets = spec.targetFlopReduction !== undefined
      ? resolveTargets(graph, { fractions: fractionsForFlopTarget(graph, sensitivity!, spec.targetFlopReduction), skip: spec.skipLayers })
      : resolveTargets(graph, { fraction: spec.filterFraction, fractions: spec.filterFractions, skip: spec.skipLayers });
    if (Object.keys(targets.fractions).length === 0) {
      throw new Error(`filter pruning: no layer of '${this.model.name}' would be pruned: ${Object.entries(targets.skipped).map(([g, why]) => `${g}: ${why}`).join('; ')}`);
    }
    this.targets = targets;
    const acc = training.finalTestAccuracy;
    const r = await this.measure(0, training, {
      step: 0,
      steps: this.steps,
      importance: spec.filterImportance,
      accuracyBeforePruning: acc,
      accuracyAfterPruning: acc,
      targets: targets.fractions,
      skipped: targets.skipped,
      ...(sensitivity ? { sensitivity } : {}),
    });
    await s.sink.commitRound({ index: 0, metrics: r.metrics, artifacts: { ...r.artifacts, ...extra } });
    s.emit({ kind: 'round-end', round: 0, metrics: r.metrics });
    this.round0 = r.metrics;
    this.previous = r.metrics;
  }

  /** Each layer's accuracy with a share of its filters cut, on the validation split (else test); its plot goes into `extra`. */
  private async sensitivity(extra: Record<string, Uint8Array>): Promise<FilterSensitivity> {
    const { s, spec, data } = this;
    const { graph } = this.dense;
    const candidates = resolveTargets(graph, { fraction: 0.5, skip: spec.skipLayers });
    const split = data!.validation.n > 0 ? data!.validation : data!.test;
    const a = await analyseSensitivity(this.model, graph, split, {
      groups: Object.keys(candidates.fractions),
      importance: spec.filterImportance,
      seed: childSeed(spec.seed, 'filter'),
      maxExamples: SENSITIVITY_EXAMPLES,
      signal: s.signal,
    });
    extra['sensitivity.svg'] = new TextEncoder().encode(sensitivitySvg(a));
    return { fractions: a.fractions, baselineAccuracy: a.baselineAccuracy, examples: a.examples, groups: a.groups };
  }

  /** A resumed run: the targets from round 0 in the sink, the model of the last committed step. */
  async resume(done: RoundRecord[]): Promise<void> {
    this.round0 = done[0]!.metrics;
    const f = this.round0.filter;
    if (f === undefined) throw new Error(`run '${this.s.name}': round 0 in the sink has no filter metrics; is it an IMP run's checkpoint?`);
    this.targets = { fractions: f.targets, skipped: f.skipped };
    const last = done.at(-1)!;
    this.replaceModel(await modelFromFiles({ json: last.artifacts[ROUND_MODEL]!, bin: last.artifacts[ROUND_WEIGHTS]! }));
    this.previous = last.metrics;
  }

  /** One pruning step: rank filters, cut them out (a smaller model), evaluate, fine-tune, measure and commit. */
  async step(step: number): Promise<void> {
    const { s, spec } = this;
    if (s.signal?.aborted) throw new RunCancelled();
    const graph = buildGraph(this.model);
    const plan = planStep(graph, getWeightMap(this.model), {
      targets: this.targets,
      originalSizes: this.dense.originalSizes,
      step,
      steps: this.steps,
      importance: spec.filterImportance,
      seed: childSeed(spec.seed, 'filter'),
    });
    this.replaceModel(await shrinkModel(this.model, plan, graph));
    const density = prunableWeights(this.model).reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0) / this.dense.prunableTotal;
    s.emit({ kind: 'round-start', round: step, density });
    const afterPruning = evaluate(this.model, this.data!.test).accuracy;
    const training = await this.train(step, spec.fineTuneIterations, childSeed(spec.seed, 'finetune', step));
    const r = await this.measure(step, training, {
      step,
      steps: this.steps,
      importance: spec.filterImportance,
      accuracyBeforePruning: this.previous.finalTestAccuracy,
      accuracyAfterPruning: afterPruning,
      targets: this.targets.fractions,
      skipped: this.targets.skipped,
    });
    await s.sink.commitRound({ index: step, metrics: r.metrics, artifacts: r.artifacts });
    s.emit({ kind: 'round-end', round: step, metrics: r.metrics });
    this.previous = r.metrics;
  }

  /** Trains the current model (or only evaluates it, for 0 iterations) as the round's ticket trial. */
  private async train(round: number, iterations: number, seed: number): Promise<TrainingMetrics> {
    const { s } = this;
    const m = iterations > 0
      ? await trainModel(this.model, this.data!, null, trainConfigFor(this.spec, iterations, seed, s.loop), {
          signal: s.signal,
          onProgress: (p) => s.emit({ kind: 'progress', round, trial: 'ticket', ...p }),
        })
      : evalOnly(this.model, this.data!);
    s.emit({ kind: 'trial-end', round, trial: 'ticket', metrics: m });
    return m;
  }

  /** RoundMetrics of the current model after its training / fine-tuning, and its files. */
  private async measure(round: number, training: TrainingMetrics, f: StepFacts): Promise<{ metrics: RoundMetrics; artifacts: Record<string, Uint8Array> }> {
    const { model } = this;
    const { kernelSizes, prunableTotal, paramsTotal, filtersTotal } = this.dense;
    const files = await modelToFiles(model, ROUND_WEIGHTS);
    const weights = getWeightMap(model);
    const latency = await latencyProfile(model, this.latencyOpts);
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
      compressedBytes: compressTicket(weights, {}, { float16: this.spec.float16 }).length,
      backend: this.s.backend.name,
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
  }

  /** The shrunken model as the ticket (with IMP's ticket over it when thenImp), the verdict and the summary. */
  async finish(): Promise<RunResultRecord> {
    const { s } = this;
    const filterFiles = await modelToFiles(this.model, 'weights.bin');
    const artifacts: Record<string, Uint8Array> = { 'ticket/model.json': filterFiles.json, 'ticket/weights.bin': filterFiles.bin };
    const svg = (await s.sink.finishedRounds()).find((r) => r.index === 0)?.artifacts['sensitivity.svg'];
    if (svg) artifacts['sensitivity.svg'] = svg;
    const verdict = filterVerdict(this.round0, this.previous);
    if (!this.spec.thenImp) {
      const onnxOut = onnxTicket(this.model, s.name);
      if (onnxOut.bytes) artifacts[ONNX_TICKET] = onnxOut.bytes;
      return this.result(artifacts, verdict, onnxOut.summary);
    }

    // IMP on the shrunken model, in this run: its rounds follow the filter steps, its state keys apart.
    // Its ticket files (model.onnx included, or its absence) replace the shrunken model's.
    const sub = s.withModel(this.model, { firstRound: this.steps + 1, statePrefix: 'imp.', spec: { ...this.spec, method: 'imp' } });
    const impResult = await imp.run(sub);
    Object.assign(artifacts, impResult.artifacts);
    return this.result(artifacts, { ...impResult.verdict, summary: `${verdict.summary}; then IMP: ${impResult.verdict.summary}` }, impResult.summary.onnx as OnnxSummary, impResult.summary);
  }

  private async result(artifacts: Record<string, Uint8Array>, verdict: Verdict, onnxSummary: OnnxSummary, impSummary?: Record<string, unknown>): Promise<RunResultRecord> {
    const { s, spec, round0, previous } = this;
    const rounds = (await s.sink.finishedRounds()).map((r) => r.metrics);
    const last = rounds.at(-1)!;
    return {
      name: s.name,
      verdict,
      artifacts,
      summary: {
        spec,
        backend: s.backend,
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
        onnx: onnxSummary,
        rounds,
        ...classNamesOf(s.dataset),
      },
    };
  }

  private replaceModel(next: tf.LayersModel): void {
    if (this.ownsModel) this.model.dispose();
    this.model = next;
    this.ownsModel = true;
  }

  dispose(): void {
    this.data?.dispose();
    if (this.ownsModel) this.model.dispose();
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
