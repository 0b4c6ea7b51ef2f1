// A WorkerPool must never hang a round: a trial cancelled before it starts
// fails at once, a thread that dies fails only the trial it ran and is
// replaced, and a pool whose threads cannot start fails every trial it is
// given with why.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { syntheticDataset } from '../../src/engine/training/bench.js';
import { trainConfigFor, RunCancelled } from '../../src/engine/training/train.js';
import { WorkerPool, type ModelSource, type TrialJob } from '../../src/engine/training/trial.js';
import { createModel } from '../../src/engine/models/registry.js';
import { getWeightMap, prunableWeights } from '../../src/engine/models/inspect.js';
import type { Mask } from '../../src/engine/types.js';

before(async () => {
  await tf.setBackend('cpu');
});

const source: ModelSource = { zoo: 'lenet-300-100', inputShape: [28, 28, 1], numClasses: 10, seed: 9 };
const ds = syntheticDataset([28, 28, 1], 10, 90, 30, 3, 0.81);

function job(iterations: number): TrialJob {
  const model = createModel('lenet-300-100', source as { zoo: string; inputShape: number[]; numClasses: number; seed: number });
  const start = getWeightMap(model);
  const mask: Mask = {};
  for (const p of prunableWeights(model)) mask[p.name] = new Float32Array(p.shape.reduce((a, b) => a * b, 1)).fill(1);
  model.dispose();
  const cfg = trainConfigFor({ optimizer: 'adam', learningRate: 1e-3, momentum: 0, lrSchedule: 'constant', warmupIterations: 0, batchSize: 30, evalEvery: 1 }, iterations, 1, 'auto');
  return { round: 2, trial: 'reinit', start, mask, cfg };
}

/** The pool's thread in slot i (private: a test stands in for a crash by terminating it). */
function thread(pool: WorkerPool, i: number): Worker {
  return (pool as unknown as { slots: { worker: Worker }[] }).slots[i]!.worker;
}

test('a trial whose signal is already aborted fails as cancelled without running, and the thread stays free', async () => {
  const pool = new WorkerPool(1, ds, source, 'cpu');
  try {
    const ac = new AbortController();
    ac.abort();
    let progressed = 0;
    await assert.rejects(pool.run(job(3), { signal: ac.signal, onProgress: () => progressed++ }), RunCancelled);
    assert.equal(progressed, 0, 'no step of the cancelled trial ran');
    const done = await pool.run(job(2));
    assert.equal(done.metrics.curve.at(-1)?.[0], 2);
  } finally {
    await pool.dispose();
  }
});

test('a trial cancelled while it waits for a thread never reaches one', async () => {
  const pool = new WorkerPool(1, ds, source, 'cpu');
  try {
    const first = pool.run(job(3));
    const ac = new AbortController();
    let progressed = 0;
    const second = pool.run(job(3), { signal: ac.signal, onProgress: () => progressed++ });
    ac.abort();
    await assert.rejects(second, RunCancelled);
    assert.equal((await first).metrics.curve.at(-1)?.[0], 3);
    assert.equal(progressed, 0);
  } finally {
    await pool.dispose();
  }
});

test('a thread that dies mid-trial fails that trial, naming it, and a new thread runs the next', async () => {
  const pool = new WorkerPool(1, ds, source, 'cpu');
  try {
    const dying = thread(pool, 0);
    let killed = false;
    const running = pool.run(job(400), {
      onProgress: () => {
        if (!killed) {
          killed = true;
          void dying.terminate();
        }
      },
    });
    await assert.rejects(running, /trial worker exited with code 1 while it ran reinit of round 2/);
    assert.notEqual(thread(pool, 0), dying, 'the dead thread was replaced');
    const next = await pool.run(job(2));
    assert.equal(next.metrics.curve.at(-1)?.[0], 2);
  } finally {
    await pool.dispose();
  }
});

test('threads that cannot start fail every trial with why, one after another, instead of hanging', { timeout: 120_000 }, async () => {
  const pool = new WorkerPool(1, ds, source, 'no-such-backend');
  try {
    for (let i = 0; i < 3; i++) await assert.rejects(pool.run(job(2)), /trial worker failed to start: Unknown TF.js backend 'no-such-backend'/);
  } finally {
    await pool.dispose();
  }
});
