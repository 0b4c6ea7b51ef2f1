// What a run measures: one training's metrics, a round's (with the filter
// step's structural numbers when the method is `filter`), and the verdict of
// the ticket against its controls. Plain data: stored in round records,
// results and event payloads as they are.
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

export type TrainingLoop = 'tfjs' | 'mlp-simd' | 'mlp-csr' | 'cnn-simd' | 'cnn-sparse';

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

export interface Verdict {
  /** Rounds where the ticket beat every control it was compared with, on final test accuracy. */
  ticketBeatsControls: number[];
  roundsCompared: number[];
  summary: string;
}
