// What the planner (plan.ts) and a measuring child (worker.ts) say to each
// other: the job a child is started with (one JSON argument) and the JSON
// lines it prints on stdout, in order. TF.js holds one backend per process, so
// every backend is measured in a child of its own.
import type { BackendInfo, BackendName } from '../runtime/backend.js';
import type { LoopProfile, ParallelResult, RssResult, ThroughputResult } from '../engine/training/bench.js';

/** One measurement a child makes, in order. */
export interface PlanItem {
  model: string;
  density: number;
  seconds: number;
  warmup?: number;
  maxSteps?: number;
  /** Force the TF.js kernels even where trainModel would take an MLP engine. */
  tfjsLoop?: boolean;
  /** Force the conv engine (loop 'cnn-simd') where trainModel would take TF.js kernels. */
  cnnLoop?: boolean;
  /** Fraction of zero input pixels, if not the model's usual one. */
  zeroFraction?: number;
}

interface JobBase {
  backend: BackendName;
  wasmThreads: number;
  batchSize: number;
}

export type WorkerJob =
  /** Measure each item of the plan; with everyStep, report each step (a capped child proves a bound). */
  | (JobBase & { kind: 'train'; plan: PlanItem[]; everyStep?: boolean })
  /** A round's ticket + controls sequentially vs on a WorkerPool. */
  | (JobBase & { kind: 'parallel'; model: string; steps: number; parallelism: number; repeats: number })
  /** Peak RSS of an IMP job with controls on a trial WorkerPool. */
  | (JobBase & { kind: 'rss'; model: string; rounds: number; densities?: number[]; steps: number; parallelism: number; examples?: number; evalExamples?: number })
  /** Every step profiler's profile of one model (STEP_PROFILERS). */
  | (JobBase & { kind: 'profile'; model: string; repeats: number; density?: number });

export type WorkerLine =
  | { type: 'ready'; backend: BackendInfo }
  | { type: 'step'; model: string; step: number }
  | { type: 'result'; result: ThroughputResult; tfjsLoop: boolean; cnnLoop?: boolean }
  | { type: 'parallel'; result: ParallelResult }
  | { type: 'rss'; result: RssResult }
  | { type: 'profile'; result: LoopProfile }
  | { type: 'unavailable'; message: string }
  | { type: 'error'; message: string };
