// Run-spec fields of iterative magnitude pruning (the lottery-ticket method):
// how many rounds, how much each round prunes and where, where survivors are
// rewound to, and which control trainings run. Also the rules between them.
import { z } from 'zod';
import { SpecError } from './errors.js';
import { fraction, layerName, SPEC_LIMITS } from './limits.js';
import type { SpecRule } from './rules.js';

export const IMP_FIELDS = {
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
    .refine((kinds) => new Set(kinds).size === kinds.length, 'lists a kind twice')
    .default(['reinit', 'shuffle'])
    .describe('reinit: same mask, fresh init; shuffle: each layer mask shuffled, original init kept'),
};

export type ImpSpec = z.output<z.ZodObject<typeof IMP_FIELDS>>;

/** Rules between IMP fields that the published JSON Schema also states (rules.ts). */
export const IMP_RULES: readonly SpecRule[] = Object.freeze([
  { kind: 'needs-one-of', when: { schedule: 'one-shot' }, fields: ['targetDensity'], field: 'targetDensity', message: 'targetDensity: required when schedule is one-shot' },
]);

/** The rule that depends on the model's training length (not in the JSON Schema: iterations default per model). */
export function checkImp(spec: ImpSpec & { iterations: number }): void {
  if (spec.rewind === 'iteration' && spec.rewindIteration >= spec.iterations) {
    throw new SpecError(`rewindIteration: must be below iterations (${spec.iterations})`, 'rewindIteration');
  }
}

/** Iteration whose weights survivors are reset to after each pruning (0 = init). */
export function rewindIteration(spec: Pick<ImpSpec, 'rewind' | 'rewindIteration' | 'rewindFraction'>, iterations: number): number {
  if (spec.rewind === 'iteration') return Math.min(spec.rewindIteration, iterations - 1);
  if (spec.rewind === 'fraction') return Math.floor(spec.rewindFraction * iterations);
  return 0;
}

/** Which pruned rounds train controls (round 0 is dense: nothing to control). */
export function roundHasControls(spec: Pick<ImpSpec, 'controls'>, round: number, lastRound: number): boolean {
  if (round === 0 || spec.controls === 'none') return false;
  return spec.controls === 'all' || round === lastRound;
}
