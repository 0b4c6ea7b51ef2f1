// Conv nets on the native 'tensorflow' backend (issue 12): the TF.js loop
// (native TF kernels with Ticketsmith's overrides) vs the conv engine
// (src/engine/training/cnn/, its own WebAssembly threads) vs PyTorch on every
// core and on one, interleaved round by round in one run so machine load hits
// all alike. Each of ours is trainModel as the bench measures it
// (measureTraining: mask, Adam, synthetic CIFAR-shaped data, warm-up excluded).
//   npx tsx scripts/bench-native-loops.ts [--models conv-2,conv-4] [--seconds 10]
//       [--rounds 3] [--batch 60] [--python /path/to/python | --no-torch]
// Needs tfjs-node (`npm run native-backend`). Prints examples/s per round,
// medians and the ratios to PyTorch's better thread setting of each round.
import { availableParallelism } from 'node:os';
import { computeThreads, initBackend } from '../src/runtime/backend.js';
import { measureTraining } from '../src/engine/training/bench.js';
import type { TrainingLoopChoice } from '../src/engine/training/config.js';
import { measureTorch } from '../src/bench/pytorch.js';

const argv = process.argv.slice(2);
const opt = (name: string, d: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : d;
};
const models = opt('models', 'conv-2').split(',');
const seconds = Number(opt('seconds', '10'));
const rounds = Number(opt('rounds', '3'));
const batch = Number(opt('batch', '60'));
const python = argv.includes('--no-torch') ? null : opt('python', 'python3');

const info = await initBackend({ prefer: 'tensorflow' });
const cores = availableParallelism();
console.log(
  `backend ${info.name} ${info.version}; conv engine threads ${computeThreads()}; TF_NUM_INTRAOP_THREADS=${process.env.TF_NUM_INTRAOP_THREADS ?? '(TF default)'}` +
    `; ${cores} cores; batch ${batch}; ${rounds} rounds x ${seconds} s per system, interleaved`,
);

const LOOPS: Array<[string, TrainingLoopChoice]> = [
  ['TF.js loop', 'tfjs'],
  ['conv engine', 'cnn-simd'],
];
const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;

for (const model of models) {
  const eps = new Map<string, number[]>();
  const push = (k: string, v: number) => eps.set(k, [...(eps.get(k) ?? []), v]);
  const bestTorch: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const line: string[] = [];
    for (const [name, loop] of LOOPS) {
      const res = await measureTraining({ model, batchSize: batch, seconds, maxSteps: 1e6, warmupSteps: 2, loop });
      push(name, res.examplesPerSecond);
      line.push(`${name} (${res.path}) ${res.examplesPerSecond.toFixed(1)}`);
    }
    let best = 0;
    for (const threads of python ? [...new Set([cores, 1])] : []) {
      const t = await measureTorch({ python: python!, model, batchSize: batch, warmupSteps: 2, seconds, threads });
      if (t.kind !== 'measured') {
        line.push(`PyTorch ${threads}t: ${t.message.split('\n')[0]}`);
        continue;
      }
      push(`PyTorch ${threads}t`, t.result.examplesPerSecond);
      best = Math.max(best, t.result.examplesPerSecond);
      line.push(`PyTorch ${threads}t ${t.result.examplesPerSecond.toFixed(1)}`);
    }
    if (best > 0) bestTorch.push(best);
    console.log(`${model} round ${r + 1}: ${line.join(', ')} ex/s`);
  }
  const torch = bestTorch.length > 0 ? median(bestTorch) : undefined;
  const parts = [...eps].map(([k, v]) => `${k} ${median(v).toFixed(1)}${torch ? ` (${(median(v) / torch).toFixed(2)}x)` : ''}`);
  console.log(`${model} median ex/s: ${parts.join(', ')}${torch ? `; ratios to PyTorch's better setting per round, median ${torch.toFixed(1)}` : ''}`);
  const [tfjs, engine] = LOOPS.map(([k]) => median(eps.get(k)!));
  console.log(`${model} conv engine / TF.js loop: ${(engine! / tfjs!).toFixed(2)}x`);
}
