// The training loop, the one every model trains in: batch order, learning-rate
// schedule, evaluation points, then the final test evaluations. What trains
// the weights is a Stepper (stepper.ts); capture, early stopping and progress
// are callbacks (callbacks.ts). Because the order and the schedule live here
// only, every stepper sees the same batches in the same order for a seed,
// including a rewound start that replays the skipped iterations' draws.
import type { TrainingMetrics } from '../sink.js';
import { mulberry32, shuffleInPlace } from '../rng.js';
import { learningRateAt, RunCancelled, type TrainCallbacks, type TrainConfig } from './config.js';
import { EarlyStop, Progress, WeightCapture } from './callbacks.js';
import type { Stepper } from './stepper.js';

/**
 * Batches of `batchSize` indices into `n` examples: a fresh shuffle (seeded
 * by `seed`) whenever the current one has fewer than a batch left, so a
 * partial batch is never drawn. Each shuffle is a new array: a batch, once
 * handed out, never changes.
 */
export class BatchOrder {
  private readonly next: () => number;
  private order = new Int32Array(0);
  private cursor = 0;

  constructor(
    private readonly n: number,
    private readonly batchSize: number,
    seed: number,
  ) {
    this.next = mulberry32(seed);
  }

  /** The next batch (a view of the current shuffle). */
  take(): Int32Array {
    if (this.cursor + this.batchSize > this.order.length) {
      this.order = shuffleInPlace(Int32Array.from({ length: this.n }, (_, i) => i), this.next);
      this.cursor = 0;
    }
    const batch = this.order.subarray(this.cursor, this.cursor + this.batchSize);
    this.cursor += this.batchSize;
    return batch;
  }

  /** Draws and drops `iterations` batches (a run rewound to iteration k sees the original's batches from k on). */
  skip(iterations: number): void {
    for (let i = 0; i < iterations; i++) this.take();
  }
}

/**
 * Trains with `stepper` from `cfg.startIteration` to `cfg.iterations`;
 * returns final and early-stop metrics. Takes the stepper over (disposes it);
 * on success the model holds the trained weights.
 */
export async function runTraining<S>(stepper: Stepper<S>, cfg: TrainConfig, cb: TrainCallbacks = {}): Promise<TrainingMetrics> {
  const earlyStop = new EarlyStop(stepper, cfg.startIteration);
  try {
    const bs = Math.min(cfg.batchSize, stepper.examples);
    const order = new BatchOrder(stepper.examples, bs, cfg.seed);
    order.skip(cfg.startIteration);
    const capture = new WeightCapture(stepper, cb.capture);
    const progress = new Progress(cfg, bs, cb);
    const evaluateAt = (iteration: number) => earlyStop.record(iteration, stepper.evaluate('validation'));

    capture.at(cfg.startIteration);
    evaluateAt(cfg.startIteration);
    for (let it = cfg.startIteration; it < cfg.iterations; it++) {
      if (cb.signal?.aborted) throw new RunCancelled();
      stepper.step(order.take(), learningRateAt(cfg, it));
      const done = it + 1;
      capture.at(done);
      const isEval = done % cfg.evalEvery === 0 || done === cfg.iterations;
      if (isEval) evaluateAt(done);
      await progress.after(done, isEval, earlyStop.lastLoss);
    }
    const metrics = progress.stop(stepper.loop);
    const final = stepper.evaluate('test');
    const early = earlyStop.testMetrics(final, cfg.iterations);
    stepper.sync();
    return metrics({ final, earlyStop: early, best: earlyStop.best, curve: earlyStop.curve });
  } finally {
    earlyStop.dispose();
    stepper.dispose();
  }
}
