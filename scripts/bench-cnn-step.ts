// A zoo conv net (default ResNet-20; CIFAR shape, batch 60, Adam) on the
// conv engine with 1 and 2 threads in one process, their steps interleaved
// so load on a shared machine hits both alike: median step ms, CPU ms per
// step (all threads; steadier than wall time when other processes share
// the cores), the second thread's speed-up, and (--profile) the calling
// thread's step summed by node kind (conv by kernel size and stride) and
// pass. TICKETSMITH_RELAXED_SIMD=0 runs the kernels' plain-SIMD build.
//   npx tsx scripts/bench-cnn-step.ts [--model resnet-20] [--steps 6] [--threads 1,2] [--profile]
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/runtime/backend.js';
import { benchMask, benchModel, median, syntheticDataset } from '../src/engine/training/bench.js';
import { createModel } from '../src/engine/models/registry.js';
import { getWeightMap } from '../src/engine/models/inspect.js';
import { cnnEngine, cnnPath } from '../src/engine/training/cnn/index.js';
import { softmaxCe } from '../src/engine/training/engine-stepper.js';
import { trainConfigFor } from '../src/engine/training/config.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

async function main(): Promise<void> {
  await initBackend({ prefer: 'wasm', wasmThreads: 1 });
  const spec = benchModel(arg('model', 'resnet-20'));
  const steps = Number(arg('steps', '6'));
  const bs = 60;
  const model = createModel(spec.name, { inputShape: spec.inputShape, numClasses: spec.numClasses, seed: 1 });
  const graph = cnnPath(model, tf.getBackend(), 'cnn-simd')!;
  const ds = syntheticDataset(spec.inputShape, spec.numClasses, bs, bs, 1, spec.zeroFraction);
  const cfg = trainConfigFor({ optimizer: 'adam', learningRate: spec.learningRate, momentum: 0, lrSchedule: 'constant', warmupIterations: 0, batchSize: bs, evalEvery: 1000 }, 1000, 1, 'cnn-simd');
  const threadsList = arg('threads', '1,2').split(',').map(Number);
  const engines = threadsList.map((t) => cnnEngine(graph, getWeightMap(model), benchMask(model, 1), cfg, bs, t, { profile: process.argv.includes('--profile') }));
  const wall = engines.map(() => [] as number[]);
  const cpu = engines.map(() => [] as number[]);
  const labels = ds.train.y.subarray(0, bs);
  const before = engines.map(() => [] as ReturnType<NonNullable<(typeof engines)[0]['profile']>>);
  for (let i = 0; i <= steps; i++) {
    engines.forEach((e, j) => {
      if (i === 1 && e.profile) before[j] = e.profile();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      e.input.set(ds.train.x.subarray(0, e.input.length));
      const logits = e.forward(bs, true);
      softmaxCe(logits, labels, 0, bs, spec.numClasses, e.outputGrad);
      e.backward(bs);
      e.update(cfg.learningRate);
      if (i > 0) {
        wall[j]!.push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        cpu[j]!.push((c.user + c.system) / 1000);
      }
    });
  }
  engines.forEach((e, j) => {
    console.log(`${spec.name} ${threadsList[j]} thread(s): median step ${median(wall[j]!).toFixed(1)} ms (min ${Math.min(...wall[j]!).toFixed(1)}), cpu ${median(cpu[j]!).toFixed(1)} ms/step`);
    if (!e.profile) return;
    const kinds = new Map<string, number>();
    const kindOf = new Map(graph.nodes.map((n) => [n.layer, n.kind + (n.kind === 'conv' ? `${(n.config.kernelSize as number[])[0]}s${(n.config.strides as number[] | undefined)?.[0] ?? 1}` : '')]));
    e.profile().forEach((r, i) => {
      const key = `${kindOf.get(r.layer) ?? r.layer} ${r.pass}`;
      kinds.set(key, (kinds.get(key) ?? 0) + (r.ms - (before[j]![i]?.ms ?? 0)) / steps);
    });
    for (const [k, ms] of [...kinds].sort((a, b) => b[1] - a[1])) if (ms > 0.05) console.log(`  ${k.padEnd(36)} ${ms.toFixed(1)}`);
  });
  const one = threadsList.indexOf(1), two = threadsList.indexOf(2);
  if (one >= 0 && two >= 0) console.log(`2 threads vs 1: ${(median(wall[one]!) / median(wall[two]!)).toFixed(2)}x the speed (median steps)`);
  for (const e of engines) e.dispose?.();
}
void main();
