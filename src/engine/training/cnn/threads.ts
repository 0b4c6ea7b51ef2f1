// Both cores inside one step: the conv engine splits each batch into slices
// and runs slice t > 0 on worker thread t, which instantiates the kernels on
// the same shared memory (its own stack) and runs the same nodes (runSlice)
// on its rows. The threads meet through a control block of Int32s in that
// memory: the calling thread publishes a pass (sequence number, pass, batch,
// training) and runs slice 0; each worker runs its slice and counts itself
// done; BatchNorm's statistics wait at a barrier. Every wait is bounded, and
// a worker's error (or a worker that never starts) fails the pass instead
// of hanging it.
import { Worker } from 'node:worker_threads';
import type { CnnGraph } from './graph.js';
import type { NodeBuffers, Param } from './state.js';
import type { OptimiserPlan, OptimiserStep } from './engine.js';


/** Int32 slots of the control block. */
export const CTL = { SEQ: 0, PASS: 1, BATCH: 2, TRAINING: 3, DONE: 4, BARRIER: 5, GENERATION: 6, FAILED: 7, READY: 8 } as const;
/** Float32 slots of the same block: an update pass's scalars (written before the pass is published). */
export const CTL_F32 = { LR: 9, C1: 10, C2: 11 } as const;
export const CTL_INTS = 16;
/** A wait that outlasts this failed: something is wrong with a thread. */
export const WAIT_LIMIT_MS = 600_000;
/** How long dispose waits for the workers to say they left. */
const EXIT_WAIT_MS = 5_000;
const PASSES = ['forward', 'backward', 'exit', 'update'] as const;
export type PassName = (typeof PASSES)[number];

/** What a worker needs to rebuild the engine's state on its side (plain data + the shared memory). */
export interface WorkerInit {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  stack: number;
  graph: CnnGraph;
  buf: NodeBuffers[];
  params: Array<[number, Param[]]>;
  maxBatch: number;
  threads: number;
  tmp: number;
  ctl: number;
  thread: number;
  scratch: number;
  /** The optimiser's per-thread tables: an update pass runs this thread's share. */
  opt: OptimiserPlan;
}

export function passCode(p: PassName): number {
  return PASSES.indexOf(p);
}

export function passName(code: number): PassName {
  return PASSES[code]!;
}

/** Writes an update pass's scalars into the control block (before start publishes the pass). */
export function writeStep(ctl: Int32Array, s: OptimiserStep): void {
  const f = new Float32Array(ctl.buffer, ctl.byteOffset, CTL_INTS);
  f[CTL_F32.LR] = s.lr;
  f[CTL_F32.C1] = s.c1;
  f[CTL_F32.C2] = s.c2;
}

/** The scalars writeStep wrote, as the kernels take them (float32). */
export function readStep(ctl: Int32Array): OptimiserStep {
  const f = new Float32Array(ctl.buffer, ctl.byteOffset, CTL_INTS);
  return { lr: f[CTL_F32.LR]!, c1: f[CTL_F32.C1]!, c2: f[CTL_F32.C2]! };
}

/** A barrier for `threads` threads on the control block; throws when a thread failed or the wait outlasts WAIT_LIMIT_MS. */
export function barrierOn(ctl: Int32Array, threads: number): () => void {
  return () => {
    const gen = Atomics.load(ctl, CTL.GENERATION);
    if (Atomics.add(ctl, CTL.BARRIER, 1) === threads - 1) {
      Atomics.store(ctl, CTL.BARRIER, 0);
      Atomics.add(ctl, CTL.GENERATION, 1);
      Atomics.notify(ctl, CTL.GENERATION);
      return;
    }
    waitWhile(ctl, CTL.GENERATION, gen, 'a barrier');
  };
}

/** Waits while ctl[slot] === value (woken by notify), bounded, failing fast when a thread has failed. */
export function waitWhile(ctl: Int32Array, slot: number, value: number, what: string): void {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (Atomics.load(ctl, slot) === value) {
    if (Atomics.load(ctl, CTL.FAILED) !== 0) throw new Error(`conv engine: a worker thread failed during ${what}`);
    if (Date.now() > deadline) throw new Error(`conv engine: ${what} waited more than ${WAIT_LIMIT_MS / 1000} s`);
    Atomics.wait(ctl, slot, value, 50);
  }
}

/**
 * The worker threads of one engine (threads − 1 of them) and the calling
 * side of the protocol: start publishes a pass, finish waits for the workers.
 */
export class SliceWorkers {
  private readonly workers: Worker[] = [];
  private error: string | null = null;

  constructor(
    private readonly ctl: Int32Array,
    inits: WorkerInit[],
  ) {
    for (const init of inits) {
      const w = new Worker(new URL('./slice-worker-boot.mjs', import.meta.url), { workerData: init, execArgv: [] });
      w.on('message', (m: { error?: string }) => {
        if (m.error) this.error = m.error;
      });
      w.on('error', (err) => {
        this.error = err.message;
        Atomics.store(this.ctl, CTL.FAILED, 1);
        Atomics.notify(this.ctl, CTL.DONE);
        Atomics.notify(this.ctl, CTL.GENERATION);
      });
      w.unref();
      this.workers.push(w);
    }
  }

  /** Blocks until every worker has attached to the memory (bounded). */
  ready(): void {
    const want = this.workers.length;
    const deadline = Date.now() + WAIT_LIMIT_MS;
    for (let have = Atomics.load(this.ctl, CTL.READY); have < want; have = Atomics.load(this.ctl, CTL.READY)) {
      if (Atomics.load(this.ctl, CTL.FAILED) !== 0) throw new Error(`conv engine: a worker thread failed to start${this.error ? `: ${this.error}` : ''}`);
      if (Date.now() > deadline) throw new Error('conv engine: worker threads did not start');
      Atomics.wait(this.ctl, CTL.READY, have, 50);
    }
  }

  start(pass: PassName, batch: number, training: boolean): void {
    const c = this.ctl;
    Atomics.store(c, CTL.DONE, 0);
    Atomics.store(c, CTL.PASS, passCode(pass));
    Atomics.store(c, CTL.BATCH, batch);
    Atomics.store(c, CTL.TRAINING, training ? 1 : 0);
    Atomics.add(c, CTL.SEQ, 1);
    Atomics.notify(c, CTL.SEQ);
  }

  finish(): void {
    const want = this.workers.length;
    for (let done = Atomics.load(this.ctl, CTL.DONE); done < want; done = Atomics.load(this.ctl, CTL.DONE)) {
      waitWhile(this.ctl, CTL.DONE, done, 'a pass');
    }
    if (Atomics.load(this.ctl, CTL.FAILED) !== 0) throw new Error(`conv engine: a worker thread failed${this.error ? `: ${this.error}` : ''}`);
  }

  /**
   * Tells the workers to exit and ends them. True when every worker said it
   * left (within EXIT_WAIT_MS) and none had failed: only then may the memory
   * serve another engine, whose control block may sit where this one's does.
   */
  dispose(): boolean {
    const c = this.ctl;
    const healthy = Atomics.load(c, CTL.FAILED) === 0 && Atomics.load(c, CTL.READY) === this.workers.length;
    this.start('exit', 0, false);
    const deadline = Date.now() + EXIT_WAIT_MS;
    let left = Atomics.load(c, CTL.DONE);
    while (healthy && left < this.workers.length && Date.now() < deadline && Atomics.load(c, CTL.FAILED) === 0) {
      Atomics.wait(c, CTL.DONE, left, 50);
      left = Atomics.load(c, CTL.DONE);
    }
    for (const w of this.workers) void w.terminate();
    return healthy && left === this.workers.length && Atomics.load(c, CTL.FAILED) === 0;
  }
}
