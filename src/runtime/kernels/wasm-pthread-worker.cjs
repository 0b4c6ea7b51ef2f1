// Pthread worker for the threaded-SIMD WASM backend under Node (opt-in, see
// wasm-threads.ts).
//
// tfjs-backend-wasm 4.22 starts each pthread worker from a blob: URL and then
// sends it the Emscripten factory as a Blob to import. Node's worker_threads
// can neither start from nor import blob: URLs, and the Blob holds the
// factory as rewritten by the package's bundler (it refers to bundle-private
// names such as require$$0), so it cannot run on its own anyway. This worker
// runs the package's stock worker script and points its 'load' step at the
// package's own, unbundled copy of the same factory instead.
'use strict';
const path = require('node:path');
const { parentPort } = require('node:worker_threads');

const wasmOut = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
const factoryFile = path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js');
const { wasmWorkerContents } = require(path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js'));

// Wrap the stock script's one message subscription so 'load' can be rewritten.
const subscribe = parentPort.on.bind(parentPort);
parentPort.on = (event, handler) => {
  if (event !== 'message') return subscribe(event, handler);
  return subscribe('message', (data) => {
    if (data && data.cmd === 'load' && typeof data.urlOrBlob !== 'string') data.urlOrBlob = factoryFile;
    handler(data);
  });
};
// The script expects a classic-worker scope (require, __filename). Its
// template literal turned the script's "\n" escapes into real newlines; undo
// that, as the package does before making its own Blob.
new Function('require', '__filename', wasmWorkerContents.replace(/\n/g, '\\n'))(require, __filename);
parentPort.on = subscribe;
