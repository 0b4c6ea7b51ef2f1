// The MLP stepper: a plain MLP (LeNet) trained not by TF.js kernels but by one
// of two engines with the same loss (softmax cross-entropy) and the same
// update rules as TF.js's Adam/SGD/momentum, inside the same loop (loop.ts),
// so batch order, evaluation points and metrics are those of every training:
// - simd (mlp-simd.ts): dense layers on our WebAssembly SIMD kernels, a few
//   calls per layer and step instead of dozens of TF.js kernels, skipping zero
//   inputs and ReLU-silenced units;
// - csr (mlp-csr.ts): late pruning rounds, compressed rows of the surviving
//   weights only (same WebAssembly module), so a step's work shrinks with the
//   density.
// TrainConfig.loop picks one (mlp-simd, mlp-csr, or tfjs to keep TF.js
// kernels); 'auto' lets mlpPath choose by backend and density.
import * as tf from '@tensorflow/tfjs';
import type { Mask } from '../types.js';
import type { TrainingMetrics } from '../sink.js';
import { getWeightMap, setWeightMap } from '../models/inspect.js';
import { globalDensity } from '../pruning/mask.js';
import { simdKernelsAvailable } from '../../runtime/simd/mlp-kernels.js';
import { TRAINING_LOOPS } from '../../runtime/engine-config.js';
import type { TrainCallbacks, TrainConfig, TrainingLoopChoice } from './config.js';
import type { DenseConfig } from './mlp-engine.js';
import type { Stepper } from './stepper.js';
import { runTraining } from './loop.js';
import { csrEngine } from './mlp-csr.js';
import { simdEngine } from './mlp-simd.js';
import { engineStepper, type EngineData } from './engine-stepper.js';

export type { DenseConfig, MlpEngine } from './mlp-engine.js';

/**
 * The Dense layers of a plain MLP (optional Flatten first; ReLU or linear
 * hidden layers; a linear or softmax output, never ReLU, so the engines read
 * `activation === 'relu'` as a hidden ReLU), or null if the model is anything else.
 */
export function mlpLayers(model: tf.LayersModel): DenseConfig[] | null {
  const dense: DenseConfig[] = [];
  for (const [i, layer] of model.layers.entries()) {
    const cls = layer.getClassName();
    if (cls === 'InputLayer' || (cls === 'Flatten' && dense.length === 0)) continue;
    if (cls !== 'Dense') return null;
    const cfg = layer.getConfig() as unknown as DenseConfig;
    const last = i === model.layers.length - 1;
    const act = cfg.activation ?? 'linear';
    if (!((!last && act === 'relu') || act === 'linear' || (last && act === 'softmax'))) return null;
    if (cfg.kernelRegularizer || cfg.biasRegularizer || cfg.kernelConstraint || cfg.activityRegularizer) return null;
    dense.push({ ...cfg, name: layer.name });
  }
  if (dense.length === 0) return null;
  const outShape = model.outputs[0]!.shape;
  const inShape = model.inputs[0]!.shape;
  if (model.inputs.length !== 1 || model.outputs.length !== 1 || outShape.length !== 2 || inShape.some((d, i) => i > 0 && d === null)) return null;
  return dense;
}

/** Density at or below which the csr engine beats the simd one (measured by scripts/bench-train). */
export const CSR_DENSITY_THRESHOLD = 0.2;

export type MlpPath = 'simd' | 'csr';

/**
 * Whether plain MLPs take an MLP engine on this TF.js backend by default: on
 * wasm, cpu and native CPU TensorFlow, where the simd engine was measured
 * faster than the backend's own kernels (LeNet-300-100, batch 60: 17,161 vs
 * 3,669 examples/s on tfjs-node, scripts/bench-train). Not on CUDA, which
 * was not measured.
 */
export function mlpEnginesByDefault(backend: string): boolean {
  return backend === 'wasm' || backend === 'cpu' || backend === 'tensorflow';
}

/**
 * The engine that trains `model` under `mask` with `loop`, or null for TF.js
 * kernels: only plain MLPs qualify; 'auto' takes one only where
 * mlpEnginesByDefault says, the csr engine at or below CSR_DENSITY_THRESHOLD.
 */
export function mlpPath(model: tf.LayersModel, mask: Mask | null, backend: string, loop: TrainingLoopChoice = 'auto'): MlpPath | null {
  // TrainConfig crosses threads as plain data: a loop nobody validated fails here, not as a silent default.
  if (!TRAINING_LOOPS.includes(loop)) throw new Error(`training loop must be one of ${TRAINING_LOOPS.join(', ')}; got '${String(loop)}'`);
  if (loop === 'tfjs') return null;
  const layers = mlpLayers(model);
  if (!layers) return null;
  // Both engines run on the WebAssembly SIMD kernels (every Node since 16.4 has them).
  if (!simdKernelsAvailable()) return null;
  if (loop === 'mlp-simd') return 'simd';
  if (loop === 'mlp-csr') return 'csr';
  if (!mlpEnginesByDefault(backend)) return null;
  // A mask that leaves some layer out prunes nothing there: dense path.
  const sparse = mask !== null && layers.every((l) => mask[`${l.name}/kernel`]) && globalDensity(mask) <= CSR_DENSITY_THRESHOLD;
  return sparse ? 'csr' : 'simd';
}

export type MlpData = EngineData;

/**
 * A stepper training a copy of `model`'s weights under `mask` on engine
 * `path`; sync() writes them back into the model.
 */
export function mlpStepper(model: tf.LayersModel, data: MlpData, mask: Mask | null, cfg: TrainConfig, path: MlpPath): Stepper<Float32Array[]> {
  const cfgs = mlpLayers(model);
  if (!cfgs) throw new Error(`model '${model.name}' is not a plain MLP`);
  const maxBatch = Math.max(cfg.batchSize, 1000);
  const weights = getWeightMap(model);
  const engine = path === 'simd' ? simdEngine(cfgs, weights, mask, cfg, maxBatch) : csrEngine(cfgs, weights, mask, cfg, maxBatch);
  return engineStepper(engine, data, { loop: `mlp-${path}`, batchSize: cfg.batchSize, maxBatch, sync: (w) => setWeightMap(model, w) });
}

/** Train an MLP under `mask` on engine `path` (whatever `cfg.loop` says); same contract as trainModel. */
export function trainMlp(
  model: tf.LayersModel,
  data: MlpData,
  mask: Mask | null,
  cfg: TrainConfig,
  cb: TrainCallbacks = {},
  path: MlpPath = 'simd',
): Promise<TrainingMetrics> {
  return runTraining(mlpStepper(model, data, mask, cfg, path), cfg, cb);
}
