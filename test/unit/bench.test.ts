// The training benchmark: its measurements on real TF.js (cpu backend, a few
// LeNet steps, the MLP engines where they apply), the WorkerPool comparison,
// one real orchestrated run through a worker child process, and the report's
// arithmetic (merged slices, baselines, targets) on numbers checked by hand.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BENCH_MODELS, benchMask, measureParallelTrials, measureTraining, median, syntheticDataset } from '../../src/engine/training/bench.js';
import { createModel } from '../../src/engine/models/registry.js';
import { getWeightMap } from '../../src/engine/models/inspect.js';
import { computeThreads } from '../../src/runtime/backend.js';
import { benchCommand, commandLine } from '../../src/cli/bench.js';
import { markdownReport } from '../../src/bench/markdown.js';
import { planBackend, variants, type BenchOptions } from '../../src/bench/plan.js';
import { formatReport, mergeMeasurements, targets, type BenchReport, type Measurement } from '../../src/bench/report.js';

before(async () => {
  await tf.setBackend('cpu');
});

describe('bench measurements', () => {
  test('syntheticDataset: shapes, label range, MNIST-like zeros, same seed same bytes', () => {
    const a = syntheticDataset([28, 28, 1], 10, 120, 60, 3, 0.81);
    assert.equal(a.train.x.length, 120 * 784);
    assert.equal(a.validation.n, 60);
    assert.equal(a.test.y.length, 60);
    assert.ok(a.train.y.every((y) => y >= 0 && y < 10), 'labels in [0, 10)');
    const zeros = a.train.x.filter((v) => v === 0).length / a.train.x.length;
    assert.ok(Math.abs(zeros - 0.81) < 0.01, `zero fraction ${zeros}`);
    assert.ok(a.train.x.every((v) => v >= 0 && v < 1), 'pixels in [0, 1)');
    assert.deepEqual(syntheticDataset([28, 28, 1], 10, 120, 60, 3, 0.81).train.x, a.train.x);
    assert.equal(syntheticDataset([4], 2, 50, 10, 3).train.x.filter((v) => v === 0).length, 0);
  });

  test('benchMask keeps round(density × size) of each layer, the largest magnitudes', () => {
    const model = createModel('lenet-300-100', { inputShape: [28, 28, 1], numClasses: 10, seed: 2 });
    const mask = benchMask(model, 0.05);
    const w = getWeightMap(model);
    for (const [name, size] of [['fc1/kernel', 784 * 300], ['fc2/kernel', 300 * 100], ['out/kernel', 100 * 10]] as const) {
      const m = mask[name]!;
      assert.equal(m.length, size);
      assert.equal(m.reduce((a, b) => a + b, 0), Math.round(0.05 * size), name);
      let minKept = Infinity;
      let maxPruned = 0;
      m.forEach((keep, i) => {
        const v = Math.abs(w[name]!.values[i]!);
        if (keep) minKept = Math.min(minKept, v);
        else maxPruned = Math.max(maxPruned, v);
      });
      assert.ok(minKept >= maxPruned, `${name}: kept ${minKept} < pruned ${maxPruned}`);
    }
    assert.ok(Object.values(benchMask(model, 1)).every((m) => m.every((x) => x === 1)), 'density 1 is the all-ones mask');
    model.dispose();
  });

  test('median', () => {
    assert.equal(median([5, 1, 3]), 3);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])), 'median of nothing is NaN');
  });

  test('measureTraining times exactly the requested dense LeNet steps on the TF.js loop', async () => {
    const before = tf.memory().numTensors;
    const steps: Array<[number, boolean]> = [];
    const r = await measureTraining({
      model: 'lenet-300-100',
      batchSize: 10,
      maxSteps: 3,
      seconds: 600,
      warmupSteps: 1,
      onStep: (s) => steps.push([s.step, s.warmup]),
      tfjsLoop: true,
    });
    assert.equal(r.path, 'tfjs');
    assert.equal(r.density, 1);
    assert.equal(r.steps, 3);
    assert.deepEqual(steps, [[1, true], [2, false], [3, false], [4, false]]);
    assert.ok(r.seconds > 0 && r.medianStepMs > 0, `seconds ${r.seconds}, median ${r.medianStepMs}`);
    assert.ok(Math.abs(r.examplesPerSecond - (3 * 10) / r.seconds) < 1e-6, `examples/s ${r.examplesPerSecond}`);
    assert.ok(tf.memory().numTensors - before === 0, `${tf.memory().numTensors - before} tensors left`);
  });

  test('measureTraining takes the simd MLP engine for dense LeNet on MNIST-like inputs, the conv engine on inputs without zeros (two threads or more), and the csr engine at 5% weights, within the time budget', async () => {
    const mnistLike = await measureTraining({ model: 'lenet-300-100', batchSize: 60, maxSteps: 1e6, seconds: 0, warmupSteps: 2 });
    assert.equal(mnistLike.path, 'mlp-simd');
    assert.equal(mnistLike.zeroFraction, 0.81);
    const dense = await measureTraining({ model: 'lenet-300-100', batchSize: 60, maxSteps: 1e6, seconds: 0, warmupSteps: 2, zeroFraction: 0 });
    assert.equal(dense.path, computeThreads() > 1 ? 'cnn-simd' : 'mlp-simd');
    assert.equal(dense.zeroFraction, 0);
    const r = await measureTraining({ model: 'lenet-300-100', batchSize: 60, maxSteps: 1e6, seconds: 0, warmupSteps: 2, density: 0.05 });
    assert.equal(r.path, 'mlp-csr');
    assert.ok(Math.abs(r.density - 0.05) < 1e-3, `density ${r.density}`);
    assert.equal(r.steps, 1, 'a zero-second budget stops after the first timed step');
    assert.equal(r.warmupSteps, 2);
    assert.ok(r.examplesPerSecond > 0, `examples/s ${r.examplesPerSecond}`);
  });

  test('measureParallelTrials runs ticket + 2 controls sequentially and on a 2-thread pool', async () => {
    const r = await measureParallelTrials({ model: 'lenet-300-100', batchSize: 60, steps: 5, parallelism: 2, backend: 'cpu', density: 0.05 });
    assert.deepEqual(r.trials, ['ticket', 'reinit', 'shuffle']);
    assert.equal(r.idealSpeedup, 1.5);
    assert.equal(r.repeats, 1);
    for (const t of [r.sequential, r.pool]) {
      assert.ok(t.seconds > 0, `seconds ${t.seconds}`);
      assert.ok(Math.abs(t.examplesPerSecond - (3 * 5 * 60) / t.seconds) < 1e-6, `examples/s ${t.examplesPerSecond}`);
    }
    assert.ok(Math.abs(r.speedup - r.pool.examplesPerSecond / r.sequential.examplesPerSecond) < 1e-12, `speed-up ${r.speedup}`);
  });
});

const m = (system: string, model: string, eps: number | undefined, extra: Partial<Measurement> = {}): Measurement => ({
  system,
  model,
  label: system,
  density: 1,
  tfjsLoop: false,
  examplesPerSecond: eps,
  steps: eps === undefined ? undefined : 10,
  medianStepMs: eps === undefined ? undefined : 1,
  ...extra,
});

function handReport(): BenchReport {
  return {
    date: '2026-01-01T00:00:00.000Z',
    machine: { cores: 2, cpu: 'test cpu', node: 'v20', tfjs: '4.22.0', torch: '2.13.0+cpu', loadStart: [1, 1, 1], loadEnd: [2, 2, 2] },
    settings: { quick: true, batchSize: 60, seconds: 1, densities: [0.05], command: 'npm run bench:train -- --quick' },
    measurements: [
      m('pytorch-2t', 'lenet-300-100', 1000),
      m('pytorch-1t', 'lenet-300-100', 2000),
      m('wasm', 'lenet-300-100', 1200, { path: 'mlp-simd' }),
      m('wasm', 'lenet-300-100', 3600, { density: 0.05, path: 'mlp-csr' }),
      m('wasm', 'lenet-300-100', 1100, { density: 0.05, tfjsLoop: true, path: 'tfjs' }),
      m('wasm', 'lenet-300-100', 700, { tfjsLoop: true, path: 'tfjs' }),
      m('wasm', 'lenet-300-100', 900, { zeroFraction: 0, path: 'mlp-simd' }),
      m('pytorch-2t', 'conv-2', 100),
      m('wasm', 'conv-2', 20),
      m('cpu', 'conv-2', undefined, { note: '< 7.5 (0 steps in 8 s, stopped)' }),
    ],
    unavailable: [{ system: 'tensorflow', message: '@tensorflow/tfjs-node is not installed' }],
    wallSeconds: 60,
  };
}

describe('bench report', () => {
  test('mergeMeasurements: one throughput over slices (10 steps at 100 ex/s + 30 at 300 = 40 in 0.2 units)', () => {
    const merged = mergeMeasurements([
      m('wasm', 'lenet-300-100', 100, { steps: 10, medianStepMs: 4 }),
      m('wasm', 'lenet-300-100', 300, { steps: 30, medianStepMs: 2 }),
      m('wasm', 'lenet-300-100', 50, { density: 0.05 }),
    ]);
    assert.equal(merged.length, 2);
    assert.equal(merged[0]!.steps, 40);
    assert.ok(Math.abs(merged[0]!.examplesPerSecond! - 200) < 1e-9, `merged ${merged[0]!.examplesPerSecond}`);
    assert.equal(merged[0]!.medianStepMs, 2.5);
    // A failed slice does not hide a good one.
    const withFailure = mergeMeasurements([m('cpu', 'conv-2', undefined, { note: 'failed' }), m('cpu', 'conv-2', 5)]);
    assert.equal(withFailure[0]!.examplesPerSecond, 5);
    assert.equal(withFailure[0]!.note, undefined);
  });

  test('targets: ratios against the faster PyTorch setting, sparse vs dense, native not measured', () => {
    const t = targets(handReport());
    const by = (s: string) => t.find((x) => x.what.startsWith(s))!;
    assert.deepEqual(by('WASM ≥ 0.5× PyTorch on lenet-300-100'), { what: 'WASM ≥ 0.5× PyTorch on lenet-300-100', met: true, detail: 'wasm 0.60×' });
    assert.deepEqual(by('WASM ≥ 0.3× PyTorch on conv-2'), { what: 'WASM ≥ 0.3× PyTorch on conv-2', met: false, detail: 'wasm 0.20×' });
    assert.equal(by('native ≥ 1× PyTorch on lenet-300-100').met, null);
    const sparse = by('LeNet round');
    assert.equal(sparse.met, true);
    assert.equal(sparse.detail, 'wasm 3.00× at 5%');
  });

  test('formatReport and markdownReport carry the numbers, ratios and verdicts', () => {
    const r = handReport();
    const text = formatReport(r, false);
    assert.match(text, /pytorch-1t \(baseline\)\s+2,000/);
    assert.match(text, /lenet-300-100\s+wasm, simd MLP engine\s+1,200\s+1\.0\s+0\.60×\s+≥ 0\.5×: met/);
    assert.match(text, /lenet-300-100\s+wasm, TF\.js kernels\s+700\s+1\.0\s+0\.35×\n/);
    assert.match(text, /lenet-300-100\s+wasm, simd MLP engine, inputs without zeros\s+900\s+1\.0\s+0\.45×\n/);
    assert.match(text, /conv-2\s+cpu\s+< 7\.5 \(0 steps in 8 s, stopped\)/);
    assert.match(text, /1,100 \(0\.92×\)\s+3,600 \(3\.00×\)\s+mlp-csr\s+met/);
    assert.match(text, /tensorflow: @tensorflow\/tfjs-node is not installed/);
    const md = markdownReport(r);
    assert.match(md, /^# Training throughput/);
    assert.match(md, /Machine: 2 cores \(`nproc`\), test cpu; Node v20; TF\.js 4\.22\.0; PyTorch 2\.13\.0\+cpu/);
    assert.match(md, /\| lenet-300-100 \| wasm, simd MLP engine \| 1,200 \| 1\.0 \| 0\.60× \| ≥ 0\.5×: met \|/);
    assert.match(md, /- WASM ≥ 0\.3× PyTorch on conv-2: \*\*not met\*\*; wasm 0\.20×/);
  });

  test('a real run of the command: cpu backend in a worker child, markdown written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bench-'));
    try {
      const out = join(dir, 'bench.md');
      // Batch 6 keeps the pure-JS backend's dense steps short; the plumbing is what is under test.
      const code = await benchCommand(['--backends', 'cpu', '--models', 'lenet-300-100', '--quick', '--seconds', '0.2', '--batch', '6', '--python', '/nonexistent/python3', '--no-pool', '--write', '--out', out]);
      assert.equal(code, 0);
      const md = await readFile(out, 'utf8');
      // Run from the test runner rather than scripts/bench-train.ts, so the command is named as the CLI verb.
      assert.match(md, /Generated by `ticketsmith bench --backends cpu/);
      assert.match(md, /\| lenet-300-100 \| tfjs cpu \(pure JS\), simd MLP engine \| [\d,.]+ \| [\d.]+ \| - \|/);
      assert.match(md, /\| lenet-300-100 \| tfjs cpu \(pure JS\), TF\.js kernels \| [\d,.]+ \| [\d.]+ \| - \|/);
      // Inputs without zeros take the conv engine where the child has two compute threads, else the simd MLP engine.
      assert.match(md, /\| lenet-300-100 \| tfjs cpu \(pure JS\), (simd MLP|conv) engine, inputs without zeros \| [\d,.]+ \| [\d.]+ \| - \|/);
      // Dense, 5% on the TF.js kernels and 5% as trainModel runs it (the csr MLP engine on cpu).
      assert.match(md, /\| tfjs cpu \(pure JS\) \| 5% \| [\d,.]+ \| [\d,.]+ \([\d.]+×\) \| [\d,.]+ \([\d.]+×\) \| mlp-csr \| (not )?met \|/);
      assert.match(md, /- PyTorch: could not run '\/nonexistent\/python3'/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await assert.rejects(benchCommand(['--backends', 'opengl']), /unknown 'opengl'/);
    await assert.rejects(benchCommand(['--densities', '1.5']), /fraction in \(0, 1\)/);
  });
});

test('the benchmark knows both paper models', () => {
  assert.deepEqual(Object.keys(BENCH_MODELS), ['lenet-300-100', 'conv-2']);
});

describe('bench plan', () => {
  const options = (extra: Partial<BenchOptions> = {}): BenchOptions => ({
    quick: false,
    backends: ['wasm', 'cpu'],
    models: ['lenet-300-100', 'conv-2'],
    densities: [0.05],
    seconds: 12,
    batchSize: 60,
    python: null,
    ...extra,
  });
  const byId = (id: string) => variants(2).find((v) => v.id === id)!;

  test('variants: WASM single-threaded and on every core, the threaded one only with more than one core', () => {
    assert.deepEqual(variants(2).map((v) => `${v.id}:${v.backend}:${v.wasmThreads}`), ['tensorflow-gpu:tensorflow-gpu:1', 'tensorflow:tensorflow:1', 'wasm:wasm:1', 'wasm-threads:wasm:2', 'cpu:cpu:1']);
    assert.equal(variants(1).some((v) => v.id === 'wasm-threads'), false);
  });

  test('planBackend on wasm: LeNet configurations in 2 alternating slices of 6 s, Conv-2 dense in 2 slices of 12 s, one child', () => {
    const [child, ...more] = planBackend(options(), byId('wasm'));
    assert.equal(more.length, 0);
    assert.equal(child!.capped, false);
    const lenet = ['1', '1 tfjs', '1 zeros0', '0.05', '0.05 tfjs'];
    const key = (p: { model: string; density: number; tfjsLoop?: boolean; zeroFraction?: number }) =>
      `${p.model} ${p.density}${p.tfjsLoop ? ' tfjs' : ''}${p.zeroFraction === 0 ? ' zeros0' : ''}`;
    assert.deepEqual(child!.plan.map(key), [...lenet, ...lenet].map((c) => `lenet-300-100 ${c}`).concat(['conv-2 1', 'conv-2 1']));
    assert.ok(child!.plan.filter((p) => p.model === 'lenet-300-100').every((p) => p.seconds === 6));
    assert.ok(child!.plan.filter((p) => p.model === 'conv-2').every((p) => p.seconds === 12));
    // 150 s of start-up slack plus 4x the measured time: 10 x 6 s + 2 x 12 s = 84 s.
    assert.equal(child!.limit, 150 + 4 * 84);
  });

  test('the report names the command as it was typed: the CLI verb, or the npm script with its flags after --', () => {
    assert.equal(commandLine('ticketsmith bench', ['--quick', '--write']), 'ticketsmith bench --quick --write');
    assert.equal(commandLine('npm run bench:train', ['--quick', '--write']), 'npm run bench:train -- --quick --write');
    assert.equal(commandLine('npm run bench:train', []), 'npm run bench:train');
  });

  test('planBackend on cpu, quick: LeNet in one slice, Conv-2 in a capped child of its own that may take 2 steps', () => {
    const children = planBackend(options({ quick: true, seconds: 1.5 }), byId('cpu'));
    assert.equal(children.length, 2);
    assert.equal(children[0]!.plan.length, 5);
    assert.ok(children[0]!.plan.every((p) => p.model === 'lenet-300-100' && p.seconds === 1.5 && p.warmup === 2));
    assert.deepEqual(children[1], { plan: [{ model: 'conv-2', density: 1, seconds: 3, warmup: 1, maxSteps: 2 }], limit: 8, capped: true });
  });
});
