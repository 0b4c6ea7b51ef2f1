// The TF.js stepper: a hand-written step (variableGrads + optimiser) with the
// mask re-applied after every update, so pruned weights stay exactly zero
// (also under Adam's moments, because their gradients are masked too). Data
// lives on the backend as tensors made once, on first use (toTensors); a batch is gathered
// by its indices, and nothing is read back to JS except at evaluations.
import * as tf from '@tensorflow/tfjs';
import type { Dataset, Mask, Split } from '../types.js';
import { weightVariables } from '../models/inspect.js';
import type { TrainConfig } from './config.js';
import type { Metrics, Stepper } from './stepper.js';
import { FoldedAdam } from './adam-folded.js';

interface SplitTensors {
  x: tf.Tensor;
  y: tf.Tensor2D;
  labels: tf.Tensor1D;
  n: number;
}

export interface TrainData {
  train: SplitTensors;
  validation: SplitTensors;
  test: SplitTensors;
  /** The arrays the tensors were made from (the MLP engines train on these directly). */
  source: { train: Split; validation: Split; test: Split };
  dispose(): void;
}

const SPLITS = ['train', 'validation', 'test'] as const;
type SplitName = (typeof SPLITS)[number];

/** A split's tensors, kept out of any enclosing tf.tidy: the first use may come inside one, and they live until dispose. */
function splitTensors(s: Split, shape: number[], numClasses: number): SplitTensors {
  const labels = tf.keep(tf.tensor1d(s.y, 'int32'));
  const y = tf.keep(tf.tidy(() => tf.oneHot(labels, numClasses).toFloat() as tf.Tensor2D));
  return { x: tf.keep(tf.tensor(s.x, [s.n, ...shape])), y, labels, n: s.n };
}

/**
 * The dataset as backend tensors, each split uploaded on first use and kept
 * until dispose. Our engines train and evaluate on `source` and never touch
 * the tensors, so a run on them uploads nothing: on WASM an upload is a
 * second copy of the split in the backend's heap, which never shrinks.
 */
export function toTensors(ds: Dataset): TrainData {
  const made: Partial<Record<SplitName, SplitTensors>> = {};
  const split = (name: SplitName) => (made[name] ??= splitTensors(ds[name], ds.inputShape, ds.numClasses));
  return {
    get train() {
      return split('train');
    },
    get validation() {
      return split('validation');
    },
    get test() {
      return split('test');
    },
    source: { train: ds.train, validation: ds.validation, test: ds.test },
    dispose() {
      for (const s of Object.values(made)) tf.dispose([s.x, s.y, s.labels]);
      for (const name of SPLITS) delete made[name];
    },
  };
}

function outputIsSoftmax(model: tf.LayersModel): boolean {
  const last = model.layers[model.layers.length - 1]!;
  const cfg = last.getConfig() as { activation?: string };
  return cfg.activation === 'softmax' || last.getClassName() === 'Softmax';
}

function lossFn(model: tf.LayersModel): (y: tf.Tensor, out: tf.Tensor) => tf.Scalar {
  if (outputIsSoftmax(model)) {
    return (y, p) => tf.metrics.categoricalCrossentropy(y, p).mean() as tf.Scalar;
  }
  return (y, logits) => tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
}

/** Mean loss and accuracy over a split, in batches, read back once. */
export function evaluate(model: tf.LayersModel, s: SplitTensors, batchSize = 1000): Metrics {
  const loss = lossFn(model);
  const [lossSum, correct] = tf.tidy(() => {
    let lossSum: tf.Tensor = tf.scalar(0);
    let correct: tf.Tensor = tf.scalar(0);
    for (let start = 0; start < s.n; start += batchSize) {
      const size = Math.min(batchSize, s.n - start);
      const x = s.x.slice(start, size);
      const y = s.y.slice(start, size);
      const out = model.predict(x) as tf.Tensor;
      lossSum = lossSum.add(loss(y, out).mul(size));
      correct = correct.add(out.argMax(-1).equal(s.labels.slice(start, size)).sum());
    }
    return [lossSum, correct];
  });
  const l = (lossSum.dataSync()[0] ?? 0) / Math.max(1, s.n);
  const c = (correct.dataSync()[0] ?? 0) / Math.max(1, s.n);
  tf.dispose([lossSum, correct]);
  return { loss: l, accuracy: c };
}

/** What the stepper needs of an optimiser. */
type StepOptimizer = Pick<tf.Optimizer, 'applyGradients' | 'dispose'>;

function makeOptimizer(cfg: TrainConfig): StepOptimizer {
  // On native TensorFlow each op is a call and a pass over the tensor: the folded update spends fewer.
  if (cfg.optimizer === 'adam' && tf.getBackend() === 'tensorflow') return new FoldedAdam(cfg.learningRate);
  if (cfg.optimizer === 'adam') return tf.train.adam(cfg.learningRate);
  if (cfg.optimizer === 'momentum') return tf.train.momentum(cfg.learningRate, cfg.momentum);
  return tf.train.sgd(cfg.learningRate);
}

function setLearningRate(opt: StepOptimizer, lr: number): void {
  // SGD and momentum cache the rate in a scalar behind setLearningRate; Adam reads the field each step.
  const o = opt as unknown as { setLearningRate?: (lr: number) => void; learningRate: number };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}

/** The mask as tensors keyed by the variable they multiply; masked weights are zeroed now. */
function maskVariables(model: tf.LayersModel, mask: Mask | null): Map<tf.Variable, tf.Tensor> {
  const maskTensors = new Map<tf.Variable, tf.Tensor>();
  if (!mask) return maskTensors;
  const vars = weightVariables(model);
  try {
    for (const [name, m] of Object.entries(mask)) {
      const v = vars.get(name)?.read() as tf.Variable | undefined;
      if (!v) throw new Error(`mask names weight '${name}', which the model does not have`);
      if (v.size !== m.length) throw new Error(`mask for '${name}' has ${m.length} entries, weight has ${v.size}`);
      const t = tf.tensor(m, v.shape);
      maskTensors.set(v, t);
      const masked = tf.tidy(() => v.mul(t));
      v.assign(masked);
      masked.dispose();
    }
  } catch (err) {
    tf.dispose([...maskTensors.values()]);
    throw err;
  }
  return maskTensors;
}

/** Trains `model` in place on TF.js kernels of the current backend, with `mask` enforced. */
export function tfjsStepper(model: tf.LayersModel, data: TrainData, mask: Mask | null, cfg: TrainConfig): Stepper<tf.Tensor[]> {
  const maskTensors = maskVariables(model, mask);
  const trainable = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const optimizer = makeOptimizer(cfg);
  const loss = lossFn(model);
  let rate = cfg.learningRate;
  return {
    loop: 'tfjs',
    examples: data.train.n,
    step(batch, lr) {
      // Only a changed rate is set: SGD and momentum rebuild a scalar on every set.
      if (lr !== rate) {
        setLearningRate(optimizer, lr);
        rate = lr;
      }
      tf.tidy(() => {
        const idx = tf.tensor1d(batch, 'int32');
        const xb = data.train.x.gather(idx);
        const yb = data.train.y.gather(idx);
        const { grads } = tf.variableGrads(() => loss(yb, model.apply(xb, { training: true }) as tf.Tensor), trainable);
        for (const [v, m] of maskTensors) {
          const g = grads[v.name];
          if (g) grads[v.name] = g.mul(m);
        }
        optimizer.applyGradients(grads);
        for (const [v, m] of maskTensors) v.assign(v.mul(m));
      });
    },
    evaluate: (split) => evaluate(model, data[split]),
    snapshot: () => model.weights.map((w) => w.read().clone()),
    restore: (s) => model.setWeights(s),
    release: (s) => tf.dispose(s),
    sync() {},
    dispose() {
      tf.dispose([...maskTensors.values()]);
      optimizer.dispose();
      // tfjs 4.22's MomentumOptimizer.dispose() forgets the learning-rate scalar it inherits from SGD.
      (optimizer as unknown as { c?: tf.Tensor }).c?.dispose();
    },
  };
}
