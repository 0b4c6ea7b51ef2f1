// Entry file of a conv-engine slice worker. tsx's module hooks do not reach
// worker threads on Node 20, so this plain-JavaScript entry registers them in
// the thread and then loads the TypeScript worker (in the compiled build,
// dist/, the JavaScript one beside this file, without tsx). If that fails, the thread
// flags it in the engine's control block itself: the calling thread waits
// for workers in Atomics.wait and cannot see this thread's 'error' event.
import { parentPort, workerData } from 'node:worker_threads';
import { existsSync } from 'node:fs';

try {
  const compiled = new URL('./slice-worker.js', import.meta.url);
  if (existsSync(compiled)) await import(compiled.href);
  else {
    (await import('tsx/esm/api')).register();
    await import(new URL('./slice-worker.ts', import.meta.url).href);
  }
} catch (err) {
  // Slots of threads.ts's CTL: FAILED = 7, DONE = 4, GENERATION = 6, READY = 8.
  const ctl = new Int32Array(workerData.memory.buffer, workerData.ctl, 16);
  parentPort?.postMessage({ error: `slice worker failed to start: ${err?.message ?? err}` });
  Atomics.store(ctl, 7, 1);
  for (const slot of [4, 6, 8]) Atomics.notify(ctl, slot);
}
