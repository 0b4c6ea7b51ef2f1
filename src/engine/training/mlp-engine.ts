// The contract between the MLP stepper (mlp.ts) and the two engines behind it
// (mlp-simd.ts, mlp-csr.ts): the layers they are built from, and the passes
// they offer. Types only, so the engines and their driver import it without
// importing each other.
import type { WeightMap } from '../types.js';

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
 * One engine's state and passes. `input` and `outputGrad` are buffers of the
 * engine's largest batch: the driver writes a batch's inputs, runs forward,
 * writes dZ of the output layer for that forward, then backward and update.
 */
export interface MlpEngine {
  readonly input: Float32Array;
  readonly outputGrad: Float32Array;
  /** Logits of the first `batch` rows of `input` (a view, valid until the next forward). */
  forward(batch: number): Float32Array;
  backward(batch: number): void;
  /** One optimiser step at learning rate `lr` from the last backward's gradients. */
  update(lr: number): void;
  /** Live views of every trained tensor, in a fixed order (snapshots copy them). */
  parameters(): Float32Array[];
  /** Kernels and biases as dense weights, zeros where pruned. */
  weightMap(): WeightMap;
}
