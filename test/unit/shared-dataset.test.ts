// A dataset crossing to trial workers is shared, not copied: its arrays sit on
// SharedArrayBuffers (loaders and the benchmark make them so, WorkerPool moves
// any other dataset over once), a worker thread writing into what it was sent
// is seen here, and a WorkerPool trial reads the very bytes this thread holds.
// toTensors uploads a split to the backend only when something asks for it.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { isShared, shareDataset } from '../../src/engine/data/shared.js';
import { assemble } from '../../src/engine/data/split.js';
import { syntheticDataset } from '../../src/engine/training/bench.js';
import { toTensors, trainConfigFor } from '../../src/engine/training/train.js';
import { TrialRunner, WorkerPool, type ModelSource, type TrialJob } from '../../src/engine/training/trial.js';
import { createModel } from '../../src/engine/models/registry.js';
import { getWeightMap } from '../../src/engine/models/inspect.js';
import type { Dataset, Split } from '../../src/engine/types.js';

before(async () => {
  await tf.setBackend('cpu');
});

function plainSplit(n: number, size: number, offset: number): Split {
  return { x: Float32Array.from({ length: n * size }, (_, i) => ((i * 7 + offset) % 13) / 13), y: Int32Array.from({ length: n }, (_, i) => (i + offset) % 10), n };
}

function plainDataset(): Dataset {
  return { reference: 'test:plain', name: 'plain', sha256: '', inputShape: [28, 28, 1], numClasses: 10, train: plainSplit(120, 784, 0), validation: plainSplit(30, 784, 1), test: plainSplit(40, 784, 2) };
}

const splits = (ds: Dataset) => [ds.train, ds.validation, ds.test];

describe('shared datasets', () => {
  test('shareDataset moves plain arrays onto shared buffers with the same values, and keeps shared ones as they are', () => {
    const plain = plainDataset();
    const shared = shareDataset(plain);
    assert.notEqual(shared, plain);
    for (const [a, b] of splits(plain).map((s, i) => [s, splits(shared)[i]!] as const)) {
      assert.ok(isShared(b.x) && isShared(b.y), 'shared arrays');
      assert.ok(!isShared(a.x), 'the input is left alone');
      assert.deepEqual(Array.from(b.x), Array.from(a.x));
      assert.deepEqual(Array.from(b.y), Array.from(a.y));
      assert.equal(b.n, a.n);
    }
    assert.equal(shareDataset(shared), shared, 'no second copy');
  });

  test('loaded and synthetic datasets are shared already', () => {
    const synthetic = syntheticDataset([4], 3, 20, 5, 1);
    assert.ok(splits(synthetic).every((s) => isShared(s.x) && isShared(s.y)));
    assert.equal(shareDataset(synthetic), synthetic);
    const examples = (n: number, file: string) => ({ ...plainSplit(n, 4, 0), shape: [4], imageFile: file, imageField: 'x', labelFile: file, labelField: 'y' });
    const loaded = assemble('test:loaded', { name: 'loaded', sha256: '', numClasses: 10, train: examples(20, 'train'), test: examples(8, 'test') }, { validationFraction: 0.25, seed: 1 });
    assert.ok(splits(loaded).every((s) => isShared(s.x) && isShared(s.y)));
  });

  test('a shared dataset posted to a worker thread is the same memory: its writes show here', async () => {
    const ds = shareDataset(plainDataset());
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       parentPort.once('message', (ds) => { ds.train.x[5] = 42; ds.test.y[3] = 7; parentPort.postMessage(ds.train.x.buffer instanceof SharedArrayBuffer); });`,
      { eval: true },
    );
    try {
      const sharedThere = await new Promise<boolean>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.postMessage(ds);
      });
      assert.equal(sharedThere, true);
      assert.equal(ds.train.x[5], 42);
      assert.equal(ds.test.y[3], 7);
    } finally {
      await worker.terminate();
    }
  });

  test("a WorkerPool trial evaluates on this thread's bytes, not on a copy made when the pool started", async () => {
    const ds = syntheticDataset([28, 28, 1], 10, 120, 60, 5, 0.81);
    const source: ModelSource = { zoo: 'lenet-300-100', inputShape: [28, 28, 1], numClasses: 10, seed: 3 };
    const model = createModel('lenet-300-100', source);
    const job: TrialJob = { round: 0, trial: 'ticket', start: getWeightMap(model), mask: {}, cfg: { ...trainConfigFor({ optimizer: 'adam', learningRate: 1e-3, momentum: 0, lrSchedule: 'constant', warmupIterations: 0, batchSize: 60, evalEvery: 2 }, 2, 1, 'tfjs') } };
    model.dispose();
    const pool = new WorkerPool(1, ds, source, 'cpu');
    try {
      assert.equal(pool.dataset, ds, 'a shared dataset is sent as it is');
      const unchanged: Dataset = { ...ds, test: { ...ds.test, y: Int32Array.from(ds.test.y) } };
      // After the pool was started: relabel the test split here, in place.
      for (let i = 0; i < ds.test.n; i++) ds.test.y[i] = (ds.test.y[i]! + 1) % 10;
      const there = await pool.run(job);
      const runner = new TrialRunner(ds, source);
      const here = await runner.run(job);
      await runner.dispose();
      const copy = new TrialRunner(unchanged, source);
      const onCopy = await copy.run(job);
      await copy.dispose();
      assert.notEqual(onCopy.metrics.finalTestLoss, here.metrics.finalTestLoss, 'the relabelling shows in the loss');
      assert.equal(there.metrics.finalTestAccuracy, here.metrics.finalTestAccuracy);
      assert.equal(there.metrics.finalTestLoss, here.metrics.finalTestLoss);
    } finally {
      await pool.dispose();
    }
  });
});

describe('toTensors', () => {
  test('uploads each split on first use only, the same tensors after, and dispose frees what was made', () => {
    const before = tf.memory().numTensors;
    const data = toTensors(plainDataset());
    assert.equal(tf.memory().numTensors, before, 'nothing uploaded yet');
    assert.equal(data.source.train.n, 120);
    const test = data.test;
    assert.equal(tf.memory().numTensors, before + 3, 'x, one-hot y and labels of one split');
    assert.equal(data.test, test);
    assert.deepEqual(test.x.shape, [40, 28, 28, 1]);
    assert.deepEqual(Array.from(test.labels.dataSync()), Array.from(data.source.test.y));
    data.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  test('a split first used inside tf.tidy outlives it (the TF.js step gathers batches in a tidy)', () => {
    const before = tf.memory().numTensors;
    const data = toTensors(plainDataset());
    const first = tf.tidy(() => data.train.x.gather(tf.tensor1d([0, 1], 'int32')).sum().dataSync()[0]);
    assert.ok(!data.train.x.isDisposed && !data.train.y.isDisposed && !data.train.labels.isDisposed);
    assert.equal(tf.tidy(() => data.train.x.gather(tf.tensor1d([0, 1], 'int32')).sum().dataSync()[0]), first);
    data.dispose();
    assert.equal(tf.memory().numTensors, before);
  });
});
