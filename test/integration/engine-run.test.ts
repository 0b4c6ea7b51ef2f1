// A real IMP run on builtin MNIST (small slice, few iterations): rounds are
// committed whole, densities follow the schedule, the ticket loads in TF.js
// with the reported density, a rerun resumes instead of retraining, and
// rewinding restores survivors exactly.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { runCompression, rewindSource, verdictOf } from '../../src/engine/run.js';
import type { EngineEvent, RoundMetrics } from '../../src/engine/sink.js';
import { FileSink } from '../../src/engine/sinks/file.js';
import { resolveSpec } from '../../src/engine/spec.js';
import { loadModelFrom } from '../../src/engine/models/load.js';
import { decompressTicket } from '../../src/engine/export.js';
import { applyMaskTo, deserializeMask } from '../../src/engine/pruning/mask.js';
import { initBackend } from '../../src/runtime/backend.js';
import { toTensors, trainModel } from '../../src/engine/training/train.js';
import { createModel } from '../../src/engine/models/registry.js';
import { getWeightMap, setWeightMap } from '../../src/engine/models/inspect.js';
import { loadDataset } from '../../src/engine/data/index.js';

const spec = resolveSpec({
  model: 'lenet-30-10',
  rounds: 2,
  iterations: 40,
  evalEvery: 10,
  batchSize: 32,
  maxTrainExamples: 600,
  controls: 'last',
});

before(async () => {
  await initBackend();
});

describe('runCompression', () => {
  test('commits every round, prunes on schedule, exports a loadable ticket, resumes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ts-run-'));
    try {
      const events: EngineEvent[] = [];
      const result = await runCompression(spec, { sink: new FileSink(dir), parallelism: 1, onEvent: (e) => events.push(e) });
      const rounds = result.summary.rounds as RoundMetrics[];
      assert.deepEqual(rounds.map((r) => r.round), [0, 1, 2]);
      // fc1 784x30 and fc2 30x10 lose 20%, out 10x10 loses 10% per round
      const expected = (r: number) => {
        let fc1 = 23520, fc2 = 300, out = 100;
        for (let i = 0; i < r; i++) {
          fc1 -= Math.round(0.2 * fc1);
          fc2 -= Math.round(0.2 * fc2);
          out -= Math.round(0.1 * out);
        }
        return (fc1 + fc2 + out) / (23520 + 300 + 100);
      };
      for (const r of rounds) assert.ok(Math.abs(r.density - expected(r.round)) < 1e-12, `round ${r.round} density ${r.density}`);
      assert.equal(rounds[2]!.layerDensity['out/kernel'], 81 / 100);
      assert.deepEqual(Object.keys(rounds[1]!.controls), [], 'controls=last: none in round 1');
      assert.deepEqual(Object.keys(rounds[2]!.controls).sort(), ['reinit', 'shuffle']);
      for (const r of rounds) assert.ok(r.finalTestAccuracy > 0.25 && r.finalTestAccuracy <= 1, `round ${r.round} accuracy ${r.finalTestAccuracy}`);
      assert.ok(rounds[2]!.compressedBytes < rounds[2]!.denseBytes, "rounds[2]!.compressedBytes < rounds[2]!.denseBytes");
      assert.equal(rounds[0]!.paramsTotal, 784 * 30 + 30 + 30 * 10 + 10 + 10 * 10 + 10);

      // The exported ticket loads with stock readers and carries the reported sparsity.
      const model = await loadModelFrom(join(dir, 'result', 'ticket'));
      const w = getWeightMap(model);
      const mask = deserializeMask(await readFile(join(dir, 'result', 'ticket', 'mask.json')));
      let zeros = 0;
      let total = 0;
      for (const name of Object.keys(mask)) {
        total += w[name]!.values.length;
        for (let i = 0; i < w[name]!.values.length; i++) {
          if (mask[name]![i] === 0) assert.ok(w[name]!.values[i] === 0, `${name}[${i}] should be pruned`);
          if (w[name]!.values[i] === 0) zeros++;
        }
      }
      assert.ok(Math.abs(1 - zeros / total - rounds[2]!.density) < 1e-3, "Math.abs(1 - zeros / total - rounds[2]!.density) < 1e-3");
      const packed = decompressTicket(await readFile(join(dir, 'result', 'ticket', 'compressed.bin')));
      const a = packed.weights['fc1/kernel']!.values;
      const b = w['fc1/kernel']!.values;
      assert.equal(a.length, b.length);
      for (let i = 0; i < a.length; i++) assert.ok(a[i] === b[i], `compressed fc1/kernel[${i}] ${a[i]} != ${b[i]}`); // -0 === 0
      model.dispose();

      // Rerun: nothing to train.
      const again: EngineEvent[] = [];
      await runCompression(spec, { sink: new FileSink(dir), parallelism: 1, onEvent: (e) => again.push(e) });
      assert.equal(again.filter((e) => e.kind === 'progress').length, 0);
      assert.deepEqual(again.find((e) => e.kind === 'run-start'), { kind: 'run-start', name: result.name, backend: rounds[0]!.backend, lastRound: 2, resumedFrom: 3 });

      // Lose the last round: only it is trained again, from the same mask.
      await rm(join(dir, 'round_2'), { recursive: true });
      const third: EngineEvent[] = [];
      const resumed = await runCompression(spec, { sink: new FileSink(dir), parallelism: 1, onEvent: (e) => third.push(e) });
      assert.deepEqual([...new Set(third.filter((e) => e.kind === 'round-start').map((e) => (e as { round: number }).round))], [2]);
      assert.equal((resumed.summary.rounds as RoundMetrics[])[2]!.density, rounds[2]!.density);
      assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('round_')).sort(), ['round_0', 'round_1', 'round_2']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a whole run leaves no tensor behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ts-run-'));
    try {
      const before = tf.memory();
      await runCompression({ ...spec, rounds: 1, controls: 'all' }, { sink: new FileSink(dir), parallelism: 1 });
      const after = tf.memory();
      assert.equal(after.numTensors, before.numTensors, `tensors ${before.numTensors} -> ${after.numTensors}`);
      assert.equal(after.numBytes, before.numBytes, `bytes ${before.numBytes} -> ${after.numBytes}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('controls run on worker threads too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ts-run-'));
    try {
      const result = await runCompression({ ...spec, rounds: 1 }, { sink: new FileSink(dir), parallelism: 2 });
      const r1 = (result.summary.rounds as RoundMetrics[])[1]!;
      assert.ok(r1.controls.reinit && r1.controls.shuffle, "r1.controls.reinit && r1.controls.shuffle");
      assert.ok(r1.controls.reinit.finalTestAccuracy > 0.2, "r1.controls.reinit.finalTestAccuracy > 0.2");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('bad spec names the field; verdict counts wins', async () => {
    await assert.rejects(runCompression({ rounds: 'x' }, { sink: new FileSink('/nonexistent') }), /rounds/);
    const m = (acc: number, controls: RoundMetrics['controls']) => ({ round: 1, density: 0.5, finalTestAccuracy: acc, controls }) as RoundMetrics;
    const c = (acc: number) => ({ finalTestAccuracy: acc }) as RoundMetrics['controls']['reinit'];
    assert.deepEqual(verdictOf([m(0.9, { reinit: c(0.8), shuffle: c(0.85) })]).ticketBeatsControls, [1]);
    assert.deepEqual(verdictOf([m(0.9, { reinit: c(0.95) })]).ticketBeatsControls, []);
  });
});

describe('rewinding', () => {
  test('survivors restart exactly at init, at iteration k, or at the trained values', () => {
    const w = (v: number[]) => ({ 'a/kernel': { shape: [v.length], values: Float32Array.from(v) } });
    const init = w([1, 2, 3, 4]);
    const atK = w([1.5, 2.5, 3.5, 4.5]);
    const trained = w([9, 8, 7, 6]);
    const mask = { 'a/kernel': Float32Array.from([1, 0, 1, 0]) };
    const start = (rewind: string, round = 1) =>
      [...applyMaskTo(rewindSource(resolveSpec({ rewind, iterations: 100 }), round, { init, rewind: atK, trained }), mask)['a/kernel']!.values];
    assert.deepEqual(start('init'), [1, 0, 3, 0]);
    assert.deepEqual(start('iteration'), [1.5, 0, 3.5, 0]);
    assert.deepEqual(start('fraction'), [1.5, 0, 3.5, 0]);
    assert.deepEqual(start('learning-rate'), [9, 0, 7, 0]);
    assert.deepEqual(start('iteration', 0), [1, 0, 3, 0], 'round 0 always starts at init');
  });

  test('the captured rewind point equals training exactly k iterations', async () => {
    const ds = await loadDataset('builtin:mnist', { maxTrain: 300 });
    const data = toTensors(ds);
    const model = createModel('lenet-20-10', { inputShape: ds.inputShape, numClasses: 10, seed: 3 });
    const init = getWeightMap(model);
    const cfg = { optimizer: 'adam', learningRate: 1e-3, momentum: 0.9, lrSchedule: 'constant', warmupIterations: 0, batchSize: 20, iterations: 12, startIteration: 0, evalEvery: 6, seed: 5 } as const;
    let captured = init;
    await trainModel(model, data, null, cfg, { capture: { iteration: 5, fn: () => (captured = getWeightMap(model)) } });
    setWeightMap(model, init);
    await trainModel(model, data, null, { ...cfg, iterations: 5, evalEvery: 5 });
    assert.deepEqual(getWeightMap(model), captured);
    data.dispose();
    model.dispose();
    assert.equal(tf.getBackend(), 'wasm');
  });
});
