// Reproduces the Lottery Ticket Hypothesis shape on LeNet-300-100 with the
// builtin MNIST subset: IMP with rewinding to init, both controls, several
// seeds; writes docs/results/lth-lenet.md and lth-lenet.svg. With
// `--model conv-2` the same on Conv-2 and builtin Fashion-MNIST (28x28x1, the
// Debian dataset-fashion-mnist folder of the engine config), writing
// lth-conv-2.md and lth-conv-2.svg.
//
//   npm run reproduce:lth -- [--model lenet-300-100|conv-2] [--seeds 3] [--rounds 10] [--iterations 1500] [--quick]
//
// Each seed's run checkpoints under runs/, so an interrupted reproduction
// resumes where it stopped.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCompression } from '../src/engine/run.js';
import type { RoundMetrics } from '../src/engine/sink.js';
import { FileSink } from '../src/engine/sinks/file.js';
import { resolveSpec, runName } from '../src/engine/spec.js';
import { lineChartSvg, type Series } from '../src/engine/report/plot.js';
import { getBackendInfo } from '../src/runtime/backend.js';
import { mlpEnginesByDefault } from '../src/engine/training/mlp.js';
import { withEngineConfig } from '../src/engine/data/index.js';
import { loadEngineConfig } from '../src/runtime/config.js';

const engine = loadEngineConfig();

const args = process.argv.slice(2);
const USAGE = 'usage: npm run reproduce:lth -- [--model lenet-300-100|conv-2] [--seeds N] [--rounds N] [--iterations N] [--eval-every N] [--quick]\n';
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const known = new Set(['--model', '--seeds', '--rounds', '--iterations', '--eval-every', '--quick']);
const unknown = args.filter((a, i) => a.startsWith('-') && !known.has(a) && !(i > 0 && ['--model', '--seeds', '--rounds', '--iterations', '--eval-every'].includes(args[i - 1]!)));
if (unknown.length > 0) {
  process.stderr.write(`unknown option ${unknown.join(', ')}\n${USAGE}`);
  process.exit(2);
}
const arg = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const modelAt = args.indexOf('--model');
const model = modelAt >= 0 ? args[modelAt + 1] : 'lenet-300-100';
if (model !== 'lenet-300-100' && model !== 'conv-2') {
  process.stderr.write(`--model: expected lenet-300-100 or conv-2, got '${model ?? ''}'\n`);
  process.exit(2);
}
const conv = model === 'conv-2';
const quick = args.includes('--quick');
// Conv-2's steps cost ~100x LeNet's on the TF.js loop: 3 rounds of 2,000 iterations and one seed by default.
const seeds = arg('seeds', quick || conv ? 1 : 3);
const rounds = arg('rounds', quick || conv ? 3 : 10);
const iterations = arg('iterations', quick ? 300 : conv ? 2000 : 1500);
const evalEvery = arg('eval-every', conv && !quick ? 100 : 50);
const outDir = 'docs/results';
const stem = conv ? 'lth-conv-2' : 'lth-lenet';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
};
const fmt = (xs: number[], scale = 100, digits = 2) =>
  xs.length === 0 ? '-' : `${(mean(xs) * scale).toFixed(digits)} ± ${(std(xs) * scale).toFixed(digits)}`;

const started = Date.now();
const perSeed: RoundMetrics[][] = [];
for (let seed = 0; seed < seeds; seed++) {
  const spec = resolveSpec({
    model,
    dataset: conv ? 'builtin:fashion-mnist' : 'builtin:mnist',
    rounds,
    iterations,
    evalEvery,
    controls: 'all',
    seed,
  });
  const dir = join('runs', runName(spec));
  process.stderr.write(`seed ${seed}: ${runName(spec)} (${dir})\n`);
  const result = await runCompression(spec, {
    sink: new FileSink(dir),
    engine,
    data: withEngineConfig({}, engine),
    onEvent: (e) => {
      if (e.kind === 'round-end') {
        const m = e.metrics;
        process.stderr.write(
          `  round ${m.round}: ${(m.density * 100).toFixed(1)}% weights, ticket ${(m.finalTestAccuracy * 100).toFixed(2)}%` +
            ` reinit ${m.controls.reinit ? (m.controls.reinit.finalTestAccuracy * 100).toFixed(2) : '-'}%` +
            ` shuffle ${m.controls.shuffle ? (m.controls.shuffle.finalTestAccuracy * 100).toFixed(2) : '-'}%` +
            ` (${m.examplesPerSecond.toFixed(0)} ex/s)\n`,
        );
      }
    },
  });
  perSeed.push(result.summary.rounds as RoundMetrics[]);
}

const nRounds = Math.min(...perSeed.map((r) => r.length));
const rows: string[] = [];
const ticket: Series = { label: 'ticket (rewind to init)', slug: 'ticket', color: '#1f77b4', points: [] };
const reinit: Series = { label: 'random reinit', slug: 'random-reinit', color: '#d62728', points: [], dashed: true };
const shuffle: Series = { label: 'random structure', slug: 'random-structure', color: '#2ca02c', points: [], dashed: true };
const esTicket: Series = { ...ticket, points: [] };
const esReinit: Series = { ...reinit, points: [] };
const esShuffle: Series = { ...shuffle, points: [] };
for (let r = 0; r < nRounds; r++) {
  const ms = perSeed.map((s) => s[r]!);
  const density = mean(ms.map((m) => m.density)) * 100;
  const acc = ms.map((m) => m.finalTestAccuracy);
  const es = ms.map((m) => m.earlyStopIteration);
  const ri = ms.flatMap((m) => (m.controls.reinit ? [m.controls.reinit] : []));
  const sh = ms.flatMap((m) => (m.controls.shuffle ? [m.controls.shuffle] : []));
  ticket.points.push([density, mean(acc) * 100, std(acc) * 100]);
  esTicket.points.push([density, mean(es), std(es)]);
  if (ri.length) {
    reinit.points.push([density, mean(ri.map((c) => c.finalTestAccuracy)) * 100, std(ri.map((c) => c.finalTestAccuracy)) * 100]);
    esReinit.points.push([density, mean(ri.map((c) => c.earlyStopIteration)), std(ri.map((c) => c.earlyStopIteration))]);
  }
  if (sh.length) {
    shuffle.points.push([density, mean(sh.map((c) => c.finalTestAccuracy)) * 100, std(sh.map((c) => c.finalTestAccuracy)) * 100]);
    esShuffle.points.push([density, mean(sh.map((c) => c.earlyStopIteration)), std(sh.map((c) => c.earlyStopIteration))]);
  }
  rows.push(
    `| ${r} | ${density.toFixed(1)} | ${fmt(acc)} | ${fmt(ms.map((m) => m.earlyStopTestAccuracy))} | ${fmt(es, 1, 0)} | ` +
      `${fmt(ri.map((c) => c.finalTestAccuracy))} | ${fmt(ri.map((c) => c.earlyStopIteration), 1, 0)} | ` +
      `${fmt(sh.map((c) => c.finalTestAccuracy))} | ${fmt(sh.map((c) => c.earlyStopIteration), 1, 0)} |`,
  );
}
// Beat-count across seeds: the paper's claim is about 10–20% of weights remaining.
const beats = perSeed.flatMap((s) =>
  s.filter((m) => m.controls.reinit && m.density <= 0.25).map((m) => m.finalTestAccuracy > m.controls.reinit!.finalTestAccuracy),
);
const dense = perSeed.map((s) => s[0]!.finalTestAccuracy);
const bestSparse = perSeed.map((s) => Math.max(...s.filter((m) => m.density <= 0.25 && m.density >= 0.09).map((m) => m.finalTestAccuracy)));
const backend = getBackendInfo();
const minutes = ((Date.now() - started) / 60000).toFixed(1);

await mkdir(outDir, { recursive: true });
await writeFile(
  join(outDir, `${stem}.svg`),
  lineChartSvg([
    { title: 'Test accuracy (final)', yLabel: 'test accuracy (%)', series: [ticket, reinit, shuffle] },
    { title: 'Early-stop iteration', yLabel: 'iteration of min. validation loss', series: [esTicket, esReinit, esShuffle] },
  ]),
);
const table = `| round | % weights | ticket test acc % | ticket acc at early stop % | ticket early-stop it | reinit test acc % | reinit early-stop it | shuffle test acc % | shuffle early-stop it |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}`;
const summary = `Summary: dense test accuracy ${fmt(dense)}%; ${beats.length === 0
  ? `no round reached 25% of weights or fewer (${rounds} rounds), so there is no sparse ticket to judge.`
  : `best ticket between 9% and 25% of weights ${fmt(bestSparse)}%;
the ticket beat random reinitialisation in ${beats.filter(Boolean).length} of ${beats.length} (seed, round) pairs at ≤ 25% of weights.`}`;
const convMd = `# Lottery tickets on Conv-2 (builtin Fashion-MNIST)

Produced by \`npm run reproduce:lth -- ${args.join(' ')}\` (${minutes} min on backend \`${backend?.name ?? '?'}\`, training loop(s) ${[...new Set(perSeed.flatMap((s) => s.map((m) => m.trainingLoop ?? '?')))].join(', ')}).

Setup: Conv-2 (conv 64, 64, max-pool, FC 256, 256, out) built by the zoo for Fashion-MNIST's 28×28×1,
\`builtin:fashion-mnist\` (the Debian package dataset-fashion-mnist; see README), Adam 2e-4, batch 60,
**${iterations} iterations per round** (the paper trains Conv-2 for 20,000 on CIFAR-10), validation every
${evalEvery} iterations; per round 15% of conv, 20% of hidden dense and 10% of output weights pruned
layer-wise (the spec's defaults), survivors rewound to their initial values; ${rounds} pruning rounds;
controls each round: random reinitialisation and random structure. ${seeds} seed(s); cells are mean ±
standard deviation across seeds.

![accuracy and early-stop iteration](${stem}.svg)

${table}

${summary}
`;
const md = conv ? convMd : `# Lottery tickets on LeNet-300-100 (builtin MNIST)

Produced by \`npm run reproduce:lth -- ${args.join(' ')}\` (${minutes} min on backend \`${backend?.name ?? '?'}\`${backend && mlpEnginesByDefault(backend.name) && engine.loop !== 'tfjs' ? ', where LeNet trains on the MLP engines of src/engine/training/mlp.ts' : ''}).

Setup: LeNet-300-100, \`builtin:mnist\` (npm \`mnist\`: 10,000 digits; see README for the split), Adam
1.2e-3, batch 60, **${iterations} iterations per round** (the paper trains 50,000 on 60,000 digits),
validation every ${evalEvery} iterations; per round 20% of hidden-layer and 10% of output-layer weights
pruned layer-wise, survivors rewound to their initial values; ${rounds} pruning rounds; controls each
round: random reinitialisation (same mask, fresh init) and random structure (each layer's mask
shuffled, original init). ${seeds} seed(s); cells are mean ± standard deviation across seeds.

![accuracy and early-stop iteration](lth-lenet.svg)

| round | % weights | ticket test acc % | ticket acc at early stop % | ticket early-stop it | reinit test acc % | reinit early-stop it | shuffle test acc % | shuffle early-stop it |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Summary: dense test accuracy ${fmt(dense)}%; ${beats.length === 0
  ? `no round reached 25% of weights or fewer (${rounds} rounds), so there is no sparse ticket to judge.`
  : `best ticket between 9% and 25% of weights ${fmt(bestSparse)}%;
the ticket beat random reinitialisation in ${beats.filter(Boolean).length} of ${beats.length} (seed, round) pairs at ≤ 25% of weights.`}
`;
await writeFile(join(outDir, `${stem}.md`), md);
process.stdout.write(md);
