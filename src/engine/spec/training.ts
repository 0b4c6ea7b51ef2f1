// Run-spec fields of the training concern: the optimiser and its schedule,
// how long each training runs, the training pool (its cap and the share held
// out for validation) and the seed. Also the paper's per-model defaults for
// the two fields that have none of their own (learning rate, iterations).
import { z } from 'zod';
import { DEFAULT_VALIDATION_FRACTION } from '../data/split.js';
import { SpecError } from './errors.js';
import { SPEC_LIMITS } from './limits.js';

export const TRAINING_FIELDS = {
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
  // Bounded away from 0 (early stopping needs a validation set) and from 1 (the rest trains).
  validationFraction: z
    .number()
    .min(0.01)
    .max(0.5)
    .default(DEFAULT_VALIDATION_FRACTION)
    .describe('Share of the training set held out for validation (early stopping, the validation curve)'),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0).describe('Seed for initialisation, data order and controls'),
};

export type TrainingSpec = z.output<z.ZodObject<typeof TRAINING_FIELDS>>;

/**
 * The rule that depends on the model's training length (not in the JSON
 * Schema: iterations default per model). A length given in epochs is only
 * known once the data set is, so it is not checked here.
 */
export function checkTraining(spec: Pick<TrainingSpec, 'warmupIterations' | 'epochs'> & { iterations: number }): void {
  if (spec.epochs === undefined && spec.warmupIterations > spec.iterations) {
    throw new SpecError(`warmupIterations: must be at most iterations (${spec.iterations})`, 'warmupIterations');
  }
}

/** Paper settings per model family (Frankle & Carbin 2019, Figure 2). */
export function modelDefaults(model: string): { learningRate: number; iterations: number } {
  if (model.startsWith('lenet')) return { learningRate: 1.2e-3, iterations: 50_000 };
  if (model === 'conv-2') return { learningRate: 2e-4, iterations: 20_000 };
  if (model === 'conv-4') return { learningRate: 3e-4, iterations: 25_000 };
  if (model === 'conv-6') return { learningRate: 3e-4, iterations: 30_000 };
  return { learningRate: 1e-3, iterations: 30_000 };
}

/** Number of training iterations for a given training-set size. */
export function totalIterations(spec: Pick<TrainingSpec, 'epochs' | 'batchSize'> & { iterations: number }, trainExamples: number): number {
  if (spec.epochs !== undefined) return Math.max(1, Math.round((spec.epochs * trainExamples) / spec.batchSize));
  return spec.iterations;
}
