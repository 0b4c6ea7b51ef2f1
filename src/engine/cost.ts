// What a run spec costs in training examples, before it runs: the bound the
// service checks at submit (TICKETSMITH_MAX_JOB_EXAMPLES), so one request
// cannot tie a worker up for months. Pure arithmetic over the spec, mirroring
// how engine/run.ts and engine/filter/run.ts schedule their trainings; it is an
// upper bound (an iterative run that reaches targetDensity stops early) and
// counts training only (evaluation and the sensitivity scan are not counted).
import { roundHasControls, totalIterations, type RunSpec } from './spec.js';

export interface CostEstimate {
  /** Trainings the run performs (dense round, pruned rounds, controls, filter fine-tunes). */
  trainings: number;
  /** Examples seen by all trainings together: iterations x batch size, summed. */
  examples: number;
}

/**
 * Examples trained by an IMP run: round 0 (dense) plus, per pruned round, the
 * ticket and each control trained in it. One-shot runs train rounds 0 and 1.
 */
function impCost(spec: RunSpec, perTraining: number): CostEstimate {
  const lastRound = spec.schedule === 'one-shot' ? 1 : spec.rounds;
  let trainings = 1;
  for (let round = 1; round <= lastRound; round++) {
    trainings += 1 + (roundHasControls(spec, round, lastRound) ? spec.controlKinds.length : 0);
  }
  return { trainings, examples: trainings * perTraining };
}

/**
 * The training cost of `spec`. `trainExamples` is the (largest possible)
 * training-set size, needed only when the length is given in epochs; null
 * means it is not known, and then an epochs spec cannot be costed (null).
 */
export function estimateCost(spec: RunSpec, trainExamples: number | null): CostEstimate | null {
  if (spec.epochs !== undefined && trainExamples === null) return null;
  const perTraining = totalIterations(spec, trainExamples ?? 0) * spec.batchSize;
  if (spec.method === 'imp') return impCost(spec, perTraining);
  const steps = spec.filterSchedule === 'one-shot' ? 1 : spec.filterSteps;
  let trainings = (spec.pretrain ? 1 : 0) + steps;
  let examples = (spec.pretrain ? perTraining : 0) + steps * spec.fineTuneIterations * spec.batchSize;
  if (spec.thenImp) {
    const imp = impCost(spec, perTraining);
    trainings += imp.trainings;
    examples += imp.examples;
  }
  return { trainings, examples };
}
