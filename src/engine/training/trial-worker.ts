// Worker-thread side of WorkerPool: one TF.js backend, one model and one
// dataset shared by every thread (uploaded to this thread's backend only if
// the TF.js loop trains); runs the trials it is sent, one at a time.
import { parentPort } from 'node:worker_threads';
import type { Dataset } from '../types.js';
import { TrialRunner, movableBuffers, type FromWorker, type ModelSource, type TrialJob } from './trial.js';
import { initBackend } from '../../runtime/backend.js';

type Msg =
  | { type: 'init'; dataset: Dataset; source: ModelSource; backend?: string }
  | { type: 'run'; id: number; job: TrialJob }
  | { type: 'abort'; id: number };

const port = parentPort!;
let runner: TrialRunner | null = null;
const aborts = new Map<number, AbortController>();
const post = (m: FromWorker) => port.postMessage(m);

port.on('message', (msg: Msg) => {
  if (msg.type === 'init') {
    initBackend(msg.backend ? { prefer: msg.backend } : undefined).then(
      (info) => {
        runner = new TrialRunner(msg.dataset, msg.source, { modelFree: true });
        post({ type: 'ready', backend: info.name });
      },
      (err: Error) => post({ type: 'error', id: 0, name: err.name, message: err.message }),
    );
  } else if (msg.type === 'abort') {
    aborts.get(msg.id)?.abort();
  } else {
    const ac = new AbortController();
    aborts.set(msg.id, ac);
    runner!
      .run(msg.job, { signal: ac.signal, onProgress: (progress) => post({ type: 'progress', id: msg.id, progress }) })
      .then(
        (result) => port.postMessage({ type: 'done', id: msg.id, result } satisfies FromWorker, movableBuffers(result)),
        (err: Error) => post({ type: 'error', id: msg.id, name: err.name, message: err.message }),
      )
      .finally(() => aborts.delete(msg.id));
  }
});
