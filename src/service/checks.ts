// Submit-time checks that need more than the spec's own schema: fields that
// contradict each other, and fields that must agree with the model (layer
// names in skipLayers / filterFractions, filter pruning on a model with
// filters). Each failure is a 400 naming the field, raised before anything is
// queued, where the run would otherwise fail minutes later on a worker (or,
// worse, quietly ignore the field and succeed).
//
// The model is judged by its summary: for an uploaded model the architecture
// stored at upload (engine/models/inspect.ts describeModel); for a zoo model
// one built once per name (no training) and cached. Numeric bounds, quotas and
// dataset fit are checked elsewhere.
import { validationSize } from '../engine/data/split.js';
import { CONV_CLASSES, isPrunableClass } from '../engine/models/classes.js';
import type { RunSpec } from '../engine/spec.js';
import { modelArchitecture } from '../store/models.js';
import type { ServiceContext } from './context.js';
import { invalid } from './errors.js';

/** What the checks need to know about a model. */
export interface ModelFacts {
  /** Top-level layer name -> class name. */
  layers: Map<string, string>;
  /** Layers producing a model output (a Dense there cannot lose units). */
  outputs: Set<string>;
  /** False when nested models hide some layers from the summary: names are then not judged. */
  complete: boolean;
}

const NESTED = new Set(['Sequential', 'Model', 'Functional']);
const ZOO_INPUT = { lenet: [28, 28, 1], other: [32, 32, 3] };
const quote = (s: string) => `'${s.length > 100 ? `${s.slice(0, 100)}…` : s}'`;

/** Training examples left after the validation carve (engine/data/split.ts assemble), for a pool of `n`. */
function trainExamples(n: number, validationFraction: number): number {
  return n - validationSize(n, validationFraction);
}

/** Contradictions within the spec alone. */
export function checkSpecFields(spec: RunSpec): void {
  if (spec.maxTrainExamples !== undefined) {
    const train = trainExamples(spec.maxTrainExamples, spec.validationFraction);
    if (train < 1) {
      throw invalid('maxTrainExamples', `maxTrainExamples: ${spec.maxTrainExamples} example(s) cannot be split into training and validation (${Math.round(spec.validationFraction * 100)}% held out, at least one each); give at least 2`);
    }
    if (spec.batchSize > train) {
      throw invalid('batchSize', `batchSize: ${spec.batchSize} is more than the ${train} training examples maxTrainExamples ${spec.maxTrainExamples} leaves after the validation split`);
    }
  }
  if (spec.rewind !== 'iteration' && spec.rewindIteration !== 0) {
    throw invalid('rewindIteration', `rewindIteration: only used with rewind 'iteration' (rewind is '${spec.rewind}')`);
  }
  if (spec.rewind !== 'fraction' && spec.rewindFraction !== 0) {
    throw invalid('rewindFraction', `rewindFraction: only used with rewind 'fraction' (rewind is '${spec.rewind}')`);
  }
  const pruningRounds = spec.method === 'imp' || spec.thenImp;
  if (spec.targetDensity !== undefined && spec.schedule === 'iterative' && spec.rounds === 0) {
    throw invalid('targetDensity', 'targetDensity: rounds is 0, so nothing is pruned towards it; give rounds >= 1 or schedule one-shot');
  }
  if (spec.targetDensity !== undefined && !pruningRounds) {
    throw invalid('targetDensity', 'targetDensity: method filter prunes filters, not weights to a density; use filterFraction, or thenImp to prune weights afterwards');
  }
  if (spec.method === 'imp') {
    for (const field of ['filterFraction', 'filterFractions', 'targetFlopReduction'] as const) {
      if (spec[field] !== undefined) throw invalid(field, `${field}: only used with method 'filter' (method is 'imp')`);
    }
    for (const field of ['thenImp', 'sensitivity'] as const) {
      if (spec[field]) throw invalid(field, `${field}: only used with method 'filter' (method is 'imp')`);
    }
  }
}

/** Layer names a spec gives must exist in the model and be prunable there. */
export function checkSpecAgainstModel(spec: RunSpec, facts: ModelFacts): void {
  const known = (name: string) => facts.layers.has(name) || !facts.complete;
  const listed = () => [...facts.layers].filter(([, cls]) => isPrunableClass(cls)).map(([n]) => n).slice(0, 30).join(', ');
  spec.skipLayers.forEach((name, i) => {
    const field = `skipLayers[${i}]`;
    if (!known(name)) throw invalid(field, `${field}: the model has no layer ${quote(name)}; prunable layers: ${listed()}`);
    const cls = facts.layers.get(name);
    if (cls !== undefined && !isPrunableClass(cls)) throw invalid(field, `${field}: layer ${quote(name)} (${cls}) has no prunable weights; prunable layers: ${listed()}`);
  });
  const prunable = [...facts.layers].filter(([, cls]) => isPrunableClass(cls)).map(([n]) => n);
  if (facts.complete && prunable.length > 0 && prunable.every((n) => spec.skipLayers.includes(n)) && (spec.method === 'filter' || spec.rounds > 0)) {
    throw invalid('skipLayers', 'skipLayers: every prunable layer of the model is skipped, so nothing would be pruned');
  }
  if (spec.method !== 'filter') return;
  const fractions = spec.filterFractions ?? {};
  for (const [name, f] of Object.entries(fractions)) {
    const field = `filterFractions.${name}`;
    if (!known(name)) throw invalid(field, `${field}: the model has no layer ${quote(name)}; layers with filters: ${listed()}`);
    const cls = facts.layers.get(name);
    if (cls === undefined) continue;
    if (!isPrunableClass(cls)) throw invalid(field, `${field}: layer ${quote(name)} (${cls}) has no filters or units to remove`);
    if (cls === 'Dense' && facts.outputs.has(name) && f > 0) throw invalid(field, `${field}: layer ${quote(name)} produces the model's output; its units are the classes and cannot be removed`);
    if (spec.skipLayers.includes(name) && f > 0) throw invalid(field, `${field}: layer ${quote(name)} is also in skipLayers`);
  }
  const hasConv = [...facts.layers.values()].some((cls) => CONV_CLASSES.has(cls));
  const namedDense = Object.entries(fractions).some(([name, f]) => f > 0 && facts.layers.get(name) === 'Dense');
  if (facts.complete && !hasConv && !namedDense) {
    throw invalid('method', "method: 'filter' removes convolution filters, and this model has no convolution layers (name Dense layers in filterFractions to remove units, or use method 'imp')");
  }
}

/** Facts from a describeModel summary (what an uploaded model stores as `architecture`). */
export function factsFromSummary(summary: unknown): ModelFacts | null {
  if (typeof summary !== 'object' || summary === null) return null;
  const raw = (summary as { layers?: unknown }).layers;
  if (!Array.isArray(raw)) return null;
  const layers = new Map<string, string>();
  let complete = true;
  let lastWeighted: string | null = null;
  for (const l of raw as unknown[]) {
    if (typeof l !== 'object' || l === null) return null;
    const { name, className, params } = l as { name?: unknown; className?: unknown; params?: unknown };
    if (typeof name !== 'string' || typeof className !== 'string') return null;
    layers.set(name, className);
    if (NESTED.has(className)) complete = false;
    if (typeof params === 'number' && params > 0) lastWeighted = name;
  }
  // A classifier's output comes from its last layer with weights (a softmax Activation may follow it).
  return { layers, outputs: new Set(lastWeighted ? [lastWeighted] : []), complete };
}

const zooFacts = new Map<string, Promise<ModelFacts>>();

/**
 * A zoo model's facts, from a model built once per name (no training) with
 * the family's usual input; layer names do not depend on the input shape.
 */
async function factsOfZoo(ctx: ServiceContext, name: string): Promise<ModelFacts> {
  checkZooSize(ctx, name);
  let facts = zooFacts.get(name);
  if (!facts) {
    facts = (async () => {
      const [{ createModel }, { describeModel, prunableWeights }, { initBackend }] = await Promise.all([
        import('../engine/models/registry.js'),
        import('../engine/models/inspect.js'),
        import('../runtime/backend.js'),
      ]);
      // Building a model needs a TF.js backend; in an API process no job may have chosen one yet.
      await initBackend();
      const model = createModel(name, { inputShape: name.startsWith('lenet') ? ZOO_INPUT.lenet : ZOO_INPUT.other, numClasses: 10, seed: 0 });
      try {
        const layers = new Map(describeModel(model).layers.map((l) => [l.name, l.className]));
        const outputs = new Set(prunableWeights(model).filter((w) => w.kind === 'output').map((w) => w.layer));
        return { layers, outputs, complete: true };
      } finally {
        model.dispose();
      }
    })();
    // lenet-N-M names are unbounded: keep the cache small.
    if (zooFacts.size > 64) zooFacts.clear();
    zooFacts.set(name, facts);
    facts.catch(() => zooFacts.delete(name));
  }
  return facts;
}

/**
 * LeNet widths come from the name (`lenet-N-M`), so a name can ask for any
 * size: cost it from the name, with 28x28 inputs and 10 classes, before
 * anything builds it.
 */
function checkZooSize(ctx: ServiceContext, name: string): void {
  const m = /^lenet((?:-\d+)+)$/.exec(name);
  if (!m) return;
  const widths = [784, ...m[1]!.slice(1).split('-').map(Number), 10];
  const { maxLayerParams, maxParams } = ctx.config.modelLimits;
  let total = 0;
  for (let i = 1; i < widths.length; i++) {
    const params = widths[i - 1]! * widths[i]! + widths[i]!;
    const layer = i === widths.length - 1 ? 'out' : `fc${i}`;
    if (params > maxLayerParams) throw invalid('model', `model: layer '${layer}' of ${name} would have ${params.toLocaleString('en-US')} parameters; the limit per layer is ${maxLayerParams.toLocaleString('en-US')}`);
    total += params;
  }
  if (total > maxParams) throw invalid('model', `model: ${name} would have ${total.toLocaleString('en-US')} parameters; the limit is ${maxParams.toLocaleString('en-US')}`);
}

/**
 * Every submit-time check beyond the schema, for a spec whose model and
 * dataset references were already resolved (`modelId` set for an uploaded model).
 */
export async function checkSubmission(ctx: ServiceContext, spec: RunSpec, refs: { modelId: string | null }): Promise<void> {
  checkSpecFields(spec);
  let facts: ModelFacts | null;
  if (refs.modelId !== null) {
    facts = factsFromSummary(await modelArchitecture(ctx.prisma, refs.modelId));
  } else {
    facts = await factsOfZoo(ctx, spec.model);
  }
  if (facts) checkSpecAgainstModel(spec, facts);
}
