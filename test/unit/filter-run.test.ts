// The `filter` method end to end on tiny uploaded models and a small
// synthetic task (bars: horizontal / vertical / diagonal, 8x8x1): rounds are
// committed with the step's smaller model, metrics carry the filter numbers,
// the ticket loads in TF.js with fewer parameters and the same output shape,
// an interrupted iterative run resumes, a FLOP target is met from the
// sensitivity analysis on a residual net, IMP rounds can follow, and nothing leaks.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/runtime/backend.js';
import { runCompression } from '../../src/engine/run.js';
import { runFilterPruning } from '../../src/engine/filter/run.js';
import type { EngineEvent, RoundMetrics } from '../../src/engine/sink.js';
import { FileSink } from '../../src/engine/sinks/file.js';
import { SpecError } from '../../src/engine/spec.js';
import { loadModelFrom, saveModelTo } from '../../src/engine/models/load.js';
import { countParams } from '../../src/engine/models/inspect.js';
import { mulberry32 } from '../../src/engine/rng.js';
import { RunCancelled } from '../../src/engine/training/train.js';
import type { Dataset, Split } from '../../src/engine/types.js';
import { seriesPoints } from '../fixtures/svg-points.js';

before(async () => {
  await initBackend();
});

function bars(n: number, seed: number): Split {
  const next = mulberry32(seed);
  const x = new Float32Array(n * 64);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    const at = 1 + Math.floor(next() * 6);
    y[i] = c;
    for (let r = 0; r < 8; r++) {
      for (let q = 0; q < 8; q++) {
        const on = c === 0 ? r === at : c === 1 ? q === at : r === q;
        x[i * 64 + r * 8 + q] = Math.min(1, (on ? 0.6 : 0) + 0.4 * next());
      }
    }
  }
  return { x, y, n };
}

const ds: Dataset = {
  reference: 'synthetic:bars', name: 'bars', sha256: '', inputShape: [8, 8, 1], numClasses: 3,
  train: bars(240, 1), validation: bars(60, 2), test: bars(90, 3),
};

async function tmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'ts-filter-'));
}

/** conv1 (8) -> BN -> ReLU -> pool -> conv2 (8, ReLU) -> flatten -> out 3 */
async function savedSequential(dir: string): Promise<string> {
  const m = tf.sequential({ name: 'tiny-vgg' });
  m.add(tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 8, kernelSize: 3, padding: 'same', useBias: false, name: 'conv1' }));
  m.add(tf.layers.batchNormalization({ name: 'bn1' }));
  m.add(tf.layers.activation({ activation: 'relu', name: 'relu1' }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }));
  m.add(tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv2' }));
  m.add(tf.layers.flatten({ name: 'flatten' }));
  m.add(tf.layers.dense({ units: 3, name: 'out' }));
  const path = join(dir, 'upload');
  await saveModelTo(m, path);
  m.dispose();
  return path;
}

/** stem (8) -> block (conv a 8 -> BN -> ReLU -> conv b 8 -> BN) + identity -> ReLU -> GAP -> out 3 */
async function savedResidual(dir: string): Promise<string> {
  type S = tf.SymbolicTensor;
  const input = tf.input({ shape: [8, 8, 1], name: 'input' });
  const conv = (x: S, name: string) => tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, name }).apply(x) as S;
  const bn = (x: S, name: string) => tf.layers.batchNormalization({ name }).apply(x) as S;
  const relu = (x: S, name: string) => tf.layers.activation({ activation: 'relu', name }).apply(x) as S;
  const stem = relu(bn(conv(input, 'stem'), 'stem_bn'), 'stem_relu');
  const y = bn(conv(relu(bn(conv(stem, 'a'), 'a_bn'), 'a_relu'), 'b'), 'b_bn');
  const x = relu(tf.layers.add({ name: 'add' }).apply([stem, y]) as S, 'add_relu');
  const out = tf.layers.dense({ units: 3, name: 'out' }).apply(tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as S) as S;
  const m = tf.model({ inputs: input, outputs: out, name: 'tiny-res' });
  const path = join(dir, 'upload');
  await saveModelTo(m, path);
  m.dispose();
  return path;
}

const base = { method: 'filter', dataset: 'synthetic:bars', iterations: 60, fineTuneIterations: 20, evalEvery: 20, batchSize: 32, learningRate: 0.01 };

describe('runFilterPruning', () => {
  test('one-shot through runCompression: metrics, round models, a smaller ticket that loads', async () => {
    const dir = await tmp();
    try {
      const model = await savedSequential(dir);
      const events: EngineEvent[] = [];
      const tensors = tf.memory().numTensors;
      const result = await runCompression({ ...base, model, filterFraction: 0.5 }, { sink: new FileSink(join(dir, 'run')), dataset: ds, onEvent: (e) => events.push(e) });
      assert.equal(tf.memory().numTensors, tensors, 'the run disposes every tensor it made');
      assert.deepEqual(
        events.filter((e) => e.kind !== 'progress').map((e) => `${e.kind}${'round' in e ? e.round : ''}`),
        ['run-start', 'round-start0', 'trial-end0', 'round-end0', 'round-start1', 'trial-end1', 'round-end1', 'run-end'],
      );
      const [r0, r1] = result.summary.rounds as RoundMetrics[];
      const f0 = r0!.filter!;
      const f1 = r1!.filter!;
      assert.deepEqual(f0.filtersKept, { conv1: 8, conv2: 8, out: 3 });
      assert.deepEqual(f1.filtersKept, { conv1: 4, conv2: 4, out: 3 });
      assert.deepEqual(f1.targets, { conv1: 0.5, conv2: 0.5 });
      assert.match(f1.skipped.out!, /model output/);
      // conv1 3*3*1*8 + BN 4*8 + conv2 3*3*8*8+8 + out 128*3+3 = 72 + 32 + 584 + 387 = 1075
      assert.equal(r0!.paramsRemaining, 1075);
      // conv1 36 + BN 16 + conv2 3*3*4*4+4 = 148 + out 64*3+3 = 195 -> 395
      assert.equal(r1!.paramsRemaining, 395);
      assert.equal(r1!.paramsTotal, 1075);
      assert.equal(f1.params, 395);
      // conv1 9*8*64 = 4608 + conv2 9*8*8*16 = 9216 + out 384 -> after: 2304 + 2304 + 192
      assert.deepEqual([r0!.flops, r1!.flops], [14208, 4800]);
      // prunable kernels: 72 + 576 + 384 = 1032 -> 36 + 144 + 192 = 372
      assert.ok(Math.abs(r1!.density - 372 / 1032) < 1e-12, "Math.abs(r1!.density - 372 / 1032) < 1e-12");
      assert.equal(r1!.layerDensity['conv2/kernel'], 0.25);
      assert.ok(f1.modelBytes < f0.modelBytes, "f1.modelBytes < f0.modelBytes");
      for (const f of [f0, f1]) assert.ok(f.latencyBatch1Ms > 0 && f.latencyBatch64Ms > 0, "f.latencyBatch1Ms > 0 && f.latencyBatch64Ms > 0");
      assert.equal(f1.accuracyBeforePruning, r0!.finalTestAccuracy);
      assert.equal(f1.accuracyAfterFineTuning, r1!.finalTestAccuracy);
      assert.ok(r0!.finalTestAccuracy > 0.6, `the dense net learned the task (${r0!.finalTestAccuracy})`);
      assert.ok(f1.accuracyAfterPruning >= 0 && f1.accuracyAfterPruning <= 1, "f1.accuracyAfterPruning >= 0 && f1.accuracyAfterPruning <= 1");
      assert.match(result.verdict.summary, /1075 -> 395 parameters/);
      assert.deepEqual((await readdir(join(dir, 'run', 'round_1'))).sort(), ['metrics.json', 'model.json', 'model.weights.bin']);

      const ticket = await loadModelFrom(join(dir, 'run', 'result', 'ticket'));
      const original = await loadModelFrom(model);
      assert.equal(countParams(ticket), 395);
      assert.ok(countParams(ticket) < countParams(original), "countParams(ticket) < countParams(original)");
      const x = tf.zeros([2, 8, 8, 1]);
      const y = ticket.predict(x) as tf.Tensor;
      assert.deepEqual(y.shape, [2, 3]);
      tf.dispose([x, y]);
      ticket.dispose();
      original.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('iterative schedule: cancelled after step 1, resumed without redoing it', async () => {
    const dir = await tmp();
    try {
      const model = await savedSequential(dir);
      const spec = { ...base, model, filterFraction: 0.5, filterSchedule: 'iterative', filterSteps: 2, filterImportance: 'l2', pretrain: false };
      const sink = new FileSink(join(dir, 'run'));
      const abort = new AbortController();
      await assert.rejects(
        runFilterPruning(spec, { sink, dataset: ds, signal: abort.signal, onEvent: (e) => e.kind === 'round-end' && e.round === 1 && abort.abort() }),
        RunCancelled,
      );
      assert.deepEqual((await sink.finishedRounds()).map((r) => r.index), [0, 1]);
      const events: EngineEvent[] = [];
      const result = await runFilterPruning(spec, { sink, dataset: ds, onEvent: (e) => events.push(e) });
      assert.deepEqual(events[0], { kind: 'run-start', name: result.name, backend: (await initBackend()).name, lastRound: 2, resumedFrom: 2 } as EngineEvent);
      assert.deepEqual(events.filter((e) => e.kind === 'round-start').map((e) => (e as { round: number }).round), [2]);
      const rounds = result.summary.rounds as RoundMetrics[];
      // 8 filters, 50% in two steps: 6 after step 1, 4 after step 2.
      assert.deepEqual(rounds.map((r) => r.filter!.filtersKept.conv1), [8, 6, 4]);
      assert.equal(rounds[0]!.trainSeconds, 0, 'pretrain: false only evaluates');
      assert.equal(rounds[2]!.filter!.accuracyBeforePruning, rounds[1]!.finalTestAccuracy);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('residual upload: sensitivity analysis picks fractions for a FLOP target', async () => {
    const dir = await tmp();
    try {
      const model = await savedResidual(dir);
      const sink = new FileSink(join(dir, 'run'));
      const result = await runFilterPruning({ ...base, model, targetFlopReduction: 0.4, sensitivity: true }, { sink, dataset: ds });
      const [r0, r1] = result.summary.rounds as RoundMetrics[];
      const s = r0!.filter!.sensitivity!;
      assert.deepEqual(s.groups.map((g) => g.group).sort(), ['a', 'stem'], 'stem and b are one coupled group');
      assert.deepEqual(s.groups.find((g) => g.group === 'stem')!.layers, ['stem', 'b']);
      for (const g of s.groups) assert.equal(g.accuracy.length, 3);
      assert.ok(1 - r1!.flops / r0!.flops >= 0.4, `FLOPs ${r0!.flops} -> ${r1!.flops}`);
      assert.equal(r1!.filter!.filtersKept.stem, r1!.filter!.filtersKept.b, 'coupled layers keep the same channels');
      assert.ok(result.artifacts['sensitivity.svg']!.length > 100, "result.artifacts['sensitivity.svg']!.length > 100");
      assert.ok((await readdir(join(dir, 'run', 'round_0'))).includes('sensitivity.svg'), "(await readdir(join(dir, 'run', 'round_0'))).includes('sensitivity.svg')");
      // The job's plots (engine/report/job-plots.ts) are in the result: one sensitivity line per group, the layers' density bars.
      assert.deepEqual((await readdir(join(dir, 'run', 'result', 'plots'))).sort(), ['density.svg', 'sensitivity.svg']);
      const plot = new TextDecoder().decode(result.artifacts['plots/sensitivity.svg']);
      const lines = seriesPoints(plot);
      for (const g of s.groups) assert.equal(lines.get(g.group)?.length, 3, `${g.group}: one point per fraction`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('thenImp: unstructured IMP rounds on the shrunken model, numbered after the filter steps', async () => {
    const dir = await tmp();
    try {
      const model = await savedSequential(dir);
      const events: EngineEvent[] = [];
      const result = await runFilterPruning(
        { ...base, model, filterFraction: 0.5, thenImp: true, rounds: 1, iterations: 30, controls: 'none' },
        { sink: new FileSink(join(dir, 'run')), dataset: ds, parallelism: 1, onEvent: (e) => events.push(e) },
      );
      const rounds = result.summary.rounds as RoundMetrics[];
      assert.deepEqual(rounds.map((r) => r.round), [0, 1, 2, 3]);
      assert.deepEqual(rounds.map((r) => r.filter !== undefined), [true, true, false, false]);
      assert.equal(rounds[2]!.paramsRemaining, 395, 'IMP starts from the shrunken model');
      assert.ok(rounds[3]!.density < 1, "rounds[3]!.density < 1");
      assert.deepEqual(events.filter((e) => e.kind === 'run-start' || e.kind === 'run-end').length, 2);
      assert.ok(result.artifacts['ticket/mask.json'] && result.artifacts['ticket/model.json'], "result.artifacts['ticket/mask.json'] && result.artifacts['ticket/model.json']");
      const topology = JSON.parse(new TextDecoder().decode(result.artifacts['ticket/model.json'])) as { modelTopology: { config: { layers: Array<{ config: { name: string; filters?: number } }> } } };
      assert.equal(topology.modelTopology.config.layers.find((l) => l.config.name === 'conv1')!.config.filters, 4);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('spec errors name the field', async () => {
    await assert.rejects(runFilterPruning({ method: 'filter' }, { sink: new FileSink('/nonexistent') }), (e: unknown) => e instanceof SpecError && e.field === 'filterFraction');
    await assert.rejects(
      runFilterPruning({ method: 'filter', filterFraction: 0.5, targetFlopReduction: 0.3 }, { sink: new FileSink('/nonexistent') }),
      (e: unknown) => e instanceof SpecError && e.field === 'targetFlopReduction',
    );
  });
});
