// What the training loop (loop.ts) does at its fixed points besides stepping,
// one class per concern, each working through the Stepper interface so it is
// the same for every stepper:
// - WeightCapture: hands the weights after k iterations to the caller (the
//   late-resetting rewind point);
// - EarlyStop: the validation curve, the best iteration and a snapshot of its
//   weights, restored for one test evaluation at the end;
// - Progress: progress reports and pacing (yields to the event loop), and
//   the training's own timing.
import type { TrainingLoop, TrainingMetrics } from '../sink.js';
import type { TrainCallbacks, TrainConfig } from './config.js';
import type { Metrics, Stepper } from './stepper.js';

/** Calls the caller's capture once, at its iteration, after syncing the model with the stepper. */
export class WeightCapture {
  constructor(
    private readonly stepper: Stepper<unknown>,
    private readonly capture: TrainCallbacks['capture'],
  ) {}

  /** `done` iterations have been taken. */
  at(done: number): void {
    if (!this.capture || this.capture.iteration !== done) return;
    this.stepper.sync();
    this.capture.fn();
  }
}

/** Tracks the validation curve and the weights of the lowest validation loss. */
export class EarlyStop<S> {
  readonly curve: Array<[number, number, number]> = [];
  best: { loss: number; iteration: number };
  /** Validation loss of the latest evaluation (reported with progress). */
  lastLoss = Infinity;
  private snapshot: S | null = null;

  constructor(
    private readonly stepper: Stepper<S>,
    startIteration: number,
  ) {
    this.best = { loss: Infinity, iteration: startIteration };
  }

  /** Validation metrics at an evaluation point; snapshots the weights when they are the best so far. */
  record(iteration: number, v: Metrics): void {
    this.curve.push([iteration, v.loss, v.accuracy]);
    this.lastLoss = v.loss;
    if (v.loss < this.best.loss) {
      this.best = { loss: v.loss, iteration };
      if (this.snapshot !== null) this.stepper.release(this.snapshot);
      this.snapshot = this.stepper.snapshot();
    }
  }

  /**
   * Test metrics of the best weights: `final` when the best is the last
   * iteration (or nothing was ever better than Infinity), else the best
   * weights are restored for one evaluation and the current ones put back.
   */
  testMetrics(final: Metrics, lastIteration: number): Metrics {
    if (this.snapshot === null || this.best.iteration === lastIteration) return final;
    const current = this.stepper.snapshot();
    try {
      this.stepper.restore(this.snapshot);
      return this.stepper.evaluate('test');
    } finally {
      this.stepper.restore(current);
      this.stepper.release(current);
    }
  }

  dispose(): void {
    if (this.snapshot !== null) this.stepper.release(this.snapshot);
    this.snapshot = null;
  }
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Reports progress at most every `progressEveryMs` and at evaluations, and
 * yields to the event loop every ~50 ms so timers, signals and I/O run during
 * long trainings. Its clock starts when it is made.
 */
export class Progress {
  private readonly totalSteps: number;
  private readonly everyMs: number;
  private readonly started = performance.now();
  private lastReport = this.started;
  private lastYield = this.started;

  constructor(
    private readonly cfg: TrainConfig,
    private readonly batchSize: number,
    private readonly cb: TrainCallbacks,
  ) {
    this.totalSteps = cfg.iterations - cfg.startIteration;
    this.everyMs = cb.progressEveryMs ?? 500;
  }

  /** After the step that made `done` iterations (and its evaluation, when `isEval`). */
  async after(done: number, isEval: boolean, validationLoss: number): Promise<void> {
    const now = performance.now();
    if (this.cb.onProgress && (isEval || now - this.lastReport >= this.everyMs)) {
      this.lastReport = now;
      const step = done - this.cfg.startIteration;
      const eps = (step * this.batchSize) / ((now - this.started) / 1000);
      this.cb.onProgress({ step, totalSteps: this.totalSteps, examplesPerSecond: eps, etaSeconds: ((this.totalSteps - step) * this.batchSize) / Math.max(eps, 1e-9), validationLoss });
    }
    if (now - this.lastYield > 50) {
      this.lastYield = now;
      await yieldToLoop();
    }
  }

  /** The training's metrics, timed from the start to this call (before the final test evaluations). */
  stop(trainingLoop: TrainingLoop): (r: {
    final: Metrics;
    earlyStop: Metrics;
    best: { loss: number; iteration: number };
    curve: Array<[number, number, number]>;
  }) => TrainingMetrics {
    const trainSeconds = (performance.now() - this.started) / 1000;
    const examplesPerSecond = (this.totalSteps * this.batchSize) / Math.max(trainSeconds, 1e-9);
    return ({ final, earlyStop, best, curve }) => ({
      finalTestAccuracy: final.accuracy,
      finalTestLoss: final.loss,
      earlyStopIteration: best.iteration,
      earlyStopTestAccuracy: earlyStop.accuracy,
      earlyStopValidationLoss: best.loss,
      curve,
      trainSeconds,
      examplesPerSecond,
      trainingLoop,
    });
  }
}
