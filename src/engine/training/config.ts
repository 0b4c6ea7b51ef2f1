// What one training is told: the optimiser and its schedule, the batch, the
// iterations, the data order and which loop runs it (TrainConfig); what a
// caller hooks into it (TrainCallbacks); and the error of a cancelled run.
// Plain data, so it crosses to trial worker threads unchanged.
import type { TrainingLoopChoice } from '../../runtime/engine-config.js';

export type { TrainingLoopChoice };

export interface TrainConfig {
  optimizer: 'adam' | 'sgd' | 'momentum';
  learningRate: number;
  momentum: number;
  lrSchedule: 'constant' | 'cosine' | 'step';
  warmupIterations: number;
  batchSize: number;
  /** Total iterations T of the schedule. */
  iterations: number;
  /** Iteration to start from (late resetting continues the schedule from k). */
  startIteration: number;
  evalEvery: number;
  /** Seed of the data order. */
  seed: number;
  /** Which loop trains the model (the engine config's `loop`); default 'auto'. */
  loop?: TrainingLoopChoice;
}

/** The training settings of a run spec, for `iterations` iterations from 0 with data order `seed`, on `loop`. */
export function trainConfigFor(
  spec: Pick<TrainConfig, 'optimizer' | 'learningRate' | 'momentum' | 'lrSchedule' | 'warmupIterations' | 'batchSize' | 'evalEvery'>,
  iterations: number,
  seed: number,
  loop: TrainingLoopChoice = 'auto',
): TrainConfig {
  const { optimizer, learningRate, momentum, lrSchedule, warmupIterations, batchSize, evalEvery } = spec;
  return { optimizer, learningRate, momentum, lrSchedule, warmupIterations, batchSize, evalEvery, iterations, startIteration: 0, seed, loop };
}

/** Learning rate at iteration t of T. */
export function learningRateAt(cfg: TrainConfig, t: number): number {
  let lr = cfg.learningRate;
  if (cfg.lrSchedule === 'cosine') lr *= 0.5 * (1 + Math.cos((Math.PI * t) / cfg.iterations));
  else if (cfg.lrSchedule === 'step') lr *= t >= 0.75 * cfg.iterations ? 0.01 : t >= 0.5 * cfg.iterations ? 0.1 : 1;
  if (cfg.warmupIterations > 0 && t < cfg.warmupIterations) lr *= (t + 1) / cfg.warmupIterations;
  return lr;
}

export interface ProgressInfo {
  step: number;
  totalSteps: number;
  examplesPerSecond: number;
  etaSeconds: number;
  validationLoss?: number;
}

export interface TrainCallbacks {
  signal?: AbortSignal;
  /** Called at most every `progressEveryMs` (default 500 ms) and at each evaluation. */
  onProgress?: (p: ProgressInfo) => void;
  progressEveryMs?: number;
  /** Called once when `iteration` steps have been taken (0 = before the first step), with the model holding those weights. */
  capture?: { iteration: number; fn: () => void };
}

export class RunCancelled extends Error {
  constructor() {
    super('run cancelled');
    this.name = 'RunCancelled';
  }
}
