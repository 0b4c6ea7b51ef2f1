// The engine's only way out: a checkpoint sink that stores rounds whole (and
// an event callback, events.ts). The CLI writes to a directory
// (sinks/file.ts); the service writes to PostgreSQL and the blob store.
// Nothing here knows which.
import type { RoundMetrics, Verdict } from './metrics.js';

export type {
  ControlKind, FilterRoundMetrics, FilterSensitivity, FilterSensitivityGroup, RoundMetrics, TrainingLoop, TrainingMetrics, Verdict,
} from './metrics.js';
export type { EngineEvent, TrialKind } from './events.js';

/** One finished round, committed whole. Artifact bytes are keyed by file name. */
export interface RoundRecord {
  index: number;
  metrics: RoundMetrics;
  /** `mask.json` (the mask used in this round), `weights.bin` + `weights.json` (trained weights). */
  artifacts: Record<string, Uint8Array>;
}

export interface RunResultRecord {
  name: string;
  verdict: Verdict;
  /** Winning-ticket files: `ticket/model.json`, `ticket/weights.bin`, `ticket/mask.json`, `ticket/compressed.bin`. */
  artifacts: Record<string, Uint8Array>;
  summary: Record<string, unknown>;
}

export interface CheckpointSink {
  /** Rounds already committed for this run, ascending, artifacts included. */
  finishedRounds(): Promise<RoundRecord[]>;
  /** Engine state that belongs to no round (initial weights, rewind point). */
  getState(key: string): Promise<Uint8Array | null>;
  putState(key: string, bytes: Uint8Array): Promise<void>;
  /** Store one round whole or not at all. */
  commitRound(round: RoundRecord): Promise<void>;
  commitResult(result: RunResultRecord): Promise<void>;
}
