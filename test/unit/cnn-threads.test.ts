// The conv engine's worker threads fail fast instead of hanging: a slice
// worker that cannot build its state flags the failure in the control block,
// and the calling thread (blocked in Atomics.wait, so deaf to the worker's
// 'error' event) stops waiting with the worker's message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CnnKernels, cnnModule } from '../../src/runtime/simd/cnn-kernels.js';
import { CTL, CTL_INTS, SliceWorkers, type WorkerInit } from '../../src/engine/training/cnn/threads.js';

test('a slice worker that fails while starting fails the wait for it within seconds, with its message', () => {
  const mem = new CnnKernels();
  const ctlAt = mem.alloc(CTL_INTS);
  const stack = mem.allocStack();
  const ctl = mem.i32(ctlAt, CTL_INTS);
  // A module that wants an unshared memory: instantiating it on the engine's shared one throws in the worker.
  const unshared = new WebAssembly.Module(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 2, 0x0f, 1, 3, 0x65, 0x6e, 0x76, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0, 1]));
  assert.doesNotThrow(() => cnnModule());
  const init = { memory: mem.memory, module: unshared, stack, ctl: ctlAt, thread: 1, threads: 2, params: [], buf: [], maxBatch: 1, tmp: 0, scratch: 0 } as unknown as WorkerInit;
  const workers = new SliceWorkers(ctl, [init]);
  const started = Date.now();
  assert.throws(() => workers.ready(), /conv engine: a worker thread failed to start/);
  assert.ok(Date.now() - started < 60_000, `took ${Date.now() - started} ms`);
  assert.equal(Atomics.load(ctl, CTL.FAILED), 1);
  workers.dispose();
});
