// A running job's progress as shown to clients (job.progress): where it is,
// how fast it goes, and when it should end. One tracker per running job; the
// worker feeds it engine events and the sink stamps finished rounds.
import { roundCount, type EngineEvent, type TrialKind } from '../engine/events.js';

export interface JobProgress {
  /** Round being trained (0 = dense). */
  round: number;
  /** Rounds in the run, round 0 included; null until the engine says. */
  rounds: number | null;
  roundsCompleted: number;
  trial: TrialKind | null;
  step: number;
  totalSteps: number;
  examplesPerSecond: number;
  /** Seconds left in the current training; null when unknown. */
  etaSeconds: number | null;
  updatedAt: string;
}

export class ProgressTracker {
  private state: JobProgress;

  constructor(initial?: Partial<JobProgress>) {
    this.state = {
      round: 0,
      rounds: null,
      roundsCompleted: 0,
      trial: null,
      step: 0,
      totalSteps: 0,
      examplesPerSecond: 0,
      etaSeconds: null,
      updatedAt: new Date().toISOString(),
      ...initial,
    };
  }

  /** Folds one engine event in; returns true when the visible progress changed. */
  apply(e: EngineEvent): boolean {
    const s = this.state;
    switch (e.kind) {
      case 'run-start':
        s.rounds = roundCount(e);
        s.roundsCompleted = Math.max(s.roundsCompleted, e.resumedFrom);
        s.round = e.resumedFrom;
        break;
      case 'round-start':
        s.round = e.round;
        s.step = 0;
        s.trial = 'ticket';
        break;
      case 'progress':
        s.round = e.round;
        s.trial = e.trial;
        s.step = e.step;
        s.totalSteps = e.totalSteps;
        s.examplesPerSecond = e.examplesPerSecond;
        s.etaSeconds = Number.isFinite(e.etaSeconds) ? e.etaSeconds : null;
        break;
      case 'round-end':
        s.roundsCompleted = Math.max(s.roundsCompleted, e.round + 1);
        break;
      default:
        return false;
    }
    s.updatedAt = new Date().toISOString();
    return true;
  }

  roundCommitted(index: number): void {
    this.state.roundsCompleted = Math.max(this.state.roundsCompleted, index + 1);
    this.state.updatedAt = new Date().toISOString();
  }

  snapshot(): JobProgress {
    return { ...this.state };
  }
}
