// The training benchmark (issue #3) as planned and run: examples/s of our own
// loop for LeNet-300-100 and Conv-2 on every TF.js backend this machine has,
// each in a child process of its own (worker.ts), next to PyTorch measured in
// the same run (pytorch.ts), plus sparse LeNet rounds vs the dense one and the
// speed-up of training a round's trials on every core. A shared machine makes
// absolute numbers noisy, so comparisons are made within one run, with
// alternating slices where it helps. Reading the results is report.ts's job;
// the CLI's `bench` verb only parses flags and calls runBenchmark.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { defaultWasmThreads, type BackendInfo, type BackendName } from '../runtime/backend.js';
import { benchModel, CONV_BENCH_MODELS } from '../engine/training/bench.js';
import { mlpEnginesByDefault } from '../engine/training/mlp.js';
import { cnnEngineByDefault } from '../engine/training/cnn/index.js';
import { createModel } from '../engine/models/registry.js';
import { lastLine, lineOf, runCompiledWorkerChild, runWorkerChild } from './child.js';
import type { PlanItem, WorkerLine } from './protocol.js';
import { measureTorch } from './pytorch.js';
import { fmtEps, isDefault, loopLabel, mergeMeasurements, densityPct, type BenchReport, type Measurement } from './report.js';

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
  /** How the run was started, as the report names it (e.g. `ticketsmith bench --quick`). */
  command?: string;
  /** Conv-2 weight fractions < 1 compared with its dense round on the WASM backends (issue 12; default none). */
  convDensities?: number[];
  /** Measure the peak RSS of a Conv-2 IMP job with controls (default false). */
  rss?: boolean;
  /** Profile where a Conv-2 step's time goes, per layer and pass, for every loop (default false). */
  profile?: boolean;
  /** The weight fraction the profile trains at (default 1: the dense round). */
  profileDensity?: number;
}

/** One measuring child of a backend: its plan, its time limit, and whether hitting the limit is expected (a bound, not a failure). */
export interface ChildPlan {
  plan: PlanItem[];
  limit: number;
  capped: boolean;
}

const log = (s: string) => process.stderr.write(`${s}\n`);

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

const isNative = (b: BackendName) => b === 'tensorflow' || b === 'tensorflow-gpu';

/**
 * The thread setting a child of `v` starts its backend with. On WASM it is
 * the variant's XNNPACK threads. Native TF sizes its own thread pools, and
 * the setting there is only the conv engine's threads (computeThreads), so a
 * native child gets what a run without TICKETSMITH_WASM_THREADS gets in its
 * main thread: every core, up to defaultWasmThreads' cap.
 */
export function jobThreads(v: Variant): number {
  return isNative(v.backend) ? defaultWasmThreads(true) : v.wasmThreads;
}

/** Native packages are optional: when one does not resolve, say so without paying for a child process. */
function missingNative(v: Variant): string | undefined {
  if (!isNative(v.backend)) return undefined;
  const pkg = v.backend === 'tensorflow' ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-node-gpu';
  try {
    import.meta.resolve(pkg);
    return undefined;
  } catch {
    return v.backend === 'tensorflow'
      ? `${pkg} is not installed; build it with \`npm run native-backend\` (scripts/native-backend.sh)`
      : `${pkg} is not installed; build it with \`npm run native-backend -- --gpu\` (CUDA 12, cuDNN 9; scripts/native-backend.sh)`;
  }
}

/**
 * Seconds measured per configuration: Conv-2's steps are long, so it gets
 * twice LeNet's; issue 12's larger nets (steps of seconds) get half of
 * LeNet's in one slice, which keeps a full run near 15 minutes.
 */
const secondsFor = (o: BenchOptions, model: string) => (model === 'conv-2' ? 2 * o.seconds : Object.hasOwn(CONV_BENCH_MODELS, model) ? o.seconds / 2 : o.seconds);
const slicesFor = (o: BenchOptions, model: string) => (o.quick || Object.hasOwn(CONV_BENCH_MODELS, model) ? 1 : 2);

/**
 * Warm-up steps before timing. They cover XNNPACK set-up and V8's JIT; the
 * pure-JS backend's slow steps need few, and a quick run trades some
 * steadiness for time.
 */
function warmupFor(o: BenchOptions, model: string, backend?: BackendName): number {
  const full = benchModel(model).warmupSteps;
  if (backend === 'cpu') return Math.min(2, full);
  return o.quick ? Math.min(model === 'conv-2' ? 1 : 3, full) : full;
}

/**
 * The children that measure one backend. LeNet's dense and sparse
 * configurations alternate in slices so their ratio sees the same load. The
 * pure-JS backend's Conv-2 gets its own capped child (its conv gradients take
 * minutes per step) and reports the bound the cap proves instead of holding
 * up the run. On native TF the conv nets also get a child measuring the loop
 * trainModel does not take there by default (TF.js kernels or the conv engine).
 */
export function planBackend(o: BenchOptions, v: Variant): ChildPlan[] {
  const plan: PlanItem[] = [];
  for (const model of o.models) {
    if (v.backend === 'cpu' && model !== 'lenet-300-100') continue;
    const slices = slicesFor(o, model);
    const configs: Array<Pick<PlanItem, 'density' | 'tfjsLoop' | 'zeroFraction'>> = [{ density: 1 }];
    if (model === 'lenet-300-100') {
      // Where the MLP engine trains LeNet: the TF.js kernels beside it, and
      // inputs without zeros (the engine skips zero pixels, PyTorch does not).
      if (mlpEnginesByDefault(v.backend)) configs.push({ density: 1, tfjsLoop: true }, { density: 1, zeroFraction: 0 });
      for (const density of o.densities) configs.push({ density }, { density, tfjsLoop: true });
    }
    // Issue 12's sparse conv round: a masked Conv-2 as trainModel trains it, alternating with the dense one.
    if (model === 'conv-2' && v.backend === 'wasm') for (const density of o.convDensities ?? []) configs.push({ density });
    for (let i = 0; i < slices; i++) {
      for (const c of configs) plan.push({ model, ...c, seconds: secondsFor(o, model) / slices, warmup: warmupFor(o, model, v.backend) });
    }
  }
  const children: ChildPlan[] = [];
  const child = (items: PlanItem[]) => ({ plan: items, limit: 150 + items.reduce((t, p) => t + 4 * p.seconds, 0), capped: false });
  if (plan.length > 0) children.push(child(plan));
  if (isNative(v.backend)) {
    // Conv nets on native TF can take either loop (issue 12): the one trainModel does not take by default
    // is measured too, in a child of its own, so each loop runs in a process like a run that takes it.
    const other: Pick<PlanItem, 'tfjsLoop' | 'cnnLoop'> = cnnEngineByDefault(v.backend) ? { tfjsLoop: true } : { cnnLoop: true };
    const convs = o.models.filter((m) => m !== 'lenet-300-100');
    const items = convs.map((model) => ({ model, density: 1, ...other, seconds: secondsFor(o, model) / slicesFor(o, model), warmup: warmupFor(o, model, v.backend) }));
    if (items.length > 0) children.push(child(items));
  }
  if (v.backend === 'cpu') {
    // Only Conv-2 proves its bound here: the larger conv nets' steps are slower still on pure JS.
    for (const model of o.models.filter((m) => m === 'conv-2')) {
      children.push({ plan: [{ model, density: 1, seconds: secondsFor(o, model), warmup: 1, maxSteps: 2 }], limit: o.quick ? 8 : 30, capped: true });
    }
  }
  return children;
}

/** A run in progress: the report being filled and the measurements so far (slices not yet merged). */
class BenchRun {
  readonly cores = os.availableParallelism();
  readonly raw: Measurement[] = [];
  readonly report: BenchReport;
  /** null once PyTorch turned out missing: the rest of the run skips it. */
  python: string | null;

  constructor(readonly o: BenchOptions) {
    this.python = o.python;
    this.report = {
      date: new Date().toISOString(),
      machine: { cores: this.cores, cpu: cpuModel(), node: process.version, tfjs: tf.version_core, loadStart: os.loadavg(), loadEnd: [] },
      settings: { quick: o.quick, batchSize: o.batchSize, seconds: o.seconds, densities: o.densities, convDensities: o.convDensities ?? [], command: o.command ?? '' },
      measurements: [],
      unavailable: [],
      wallSeconds: 0,
    };
  }

  add(m: Measurement): void {
    this.raw.push(m);
    const what = m.examplesPerSecond !== undefined ? `${fmtEps(m.examplesPerSecond)} ex/s (median step ${m.medianStepMs?.toFixed(1)} ms, ${m.steps} steps)` : m.note;
    log(`  ${m.model} @ ${densityPct(m.density)} on ${m.label}${loopLabel(m)}: ${what}`);
  }
}

/**
 * PyTorch at every core (torch.set_num_threads, as the machine suggests) and
 * at 1: under load from other processes its thread pool can collapse, and the
 * baseline should be PyTorch at its best here.
 */
async function torchPass(run: BenchRun): Promise<void> {
  const o = run.o;
  for (const model of o.models) {
    for (const threads of [...new Set([run.cores, 1])]) {
      if (!run.python) return;
      const seconds = o.quick || Object.hasOwn(CONV_BENCH_MODELS, model) ? secondsFor(o, model) : secondsFor(o, model) / 2;
      const r = await measureTorch({ python: run.python, model, batchSize: o.batchSize, warmupSteps: warmupFor(o, model), seconds, threads });
      const system = `pytorch-${threads}t`;
      const threadsLabel = `${threads} thread${threads > 1 ? 's' : ''}`;
      if (r.kind === 'missing') {
        run.report.torchMissing = r.message;
        log(`PyTorch baseline skipped: ${r.message}`);
        run.python = null;
        return;
      }
      if (r.kind === 'failed') {
        run.add({ model, system, label: `PyTorch, ${threadsLabel}`, density: 1, tfjsLoop: false, note: `failed: ${r.message}` });
        continue;
      }
      const t = r.result;
      run.report.machine.torch = t.torch;
      if (t.params !== undefined && run.report.params?.[model]) run.report.params[model]!.torch = t.params;
      run.add({ model, system, label: `PyTorch ${t.torch}, ${threadsLabel}`, density: 1, tfjsLoop: false, examplesPerSecond: t.examplesPerSecond, medianStepMs: t.medianStepMs, steps: t.steps });
    }
  }
}

/** Every child of one backend; a backend that turns out unavailable is noted and skipped. */
async function measureBackend(run: BenchRun, v: Variant): Promise<void> {
  const missing = missingNative(v);
  if (missing) {
    run.report.unavailable.push({ system: v.id, message: missing });
    log(`${v.id}: not available (${missing})`);
    return;
  }
  const bs = run.o.batchSize;
  log(`${v.id}:`);
  for (const child of planBackend(run.o, v)) {
    const r = await runWorkerChild({ kind: 'train', backend: v.backend, wasmThreads: jobThreads(v), batchSize: bs, plan: child.plan, everyStep: child.capped }, child.limit);
    const unavailable = lineOf(r, 'unavailable');
    if (unavailable) {
      run.report.unavailable.push({ system: v.id, message: unavailable.message });
      log(`  not available: ${unavailable.message}`);
      return;
    }
    const label = variantLabel(v, lineOf(r, 'ready')?.backend);
    const results = r.lines.filter((l): l is Extract<WorkerLine, { type: 'result' }> => l.type === 'result');
    results.forEach((l, i) => {
      const res = l.result;
      run.add({
        model: res.model,
        system: v.id,
        label,
        density: child.plan[i]!.density,
        tfjsLoop: l.tfjsLoop,
        ...(l.cnnLoop === true ? { cnnLoop: true } : {}),
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
      run.add({ model: next.model, system: v.id, label, density: next.density, tfjsLoop: next.tfjsLoop === true, ...(next.cnnLoop === true ? { cnnLoop: true } : {}), zeroFraction: next.zeroFraction, note });
    }
  }
}

/** A round's ticket + 2 controls, sequentially vs on a WorkerPool, on the fastest single-threaded backend that answered for LeNet. */
async function measureBothCores(run: BenchRun, chosen: Variant[]): Promise<void> {
  const { o, cores } = run;
  const bs = o.batchSize;
  const lenetDense = (id: string) =>
    mergeMeasurements(run.raw).find((m) => m.model === 'lenet-300-100' && m.system === id && m.density === 1 && isDefault(m) && m.examplesPerSecond !== undefined);
  const poolVariant = chosen.filter((v) => v.wasmThreads === 1).find((v) => lenetDense(v.id));
  if (!poolVariant || cores <= 1 || o.bothCores === false) return;
  const eps = lenetDense(poolVariant.id)!.examplesPerSecond!;
  const trialSeconds = o.quick ? 1 : o.seconds / 4;
  const steps = Math.max(20, Math.min(5000, Math.round((trialSeconds * eps) / bs)));
  const repeats = o.quick ? 1 : 2;
  log(`both cores: ticket + 2 controls on ${poolVariant.id}, LeNet-300-100 dense, ${steps} steps each, sequential vs WorkerPool(${cores}), ${repeats}x:`);
  const r = await runWorkerChild(
    { kind: 'parallel', backend: poolVariant.backend, wasmThreads: 1, batchSize: bs, model: 'lenet-300-100', steps, parallelism: cores, repeats },
    180 + (10 * repeats * steps * bs) / eps,
    // Pool threads pick WASM threads from the environment; one each, so the comparison is cores vs one core.
    { ...process.env, TICKETSMITH_WASM_THREADS: '1' },
  );
  const p = lineOf(r, 'parallel');
  if (p) {
    run.report.parallel = { ...p.result, backend: poolVariant.id };
    log(`  sequential ${fmtEps(p.result.sequential.examplesPerSecond)} ex/s, WorkerPool ${fmtEps(p.result.pool.examplesPerSecond)} ex/s: ${p.result.speedup.toFixed(2)}x`);
  } else log(`  failed: ${lineOf(r, 'error')?.message ?? lastLine(r)}`);
}

/**
 * glibc's MALLOC_ARENA_MAX that bin/ticketsmith, `npm start`, `npm run demo`
 * and the Dockerfiles launch the service with (unless the operator sets
 * another). glibc's default gives each thread that allocates its own arena,
 * up to 8 a core, and a trial worker's freed message and weight buffers stay
 * in its arena: two arenas keep the peak of a job with controls lower.
 */
export const LAUNCH_MALLOC_ARENA_MAX = '2';

/** Fractions of weights the RSS job's rounds keep: IMP's first three rounds at its default rate, then a late sparse one. */
export const RSS_DENSITIES = [1, 0.8, 0.64, 0.1];

/**
 * Peak RSS of a Conv-2 IMP job with controls (issue 12): a couple of short
 * rounds of ticket, reinit and shuffle on a WorkerPool of 3, in a child of its
 * own on single-threaded WASM (each pool worker's backend, as in a run), on
 * CIFAR-10-sized synthetic data. The child runs the compiled build, as the
 * service does: under tsx every thread would also hold tsx's loader and its
 * transformed modules (about 90 MB a pool worker), which no run pays.
 */
async function measureRss(run: BenchRun): Promise<void> {
  const o = run.o;
  // IMP's first rounds (all weights, then 80% and 64%: dense layers, the
  // peak still creeping up from round to round) and a late round at 10%, where
  // the sparse layers' survivor lists and buffers join the dense ones.
  const densities = o.quick ? [1, 0.1] : RSS_DENSITIES;
  const rounds = densities.length;
  const steps = 2;
  log(`peak RSS: conv-2 IMP with controls, ${rounds} rounds (${densities.map((d) => `${d * 100}%`).join(', ')} of weights) of ${steps} steps, WorkerPool(3) on wasm, with the launchers' MALLOC_ARENA_MAX=${LAUNCH_MALLOC_ARENA_MAX} and with glibc's default, side by side:`);
  const job = { kind: 'rss', backend: 'wasm', wasmThreads: 1, batchSize: o.batchSize, model: 'conv-2', rounds, densities, steps, parallelism: 3 } as const;
  const { MALLOC_ARENA_MAX: _, ...glibcDefault } = process.env;
  const [launched, plain] = await Promise.all([
    runCompiledWorkerChild(job, 1800, { ...glibcDefault, TICKETSMITH_WASM_THREADS: '1', MALLOC_ARENA_MAX: LAUNCH_MALLOC_ARENA_MAX }),
    runCompiledWorkerChild(job, 1800, { ...glibcDefault, TICKETSMITH_WASM_THREADS: '1' }),
  ]);
  for (const [r, key] of [[launched, 'rss'], [plain, 'rssGlibcDefault']] as const) {
    const line = lineOf(r, 'rss');
    if (line) {
      run.report[key] = { ...line.result, backend: 'wasm' };
      log(`  MALLOC_ARENA_MAX=${line.result.mallocArenaMax ?? '(unset)'}: peak RSS ${(line.result.peakRssBytes / 2 ** 30).toFixed(2)} GiB (${line.result.trials} trials in ${line.result.seconds.toFixed(0)} s)`);
    } else log(`  failed: ${lineOf(r, 'error')?.message ?? lastLine(r)}`);
  }
}

/** Where a Conv-2 step's time goes, per layer and pass, for every loop that profiles itself, on the default backend (WASM on every core). */
async function measureProfile(run: BenchRun): Promise<void> {
  const o = run.o;
  const repeats = o.quick ? 2 : 5;
  const density = o.profileDensity ?? 1;
  log(`step profile: conv-2 on wasm, ${run.cores} threads, ${density < 1 ? `${density} of weights, ` : ''}${repeats} runs per part:`);
  const r = await runWorkerChild({ kind: 'profile', backend: 'wasm', wasmThreads: run.cores, batchSize: o.batchSize, model: 'conv-2', repeats, density }, 900);
  const profiles = r.lines.flatMap((l) => (l.type === 'profile' ? [l.result] : []));
  if (profiles.length > 0) run.report.profiles = profiles;
  else log(`  failed: ${lineOf(r, 'error')?.message ?? lastLine(r)}`);
}

/**
 * Our models' parameter counts (BN statistics included), for the PyTorch
 * models to be checked against. Built on the cpu backend: the planner
 * measures nothing itself, so no other backend is initialised here.
 */
async function ourParams(models: string[]): Promise<Record<string, { ours: number }>> {
  if (!(await tf.setBackend('cpu'))) throw new Error("TF.js's cpu backend did not initialise");
  const out: Record<string, { ours: number }> = {};
  for (const name of models) {
    const spec = benchModel(name);
    const model = createModel(name, { inputShape: spec.inputShape, numClasses: spec.numClasses, seed: 1 });
    out[name] = { ours: model.countParams() };
    model.dispose();
  }
  return out;
}

/** Runs every measurement, logging one line per finished one on stderr. */
export async function runBenchmark(o: BenchOptions): Promise<BenchReport> {
  const started = performance.now();
  const run = new BenchRun(o);
  run.report.params = await ourParams(o.models);
  const chosen = variants(run.cores).filter((v) => o.backends.includes(v.id));
  log(`PyTorch (batch ${o.batchSize}):`);
  await torchPass(run);
  for (const v of chosen) await measureBackend(run, v);
  await measureBothCores(run, chosen);
  if (o.rss === true) await measureRss(run);
  if (o.profile === true) await measureProfile(run);
  // A full run measures PyTorch before and after our backends, so drifting load hits both.
  if (!o.quick && run.python) {
    log('PyTorch again (brackets the TF.js measurements):');
    await torchPass(run);
  }
  const report = run.report;
  report.measurements = mergeMeasurements(run.raw);
  report.machine.loadEnd = os.loadavg();
  report.wallSeconds = (performance.now() - started) / 1000;
  return report;
}
