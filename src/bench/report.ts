// The benchmark's results and how they read: the measurements (merged over
// slices), the PyTorch baseline of each model, the targets of issue #3 met or
// not, and the throughput, sparse and both-cores tables as plain text or
// markdown (markdown.ts wraps them into the results page). Pure: no process,
// no file, no clock.
import { ALL_BENCH_MODELS, BENCH_MODELS, formatStepProfiles, type LoopProfile, type ParallelResult, type RssResult } from '../engine/training/bench.js';
import { CSR_DENSITY_THRESHOLD } from '../engine/training/mlp.js';
import { pct } from '../engine/report/format.js';

/** Issue #3's targets. */
export const TARGETS = {
  wasm: { 'lenet-300-100': 0.5, 'conv-2': 0.3 } as Readonly<Record<string, number>>,
  native: 1.0,
  /** A LeNet round at <= sparseDensity of the weights vs the dense round. */
  sparse: 2.0,
  sparseDensity: 0.05,
};

/** Issue 12's targets: ratios to PyTorch on its most threads, the sparse Conv-2 round, and memory. */
export const TARGETS_12 = {
  conv2Wasm: 0.6,
  conv2WasmStretch: 1.0,
  /** ResNet-20 and Conv-6 on WASM. */
  largeWasm: 0.5,
  largeModels: ['resnet-20', 'conv-6'] as readonly string[],
  conv2Native: 1.0,
  lenetNoZerosWasm: 1.0,
  convSparse: 1.5,
  convSparseDensity: 0.1,
  rssBytes: 2 * 2 ** 30,
};

export interface Measurement {
  model: string;
  /** `pytorch-<n>t` or a Variant id. */
  system: string;
  label: string;
  /** Nominal fraction of prunable weights kept. */
  density: number;
  /** true where the MLP engines were turned off on purpose (TF.js kernels). */
  tfjsLoop: boolean;
  /** true where the conv engine was forced on a backend whose default for conv nets is TF.js kernels. */
  cnnLoop?: boolean;
  /** Fraction of zero input pixels, where not the model's usual one (LeNet with dense inputs). */
  zeroFraction?: number;
  /** Loop trainModel took ('tfjs', 'mlp-simd', 'mlp-csr' or 'cnn-simd'); absent for PyTorch. */
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
  settings: { quick: boolean; batchSize: number; seconds: number; densities: number[]; convDensities?: number[]; command: string };
  measurements: Measurement[];
  parallel?: ParallelResult & { backend: string };
  unavailable: { system: string; message: string }[];
  torchMissing?: string;
  wallSeconds: number;
  /** Parameter counts (BN statistics included) of our models and of PyTorch's built to match. */
  params?: Record<string, { ours: number; torch?: number }>;
  /** Peak RSS of a Conv-2 IMP job with controls. */
  rss?: RssResult & { backend: string };
  /** The same job under glibc's default arenas (MALLOC_ARENA_MAX unset), where `rss` ran with the launchers' setting. */
  rssGlibcDefault?: RssResult & { backend: string };
  /** Where a Conv-2 step's time goes, per loop. */
  profiles?: LoopProfile[];
}

/** A measurement of what trainModel does by default, on the model's usual inputs. */
export const isDefault = (m: Measurement) => !m.tfjsLoop && m.cnnLoop !== true && m.zeroFraction === undefined;

/** The same configuration measured in several slices, as one throughput over all of them. */
export function mergeMeasurements(ms: Measurement[]): Measurement[] {
  const out: Measurement[] = [];
  for (const m of ms) {
    const same = out.find(
      (x) => x.system === m.system && x.model === m.model && x.density === m.density && x.tfjsLoop === m.tfjsLoop && x.cnnLoop === m.cnnLoop && x.zeroFraction === m.zeroFraction,
    );
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


const DENSITY = { digits: 1, trim: true };
/** A density as the bench reports write it (one decimal, trailing zeros dropped). */
export const densityPct = (x: number) => pct(x, DENSITY);
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
  if (system === 'tensorflow' || system === 'tensorflow-gpu') return Object.hasOwn(BENCH_MODELS, model) ? TARGETS.native : undefined;
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

export function sparseRows(report: BenchReport, model = 'lenet-300-100'): SparseRow[] {
  const rows: SparseRow[] = [];
  const ms = report.measurements;
  const densities = model === 'lenet-300-100' ? report.settings.densities : (report.settings.convDensities ?? []);
  for (const d of ms) {
    if (d.model !== model || d.density !== 1 || !isDefault(d) || d.examplesPerSecond === undefined || d.system.startsWith('pytorch')) continue;
    for (const density of densities) {
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
      what: `LeNet round at ≤ ${densityPct(TARGETS.sparseDensity)} weights ≥ ${TARGETS.sparse}× faster than the dense round`,
      met: sparse.every((s) => s.engine! / s.dense >= TARGETS.sparse),
      detail: sparse.map((s) => `${s.system} ${fmtRatio(s.engine! / s.dense)} at ${densityPct(s.density)}`).join(', '),
    });
  }
  return out;
}

/** The WASM variant trainModel uses by default (every core in the main thread) where it was measured, else single-threaded. */
function defaultWasm(report: BenchReport): string {
  return report.measurements.some((m) => m.system === 'wasm-threads' && m.examplesPerSecond !== undefined) ? 'wasm-threads' : 'wasm';
}

/** PyTorch on its most threads (issue 12 compares with PyTorch on 2 threads, this machine's every core). */
export function torchMostThreads(report: BenchReport, model: string): Measurement | undefined {
  const threads = (m: Measurement) => Number(/^pytorch-(\d+)t$/.exec(m.system)?.[1] ?? 0);
  return report.measurements
    .filter((m) => m.model === model && threads(m) > 0 && m.examplesPerSecond !== undefined)
    .sort((a, b) => threads(b) - threads(a))[0];
}

/**
 * Every target of issue 12, judged on this run's numbers: WASM is the default
 * backend's (every core), the ratios are to PyTorch on its most threads.
 */
export function targets12(report: BenchReport): Target[] {
  const T = TARGETS_12;
  const out: Target[] = [];
  const wasm = defaultWasm(report);
  const find = (system: string, model: string, pick: (m: Measurement) => boolean = isDefault, density = 1) =>
    report.measurements.find((m) => m.system === system && m.model === model && m.density === density && pick(m) && m.examplesPerSecond !== undefined);
  const vsTorch = (what: string, system: string, model: string, goal: number, pick?: (m: Measurement) => boolean): Target => {
    const torch = torchMostThreads(report, model);
    const m = find(system, model, pick);
    if (!torch) return { what, met: null, detail: 'no PyTorch measurement' };
    if (!m) return { what, met: null, detail: system.startsWith('tensorflow') ? 'tfjs-node is not installed here, see `npm run native-backend`' : `no ${system} measurement of ${model}` };
    const r = m.examplesPerSecond! / torch.examplesPerSecond!;
    // Native TF trains conv nets on either loop: name the one trainModel took (the row judged).
    const loop = system.startsWith('tensorflow') && m.path !== undefined ? `, loop ${m.path}` : '';
    return { what, met: r >= goal, detail: `${system} ${fmtRatio(r)} (${fmtEps(m.examplesPerSecond!)} vs ${fmtEps(torch.examplesPerSecond!)} ex/s, ${torch.system}${loop})` };
  };
  const conv2 = vsTorch(`Conv-2, WASM (default backend) ≥ ${T.conv2Wasm}× PyTorch (stretch ${T.conv2WasmStretch}×)`, wasm, 'conv-2', T.conv2Wasm);
  if (conv2.met) conv2.detail += find(wasm, 'conv-2')!.examplesPerSecond! / torchMostThreads(report, 'conv-2')!.examplesPerSecond! >= T.conv2WasmStretch ? '; stretch met' : '; stretch not met';
  out.push(conv2);
  for (const model of T.largeModels) out.push(vsTorch(`${model}, WASM ≥ ${T.largeWasm}× PyTorch`, wasm, model, T.largeWasm));
  const native = report.measurements.some((m) => m.system === 'tensorflow-gpu' && m.model === 'conv-2' && m.examplesPerSecond !== undefined) ? 'tensorflow-gpu' : 'tensorflow';
  out.push(vsTorch(`Conv-2, native ≥ ${T.conv2Native}× PyTorch`, native, 'conv-2', T.conv2Native));
  out.push(vsTorch(`LeNet-300-100 on inputs without zeros, WASM ≥ ${T.lenetNoZerosWasm}× PyTorch`, wasm, 'lenet-300-100', T.lenetNoZerosWasm, (m) => !m.tfjsLoop && m.zeroFraction === 0));
  const sparseWhat = `Conv-2 round at ≤ ${densityPct(T.convSparseDensity)} weights vs the dense round, WASM ≥ ${T.convSparse}×`;
  const sparse = sparseRows(report, 'conv-2').filter((s) => s.system === wasm && s.density <= T.convSparseDensity && s.engine !== undefined);
  out.push(
    sparse.length === 0
      ? { what: sparseWhat, met: null, detail: 'no masked Conv-2 measurement (--conv-densities)' }
      : { what: sparseWhat, met: sparse.every((s) => s.engine! / s.dense >= T.convSparse), detail: sparse.map((s) => `${s.system} ${fmtRatio(s.engine! / s.dense)} at ${densityPct(s.density)} (loop ${s.enginePath ?? '?'})`).join(', ') },
  );
  const rssWhat = `peak RSS of a Conv-2 IMP job with controls (3 trials in parallel) < ${T.rssBytes / 2 ** 30} GiB`;
  const rss = report.rss;
  out.push(
    rss
      ? {
          what: rssWhat,
          // Met only where it holds both as the launchers run the service and with glibc's default.
          met: Math.max(rss.peakRssBytes, report.rssGlibcDefault?.peakRssBytes ?? 0) < T.rssBytes,
          detail:
            `${fmtGiB(rss.peakRssBytes)} (${rss.rounds} rounds${rss.densities ? ` at ${rss.densities.map((d) => densityPct(d)).join(', ')} of weights` : ''} × ${rss.trials / rss.rounds} trials of ${rss.stepsPerTrial} steps on ${rss.backend}, ${rss.examples.toLocaleString('en-US')} training examples` +
            `${rss.mallocArenaMax ? `, MALLOC_ARENA_MAX=${rss.mallocArenaMax} as the launchers set it` : ''})` +
            `${report.rssGlibcDefault ? `; ${fmtGiB(report.rssGlibcDefault.peakRssBytes)} with glibc's default arenas` : ''}`,
        }
      : { what: rssWhat, met: null, detail: 'not measured (--rss)' },
  );
  return out;
}

export const fmtGiB = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

function table(head: string[], rows: string[][], markdown: boolean, right: boolean[]): string {
  if (markdown) return [head, right.map((r) => (r ? '---:' : '---')), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** ", simd MLP engine" etc.: which loop a TF.js measurement took, and unusual inputs. */
export function loopLabel(m: Measurement): string {
  const parts: string[] = [];
  if (m.path === 'mlp-simd') parts.push('simd MLP engine');
  else if (m.path === 'mlp-csr') parts.push('csr MLP engine');
  else if (m.path === 'cnn-simd') parts.push('conv engine');
  else if (m.path === 'cnn-sparse') parts.push('conv engine, sparse layers');
  else if (m.path === 'tfjs') parts.push('TF.js kernels');
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
  const order = Object.keys(ALL_BENCH_MODELS);
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
          densityPct(s.density),
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
        `${densityPct(CSR_DENSITY_THRESHOLD)} of weights the csr engine, which trains only the surviving weights (src/engine/training/mlp*.ts).`,
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

  const convSparse = sparseRows(report, 'conv-2');
  if (convSparse.length > 0) {
    h('Sparse rounds: Conv-2 with a magnitude mask vs the dense round');
    out.push(
      table(
        ['backend', 'weights', 'dense ex/s', 'masked, trainModel default', 'loop taken', `target ≥ ${TARGETS_12.convSparse}×`],
        convSparse.map((s) => [
          s.label,
          densityPct(s.density),
          fmtEps(s.dense),
          s.engine === undefined ? '-' : `${fmtEps(s.engine)} (${fmtRatio(s.engine / s.dense)})`,
          s.enginePath ?? '-',
          s.density > TARGETS_12.convSparseDensity || s.engine === undefined ? '' : mark(s.engine / s.dense >= TARGETS_12.convSparse),
        ]),
        markdown,
        [false, true, true, true, false, false],
      ),
    );
    para('The masked row is a Conv-2 round as a pruning round trains it (layer-wise magnitude mask); on the TF.js loop pruned weights are multiplied by zero, so it costs a dense round.');
  }

  if (report.params && Object.keys(report.params).length > 0) {
    h('Parameter counts: ours vs the PyTorch models');
    const rowsP = Object.entries(report.params).map(([model, p]) => [
      model,
      p.ours.toLocaleString('en-US'),
      p.torch === undefined ? '-' : p.torch.toLocaleString('en-US'),
      p.torch === undefined ? 'not measured' : p.torch === p.ours ? 'match' : 'DIFFER',
    ]);
    out.push(table(['model', 'ours', 'PyTorch', ''], rowsP, markdown, [false, true, true, false]));
    para('Counts include BatchNorm moving statistics (Keras countParams; PyTorch parameters + running buffers).');
  }

  if (report.rss) {
    const r = report.rss;
    h('Peak memory: a Conv-2 IMP job with controls');
    const arenas = (x: RssResult) => (x.mallocArenaMax ? `glibc MALLOC_ARENA_MAX=${x.mallocArenaMax}` : "glibc's default arenas");
    para(
      `${fmtGiB(r.peakRssBytes)} peak RSS (process.resourceUsage().maxRSS, worker threads included) for ${r.rounds} rounds${r.densities ? ` (${r.densities.map((d) => densityPct(d)).join(', ')} of weights)` : ''} of ticket, reinit and shuffle ` +
        `(${r.stepsPerTrial} steps each) on the trial WorkerPool(${r.parallelism}), backend ${r.backend}, ${r.examples.toLocaleString('en-US')} training and ` +
        `${r.evalExamples.toLocaleString('en-US')} validation / test examples of CIFAR's shape, in ${r.seconds.toFixed(0)} s` +
        `${r.code === 'compiled' ? ', compiled build (dist/, as the service runs)' : r.code === 'tsx' ? ', TypeScript through tsx (every thread also holds its loader, unlike the service)' : ''}, ${arenas(r)}; target < ${fmtGiB(TARGETS_12.rssBytes)}: ${mark(Math.max(r.peakRssBytes, report.rssGlibcDefault?.peakRssBytes ?? 0) < TARGETS_12.rssBytes)}${report.rssGlibcDefault ? ' (with both allocator settings)' : ''}.`,
    );
    const byRound = (x: RssResult) => (x.peakByRound ? x.peakByRound.map((b) => fmtGiB(b)).join(', ') : null);
    if (byRound(r)) para(`The peak after each round: ${byRound(r)}.`);
    const g = report.rssGlibcDefault;
    if (g) para(`The same job at the same time in another process with ${arenas(g)}: ${fmtGiB(g.peakRssBytes)} in ${g.seconds.toFixed(0)} s. bin/ticketsmith, \`npm start\`, \`npm run demo\` and the Dockerfiles set MALLOC_ARENA_MAX (unless it is set already); a service started some other way gets the second figure unless its environment sets it.`);
    if (g && byRound(g)) para(`With ${arenas(g)}, the peak after each round: ${byRound(g)}. The target counts as met only where both processes stay under it.`);
  }

  if (report.profiles && report.profiles.length > 0) {
    const p0 = report.profiles[0]!;
    h(`Where a ${p0.model} step's time goes (batch ${p0.batchSize})`);
    out.push(formatStepProfiles(report.profiles, markdown));
    for (const p of report.profiles) para(`${p.loop}: ${p.method}`);
  }

  h('Targets (issue #3)');
  for (const t of targets(report)) out.push(`- ${t.what}: ${markdown ? `**${mark(t.met)}**` : mark(t.met)}; ${t.detail}`);
  h('Targets (issue 12)');
  out.push(
    table(
      ['figure', 'target', 'this run', 'verdict'],
      targets12(report).map((t) => [t.what.replace(/ [≥<] .*$/, ''), t.what.replace(/^.*? ([≥<] .*)$/, '$1'), t.detail, mark(t.met)]),
      markdown,
      [false, false, false, false],
    ),
  );
  if (report.unavailable.length > 0 || report.torchMissing) {
    h('Not measured');
    for (const u of report.unavailable) out.push(`- ${u.system}: ${u.message}`);
    if (report.torchMissing) out.push(`- PyTorch: ${report.torchMissing.replace(/\s*\n\s*/g, ' ')}`);
  }
  return out.join('\n');
}
