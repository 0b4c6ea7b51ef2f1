// Measured inference latency of a Layers model on the backend the run uses:
// wall-clock time of `predict` on a batch of random inputs until the result
// is read back (TF.js kernels may run asynchronously, so reading is part of
// the cost). Warm-up calls first (kernel setup, WASM memory growth), then
// repeats until both a minimum count and a minimum time are reached; the
// median is reported because the machines we run on are shared.
import * as tf from '@tensorflow/tfjs';

export interface LatencyOptions {
  warmup?: number;
  minRepeats?: number;
  maxRepeats?: number;
  /** Keep repeating until this much time was measured (or maxRepeats is hit). */
  minSeconds?: number;
}

export interface LatencySample {
  batch: number;
  medianMs: number;
  minMs: number;
  repeats: number;
}

export interface LatencyProfile {
  batch1Ms: number;
  batch64Ms: number;
  samples: LatencySample[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function inputFor(model: tf.LayersModel, batch: number): tf.Tensor {
  const shape = model.inputs[0]!.shape.slice(1);
  if (shape.some((d) => d === null)) throw new Error(`latency: model '${model.name}' has an input dimension unknown until run time`);
  return tf.randomUniform([batch, ...(shape as number[])], 0, 1, 'float32', 1);
}

/** One timed forward pass, read back. */
async function once(model: tf.LayersModel, x: tf.Tensor): Promise<number> {
  const t0 = performance.now();
  const y = model.predict(x) as tf.Tensor | tf.Tensor[];
  const outs = Array.isArray(y) ? y : [y];
  await Promise.all(outs.map((t) => t.data()));
  const ms = performance.now() - t0;
  tf.dispose(outs);
  return ms;
}

/** Times of single forward passes at one batch size. */
export async function timeForward(model: tf.LayersModel, batch: number, opts: LatencyOptions = {}): Promise<number[]> {
  const warmup = opts.warmup ?? 1;
  const minRepeats = opts.minRepeats ?? 3;
  const maxRepeats = Math.max(minRepeats, opts.maxRepeats ?? 30);
  const minMs = (opts.minSeconds ?? 0.5) * 1000;
  const x = inputFor(model, batch);
  try {
    for (let i = 0; i < warmup; i++) await once(model, x);
    const times: number[] = [];
    let total = 0;
    while (times.length < maxRepeats && (times.length < minRepeats || total < minMs)) {
      const ms = await once(model, x);
      times.push(ms);
      total += ms;
    }
    return times;
  } finally {
    x.dispose();
  }
}

export async function measureLatency(model: tf.LayersModel, batch: number, opts: LatencyOptions = {}): Promise<LatencySample> {
  const times = await timeForward(model, batch, opts);
  return { batch, medianMs: median(times), minMs: Math.min(...times), repeats: times.length };
}

/** Latency at batch 1 and batch 64, the two numbers every filter step reports. */
export async function latencyProfile(model: tf.LayersModel, opts: LatencyOptions = {}): Promise<LatencyProfile> {
  const b1 = await measureLatency(model, 1, opts);
  const b64 = await measureLatency(model, 64, opts);
  return { batch1Ms: b1.medianMs, batch64Ms: b64.medianMs, samples: [b1, b64] };
}

/**
 * Fair before/after comparison on a busy machine: the models take turns
 * (A B A B ...) so background load hits both alike; medians per model.
 */
export async function compareLatency(models: tf.LayersModel[], batch: number, rounds: number, opts: LatencyOptions = {}): Promise<LatencySample[]> {
  const times: number[][] = models.map(() => []);
  for (const m of models) await timeForward(m, batch, { warmup: opts.warmup ?? 1, minRepeats: 0, maxRepeats: 0 });
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < models.length; i++) {
      times[i]!.push(...(await timeForward(models[i]!, batch, { warmup: 0, minRepeats: 1, maxRepeats: 1, minSeconds: 0 })));
    }
  }
  return times.map((t) => ({ batch, medianMs: median(t), minMs: Math.min(...t), repeats: t.length }));
}
