// The run spec: one zod schema is the single source of truth for what a
// compression run can be asked to do. REST validation, the gRPC mapping, the
// CLI flags, the OpenAPI document and the run's name all derive from it.
//
// Hashing rule (as open_lth does): a run's name hashes only the fields whose
// value differs from the resolved default, so adding a field with a default
// later never changes the names of old runs.
import { createHash } from 'node:crypto';
import { z } from 'zod';

const fraction = (desc: string) => z.number().gt(0).lt(1).describe(desc);

/**
 * Upper bounds of the spec's numbers, lists and strings. A spec is a tenant's
 * request for compute, so nothing in it is unbounded: each bound lies well
 * above what a paper run uses (LeNet: 50,000 iterations) and below what
 * would tie a worker up for months or overflow a counter. The job's total
 * cost is bounded separately (engine/cost.ts) and checked at submit.
 */
export const SPEC_LIMITS = Object.freeze({
  rounds: 100,
  iterations: 1_000_000,
  epochs: 1_000,
  batchSize: 4096,
  evalEvery: 1_000_000,
  warmupIterations: 1_000_000,
  rewindIteration: 1_000_000,
  fineTuneIterations: 1_000_000,
  maxTrainExamples: 10_000_000,
  filterSteps: 50,
  /** Names and references: a URL or a path fits, a megabyte does not. */
  refLength: 2048,
  layerNameLength: 256,
  /** Entries of skipLayers / filterFractions (a ResNet-1202 has about 1,200 conv layers). */
  layers: 2000,
} as const);

const layerName = z.string().min(1).max(SPEC_LIMITS.layerNameLength);

/** `conv1=0.5,conv8=0.5` (a CLI flag value) -> { conv1: 0.5, conv8: 0.5 }; objects pass through. */
function parseLayerFractions(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const out: Record<string, number> = {};
  for (const part of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.lastIndexOf('=');
    if (eq <= 0) return value;
    out[part.slice(0, eq).trim()] = Number(part.slice(eq + 1));
  }
  return out;
}

export const RunSpecSchema = z
  .object({
    model: z
      .string()
      .min(1)
      .max(SPEC_LIMITS.refLength)
      .default('lenet-300-100')
      .describe('Zoo model name (lenet-300-100, lenet-N-M, conv-2/4/6, vgg-11/16, resnet-20) or a model directory / URL'),
    dataset: z
      .string()
      .min(1)
      .max(SPEC_LIMITS.refLength)
      .default('builtin:mnist')
      .describe('Dataset reference: builtin:mnist, builtin:fashion-mnist, file://..., http(s)://...'),
    method: z.enum(['imp', 'filter']).default('imp').describe('imp: iterative magnitude pruning; filter: L1 filter pruning'),
    rounds: z.number().int().min(0).max(SPEC_LIMITS.rounds).default(10).describe('Pruning rounds after the dense round 0'),
    schedule: z
      .enum(['iterative', 'one-shot'])
      .default('iterative')
      .describe('iterative: prune a fraction each round; one-shot: prune straight to targetDensity after round 0'),
    targetDensity: z
      .number()
      .gt(0)
      .lt(1)
      .optional()
      .describe('Fraction of prunable weights to keep (one-shot target; iterative runs stop once reached)'),
    ranking: z
      .enum(['layerwise', 'global'])
      .default('layerwise')
      .describe('layerwise: each layer loses its own fraction; global: one magnitude threshold across layers'),
    fraction: fraction('One pruning fraction per round for every layer (overrides the per-kind fractions)').optional(),
    convFraction: fraction('Fraction of surviving conv weights pruned per round').default(0.15),
    denseFraction: fraction('Fraction of surviving hidden dense weights pruned per round').default(0.2),
    outputFraction: fraction('Fraction of surviving output-layer weights pruned per round').default(0.1),
    skipLayers: z.array(layerName).max(SPEC_LIMITS.layers).default([]).describe('Layer names never pruned'),
    rewind: z
      .enum(['init', 'iteration', 'fraction', 'learning-rate'])
      .default('init')
      .describe('init: reset survivors to initialisation; iteration/fraction: late resetting to iteration k; learning-rate: keep trained weights, replay the LR schedule'),
    rewindIteration: z.number().int().min(0).max(SPEC_LIMITS.rewindIteration).default(0).describe('Iteration k to rewind to (rewind=iteration)'),
    rewindFraction: z.number().min(0).lt(1).default(0).describe('Rewind point as a fraction of training (rewind=fraction)'),
    controls: z
      .enum(['all', 'last', 'none'])
      .default('all')
      .describe('Which pruned rounds also train the random-reinit and random-structure controls'),
    controlKinds: z
      .array(z.enum(['reinit', 'shuffle']))
      .min(1)
      .max(2)
      .default(['reinit', 'shuffle'])
      .describe('reinit: same mask, fresh init; shuffle: each layer mask shuffled, original init kept'),
    optimizer: z.enum(['adam', 'sgd', 'momentum']).default('adam').describe('Optimiser'),
    learningRate: z.number().gt(0).lt(10).optional().describe('Learning rate (default: the paper value for the model)'),
    momentum: z.number().min(0).lt(1).default(0.9).describe('Momentum (optimizer=momentum)'),
    lrSchedule: z.enum(['constant', 'cosine', 'step']).default('constant').describe('Learning-rate schedule'),
    warmupIterations: z.number().int().min(0).max(SPEC_LIMITS.warmupIterations).default(0).describe('Linear learning-rate warm-up'),
    batchSize: z.number().int().min(1).max(SPEC_LIMITS.batchSize).default(60).describe('Mini-batch size'),
    iterations: z.number().int().min(1).max(SPEC_LIMITS.iterations).optional().describe('Training iterations per round (default: the paper value for the model)'),
    epochs: z.number().gt(0).max(SPEC_LIMITS.epochs).optional().describe('Training length in epochs (overrides iterations)'),
    evalEvery: z.number().int().min(1).max(SPEC_LIMITS.evalEvery).default(100).describe('Evaluate validation loss every N iterations'),
    maxTrainExamples: z.number().int().min(1).max(SPEC_LIMITS.maxTrainExamples).optional().describe('Cap the training set (quick runs)'),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0).describe('Seed for initialisation, data order and controls'),
    float16: z.boolean().default(false).describe('Store the compressed export values as float16'),
    filterImportance: z
      .enum(['l1', 'l2', 'random'])
      .default('l1')
      .describe('filter: rank filters by the l1 (Li et al. 2017) or l2 norm of their kernel weights, or randomly (control)'),
    filterFraction: fraction('filter: fraction of filters removed from every prunable conv layer (Li et al.: 0.5)').optional(),
    filterFractions: z
      .preprocess(parseLayerFractions, z
          .record(layerName, z.number().min(0).lt(1))
          .refine((r) => Object.keys(r).length <= SPEC_LIMITS.layers, `at most ${SPEC_LIMITS.layers} layers`))
      .optional()
      .describe('filter: per-layer fractions, layer name -> fraction (CLI: conv1=0.5,conv8=0.5); overrides filterFraction for those layers'),
    filterSchedule: z
      .enum(['one-shot', 'iterative'])
      .default('one-shot')
      .describe('filter: one-shot: prune once, then fine-tune; iterative: prune a little and fine-tune, filterSteps times'),
    filterSteps: z.number().int().min(1).max(SPEC_LIMITS.filterSteps).default(4).describe('filter: prune-and-fine-tune steps of the iterative schedule'),
    fineTuneIterations: z.number().int().min(0).max(SPEC_LIMITS.fineTuneIterations).default(1000).describe('filter: fine-tuning iterations after each pruning step'),
    pretrain: z
      .boolean()
      .default(true)
      .describe('filter: train the model for `iterations` before pruning (turn off for an uploaded model that is already trained)'),
    sensitivity: z
      .boolean()
      .default(false)
      .describe('filter: prune each layer alone at 25/50/75% and record the accuracy without retraining (metrics and a plot)'),
    targetFlopReduction: fraction('filter: pick per-layer fractions from the sensitivity analysis so FLOPs drop by at least this fraction').optional(),
    thenImp: z
      .boolean()
      .default(false)
      .describe('filter: afterwards run IMP rounds (rounds, schedule and fractions as for imp) on the shrunken model'),
  })
  .strict();

export type RunSpecInput = z.input<typeof RunSpecSchema>;
export type ParsedSpec = z.output<typeof RunSpecSchema>;
/** A spec with every model-dependent default filled in. */
export type RunSpec = ParsedSpec & { learningRate: number; iterations: number };

/** Paper settings per model family (Frankle & Carbin 2019, Figure 2). */
function modelDefaults(model: string): { learningRate: number; iterations: number } {
  if (model.startsWith('lenet')) return { learningRate: 1.2e-3, iterations: 50_000 };
  if (model === 'conv-2') return { learningRate: 2e-4, iterations: 20_000 };
  if (model === 'conv-4') return { learningRate: 3e-4, iterations: 25_000 };
  if (model === 'conv-6') return { learningRate: 3e-4, iterations: 30_000 };
  return { learningRate: 1e-3, iterations: 30_000 };
}

export class SpecError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'SpecError';
  }
}

/** Parse and fill defaults; throws SpecError naming the first bad field. */
export function resolveSpec(input: unknown): RunSpec {
  const parsed = RunSpecSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === 'unrecognized_keys' && issue.path.length === 0) {
      // Name the first few only: an answer must not grow with what the client sent.
      const shown = issue.keys.slice(0, 5).map((k) => (k.length > 64 ? `${k.slice(0, 64)}…` : k));
      const more = issue.keys.length > shown.length ? ` and ${issue.keys.length - shown.length} more` : '';
      throw new SpecError(`${shown.join(', ')}${more}: unknown field${issue.keys.length > 1 ? 's' : ''}`, shown[0]!);
    }
    const field = issue.path.join('.') || 'spec';
    throw new SpecError(`${field}: ${issue.message}`, field);
  }
  const s = parsed.data;
  const d = modelDefaults(s.model);
  const spec: RunSpec = { ...s, learningRate: s.learningRate ?? d.learningRate, iterations: s.iterations ?? d.iterations };
  if (spec.method === 'filter') {
    const explicit = spec.filterFraction !== undefined || spec.filterFractions !== undefined;
    if (!explicit && spec.targetFlopReduction === undefined) {
      throw new SpecError('filterFraction: method filter needs filterFraction, filterFractions or targetFlopReduction', 'filterFraction');
    }
    if (explicit && spec.targetFlopReduction !== undefined) {
      throw new SpecError('targetFlopReduction: picks the per-layer fractions itself; do not combine it with filterFraction / filterFractions', 'targetFlopReduction');
    }
  }
  if (spec.schedule === 'one-shot' && spec.targetDensity === undefined) {
    throw new SpecError('targetDensity: required when schedule is one-shot', 'targetDensity');
  }
  if (spec.rewind === 'iteration' && spec.rewindIteration >= spec.iterations) {
    throw new SpecError(`rewindIteration: must be below iterations (${spec.iterations})`, 'rewindIteration');
  }
  return spec;
}

const defaultsByModel = new Map<string, RunSpec>();

/** The defaults a spec for this model resolves to (cached: every submit hashes a spec). */
export function defaultSpec(model = 'lenet-300-100'): RunSpec {
  let d = defaultsByModel.get(model);
  if (!d) {
    d = resolveSpec({ model });
    if (defaultsByModel.size > 1000) defaultsByModel.clear();
    defaultsByModel.set(model, d);
  }
  return structuredClone(d);
}

/** Fields that differ from the defaults, with keys sorted: the canonical form that is hashed. */
export function canonicalSpec(spec: RunSpec): Record<string, unknown> {
  const defaults = defaultSpec(spec.model) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(spec).sort()) {
    const value = (spec as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (JSON.stringify(value) !== JSON.stringify(defaults[key]) || key === 'model' || key === 'dataset' || key === 'method') {
      out[key] = value;
    }
  }
  return out;
}

export function specHash(spec: RunSpec): string {
  return createHash('sha256').update(JSON.stringify(canonicalSpec(spec))).digest('hex');
}

/** Storage name of a run, e.g. `imp_3f2a9c0d1b7e`. */
export function runName(spec: RunSpec): string {
  return `${spec.method}_${specHash(spec).slice(0, 12)}`;
}

/** Number of training iterations for a given training-set size. */
export function totalIterations(spec: RunSpec, trainExamples: number): number {
  if (spec.epochs !== undefined) return Math.max(1, Math.round((spec.epochs * trainExamples) / spec.batchSize));
  return spec.iterations;
}

/** Iteration whose weights survivors are reset to after each pruning (0 = init). */
export function rewindIteration(spec: RunSpec, iterations: number): number {
  if (spec.rewind === 'iteration') return Math.min(spec.rewindIteration, iterations - 1);
  if (spec.rewind === 'fraction') return Math.floor(spec.rewindFraction * iterations);
  return 0;
}

/** Which pruned rounds train controls (round 0 is dense: nothing to control). */
export function roundHasControls(spec: RunSpec, round: number, lastRound: number): boolean {
  if (round === 0 || spec.controls === 'none') return false;
  return spec.controls === 'all' || round === lastRound;
}
