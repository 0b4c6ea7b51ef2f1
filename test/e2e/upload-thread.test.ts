// Model uploads are checked off the event loop: the pool's thread is not the
// main thread, and while a large upload (a 32 MiB dense layer, gzip-packed) is
// being unpacked and built there, /healthz on the same server is answered.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { threadId } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { loadConfig } from '../../src/runtime/config.js';
import { createApiKey, openService, type ServiceRuntime } from '../../src/service/index.js';
import { uploadPool } from '../../src/service/upload-pool.js';
import { startTestDb, type TestDb } from '../integration/fixtures/harness.js';

let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let key: string;

before(async () => {
  // The large model's weights are all zeros, so its .tar.gz expands about 1000-fold: past the default ratio cap.
  t = await startTestDb();
  const config = loadConfig({ TICKETSMITH_DATA_DIR: t.dir, DATABASE_URL: t.db.url, TICKETSMITH_MAX_UPLOAD_BYTES: String(256 * 1024 * 1024), TICKETSMITH_MAX_MODEL_RATIO: '5000' });
  rt = await openService({ config, database: { url: t.db.url } });
  rest = await startRestServer(rt, { port: 0 });
  key = (await createApiKey(rt.ctx, 'acme')).key;
});
after(async () => {
  await rest?.stop(200);
  await rt?.stop();
  await t?.stop();
});

/** A tar of model.json + weights.bin for Dense(units) on `inputs` features (zero weights). */
function bigModelTarGz(inputs: number, units: number): Uint8Array<ArrayBuffer> {
  const weights = Buffer.alloc((inputs * units + units) * 4);
  const modelJson = Buffer.from(
    JSON.stringify({
      format: 'layers-model',
      modelTopology: {
        class_name: 'Sequential',
        config: { name: 'big', layers: [{ class_name: 'Dense', config: { name: 'dense', units, activation: 'linear', use_bias: true, batch_input_shape: [null, inputs], dtype: 'float32' } }] },
        keras_version: 'tfjs-layers 4.22.0',
        backend: 'tensor_flow.js',
      },
      weightsManifest: [{ paths: ['weights.bin'], weights: [{ name: 'dense/kernel', shape: [inputs, units], dtype: 'float32' }, { name: 'dense/bias', shape: [units], dtype: 'float32' }] }],
    }),
  );
  const entry = (name: string, data: Buffer) => {
    const h = Buffer.alloc(512);
    h.write(name, 0);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
  };
  return Uint8Array.from(gzipSync(Buffer.concat([entry('model.json', modelJson), entry('weights.bin', weights), Buffer.alloc(1024)])));
}

test('a large upload is checked in a worker thread while /healthz keeps answering', async () => {
  const pool = uploadPool(rt.ctx.config.uploadThreads);
  const starts: Array<{ threadId: number }> = [];
  let ended = false;
  const healthDuring: boolean[] = [];
  pool.events.on('task-start', (e: { threadId: number }) => {
    starts.push(e);
    // Asked from the main thread while the check runs in the pool.
    void fetch(`${rest.url}/healthz`).then((r) => healthDuring.push(r.status === 200 && !ended));
  });
  pool.events.once('task-end', () => (ended = true));
  const body = bigModelTarGz(2048, 4096);
  const res = await fetch(`${rest.url}/v1/models?name=big`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/gzip' }, body });
  assert.equal(res.status, 201, await res.clone().text());
  assert.equal(starts.length, 1);
  assert.notEqual(starts[0]!.threadId, threadId, 'not the main thread');
  assert.deepEqual(healthDuring, [true], '/healthz answered before the upload check ended');
});
