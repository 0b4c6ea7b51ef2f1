// A conv-engine slice worker (threads.ts): attaches the kernels to the
// engine's shared memory with its own stack, then runs its slice of every
// pass the calling thread publishes until told to exit. It blocks in
// Atomics.wait between passes, so it receives no messages; an error is
// flagged in the control block (and posted for the message) and ends it.
import { parentPort, workerData } from 'node:worker_threads';
import { attach } from '../../../runtime/simd/cnn-kernels.js';
import { WasmArena } from '../../../runtime/simd/arena.js';
import { runOptimiserShare, runSlice } from './engine.js';
import { sliceBounds, type EngineState } from './state.js';
import { CTL, CTL_INTS, barrierOn, passName, readStep, type WorkerInit } from './threads.js';

const init = workerData as WorkerInit;
const ctl = new Int32Array(init.memory.buffer, init.ctl, CTL_INTS);
try {
  const k = attach(init.memory, init.stack, init.module);
  const state: EngineState = {
    k,
    mem: new WasmArena(init.memory, 0),
    graph: init.graph,
    buf: init.buf,
    params: new Map(init.params),
    maxBatch: init.maxBatch,
    threads: init.threads,
    tmp: init.tmp,
    training: true,
    gradStride: 0,
    batch: 0,
  };
  const barrier = barrierOn(ctl, init.threads);
  // Read the sequence before saying ready: the first pass is published only after every worker is.
  let seq = Atomics.load(ctl, CTL.SEQ);
  Atomics.add(ctl, CTL.READY, 1);
  Atomics.notify(ctl, CTL.READY);
  for (;;) {
    // Idle between passes is unbounded: an engine waits here for its next step.
    while (Atomics.load(ctl, CTL.SEQ) === seq) Atomics.wait(ctl, CTL.SEQ, seq, 1000);
    seq = Atomics.load(ctl, CTL.SEQ);
    const pass = passName(Atomics.load(ctl, CTL.PASS));
    if (pass === 'exit') {
      // Counted as done: the memory may serve another engine once every worker has left it.
      Atomics.add(ctl, CTL.DONE, 1);
      Atomics.notify(ctl, CTL.DONE);
      break;
    }
    if (pass === 'update') {
      runOptimiserShare(k, init.opt, init.thread, readStep(ctl));
    } else {
      state.batch = Atomics.load(ctl, CTL.BATCH);
      state.training = Atomics.load(ctl, CTL.TRAINING) === 1;
      const slice = { thread: init.thread, scratch: init.scratch, ...sliceBounds(state.batch, init.threads, init.thread) };
      runSlice(state, pass, slice, barrier);
    }
    Atomics.add(ctl, CTL.DONE, 1);
    Atomics.notify(ctl, CTL.DONE);
  }
} catch (err) {
  parentPort?.postMessage({ error: (err as Error).message });
  Atomics.store(ctl, CTL.FAILED, 1);
  Atomics.add(ctl, CTL.DONE, 1);
  Atomics.notify(ctl, CTL.DONE);
  Atomics.notify(ctl, CTL.GENERATION);
}
