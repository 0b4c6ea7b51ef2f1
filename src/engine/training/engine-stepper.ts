// The stepper of our own engines (the MLP engines, mlp.ts, and the conv
// engine, cnn/): an engine holds a copy of the weights in WebAssembly memory
// and offers forward / backward / update on a batch it is handed; this file
// gathers a batch's examples into the engine's input, computes the softmax
// cross-entropy on its logits (the same loss as the TF.js loop), evaluates in
// chunks and copies weights in and out. Batch order, schedules and
// evaluation points stay the loop's (loop.ts).
import type { Split, WeightMap } from '../types.js';
import type { TrainingLoop } from '../sink.js';
import type { Stepper } from './stepper.js';

/** What the stepper needs from an engine. */
export interface TrainableEngine {
  /** Inputs of the engine's largest batch, written by the stepper. */
  readonly input: Float32Array;
  /** dLoss/dlogits of the engine's largest batch, written by the stepper after a training forward. */
  readonly outputGrad: Float32Array;
  /** Logits of the first `batch` rows of `input` (a view, valid until the next forward); `training` false evaluates (BatchNorm's moving statistics). */
  forward(batch: number, training: boolean): Float32Array;
  backward(batch: number): void;
  /** One optimiser step at learning rate `lr` from the last backward's gradients. */
  update(lr: number): void;
  /** Live views of every tensor a snapshot must hold, in a fixed order. */
  parameters(): Float32Array[];
  /** The engine's weights as a weight map (zeros where pruned). */
  weightMap(): WeightMap;
  dispose?(): void;
}

export interface EngineData {
  train: Split;
  validation: Split;
  test: Split;
}

/** Softmax cross-entropy of logits (batch × C) against labels: summed loss, correct count, and dZ = (p − y)/batch. */
export function softmaxCe(logits: Float32Array, labels: Int32Array, offset: number, batch: number, c: number, dz: Float32Array | null) {
  let loss = 0;
  let correct = 0;
  for (let b = 0; b < batch; b++) {
    const o = b * c;
    let max = -Infinity;
    let arg = 0;
    for (let j = 0; j < c; j++) {
      if (logits[o + j]! > max) {
        max = logits[o + j]!;
        arg = j;
      }
    }
    let sum = 0;
    for (let j = 0; j < c; j++) sum += Math.exp(logits[o + j]! - max);
    const y = labels[offset + b]!;
    loss += Math.log(sum) - (logits[o + y]! - max);
    if (arg === y) correct++;
    if (dz) for (let j = 0; j < c; j++) dz[o + j] = (Math.exp(logits[o + j]! - max) / sum - (j === y ? 1 : 0)) / batch;
  }
  return { loss, correct };
}

/**
 * A stepper over `engine`, whose buffers hold `maxBatch` examples: training
 * batches of at most `batchSize`, evaluation in chunks of `maxBatch`. sync()
 * writes the engine's weights back through `sync`.
 */
export function engineStepper(
  engine: TrainableEngine,
  data: EngineData,
  o: { loop: TrainingLoop; batchSize: number; maxBatch: number; sync: (w: WeightMap) => void },
): Stepper<Float32Array[]> {
  const inSize = engine.input.length / o.maxBatch;
  const classes = engine.outputGrad.length / o.maxBatch;
  const labels = new Int32Array(o.batchSize);
  const train = data.train;
  // Released snapshots, reused by the next: early stopping snapshots every better evaluation, each as large as the weights.
  const spare: Float32Array[][] = [];
  return {
    loop: o.loop,
    examples: train.n,
    step(batch, lr) {
      const bs = batch.length;
      for (let b = 0; b < bs; b++) {
        const idx = batch[b]!;
        engine.input.set(train.x.subarray(idx * inSize, (idx + 1) * inSize), b * inSize);
        labels[b] = train.y[idx]!;
      }
      softmaxCe(engine.forward(bs, true), labels, 0, bs, classes, engine.outputGrad);
      engine.backward(bs);
      engine.update(lr);
    },
    evaluate(split) {
      const s = data[split];
      let loss = 0;
      let correct = 0;
      for (let start = 0; start < s.n; start += o.maxBatch) {
        const size = Math.min(o.maxBatch, s.n - start);
        engine.input.set(s.x.subarray(start * inSize, (start + size) * inSize));
        const r = softmaxCe(engine.forward(size, false), s.y, start, size, classes, null);
        loss += r.loss;
        correct += r.correct;
      }
      return { loss: loss / Math.max(1, s.n), accuracy: correct / Math.max(1, s.n) };
    },
    snapshot() {
      const params = engine.parameters();
      const s = spare.pop();
      if (s === undefined) return params.map((p) => Float32Array.from(p));
      params.forEach((p, i) => s[i]!.set(p));
      return s;
    },
    restore: (s) => engine.parameters().forEach((p, i) => p.set(s[i]!)),
    release: (s) => void spare.push(s),
    sync: () => o.sync(engine.weightMap()),
    dispose: () => engine.dispose?.(),
  };
}
