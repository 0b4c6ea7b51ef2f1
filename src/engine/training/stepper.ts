// What the training loop (loop.ts) needs from whatever trains the weights: one
// optimisation step on a batch, evaluation, and copies of the weights. Three
// steppers implement it: TF.js kernels on the run's backend (tfjs.ts) and the
// two MLP engines on our WebAssembly kernels (mlp.ts over mlp-simd.ts and
// mlp-csr.ts). A stepper knows nothing of batch order, schedules, evaluation
// points, early stopping or progress: those are the loop's.
import type { TrainingLoop } from '../sink.js';

export interface Metrics {
  loss: number;
  accuracy: number;
}

/** `S` is the stepper's own copy of the weights (tensors, arrays). */
export interface Stepper<S> {
  readonly loop: TrainingLoop;
  /** Training examples the batch indices point into. */
  readonly examples: number;
  /** One optimisation step at learning rate `lr` on the training examples at `batch` (pruned weights stay zero). */
  step(batch: Int32Array, lr: number): void;
  /** Mean loss and accuracy over a whole split. */
  evaluate(split: 'validation' | 'test'): Metrics;
  /** A copy of every trained weight. */
  snapshot(): S;
  restore(s: S): void;
  /** Frees a snapshot. */
  release(s: S): void;
  /** Makes the model hold the current weights (for steppers that train a copy of them). */
  sync(): void;
  /** Frees what the stepper holds; the model stays. */
  dispose(): void;
}
