// Conv-2 training steps on the native 'tensorflow' backend with TF.js's stock
// kernels and Adam vs Ticketsmith's native overrides (src/runtime/kernels/native.ts)
// and FoldedAdam, interleaved in one process so machine load hits both alike.
// The step is the TF.js stepper's (gather a batch, variableGrads, masked
// gradients, optimiser, mask re-applied), on CIFAR-shaped synthetic data.
//   npx tsx scripts/bench-native.ts [--seconds 20] [--rounds 4] [--batch 60]
// Needs tfjs-node (`npm run native-backend`). Prints examples/s and the ratio.
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { installNativeKernelOverrides, uninstallNativeKernelOverrides } from '../src/runtime/kernels/native.js';
import { FoldedAdam } from '../src/engine/training/adam-folded.js';
import { createModel } from '../src/engine/models/registry.js';
import { weightVariables } from '../src/engine/models/inspect.js';

const arg = (name: string, d: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const seconds = arg('seconds', 20);
const rounds = arg('rounds', 4);
const batch = arg('batch', 60);

const info = await initBackend({ prefer: 'tensorflow' });
const n = 1200;
const x = tf.randomUniform([n, 32, 32, 3], 0.05, 1, 'float32', 1);
const y = tf.oneHot(tf.randomUniform([n], 0, 10, 'int32', 2), 10).toFloat();
const model = createModel('conv-2', { inputShape: [32, 32, 3], numClasses: 10, seed: 1 });
const trainable = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
const masks = new Map<tf.Variable, tf.Tensor>();
for (const [, v] of weightVariables(model)) {
  const t = v.read() as tf.Variable;
  if (t.shape.length > 1) masks.set(t, tf.onesLike(t));
}

type Opt = Pick<tf.Optimizer, 'applyGradients' | 'dispose'>;
function step(opt: Opt, i: number): void {
  tf.tidy(() => {
    const idx = tf.tensor1d(Int32Array.from({ length: batch }, (_, j) => (i * batch + j) % n), 'int32');
    const xb = x.gather(idx);
    const yb = y.gather(idx);
    const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(yb, model.apply(xb, { training: true }) as tf.Tensor) as tf.Scalar, trainable);
    for (const [v, m] of masks) if (grads[v.name]) grads[v.name] = grads[v.name]!.mul(m);
    opt.applyGradients(grads);
    for (const [v, m] of masks) v.assign(v.mul(m));
  });
}

function measure(ours: boolean): number {
  if (ours) installNativeKernelOverrides();
  else uninstallNativeKernelOverrides();
  const opt: Opt = ours ? new FoldedAdam(1e-4) : tf.train.adam(1e-4);
  for (let i = 0; i < 3; i++) step(opt, i); // warm-up
  let steps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) step(opt, steps++);
  const ms = performance.now() - t0;
  opt.dispose();
  return (batch * steps * 1000) / ms;
}

/** Kernels one step runs (tf.profile), a count the machine's load does not blur. */
async function kernelsPerStep(ours: boolean): Promise<number> {
  if (ours) installNativeKernelOverrides();
  else uninstallNativeKernelOverrides();
  const opt: Opt = ours ? new FoldedAdam(1e-4) : tf.train.adam(1e-4);
  step(opt, 0);
  const p = await tf.profile(() => step(opt, 1));
  opt.dispose();
  return p.kernels.length;
}

console.log(`backend ${info.name} ${info.version}; conv-2 [32,32,3], batch ${batch}, ${rounds} x ${seconds} s per variant, interleaved`);
console.log(`kernels per step: stock ${await kernelsPerStep(false)}, ours ${await kernelsPerStep(true)}`);
const stock: number[] = [];
const ours: number[] = [];
for (let r = 0; r < rounds; r++) {
  stock.push(measure(false));
  ours.push(measure(true));
  console.log(`round ${r + 1}: stock ${stock.at(-1)!.toFixed(1)} ex/s, ours ${ours.at(-1)!.toFixed(1)} ex/s`);
}
const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;
console.log(`median: stock ${median(stock).toFixed(1)} ex/s, ours ${median(ours).toFixed(1)} ex/s, ratio ${(median(ours) / median(stock)).toFixed(2)}x`);
