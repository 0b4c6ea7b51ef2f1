// Multi-threading for the WASM backend under Node (XNNPACK's thread
// pool on the package's threaded-SIMD binary).
//
// tfjs-backend-wasm 4.22 turns threads off in Node because its pthread
// workers start from blob: URLs, which worker_threads cannot load. Three
// things make it work, all before the backend initialises:
//  - the WASM_HAS_MULTITHREAD_SUPPORT flag is forced on;
//  - the global `Worker` the Emscripten glue uses is a subclass that starts
//    wasm-pthread-worker.cjs instead of a blob: URL (that file explains the rest);
//  - the glue sizes the pool as os.cpus().length / 2 (it assumes two
//    hyper-threads per core) and never above it, so os.cpus is padded while
//    the module instantiates and restored right after.
// The pool workers are unref'd once initialisation is over, so they never
// keep a finished process alive.
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker as NodeWorker, type WorkerOptions } from 'node:worker_threads';
import { env } from '@tensorflow/tfjs';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';

const workerFile = fileURLToPath(new URL('./wasm-pthread-worker.cjs', import.meta.url));

const poolWorkers = new Set<NodeWorker>();
let initialised = false;

class PthreadWorker extends NodeWorker {
  constructor(url: string | URL, options?: WorkerOptions) {
    const pthread = String(url).startsWith('blob:');
    // That worker is plain CommonJS: it must not inherit the parent's loaders
    // or flags (`--import tsx`, `--input-type`, ...), some of which abort it.
    super(pthread ? workerFile : url, pthread ? { ...options, execArgv: [] } : options);
    poolWorkers.add(this);
    if (initialised) this.unref();
  }
}

let shimInstalled = false;

function installWorkerShim(): void {
  if (shimInstalled) return;
  // The glue assigns worker_threads.Worker to the global at start-up; the
  // setter swallows that so its `new Worker(...)` finds the subclass.
  Object.defineProperty(globalThis, 'Worker', {
    configurable: true,
    get: () => PthreadWorker,
    set: () => undefined,
  });
  shimInstalled = true;
}

/**
 * Prepares the next WASM backend initialisation to run `threads` XNNPACK
 * threads. Call before the backend is first initialised; call the returned
 * function once initialisation has finished (or failed).
 */
export function prepareWasmThreads(threads: number): () => void {
  if (!Number.isInteger(threads) || threads < 2) throw new Error(`WASM threads must be an integer >= 2, got ${threads}`);
  env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  setThreadsCount(threads);
  installWorkerShim();
  const realCpus = os.cpus;
  const spare: os.CpuInfo = { model: 'padding', speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } };
  const padded = (): os.CpuInfo[] => {
    const cpus = realCpus();
    while (cpus.length < 2 * threads) cpus.push(cpus[0] ?? spare);
    return cpus;
  };
  (os as { cpus: typeof os.cpus }).cpus = padded;
  return () => {
    (os as { cpus: typeof os.cpus }).cpus = realCpus;
    initialised = true;
    for (const w of poolWorkers) w.unref();
  };
}
