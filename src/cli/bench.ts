// `ticketsmith bench` (also `npm run bench:train`, scripts/bench-train.ts):
// the flags of the training benchmark. Planning, measuring and reporting are
// src/bench/'s; this verb parses, calls runBenchmark, prints the report and
// writes the markdown page when asked.
import os from 'node:os';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags, UsageError } from './flags.js';
import { ALL_BENCH_MODELS } from '../engine/training/bench.js';
import { writeMarkdownReport, DEFAULT_OUT } from '../bench/markdown.js';
import { runBenchmark, variants } from '../bench/plan.js';
import { formatReport, TARGETS, TARGETS_12 } from '../bench/report.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

export const benchUsage = () => `usage: ticketsmith bench [flags]   (or: npm run bench:train -- [flags])

Training examples/s of Ticketsmith's loop (trainModel with a mask, batch 60,
Adam, synthetic data, warm-up excluded) for LeNet-300-100, Conv-2, and issue
12's Conv-4, Conv-6 and ResNet-20 (CIFAR shape) on every TF.js backend
available, each in its own child process, next to PyTorch models built to
match (src/bench/torch_train.py, run with python3) in the same run; LeNet at
${TARGETS.sparseDensity * 100}% and Conv-2 at ${TARGETS_12.convSparseDensity * 100}% weights vs dense; a round's ticket + 2 controls
sequentially vs on a WorkerPool using every core; the peak RSS of a Conv-2 IMP
job with controls; issue #3's and issue 12's targets met or not.

Flags:
  --quick                 1-1.5 minutes on an idle machine; default 8-10 minutes
  --write                 write the markdown report (${relative(REPO, DEFAULT_OUT)})
  --out <file>            where --write puts it
  --backends <list>       subset of: ${variants(2).map((v) => v.id).join(', ')} (default: all)
  --models <list>         subset of: ${Object.keys(ALL_BENCH_MODELS).join(', ')} (default: all)
  --densities <list>      LeNet weight fractions < 1 to compare with dense (default ${TARGETS.sparseDensity})
  --conv-densities <list> Conv-2 weight fractions < 1 to compare with dense on WASM (default ${TARGETS_12.convSparseDensity})
  --seconds <s>           seconds measured per LeNet configuration (Conv-2 gets twice
                          that, Conv-4, Conv-6 and ResNet-20 half)
  --batch <n>             batch size (default 60)
  --python <cmd>          Python for the PyTorch baseline (default python3)
  --no-torch              skip the PyTorch baseline
  --no-pool               skip the both-cores (WorkerPool) measurement
  --no-rss                skip the peak RSS of a Conv-2 IMP job with controls
  --profile               also print where a Conv-2 step's time goes, per layer
                          and pass, for every training loop that profiles itself
  --profile-density <d>   profile a round at this weight fraction instead of dense
  --json                  print every result as one JSON object instead of tables
`;

function num(options: Record<string, string | boolean>, key: string, def: number): number {
  const v = options[key];
  if (v === undefined) return def;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${key}: '${String(v)}' is not a positive number`);
  return n;
}

/** The command as the report names it: an npm script takes its flags after `--`. */
export function commandLine(invokedAs: string, argv: string[]): string {
  if (invokedAs.startsWith('npm ')) return [invokedAs, ...(argv.length > 0 ? ['--', ...argv] : [])].join(' ');
  return [invokedAs, ...argv].join(' ');
}

/** The `bench` verb; `invokedAs` names the command in the report (scripts/bench-train.ts passes `npm run bench:train`). */
export async function benchCommand(argv: string[], invokedAs = 'ticketsmith bench'): Promise<number> {
  const { options, positional } = parseFlags(argv, [], {
    quick: 'boolean',
    write: 'boolean',
    out: 'string',
    backends: 'string',
    models: 'string',
    densities: 'string',
    seconds: 'string',
    batch: 'string',
    python: 'string',
    'no-torch': 'boolean',
    'no-pool': 'boolean',
    'no-rss': 'boolean',
    profile: 'boolean',
    'profile-density': 'string',
    'conv-densities': 'string',
    json: 'boolean',
  });
  if (positional.length > 0) throw new UsageError(`unexpected argument '${positional[0]}' (see --help)`);

  const quick = options.quick === true;
  const list = (key: string, known: string[]) => {
    const v = options[key];
    if (typeof v !== 'string') return known;
    const picked = v.split(',').map((s) => s.trim()).filter(Boolean);
    for (const p of picked) if (!known.includes(p)) throw new UsageError(`--${key}: unknown '${p}'; expected some of ${known.join(', ')}`);
    return picked;
  };
  const fractions = (key: string, def: number[]) => {
    const v = options[key];
    const out = typeof v === 'string' ? v.split(',').map(Number) : def;
    if (out.some((d) => !(d > 0 && d < 1))) throw new UsageError(`--${key}: each must be a fraction in (0, 1), got '${String(v)}'`);
    return out;
  };
  const densities = fractions('densities', [TARGETS.sparseDensity]);
  const convDensities = fractions('conv-densities', [TARGETS_12.convSparseDensity]);
  const models = list('models', Object.keys(ALL_BENCH_MODELS));
  const report = await runBenchmark({
    quick,
    backends: list('backends', variants(os.availableParallelism()).map((v) => v.id)),
    models,
    densities,
    convDensities: models.includes('conv-2') ? convDensities : [],
    rss: options['no-rss'] !== true && models.includes('conv-2'),
    profile: options.profile === true && models.includes('conv-2'),
    profileDensity: options['profile-density'] === undefined ? undefined : fractions('profile-density', [])[0],
    seconds: num(options, 'seconds', quick ? 1.5 : 12),
    batchSize: Math.round(num(options, 'batch', 60)),
    python: options['no-torch'] === true ? null : typeof options.python === 'string' ? options.python : 'python3',
    bothCores: options['no-pool'] !== true,
    command: commandLine(invokedAs, argv),
  });
  process.stdout.write(options.json === true ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report, false)}\n`);
  if (options.write === true) {
    const out = await writeMarkdownReport(report, typeof options.out === 'string' ? resolve(options.out) : DEFAULT_OUT);
    process.stderr.write(`wrote ${out}\n`);
  }
  return report.measurements.some((m) => m.examplesPerSecond !== undefined) ? 0 : 1;
}
