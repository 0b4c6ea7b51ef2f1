// The contract between the MLP stepper (mlp.ts) and the two engines behind it
// (mlp-simd.ts, mlp-csr.ts): the layers they are built from, and the passes
// they offer. Types only, so the engines and their driver import it without
// importing each other.
import type { TrainableEngine } from './engine-stepper.js';

export interface DenseConfig {
  name: string;
  units: number;
  activation?: string;
  useBias?: boolean;
  kernelRegularizer?: unknown;
  biasRegularizer?: unknown;
  kernelConstraint?: unknown;
  activityRegularizer?: unknown;
}

/**
 * One engine's state and passes (the contract of every engine the shared
 * stepper drives, engine-stepper.ts); the MLP engines have no layer that
 * trains differently from how it evaluates, so they ignore `training`.
 */
export type MlpEngine = TrainableEngine;
