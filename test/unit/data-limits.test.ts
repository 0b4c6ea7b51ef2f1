// Size limits on dataset files: a tenant's URL or archive must not be able
// to exhaust a worker's memory.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'fflate';
import { DatasetError, loadDataset } from '../../src/engine/data/index.js';
import { maybeGunzip } from '../../src/engine/data/bytes.js';
import { listenLoopback, loopbackAccess } from './fixtures/scratch.js';

// The caps come with the load (DataAccess.limits; the runtime reads TICKETSMITH_MAX_DATASET_BYTES into them).
const limits = { maxBytes: 1000, maxRatio: 200 };

let server: { base: string; close(): Promise<void> };
before(async () => {
  const big = new Uint8Array(5000);
  server = await listenLoopback((req, res) => {
    if (req.url === '/declared/x.npz') res.writeHead(200, { 'content-length': big.length }).end(big);
    else if (req.url === '/chunked/x.npz') {
      res.writeHead(200); // no content-length: the limit must hold while streaming
      for (let i = 0; i < 5; i++) res.write(big.subarray(0, 1000));
      res.end();
    } else res.writeHead(404).end();
  });
});
after(async () => {
  await server.close();
});

test('a download over the limit is refused, declared or streamed', async () => {
  for (const path of ['/declared/x.npz', '/chunked/x.npz']) {
    await assert.rejects(loadDataset(`${server.base}${path}`, { access: { ...loopbackAccess, limits } }), (e: unknown) => {
      assert.ok(e instanceof DatasetError, `DatasetError expected, got ${String(e)}`);
      assert.match(e.message, /larger than the 1000-byte limit/);
      return true;
    });
  }
});

test('a gzip stream that would expand past the limit is refused before inflating', () => {
  const bomb = gzipSync(new Uint8Array(4000));
  assert.ok(bomb.length < 1000, `compressed ${bomb.length} bytes`);
  assert.throws(() => maybeGunzip(bomb, 'bomb.gz', 'train_images', limits), /unpacks to more than the 1000-byte limit/);
  assert.equal(maybeGunzip(gzipSync(new Uint8Array(500)), 'ok.gz', 'train_images', limits).length, 500);
});

test('an NPZ archive whose members unpack past the limit is refused before inflating', async () => {
  const { zipSync } = await import('fflate');
  const { parseNpz } = await import('../../src/engine/data/npy.js');
  const npz = zipSync({ 'x_train.npy': new Uint8Array(3000) }, { level: 9 });
  assert.ok(npz.length < 1000, `archive ${npz.length} bytes`);
  assert.throws(() => parseNpz(npz, 'bomb.npz', 'reference', limits), /unpacks to more than the 1000-byte limit/);
});
