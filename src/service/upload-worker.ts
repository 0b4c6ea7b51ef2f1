// Worker-thread side of UploadPool: checks one model upload at a time
// (checkModelUpload), or a dataset upload (checkDatasetUpload) and posts back the files and architecture, or the error
// as plain data. Its TF.js backend is the pure-JS cpu one: building a model to
// inspect it needs no speed, and this thread must not compete with training
// for WASM threads or load a native addon a second time.
import { parentPort, threadId } from 'node:worker_threads';
import { initBackend } from '../runtime/backend.js';
import { ServiceError } from './errors.js';
import { checkModelUpload } from './models.js';
import { checkDatasetUpload } from './dataset-uploads.js';
import { transferables, type FromUploadWorker, type ToUploadWorker } from './upload-pool.js';

const port = parentPort!;
const ready = initBackend({ prefer: 'cpu' });
// A rejected start is reported with the first task, not as an unhandled rejection.
ready.catch(() => undefined);

/**
 * Failed checks after which this thread asks to be replaced. A file that
 * breaks the HDF5 reader midway (a corrupt Keras .h5) leaks a few hundred KB
 * of its WebAssembly memory that nothing can free; a fresh thread starts
 * with none, so a tenant sending broken files cannot grow the service.
 */
const RETIRE_AFTER_FAILURES = 16;
let failures = 0;

port.on('message', (msg: ToUploadWorker) => {
  void (async () => {
    let reply: FromUploadWorker;
    let transfer: ArrayBuffer[] = [];
    try {
      await ready;
      const result = msg.dataset ? await checkDatasetUpload(msg.upload, msg.dataset) : await checkModelUpload(msg.upload, msg.maxBytes, msg.limits);
      reply = { id: msg.id, ok: true, result, threadId };
      transfer = transferables(result.files.map((f) => f.bytes));
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      failures += 1;
      reply = {
        id: msg.id,
        ok: false,
        threadId,
        retire: failures >= RETIRE_AFTER_FAILURES,
        error: e instanceof ServiceError ? { name: err.name, message: err.message, code: e.code, field: e.field } : { name: err.name, message: err.message },
      };
    }
    port.postMessage(reply, transfer);
  })();
});
