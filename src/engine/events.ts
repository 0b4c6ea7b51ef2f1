// What a run reports while it runs. The engine hands these to the caller's
// onEvent; the worker stores them as job events, the CLI prints them.
import type { ControlKind, RoundMetrics, TrainingMetrics, Verdict } from './metrics.js';

export type TrialKind = 'ticket' | ControlKind;

export type EngineEvent =
  | {
      kind: 'run-start';
      name: string;
      backend: string;
      /**
       * Index of the last round the run trains. Round 0 is the dense one, so
       * the run trains lastRound + 1 rounds (roundCount); an iterative IMP run
       * with a targetDensity may stop before it. Stored job events also carry
       * it as `rounds`, the name it had on the wire.
       */
      lastRound: number;
      /** Rounds already committed when this attempt started (it resumes at this index). */
      resumedFrom: number;
    }
  | { kind: 'round-start'; round: number; density: number }
  | {
      kind: 'progress';
      round: number;
      trial: TrialKind;
      step: number;
      totalSteps: number;
      examplesPerSecond: number;
      etaSeconds: number;
      validationLoss?: number;
    }
  | { kind: 'trial-end'; round: number; trial: TrialKind; metrics: TrainingMetrics }
  | { kind: 'round-end'; round: number; metrics: RoundMetrics }
  | { kind: 'run-end'; name: string; verdict: Verdict };

/** Rounds a run trains, round 0 included, from its run-start event. */
export function roundCount(e: { lastRound: number }): number {
  return e.lastRound + 1;
}
