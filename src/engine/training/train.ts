// Training's entry point: trainModel picks the stepper for a model (an MLP
// engine, the conv engine or TF.js kernels, by TrainConfig.loop, the backend and the mask) and
// runs the one training loop (loop.ts) with it. What a training is told and
// the TF.js data helpers are re-exported here for the engine's callers.
import * as tf from '@tensorflow/tfjs';
import type { Mask, WeightMap } from '../types.js';
import type { TrainingMetrics } from '../sink.js';
import type { TrainCallbacks, TrainConfig } from './config.js';
import { runTraining } from './loop.js';
import { mlpLayers, mlpPath, mlpStepper } from './mlp.js';
import { cnnPath, cnnPathForMlp, cnnStepper, cnnWeightsStepper, type CnnPlan } from './cnn/index.js';
import type { EngineData } from './engine-stepper.js';
import { tfjsStepper, type TrainData } from './tfjs.js';

export { learningRateAt, RunCancelled, trainConfigFor } from './config.js';
export type { ProgressInfo, TrainCallbacks, TrainConfig, TrainingLoopChoice } from './config.js';
export { evaluate, toTensors, type TrainData } from './tfjs.js';

/**
 * Train `model` in place from `cfg.startIteration` to `cfg.iterations` with
 * `mask` enforced; returns final and early-stop metrics.
 */
export async function trainModel(
  model: tf.LayersModel,
  data: TrainData,
  mask: Mask | null,
  cfg: TrainConfig,
  cb: TrainCallbacks = {},
): Promise<TrainingMetrics> {
  const path = mlpPath(model, mask, tf.getBackend(), cfg.loop);
  // A dense MLP round on mostly nonzero inputs goes faster on the conv engine's threads (cnnPathForMlp); 'cnn-simd' forces it.
  const loop = cfg.loop ?? 'auto';
  const mlpGraph = path === 'simd' || (loop === 'cnn-simd' && mlpLayers(model) !== null) ? cnnPathForMlp(model, data.source, tf.getBackend(), loop, cfg.batchSize) : null;
  if (mlpGraph) return runTraining(cnnStepper(model, mlpGraph, data.source, mask, cfg), cfg, cb);
  if (path) return runTraining(mlpStepper(model, data.source, mask, cfg, path), cfg, cb);
  const graph = cnnPath(model, tf.getBackend(), cfg.loop, cfg.batchSize);
  if (graph) return runTraining(cnnStepper(model, graph, data.source, mask, cfg), cfg, cb);
  return runTraining(tfjsStepper(model, data, mask, cfg), cfg, cb);
}

/**
 * Trains `start` (every weight of the model `plan` describes, by name) on
 * the conv engine, without a TF.js model: what trainModel does on a model
 * holding `start` where it picks the conv engine (cnnPlanTakesEngine says
 * when). Returns the metrics and the trained weights, and at
 * `cb.capture.iteration` hands `cb.capture.fn` the weights of then, each map
 * in getWeightMap's order, of fresh arrays.
 */
export async function trainWeights(
  plan: CnnPlan,
  start: WeightMap,
  data: EngineData,
  mask: Mask | null,
  cfg: TrainConfig,
  cb: Omit<TrainCallbacks, 'capture'> & { capture?: { iteration: number; fn: (w: WeightMap) => void } } = {},
): Promise<{ metrics: TrainingMetrics; weights: WeightMap }> {
  let latest: WeightMap = {};
  // A weight the engine does not hold keeps its start value, as it would in the model.
  const complete = (w: WeightMap): WeightMap =>
    Object.fromEntries(plan.weightShapes.map(([n]) => [n, w[n] ?? { shape: [...start[n]!.shape], values: start[n]!.values.slice() }]));
  const capture = cb.capture;
  const metrics = await runTraining(cnnWeightsStepper(plan, start, data, mask, cfg, (w) => (latest = w)), cfg, {
    ...cb,
    capture: capture && { iteration: capture.iteration, fn: () => capture.fn(complete(latest)) },
  });
  return { metrics, weights: complete(latest) };
}
