// Run-spec fields of L1 filter pruning (Li et al. 2017): how filters are
// ranked and how many go, the prune / fine-tune schedule, the sensitivity
// analysis, and "then IMP" on the shrunken model. Also the rules between them.
import { z } from 'zod';
import { fraction, layerName, SPEC_LIMITS } from './limits.js';
import type { SpecRule } from './rules.js';

/**
 * Map keys a plain object cannot hold as data: JSON.parse makes `__proto__`
 * an own key, but zod's record (and any `{}` it is copied into) drops it, so
 * `{"__proto__": 0.5}` would silently become `{}`. Refused instead.
 */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__']);

/**
 * `conv1=0.5,conv8=0.5` (a CLI flag value) -> { conv1: 0.5, conv8: 0.5 };
 * objects pass through, unless a key would be lost in parsing (FORBIDDEN_KEYS).
 */
function parseLayerFractions(value: unknown, ctx: z.core.$RefinementCtx): unknown {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const bad = Object.keys(value).find((k) => FORBIDDEN_KEYS.has(k));
    if (bad !== undefined) ctx.addIssue({ code: 'custom', message: `${bad} is not a layer name`, input: value });
    return value;
  }
  if (typeof value !== 'string') return value;
  const out: Record<string, number> = {};
  for (const part of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.lastIndexOf('=');
    if (eq <= 0) return value;
    const name = part.slice(0, eq).trim();
    if (FORBIDDEN_KEYS.has(name)) ctx.addIssue({ code: 'custom', message: `${name} is not a layer name`, input: value });
    out[name] = Number(part.slice(eq + 1));
  }
  return out;
}

export const FILTER_FIELDS = {
  filterImportance: z
    .enum(['l1', 'l2', 'random'])
    .default('l1')
    .describe('filter: rank filters by the l1 (Li et al. 2017) or l2 norm of their kernel weights, or randomly (control)'),
  filterFraction: fraction('filter: fraction of filters removed from every prunable conv layer (Li et al.: 0.5)').optional(),
  filterFractions: z
    .preprocess(parseLayerFractions, z
        .record(layerName, z.number().min(0).lt(1))
        .refine((r) => Object.keys(r).length <= SPEC_LIMITS.layers, `at most ${SPEC_LIMITS.layers} layers`)
        // A filter run that removes nothing is not a run (and would hash like the default).
        .refine((r) => Object.values(r).some((f) => f > 0), 'needs at least one layer with a fraction above 0'))
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
};

export type FilterSpec = z.output<z.ZodObject<typeof FILTER_FIELDS>>;

/** A filter run says how many filters go: by fraction(s) or by a FLOP target, not both (checked by rules.ts). */
export const FILTER_RULES: readonly SpecRule[] = Object.freeze([
  {
    kind: 'needs-one-of',
    when: { method: 'filter' },
    fields: ['filterFraction', 'filterFractions', 'targetFlopReduction'],
    field: 'filterFraction',
    message: 'filterFraction: method filter needs filterFraction, filterFractions or targetFlopReduction',
  },
  {
    kind: 'excludes',
    when: { method: 'filter' },
    field: 'targetFlopReduction',
    others: ['filterFraction', 'filterFractions'],
    message: 'targetFlopReduction: picks the per-layer fractions itself; do not combine it with filterFraction / filterFractions',
  },
]);
