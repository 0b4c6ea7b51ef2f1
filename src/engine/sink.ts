// The engine's only way out: a checkpoint sink that stores rounds whole, and
// an event callback. The CLI writes to a directory (FileSink below); the
// service writes to PostgreSQL and the blob store. Nothing here knows which.
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Metrics of one training (the ticket or one control). */
export interface TrainingMetrics {
  finalTestAccuracy: number;
  finalTestLoss: number;
  /** Iteration of minimum validation loss (the paper's speed-of-learning metric). */
  earlyStopIteration: number;
  earlyStopTestAccuracy: number;
  earlyStopValidationLoss: number;
  /** Sampled validation curve: [iteration, validation loss, validation accuracy]. */
  curve: Array<[number, number, number]>;
  trainSeconds: number;
  examplesPerSecond: number;
  /**
   * Which loop trained it: TF.js kernels on the run's backend, or an MLP
   * engine on Ticketsmith's WebAssembly kernels (absent in records written
   * before this field existed).
   */
  trainingLoop?: TrainingLoop;
}

export type TrainingLoop = 'tfjs' | 'mlp-simd' | 'mlp-csr';

export type ControlKind = 'reinit' | 'shuffle';

export interface RoundMetrics extends TrainingMetrics {
  round: number;
  /** Fraction of prunable weights still alive. */
  density: number;
  layerDensity: Record<string, number>;
  /** Parameters left: non-zero prunable weights plus every non-prunable parameter. */
  paramsRemaining: number;
  paramsTotal: number;
  /** Multiply-adds of one forward pass at batch 1 as executed (masks do not skip work on dense kernels). */
  flops: number;
  denseBytes: number;
  compressedBytes: number;
  backend: string;
  controls: Partial<Record<ControlKind, TrainingMetrics>>;
  /** Filter pruning (method `filter`) only: the step's structural numbers. */
  filter?: FilterRoundMetrics;
}

/** One channel group's accuracy without retraining when pruned alone. */
export interface FilterSensitivityGroup {
  group: string;
  /** Coupled producer layers (one for a plain conv). */
  layers: string[];
  filters: number;
  /** Share of the model's multiply-adds that shrink with this group. */
  flopShare: number;
  /** Accuracy after removing each of FilterSensitivity.fractions of its filters. */
  accuracy: number[];
}

export interface FilterSensitivity {
  fractions: number[];
  baselineAccuracy: number;
  /** Validation examples evaluated. */
  examples: number;
  groups: FilterSensitivityGroup[];
}

/**
 * A filter-pruning step: the model physically shrinks, so parameters, FLOPs,
 * bytes and latency are those of the smaller model as executed. Step 0 is the
 * (trained) model before pruning.
 */
export interface FilterRoundMetrics {
  step: number;
  steps: number;
  importance: 'l1' | 'l2' | 'random';
  params: number;
  /** Multiply-adds of one forward pass at batch 1. */
  flops: number;
  /** model.json + weights.bin as exported. */
  modelBytes: number;
  /** Median measured inference latency on the run's backend. */
  latencyBatch1Ms: number;
  latencyBatch64Ms: number;
  /** Test accuracy of the model this step starts from. */
  accuracyBeforePruning: number;
  /** Test accuracy right after surgery, before fine-tuning. */
  accuracyAfterPruning: number;
  accuracyAfterFineTuning: number;
  /** Output filters / units per producing layer after this step. */
  filtersKept: Record<string, number>;
  /** ... and before any pruning. */
  filtersTotal: Record<string, number>;
  /** Channel group (named by its first layer; residual-coupled layers share one) -> fraction of its filters removed by the last step. */
  targets: Record<string, number>;
  /** Groups left whole, and why. */
  skipped: Record<string, string>;
  /** Step 0, when the spec asks for it (or for a FLOP target). */
  sensitivity?: FilterSensitivity;
}

/** One finished round, committed whole. Artifact bytes are keyed by file name. */
export interface RoundRecord {
  index: number;
  metrics: RoundMetrics;
  /** `mask.json` (the mask used in this round), `weights.bin` + `weights.json` (trained weights). */
  artifacts: Record<string, Uint8Array>;
}

export interface Verdict {
  /** Rounds where the ticket beat every control it was compared with, on final test accuracy. */
  ticketBeatsControls: number[];
  roundsCompared: number[];
  summary: string;
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

export type TrialKind = 'ticket' | ControlKind;

export type EngineEvent =
  | { kind: 'run-start'; name: string; backend: string; rounds: number; resumedFrom: number }
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

/** Writes `<dir>/round_<k>/…` with a temp-dir-and-rename so a round appears whole or not at all. */
export class FileSink implements CheckpointSink {
  constructor(readonly dir: string) {}

  async finishedRounds(): Promise<RoundRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const indices = names
      .map((n) => /^round_(\d+)$/.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const rounds: RoundRecord[] = [];
    for (const index of indices) {
      const roundDir = join(this.dir, `round_${index}`);
      const artifacts: Record<string, Uint8Array> = {};
      for (const file of await readdir(roundDir)) {
        if (file === 'metrics.json') continue;
        artifacts[file] = new Uint8Array(await readFile(join(roundDir, file)));
      }
      const metrics = JSON.parse(await readFile(join(roundDir, 'metrics.json'), 'utf8')) as RoundMetrics;
      rounds.push({ index, metrics, artifacts });
    }
    return rounds;
  }

  async getState(key: string): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await readFile(join(this.dir, 'state', key)));
    } catch {
      return null;
    }
  }

  async putState(key: string, bytes: Uint8Array): Promise<void> {
    await this.writeAtomically(join(this.dir, 'state'), { [key]: bytes }, false);
  }

  async commitRound(round: RoundRecord): Promise<void> {
    const files = { ...round.artifacts, 'metrics.json': new TextEncoder().encode(JSON.stringify(round.metrics, null, 2)) };
    await this.writeAtomically(join(this.dir, `round_${round.index}`), files, true);
  }

  async commitResult(result: RunResultRecord): Promise<void> {
    const files = {
      ...result.artifacts,
      'result.json': new TextEncoder().encode(JSON.stringify({ name: result.name, verdict: result.verdict, ...result.summary }, null, 2)),
    };
    await this.writeAtomically(join(this.dir, 'result'), files, true);
  }

  /** Write files into a sibling temp dir, then rename it into place (whole-directory replace when `replace`). */
  private async writeAtomically(target: string, files: Record<string, Uint8Array>, replace: boolean): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    if (!replace) {
      await mkdir(target, { recursive: true });
      for (const [name, bytes] of Object.entries(files)) {
        const tmp = join(target, `.${name}.tmp`);
        await writeFile(tmp, bytes);
        await rename(tmp, join(target, name));
      }
      return;
    }
    const tmp = `${target}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    for (const [name, bytes] of Object.entries(files)) {
      const path = join(tmp, name);
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, bytes);
    }
    await rm(target, { recursive: true, force: true });
    await rename(tmp, target);
  }
}
