// `ticketsmith bench` (also scripts/bench-train.ts): training examples/s of our
// own loop for LeNet-300-100 and Conv-2 on every TF.js backend this machine
// has, next to PyTorch measured in the same run, plus sparse LeNet rounds vs
// the dense one and the speed-up of training a round's trials on both cores.
// TF.js holds one backend per process, so every backend is measured in a
// child process (`--worker`) that prints JSON lines; this side plans,
// collects and reports. A shared machine makes absolute numbers noisy, so
// comparisons are made within one run, with alternating slices where it helps.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { parseFlags, UsageError } from './flags.js';
import { initBackend, BackendUnavailableError, type BackendInfo, type BackendName } from '../runtime/backend.js';
import { loadEngineConfig } from '../runtime/config.js';
import { BENCH_MODELS, benchModel, measureParallelTrials, measureTraining, type ParallelResult, type ThroughputResult } from '../engine/training/bench.js';
import { CSR_DENSITY_THRESHOLD, mlpEnginesByDefault } from '../engine/training/mlp.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** What the worker children run: a plain script, so workers start the same whether or not the CLI verb is wired. */
const WORKER_ENTRY = resolve(REPO, 'scripts/bench-train.ts');
const TORCH_SCRIPT = resolve(REPO, 'scripts/bench/torch_train.py');
const DEFAULT_OUT = resolve(REPO, 'docs/results/bench-train.md');

/** Issue #3's targets. */
export const TARGETS = {
  wasm: { 'lenet-300-100': 0.5, 'conv-2': 0.3 } as Readonly<Record<string, number>>,
  native: 1.0,
  /** A LeNet round at <= sparseDensity of the weights vs the dense round. */
  sparse: 2.0,
  sparseDensity: 0.05,
};

/** A backend as benchmarked: WASM once single-threaded and once with XNNPACK threads on every core. */
export interface Variant {
  id: string;
  backend: BackendName;
  wasmThreads: number;
}

export function variants(cores: number): Variant[] {
  const out: Variant[] = [
    { id: 'tensorflow-gpu', backend: 'tensorflow-gpu', wasmThreads: 1 },
    { id: 'tensorflow', backend: 'tensorflow', wasmThreads: 1 },
    { id: 'wasm', backend: 'wasm', wasmThreads: 1 },
  ];
  if (cores > 1) out.push({ id: 'wasm-threads', backend: 'wasm', wasmThreads: cores });
  out.push({ id: 'cpu', backend: 'cpu', wasmThreads: 1 });
  return out;
}

export const benchUsage = () => `usage: ticketsmith bench [flags]   (or: npm run bench:train -- [flags])

Training examples/s of Ticketsmith's loop (trainModel with a mask, batch 60,
Adam, synthetic data, warm-up excluded) for LeNet-300-100 and Conv-2 on every
TF.js backend available, each in its own child process, next to PyTorch
(scripts/bench/torch_train.py, run with python3) in the same run; LeNet at
${TARGETS.sparseDensity * 100}% weights vs dense; a round's ticket + 2 controls sequentially vs on a
WorkerPool using every core.

Flags:
  --quick                 1-1.5 minutes on an idle machine; default 8-10 minutes
  --write                 write the markdown report (${relative(REPO, DEFAULT_OUT)})
  --out <file>            where --write puts it
  --backends <list>       subset of: ${variants(2).map((v) => v.id).join(', ')} (default: all)
  --models <list>         subset of: ${Object.keys(BENCH_MODELS).join(', ')} (default: both)
  --densities <list>      LeNet weight fractions < 1 to compare with dense (default ${TARGETS.sparseDensity})
  --seconds <s>           seconds measured per LeNet configuration (Conv-2 gets twice that)
  --batch <n>             batch size (default 60)
  --python <cmd>          Python for the PyTorch baseline (default python3)
  --no-torch              skip the PyTorch baseline
  --no-pool               skip the both-cores (WorkerPool) measurement
  --json                  print every result as one JSON object instead of tables
`;

// ---------------------------------------------------------------- worker side

/** One measurement a worker child makes, in order. */
interface PlanItem {
  model: string;
  density: number;
  seconds: number;
  warmup?: number;
  maxSteps?: number;
  /** Force the TF.js kernels even where trainModel would take an MLP engine. */
  tfjsLoop?: boolean;
  /** Fraction of zero input pixels, if not the model's usual one. */
  zeroFraction?: number;
}

type WorkerLine =
  | { type: 'ready'; backend: BackendInfo }
  | { type: 'step'; model: string; step: number }
  | { type: 'result'; result: ThroughputResult; tfjsLoop: boolean }
  | { type: 'parallel'; result: ParallelResult }
  | { type: 'unavailable'; message: string }
  | { type: 'error'; message: string };

const emit = (line: WorkerLine) => process.stdout.write(`${JSON.stringify(line)}\n`);

function num(options: Record<string, string | boolean>, key: string, def: number): number {
  const v = options[key];
  if (v === undefined) return def;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${key}: '${String(v)}' is not a positive number`);
  return n;
}

/** One child: initialise the named backend, run the measurements it was given, print JSON lines. */
async function worker(kind: string, o: Record<string, string | boolean>): Promise<number> {
  let backend: BackendInfo;
  try {
    backend = await initBackend({ prefer: String(o.backend ?? ''), wasmThreads: num(o, 'wasm-threads', 1) });
  } catch (err) {
    emit(err instanceof BackendUnavailableError ? { type: 'unavailable', message: err.message } : { type: 'error', message: (err as Error).message });
    return 1;
  }
  emit({ type: 'ready', backend });
  const batchSize = num(o, 'batch', 60);
  // TICKETSMITH_MLP reaches the measured loop as it reaches a run's (the "TF.js kernels" rows force tfjs).
  const { loop } = loadEngineConfig();
  try {
    if (kind === 'parallel') {
      const result = await measureParallelTrials({
        model: String(o.model),
        batchSize,
        steps: num(o, 'steps', 50),
        parallelism: num(o, 'parallelism', 2),
        repeats: num(o, 'repeats', 1),
        backend: backend.name,
        loop,
      });
      emit({ type: 'parallel', result });
      return 0;
    }
    const plan = JSON.parse(String(o.plan ?? '[]')) as PlanItem[];
    for (const item of plan) {
      const result = await measureTraining({
        model: item.model,
        batchSize,
        density: item.density,
        seconds: item.seconds,
        maxSteps: item.maxSteps ?? 1e6,
        warmupSteps: item.warmup,
        tfjsLoop: item.tfjsLoop,
        loop,
        zeroFraction: item.zeroFraction,
        onStep: o['every-step'] === true ? ({ step }) => emit({ type: 'step', model: item.model, step }) : undefined,
      });
      emit({ type: 'result', result, tfjsLoop: item.tfjsLoop === true });
    }
    return 0;
  } catch (err) {
    emit({ type: 'error', message: (err as Error).message });
    return 1;
  }
}

// ---------------------------------------------------------- orchestrator side

interface ChildOutcome {
  lines: WorkerLine[];
  stdout: string;
  code: number | null;
  /** Seconds after the child reported ready at which it was killed for running past its limit. */
  killedAfter?: number;
  stderr: string;
  spawnError?: string;
}

function runChild(cmd: string, args: string[], limitSeconds: number, env: NodeJS.ProcessEnv = process.env): Promise<ChildOutcome> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: WorkerLine[] = [];
    let stdout = '';
    let stderr = '';
    let pending = '';
    let readyAt = performance.now();
    let killedAfter: number | undefined;
    const timer = setTimeout(() => {
      killedAfter = (performance.now() - readyAt) / 1000;
      child.kill('SIGKILL');
    }, limitSeconds * 1000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const text = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (!text.startsWith('{"type"')) continue;
        try {
          const line = JSON.parse(text) as WorkerLine;
          if (line.type === 'ready') readyAt = performance.now();
          lines.push(line);
        } catch {
          // A library printed something brace-shaped; not ours.
        }
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      done({ lines, stdout, code: null, stderr, spawnError: err.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ lines, stdout, code, killedAfter, stderr });
    });
  });
}

function tsWorker(args: string[], limitSeconds: number, env?: NodeJS.ProcessEnv): Promise<ChildOutcome> {
  return runChild(process.execPath, ['--import', import.meta.resolve('tsx'), WORKER_ENTRY, '--worker', ...args], limitSeconds, env);
}

const lastLine = (r: ChildOutcome) => r.stderr.trim().split('\n').at(-1) || `exit ${r.code}`;

function lineOf<T extends WorkerLine['type']>(r: ChildOutcome, type: T): Extract<WorkerLine, { type: T }> | undefined {
  return r.lines.find((l): l is Extract<WorkerLine, { type: T }> => l.type === type);
}

export interface Measurement {
  model: string;
  /** `pytorch-<n>t` or a Variant id. */
  system: string;
  label: string;
  /** Nominal fraction of prunable weights kept. */
  density: number;
  /** true where the MLP engines were turned off on purpose (TF.js kernels). */
  tfjsLoop: boolean;
  /** Fraction of zero input pixels, where not the model's usual one (LeNet with dense inputs). */
  zeroFraction?: number;
  /** Loop trainModel took ('tfjs', 'mlp-simd' or 'mlp-csr'); absent for PyTorch. */
  path?: string;
  examplesPerSecond?: number;
  medianStepMs?: number;
  steps?: number;
  /** Why there is no number, or the bound a capped run proved. */
  note?: string;
}

export interface BenchReport {
  date: string;
  machine: { cores: number; cpu: string; node: string; tfjs: string; torch?: string; loadStart: number[]; loadEnd: number[] };
  settings: { quick: boolean; batchSize: number; seconds: number; densities: number[]; command: string };
  measurements: Measurement[];
  parallel?: ParallelResult & { backend: string };
  unavailable: { system: string; message: string }[];
  torchMissing?: string;
  wallSeconds: number;
}

interface TorchResult {
  torch: string;
  threads: number;
  examplesPerSecond: number;
  medianStepMs: number;
  steps: number;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    // Not Linux: fall through to what Node knows.
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

function variantLabel(v: Variant, info?: BackendInfo): string {
  if (v.backend === 'wasm') {
    const threads = info?.threads ?? v.wasmThreads;
    return `tfjs wasm${info?.simd ? ' SIMD' : ''}, ${threads} thread${threads > 1 ? 's' : ''}`;
  }
  if (v.backend === 'cpu') return 'tfjs cpu (pure JS)';
  return v.backend === 'tensorflow-gpu' ? 'tfjs-node-gpu (CUDA)' : 'tfjs-node (native TF)';
}

const log = (s: string) => process.stderr.write(`${s}\n`);

/** The same configuration measured in several slices, as one throughput over all of them. */
/** A measurement of what trainModel does by default, on the model's usual inputs. */
const isDefault = (m: Measurement) => !m.tfjsLoop && m.zeroFraction === undefined;

export function mergeMeasurements(ms: Measurement[]): Measurement[] {
  const out: Measurement[] = [];
  for (const m of ms) {
    const same = out.find((x) => x.system === m.system && x.model === m.model && x.density === m.density && x.tfjsLoop === m.tfjsLoop && x.zeroFraction === m.zeroFraction);
    if (!same) {
      out.push({ ...m });
      continue;
    }
    if (m.examplesPerSecond === undefined || m.steps === undefined) continue;
    if (same.examplesPerSecond === undefined || same.steps === undefined) {
      Object.assign(same, { examplesPerSecond: m.examplesPerSecond, steps: m.steps, medianStepMs: m.medianStepMs, note: undefined });
      continue;
    }
    const seconds = same.steps / same.examplesPerSecond + m.steps / m.examplesPerSecond;
    const steps = same.steps + m.steps;
    // Step-weighted mean of the slices' medians: near the overall median without shipping every step time.
    same.medianStepMs = ((same.medianStepMs ?? 0) * same.steps + (m.medianStepMs ?? 0) * m.steps) / steps;
    same.examplesPerSecond = steps / seconds;
    same.steps = steps;
  }
  return out;
}

/** Native packages are optional: when one does not resolve, say so without paying for a child process. */
function missingNative(v: Variant): string | undefined {
  if (v.backend !== 'tensorflow' && v.backend !== 'tensorflow-gpu') return undefined;
  const pkg = v.backend === 'tensorflow' ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-node-gpu';
  try {
    import.meta.resolve(pkg);
    return undefined;
  } catch {
    return v.backend === 'tensorflow'
      ? `${pkg} is not installed; build it with \`npm run native-backend\` (scripts/native-backend.sh)`
      : `${pkg} is not installed; it needs CUDA 11.2 and cuDNN 8.1: \`npm install --no-save ${pkg}@4.22.0\``;
  }
}

export interface BenchOptions {
  quick: boolean;
  backends: string[];
  models: string[];
  /** LeNet weight fractions < 1 compared with the dense round. */
  densities: number[];
  /** Seconds measured per LeNet configuration; Conv-2 gets twice as long. */
  seconds: number;
  batchSize: number;
  /** Python command for the PyTorch baseline; null skips it. */
  python: string | null;
  /** Measure the WorkerPool speed-up (default true). */
  bothCores?: boolean;
}

/** Runs every measurement, logging one line per finished one on stderr. */
export async function runBenchmark(o: BenchOptions): Promise<BenchReport> {
  const started = performance.now();
  const cores = os.availableParallelism();
  const report: BenchReport = {
    date: new Date().toISOString(),
    machine: { cores, cpu: cpuModel(), node: process.version, tfjs: tf.version_core, loadStart: os.loadavg(), loadEnd: [] },
    settings: { quick: o.quick, batchSize: o.batchSize, seconds: o.seconds, densities: o.densities, command: '' },
    measurements: [],
    unavailable: [],
    wallSeconds: 0,
  };
  const chosen = variants(cores).filter((v) => o.backends.includes(v.id));
  const secondsFor = (model: string) => (model === 'conv-2' ? 2 * o.seconds : o.seconds);
  // Warm-up covers XNNPACK set-up and V8's JIT; the pure-JS backend's slow
  // steps need few, and a quick run trades some steadiness for time.
  const warmupFor = (model: string, backend?: BackendName) => {
    const full = benchModel(model).warmupSteps;
    if (backend === 'cpu') return Math.min(2, full);
    return o.quick ? Math.min(model === 'conv-2' ? 1 : 3, full) : full;
  };
  const bs = o.batchSize;
  const raw: Measurement[] = [];
  const add = (m: Measurement) => {
    raw.push(m);
    const what = m.examplesPerSecond !== undefined ? `${fmtEps(m.examplesPerSecond)} ex/s (median step ${m.medianStepMs?.toFixed(1)} ms, ${m.steps} steps)` : m.note;
    log(`  ${m.model} @ ${pct(m.density)} on ${m.label}${loopLabel(m)}: ${what}`);
  };

  // PyTorch at 2 threads (torch.set_num_threads(2), as a 2-core machine
  // suggests) and at 1: under load from other processes its thread pool can
  // collapse, and the baseline should be PyTorch at its best here. A full run
  // measures it before and after our backends so drifting load hits both.
  let python = o.python;
  const torchPass = async () => {
    for (const model of o.models) {
      for (const threads of [...new Set([cores, 1])]) {
        if (!python) return;
        const seconds = o.quick ? secondsFor(model) : secondsFor(model) / 2;
        const r = await runChild(
          python,
          [TORCH_SCRIPT, '--model', model, '--batch', String(bs), '--warmup', String(warmupFor(model)), '--seconds', String(seconds), '--threads', String(threads)],
          120 + 3 * seconds,
        );
        const system = `pytorch-${threads}t`;
        if (r.spawnError || r.code === 3) {
          report.torchMissing = r.spawnError ? `could not run '${python}': ${r.spawnError}` : r.stderr.trim();
          log(`PyTorch baseline skipped: ${report.torchMissing}`);
          python = null;
          return;
        }
        const json = r.stdout.split('\n').find((l) => l.startsWith('{"torch"'));
        const threadsLabel = `${threads} thread${threads > 1 ? 's' : ''}`;
        if (r.code !== 0 || !json) {
          add({ model, system, label: `PyTorch, ${threadsLabel}`, density: 1, tfjsLoop: false, note: `failed: ${lastLine(r)}` });
          continue;
        }
        const t = JSON.parse(json) as TorchResult;
        report.machine.torch = t.torch;
        add({ model, system, label: `PyTorch ${t.torch}, ${threadsLabel}`, density: 1, tfjsLoop: false, examplesPerSecond: t.examplesPerSecond, medianStepMs: t.medianStepMs, steps: t.steps });
      }
    }
  };
  log(`PyTorch (batch ${bs}):`);
  await torchPass();

  for (const v of chosen) {
    const missing = missingNative(v);
    if (missing) {
      report.unavailable.push({ system: v.id, message: missing });
      log(`${v.id}: not available (${missing})`);
      continue;
    }
    // LeNet's dense and sparse configurations alternate in slices so their
    // ratio sees the same load. The pure-JS backend's Conv-2 gets its own
    // capped child (its conv gradients take minutes per step) and reports the
    // bound the cap proves instead of holding up the run.
    const plan: PlanItem[] = [];
    const slices = o.quick ? 1 : 2;
    for (const model of o.models) {
      if (v.backend === 'cpu' && model !== 'lenet-300-100') continue;
      const configs: Array<Pick<PlanItem, 'density' | 'tfjsLoop' | 'zeroFraction'>> = [{ density: 1 }];
      if (model === 'lenet-300-100') {
        // Where the MLP engine trains LeNet: the TF.js kernels beside it, and
        // inputs without zeros (the engine skips zero pixels, PyTorch does not).
        if (mlpEnginesByDefault(v.backend)) configs.push({ density: 1, tfjsLoop: true }, { density: 1, zeroFraction: 0 });
        for (const density of o.densities) configs.push({ density }, { density, tfjsLoop: true });
      }
      for (let i = 0; i < slices; i++) {
        for (const c of configs) plan.push({ model, ...c, seconds: secondsFor(model) / slices, warmup: warmupFor(model, v.backend) });
      }
    }
    const children: Array<{ plan: PlanItem[]; limit: number; capped: boolean }> = [];
    if (plan.length > 0) children.push({ plan, limit: 150 + plan.reduce((t, p) => t + 4 * p.seconds, 0), capped: false });
    if (v.backend === 'cpu') {
      for (const model of o.models.filter((m) => m !== 'lenet-300-100')) {
        children.push({ plan: [{ model, density: 1, seconds: secondsFor(model), warmup: 1, maxSteps: 2 }], limit: o.quick ? 8 : 30, capped: true });
      }
    }
    log(`${v.id}:`);
    for (const child of children) {
      const args = ['train', '--backend', v.backend, '--wasm-threads', String(v.wasmThreads), '--batch', String(bs), '--plan', JSON.stringify(child.plan)];
      if (child.capped) args.push('--every-step');
      const r = await tsWorker(args, child.limit);
      const unavailable = lineOf(r, 'unavailable');
      if (unavailable) {
        report.unavailable.push({ system: v.id, message: unavailable.message });
        log(`  not available: ${unavailable.message}`);
        break;
      }
      const label = variantLabel(v, lineOf(r, 'ready')?.backend);
      const results = r.lines.filter((l): l is Extract<WorkerLine, { type: 'result' }> => l.type === 'result');
      results.forEach((l, i) => {
        const res = l.result;
        add({
          model: res.model,
          system: v.id,
          label,
          density: child.plan[i]!.density,
          tfjsLoop: l.tfjsLoop,
          zeroFraction: child.plan[i]!.zeroFraction,
          path: res.path,
          examplesPerSecond: res.examplesPerSecond,
          medianStepMs: res.medianStepMs,
          steps: res.steps,
        });
      });
      const next = child.plan[results.length];
      if (next) {
        let note: string;
        if (r.killedAfter !== undefined) {
          const done = r.lines.filter((l) => l.type === 'step').length;
          note = `< ${fmtEps(((done + 1) * bs) / r.killedAfter)} (${done} step${done === 1 ? '' : 's'} in ${r.killedAfter.toFixed(0)} s, stopped)`;
        } else note = `failed: ${lineOf(r, 'error')?.message ?? lastLine(r)}`;
        add({ model: next.model, system: v.id, label, density: next.density, tfjsLoop: next.tfjsLoop === true, zeroFraction: next.zeroFraction, note });
      }
    }
  }

  // Both cores: on the fastest single-threaded backend that answered for LeNet.
  const lenetDense = (id: string) =>
    mergeMeasurements(raw).find((m) => m.model === 'lenet-300-100' && m.system === id && m.density === 1 && isDefault(m) && m.examplesPerSecond !== undefined);
  const poolVariant = chosen.filter((v) => v.wasmThreads === 1).find((v) => lenetDense(v.id));
  if (poolVariant && cores > 1 && o.bothCores !== false) {
    const eps = lenetDense(poolVariant.id)!.examplesPerSecond!;
    const trialSeconds = o.quick ? 1 : o.seconds / 4;
    const steps = Math.max(20, Math.min(5000, Math.round((trialSeconds * eps) / bs)));
    const repeats = o.quick ? 1 : 2;
    log(`both cores: ticket + 2 controls on ${poolVariant.id}, LeNet-300-100 dense, ${steps} steps each, sequential vs WorkerPool(${cores}), ${repeats}x:`);
    const r = await tsWorker(
      ['parallel', '--backend', poolVariant.backend, '--model', 'lenet-300-100', '--steps', String(steps), '--parallelism', String(cores), '--repeats', String(repeats), '--batch', String(bs)],
      180 + (10 * repeats * steps * bs) / eps,
      // Pool threads pick WASM threads from the environment; one each, so the comparison is cores vs one core.
      { ...process.env, TICKETSMITH_WASM_THREADS: '1' },
    );
    const p = lineOf(r, 'parallel');
    if (p) {
      report.parallel = { ...p.result, backend: poolVariant.id };
      log(`  sequential ${fmtEps(p.result.sequential.examplesPerSecond)} ex/s, WorkerPool ${fmtEps(p.result.pool.examplesPerSecond)} ex/s: ${p.result.speedup.toFixed(2)}x`);
    } else log(`  failed: ${lineOf(r, 'error')?.message ?? lastLine(r)}`);
  }

  if (!o.quick && python) {
    log('PyTorch again (brackets the TF.js measurements):');
    await torchPass();
  }
  report.measurements = mergeMeasurements(raw);
  report.machine.loadEnd = os.loadavg();
  report.wallSeconds = (performance.now() - started) / 1000;
  return report;
}

// ------------------------------------------------------------------ reporting

const pct = (x: number) => `${+(x * 100).toFixed(1)}%`;
export const fmtEps = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x >= 1 ? x.toFixed(1) : x.toFixed(2));
const fmtRatio = (x: number) => `${x >= 10 ? x.toFixed(0) : x >= 0.1 ? x.toFixed(2) : x.toPrecision(2)}×`;

/** The PyTorch baseline of a model: its fastest thread setting. */
export function baseline(report: BenchReport, model: string): Measurement | undefined {
  return report.measurements
    .filter((m) => m.model === model && m.system.startsWith('pytorch') && m.examplesPerSecond !== undefined)
    .sort((a, b) => b.examplesPerSecond! - a.examplesPerSecond!)[0];
}

function targetFor(system: string, model: string): number | undefined {
  if (system === 'wasm' || system === 'wasm-threads') return TARGETS.wasm[model];
  if (system === 'tensorflow' || system === 'tensorflow-gpu') return TARGETS.native;
  return undefined;
}

export interface SparseRow {
  system: string;
  label: string;
  density: number;
  dense: number;
  /** TF.js kernels under the mask (the MLP engines turned off). */
  masked?: number;
  /** What trainModel does by default, and which loop that was. */
  engine?: number;
  enginePath?: string;
}

export function sparseRows(report: BenchReport): SparseRow[] {
  const rows: SparseRow[] = [];
  const ms = report.measurements;
  for (const d of ms) {
    if (d.model !== 'lenet-300-100' || d.density !== 1 || !isDefault(d) || d.examplesPerSecond === undefined || d.system.startsWith('pytorch')) continue;
    for (const density of report.settings.densities) {
      const at = (tfjsLoop: boolean) => ms.find((m) => m.model === d.model && m.system === d.system && m.density === density && m.tfjsLoop === tfjsLoop && m.zeroFraction === undefined);
      const engine = at(false);
      const masked = at(true);
      if (engine?.examplesPerSecond === undefined && masked?.examplesPerSecond === undefined) continue;
      rows.push({ system: d.system, label: d.label, density, dense: d.examplesPerSecond, masked: masked?.examplesPerSecond, engine: engine?.examplesPerSecond, enginePath: engine?.path });
    }
  }
  return rows;
}

export interface Target {
  what: string;
  /** null: not measurable in this run. */
  met: boolean | null;
  detail: string;
}

/** Every target of issue #3: met, not met, or not measured here. */
export function targets(report: BenchReport): Target[] {
  const out: Target[] = [];
  const ratioOf = (system: string, model: string) => {
    const b = baseline(report, model);
    const m = report.measurements.find((x) => x.system === system && x.model === model && x.density === 1 && isDefault(x) && x.examplesPerSecond !== undefined);
    return b && m ? m.examplesPerSecond! / b.examplesPerSecond! : undefined;
  };
  const models = Object.keys(BENCH_MODELS).filter((model) => report.measurements.some((m) => m.model === model));
  for (const [kind, systems] of [['WASM', ['wasm', 'wasm-threads']], ['native', ['tensorflow', 'tensorflow-gpu']]] as const) {
    for (const model of models) {
      const goal = kind === 'WASM' ? TARGETS.wasm[model]! : TARGETS.native;
      const what = `${kind} ≥ ${goal}× PyTorch on ${model}`;
      const ratios: Array<[string, number]> = [];
      for (const s of systems) {
        const r = ratioOf(s, model);
        if (r !== undefined) ratios.push([s, r]);
      }
      if (ratios.length === 0) {
        const why = !baseline(report, model) ? 'no PyTorch baseline' : kind === 'native' ? 'tfjs-node is not installed here, see `npm run native-backend`' : 'no WASM measurement';
        out.push({ what, met: null, detail: why });
        continue;
      }
      out.push({ what, met: ratios.some(([, r]) => r >= goal), detail: ratios.map(([s, r]) => `${s} ${fmtRatio(r)}`).join(', ') });
    }
  }
  const sparse = sparseRows(report).filter((s) => s.density <= TARGETS.sparseDensity && s.engine !== undefined);
  if (sparse.length > 0) {
    out.push({
      what: `LeNet round at ≤ ${pct(TARGETS.sparseDensity)} weights ≥ ${TARGETS.sparse}× faster than the dense round`,
      met: sparse.every((s) => s.engine! / s.dense >= TARGETS.sparse),
      detail: sparse.map((s) => `${s.system} ${fmtRatio(s.engine! / s.dense)} at ${pct(s.density)}`).join(', '),
    });
  }
  return out;
}

function table(head: string[], rows: string[][], markdown: boolean, right: boolean[]): string {
  if (markdown) return [head, right.map((r) => (r ? '---:' : '---')), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** ", simd MLP engine" etc.: which loop a TF.js measurement took, and unusual inputs. */
function loopLabel(m: Measurement): string {
  const parts: string[] = [];
  if (m.path === 'mlp-simd') parts.push('simd MLP engine');
  else if (m.path === 'mlp-csr') parts.push('csr MLP engine');
  else if (m.path === 'tfjs' && (m.tfjsLoop || m.model === 'lenet-300-100')) parts.push('TF.js kernels');
  if (m.zeroFraction === 0) parts.push('inputs without zeros');
  return parts.map((p) => `, ${p}`).join('');
}

const mark = (met: boolean | null) => (met === null ? 'not measured' : met ? 'met' : 'not met');

/** The throughput, sparse and both-cores tables with the targets, as plain text or markdown. */
export function formatReport(report: BenchReport, markdown: boolean): string {
  const out: string[] = [];
  const h = (s: string) => out.push(markdown ? `\n## ${s}\n` : `\n${s}\n${'='.repeat(s.length)}`);
  const para = (s: string) => out.push(markdown ? `\n${s}` : s);

  h(`Training throughput (examples/s, batch ${report.settings.batchSize})`);
  const order = Object.keys(BENCH_MODELS);
  const dense = report.measurements
    .filter((m) => m.density === 1)
    .sort((a, b) => order.indexOf(a.model) - order.indexOf(b.model));
  const rows = dense.map((m) => {
    const b = baseline(report, m.model);
    const ratio = m.examplesPerSecond !== undefined && b ? m.examplesPerSecond / b.examplesPerSecond! : undefined;
    const goal = isDefault(m) ? targetFor(m.system, m.model) : undefined;
    return [
      m.model,
      m.label + loopLabel(m) + (b === m ? ' (baseline)' : ''),
      m.examplesPerSecond !== undefined ? fmtEps(m.examplesPerSecond) : (m.note ?? '-'),
      m.medianStepMs !== undefined ? m.medianStepMs.toFixed(1) : '-',
      ratio !== undefined ? fmtRatio(ratio) : '-',
      goal === undefined ? '' : `≥ ${goal}×: ${ratio === undefined ? 'not measured' : mark(ratio >= goal)}`,
    ];
  });
  out.push(table(['model', 'backend', 'examples/s', 'median step ms', 'vs PyTorch', 'target'], rows, markdown, [false, false, true, true, true, false]));

  const sparse = sparseRows(report);
  if (sparse.length > 0) {
    h('Sparse rounds: LeNet-300-100 with a magnitude mask vs the dense round');
    const r = (x: number | undefined, d: number) => (x === undefined ? '-' : `${fmtEps(x)} (${fmtRatio(x / d)})`);
    out.push(
      table(
        ['backend', 'weights', 'dense ex/s', 'TF.js kernels, masked', 'trainModel default', 'loop taken', `target ≥ ${TARGETS.sparse}×`],
        sparse.map((s) => [
          s.label,
          pct(s.density),
          fmtEps(s.dense),
          r(s.masked, s.dense),
          r(s.engine, s.dense),
          s.enginePath ?? '-',
          s.density > TARGETS.sparseDensity || s.engine === undefined ? '' : mark(s.engine / s.dense >= TARGETS.sparse),
        ]),
        markdown,
        [false, true, true, true, true, false, false],
      ),
    );
    para(
      '"TF.js kernels, masked" forces the TF.js loop (TICKETSMITH_MLP=tfjs): pruned weights are multiplied by zero, so it does a dense round\'s work. ' +
        '"trainModel default" is what a pruning round runs: the simd MLP engine, or below ' +
        `${pct(CSR_DENSITY_THRESHOLD)} of weights the csr engine, which trains only the surviving weights (src/engine/training/mlp*.ts).`,
    );
  }

  const p = report.parallel;
  if (p) {
    h(`Both cores: a round's ticket + ${p.trials.length - 1} controls`);
    out.push(
      table(
        ['model', 'backend', 'trials', 'steps each', 'sequential ex/s', `WorkerPool(${p.parallelism}) ex/s`, 'speed-up', 'ideal'],
        [[p.model, p.backend, p.trials.join(', '), String(p.stepsPerTrial), fmtEps(p.sequential.examplesPerSecond), fmtEps(p.pool.examplesPerSecond), fmtRatio(p.speedup), fmtRatio(p.idealSpeedup)]],
        markdown,
        [false, false, false, true, true, true, true, true],
      ),
    );
    para(
      `Examples/s of all ${p.trials.length} trials together per wall-clock second (sequential and pool timings alternate ${p.repeats}×); ` +
        `"ideal" is ${p.trials.length} equal trials on ${p.parallelism} workers: ${p.trials.length} / ceil(${p.trials.length}/${p.parallelism}). ` +
        'On a loaded machine more threads also win a larger share of contended cores, so the speed-up can land on either side of the ideal.',
    );
  }

  h('Targets (issue #3)');
  for (const t of targets(report)) out.push(`- ${t.what}: ${markdown ? `**${mark(t.met)}**` : mark(t.met)}; ${t.detail}`);
  if (report.unavailable.length > 0 || report.torchMissing) {
    h('Not measured');
    for (const u of report.unavailable) out.push(`- ${u.system}: ${u.message}`);
    if (report.torchMissing) out.push(`- PyTorch: ${report.torchMissing.replace(/\s*\n\s*/g, ' ')}`);
  }
  return out.join('\n');
}

export function markdownReport(report: BenchReport): string {
  const m = report.machine;
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
  const s = report.settings;
  return `# Training throughput: Ticketsmith (TF.js) vs PyTorch

Generated by \`${s.command}\` (scripts/bench-train.ts, the same as \`ticketsmith bench\`) on ${report.date.slice(0, 16).replace('T', ' ')} UTC, in ${report.wallSeconds.toFixed(0)} s.

- Machine: ${m.cores} cores (\`nproc\`), ${m.cpu}; Node ${m.node}; TF.js ${m.tfjs}; PyTorch ${m.torch ?? 'not installed'}.
- Load average (1/5/15 min) ${load(m.loadStart)} at the start, ${load(m.loadEnd)} at the end: other processes shared the machine, so absolute numbers are noisy; compare within this run.
- Ours: \`trainModel\` (src/engine/training/train.ts) with a mask, as a pruning round runs it (for LeNet on wasm, cpu and tensorflow, the simd MLP engine; the "TF.js kernels" rows turn it off); Adam; batch ${s.batchSize}; synthetic data uploaded once (LeNet's images are 81% zeros like MNIST's, Conv-2's have none like CIFAR's); warm-up steps excluded; examples/s = batch × timed steps / their time, over about ${s.seconds} s per LeNet and ${2 * s.seconds} s per Conv-2 configuration. Every backend runs in its own process.
- PyTorch: scripts/bench/torch_train.py: the same models, batch, Adam, index-gathered batches and mask multiplications, with \`torch.set_num_threads(2)\` and with 1 thread${s.quick ? '' : ', each measured before and after the TF.js backends'}; the baseline is the faster setting, since on a loaded machine PyTorch's thread pool can lose most of its speed.
${formatReport(report, true)}

## Reading this

- The \`wasm\` rows run one XNNPACK thread, the 2-thread rows every core (\`TICKETSMITH_WASM_THREADS\`). trainModel's default is every core in a process's main thread (a run without controls) and one thread in each trial-pool worker, where a round's ticket and controls train side by side (the WorkerPool table); the PyTorch baseline uses both cores inside each step.
- On the wasm, cpu and tensorflow (native CPU) backends trainModel trains plain MLPs (LeNet) with its own engines instead of the backend's kernels (src/engine/training/mlp.ts): the simd engine runs each layer's forward pass, gradients and optimiser update as one call into WebAssembly SIMD kernels (src/runtime/simd/mlp.c), so its speed does not depend on the TF.js backend: the LeNet targets on those rows are met or missed by this engine, and the "TF.js kernels" rows show the backend's own. It skips zero inputs and ReLU-silenced units, which PyTorch computes: the "inputs without zeros" row shows LeNet on images with no zero pixels, where only the hidden layers' zeros are skipped.
- Masks on TF.js kernels save no work; the MLP engines make late LeNet rounds cheaper. Conv nets have no such path yet: a Conv-2 round at any sparsity costs what the dense round costs.
- \`tfjs-node\` (native TensorFlow) is optional: \`npm run native-backend\` builds it from the \`tensorflow-cpu\` wheel's libraries; its rows appear only where it is installed.
`;
}

// ------------------------------------------------------------------ entry

export async function benchCommand(argv: string[]): Promise<number> {
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
    json: 'boolean',
    // Worker-side flags (children only).
    worker: 'string',
    backend: 'string',
    'wasm-threads': 'string',
    plan: 'string',
    'every-step': 'boolean',
    model: 'string',
    steps: 'string',
    parallelism: 'string',
    repeats: 'string',
  });
  if (positional.length > 0) throw new UsageError(`unexpected argument '${positional[0]}' (see --help)`);
  if (typeof options.worker === 'string') return worker(options.worker, options);

  const quick = options.quick === true;
  const list = (key: string, known: string[]) => {
    const v = options[key];
    if (typeof v !== 'string') return known;
    const picked = v.split(',').map((s) => s.trim()).filter(Boolean);
    for (const p of picked) if (!known.includes(p)) throw new UsageError(`--${key}: unknown '${p}'; expected some of ${known.join(', ')}`);
    return picked;
  };
  const densities = typeof options.densities === 'string' ? options.densities.split(',').map(Number) : [TARGETS.sparseDensity];
  if (densities.some((d) => !(d > 0 && d < 1))) throw new UsageError(`--densities: each must be a fraction in (0, 1), got '${String(options.densities)}'`);
  const report = await runBenchmark({
    quick,
    backends: list('backends', variants(os.availableParallelism()).map((v) => v.id)),
    models: list('models', Object.keys(BENCH_MODELS)),
    densities,
    seconds: num(options, 'seconds', quick ? 1.5 : 12),
    batchSize: Math.round(num(options, 'batch', 60)),
    python: options['no-torch'] === true ? null : typeof options.python === 'string' ? options.python : 'python3',
    bothCores: options['no-pool'] !== true,
  });
  const viaScript = (process.argv[1] ?? '').endsWith('bench-train.ts');
  report.settings.command = viaScript ? ['npm run bench:train', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' ') : ['ticketsmith bench', ...argv].join(' ');
  process.stdout.write(options.json === true ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report, false)}\n`);
  if (options.write === true) {
    const out = typeof options.out === 'string' ? resolve(options.out) : DEFAULT_OUT;
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, markdownReport(report));
    log(`wrote ${out}`);
  }
  return report.measurements.some((m) => m.examplesPerSecond !== undefined) ? 0 : 1;
}
