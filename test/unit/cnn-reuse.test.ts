// A thread keeps one conv-engine memory across engines (cnn-kernels.ts's
// takeKernels / keepKernels): an engine built after another was disposed
// runs on that engine's memory, zeroed where it allocates, with slice workers
// attached afresh, and trains exactly as an engine on a new memory does; a
// trial pool's worker that ran a trial before gives the same results as a
// fresh worker.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { WasmArena } from '../../src/runtime/simd/arena.js';
import { CnnKernels, cnnBuild, keepKernels, takeKernels } from '../../src/runtime/simd/cnn-kernels.js';
import { cnnEngine, compileGraph } from '../../src/engine/training/cnn/index.js';
import { engineStepper } from '../../src/engine/training/engine-stepper.js';
import { trainConfigFor, type TrainConfig } from '../../src/engine/training/train.js';
import { WorkerPool, type ModelSource, type TrialJob, type TrialResult } from '../../src/engine/training/trial.js';
import { syntheticDataset } from '../../src/engine/training/bench.js';
import { createModel } from '../../src/engine/models/registry.js';
import { getWeightMap, prunableWeights } from '../../src/engine/models/inspect.js';
import { pruneToDensity } from '../../src/engine/pruning/magnitude.js';
import { onesMask } from '../../src/engine/pruning/mask.js';
import { mulberry32 } from '../../src/engine/rng.js';
import type { Mask, Split, WeightMap } from '../../src/engine/types.js';

before(async () => {
  await tf.setBackend('cpu');
});

test('an arena reset allocates from its base again, zeroed where earlier allocations wrote', () => {
  const mem = new CnnKernels();
  const a = mem.alloc(1000);
  mem.f32(a, 1000).fill(7);
  const b = mem.alloc(20_000);
  mem.f32(b, 20_000).fill(-3);
  const size = mem.memory.buffer.byteLength;
  mem.reset();
  const c = mem.alloc(10);
  const d = mem.alloc(30_000);
  assert.equal(c, a, 'the first allocation starts at the base again');
  assert.ok(mem.f32(c, 10).every((v) => v === 0));
  assert.ok(mem.f32(d, 30_000).every((v) => v === 0), 'zeroed, also past what was written before');
  assert.ok(mem.memory.buffer.byteLength >= size);
  // A plain arena (the MLP kernels') allocates as before: never reset, nothing to zero.
  const plain = new WasmArena(new WebAssembly.Memory({ initial: 1 }), 64);
  assert.equal(plain.alloc(4), 64);
  assert.equal(plain.alloc(1), 80);
});

function split(n: number, size: number, classes: number, next: () => number): Split {
  return { x: Float32Array.from({ length: n * size }, () => next() - 0.3), y: Int32Array.from({ length: n }, () => Math.floor(next() * classes)), n };
}

function setup(zoo: string, shape: number[], density: number, seed: number) {
  const model = createModel(zoo, { inputShape: shape, numClasses: 4, seed });
  const weights = getWeightMap(model);
  const names = prunableWeights(model).map((p) => p.name);
  const mask: Mask | null = density < 1 ? pruneToDensity(Object.fromEntries(names.map((n) => [n, weights[n]!.values])), onesMask(prunableWeights(model)), names, density, 'layerwise') : null;
  const graph = compileGraph(model);
  model.dispose();
  if (typeof graph === 'string') throw new Error(graph);
  const next = mulberry32(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return { graph, weights, mask, data: { train: split(36, size, 4, next), validation: split(13, size, 4, next), test: split(7, size, 4, next) } };
}

const cfg: TrainConfig = { optimizer: 'adam', learningRate: 2e-3, momentum: 0, lrSchedule: 'constant', warmupIterations: 0, batchSize: 12, iterations: 4, startIteration: 0, evalEvery: 4, seed: 1 };

/** Four Adam steps of batch 12 on an engine of two threads; its weights and the evaluations (chunks of 12 and a last one of 1). */
function train(s: ReturnType<typeof setup>) {
  const engine = cnnEngine(s.graph, s.weights, s.mask, cfg, 12, 2);
  const stepper = engineStepper(engine, s.data, { loop: 'cnn-simd', batchSize: 12, maxBatch: 12, sync: () => {} });
  for (let i = 0; i < 4; i++) stepper.step(Int32Array.from({ length: 12 }, (_, b) => (i * 12 + b * 5) % 36), cfg.learningRate);
  const result = { weights: engine.weightMap(), validation: stepper.evaluate('validation'), test: stepper.evaluate('test') };
  return { engine, stepper, result };
}

function assertSame(a: { weights: WeightMap; validation: object; test: object }, b: typeof a) {
  assert.deepEqual(Object.keys(a.weights), Object.keys(b.weights));
  for (const k of Object.keys(a.weights)) assert.ok(Buffer.from(a.weights[k]!.values.buffer).equals(Buffer.from(b.weights[k]!.values.buffer)), `${k} differs`);
  assert.deepEqual(a.validation, b.validation);
  assert.deepEqual(a.test, b.test);
}

test("an engine built after another is disposed runs on that engine's memory and trains as on a new one", () => {
  // First a larger net (Conv-2 at 10%: sparse conv lists), then a ResNet (BatchNorm) inside the memory it wrote.
  const first = train(setup('conv-2', [9, 7, 3], 0.1, 2));
  first.stepper.dispose();
  const s = setup('resnet-8', [8, 8, 3], 0.5, 3);
  const reused = train(s);
  assert.equal(reused.engine.state.mem, first.engine.state.mem, 'the disposed engine memory serves the next engine');
  // Built while `reused` holds the kept memory: a new one.
  const fresh = train(s);
  assert.notEqual(fresh.engine.state.mem, reused.engine.state.mem);
  assertSame(reused.result, fresh.result);
  reused.stepper.dispose();
  fresh.stepper.dispose();
  // Of two given back, the larger memory is kept; a disposed engine gives its memory back once only.
  const again = train(s);
  assert.ok([reused.engine.state.mem, fresh.engine.state.mem].includes(again.engine.state.mem));
  reused.stepper.dispose();
  const other = train(s);
  assert.notEqual(other.engine.state.mem, again.engine.state.mem);
  assertSame(again.result, fresh.result);
  assertSame(other.result, fresh.result);
  again.stepper.dispose();
  other.stepper.dispose();
});

test('a kept memory is handed out again only while its build is the one in use', () => {
  const relaxed = cnnBuild('relaxed');
  const plain = cnnBuild('plain');
  assert.ok(relaxed && plain && relaxed !== plain);
  const before = process.env.TICKETSMITH_RELAXED_SIMD;
  try {
    delete process.env.TICKETSMITH_RELAXED_SIMD;
    const first = takeKernels();
    assert.equal(first.mod, relaxed);
    keepKernels(first);
    assert.equal(takeKernels(), first, 'same build: the kept memory is reused');
    keepKernels(first);
    process.env.TICKETSMITH_RELAXED_SIMD = '0';
    const second = takeKernels();
    assert.notEqual(second, first, 'the build changed: a new memory, so every thread attaches one build');
    assert.equal(second.mod, plain);
  } finally {
    if (before === undefined) delete process.env.TICKETSMITH_RELAXED_SIMD;
    else process.env.TICKETSMITH_RELAXED_SIMD = before;
  }
});

test('two trials in a row on one pool worker give what the same trials give on fresh workers', async () => {
  const ds = syntheticDataset([8, 8, 3], 10, 120, 30, 4, 0);
  const source: ModelSource = { zoo: 'conv-2', inputShape: [8, 8, 3], numClasses: 10, seed: 5 };
  const model = createModel('conv-2', source);
  const start = getWeightMap(model);
  const names = prunableWeights(model).map((p) => p.name);
  const mask = pruneToDensity(Object.fromEntries(names.map((n) => [n, start[n]!.values])), onesMask(prunableWeights(model)), names, 0.5, 'layerwise');
  model.dispose();
  const settings = { optimizer: 'adam', learningRate: 1e-3, momentum: 0, lrSchedule: 'constant', warmupIterations: 0, batchSize: 20, evalEvery: 3 } as const;
  const jobs: TrialJob[] = [
    { round: 0, trial: 'ticket', start, mask: {}, cfg: trainConfigFor(settings, 3, 1, 'cnn-simd') },
    { round: 1, trial: 'ticket', start, mask, cfg: trainConfigFor(settings, 4, 2, 'cnn-simd') },
  ];
  const one = new WorkerPool(1, ds, source, 'cpu');
  const inRow: TrialResult[] = [];
  try {
    for (const j of jobs) inRow.push(await one.run(j));
  } finally {
    await one.dispose();
  }
  for (const [i, j] of jobs.entries()) {
    const pool: WorkerPool = new WorkerPool(1, ds, source, 'cpu');
    try {
      const alone: TrialResult = await pool.run(j);
      assert.equal(alone.metrics.trainingLoop, 'cnn-simd');
      // Everything but the timings.
      const { trainSeconds: _a, examplesPerSecond: _b, ...there } = alone.metrics;
      const { trainSeconds: _c, examplesPerSecond: _d, ...here } = inRow[i]!.metrics;
      assert.deepEqual(here, there);
      for (const k of Object.keys(alone.weights)) assert.deepEqual(inRow[i]!.weights[k]!.values, alone.weights[k]!.values, `trial ${i}: ${k}`);
    } finally {
      await pool.dispose();
    }
  }
});
