// CIFAR-10 binary reader: records written by the test, CHW -> HWC conversion
// checked value by value and through a real TF.js tensor.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { DatasetError, loadDataset } from '../../src/engine/data/index.js';
import { listenLoopback, scratchDirs, loopbackAccess } from './fixtures/scratch.js';
import { encodeCifarBatch } from '../../src/engine/data/encode.js';

/** Byte of channel c at plane position p of record r: distinct enough to catch any transposition. */
const byte = (r: number, c: number, p: number) => (r * 7 + c * 85 + p) % 256;
const record = (r: number, label: number) => ({
  label,
  pixels: Array.from({ length: 3072 }, (_, i) => byte(r, Math.floor(i / 1024), i % 1024)),
});

const scratch = scratchDirs('ts-data-cifar-');
const makeDir = scratch.make;
const url = (dir: string) => pathToFileURL(dir).href;

async function rejects(p: Promise<unknown>, field: string, message: RegExp, file: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof DatasetError, String(err));
    assert.equal(err.field, field, err.message);
    assert.match(err.message, message);
    assert.equal(err.file, file);
    assert.ok(err.message.includes(file), err.message);
    return true;
  });
}

const batch1 = encodeCifarBatch([record(0, 3), record(1, 9)]);
const batch2 = encodeCifarBatch([record(2, 0)]);
const batch10 = encodeCifarBatch([record(3, 5)]);
const testBatch = encodeCifarBatch([record(4, 7), record(5, 1)]);

describe('CIFAR-10 batches', () => {
  test('CHW records become HWC floats in [0, 1]; labels kept; test in file order', async () => {
    const dir = await makeDir({ 'data_batch_1.bin': batch1, 'test_batch.bin': testBatch });
    const ds = await loadDataset(url(dir), { validationFraction: 0 });
    assert.deepEqual(ds.inputShape, [32, 32, 3]);
    assert.equal(ds.numClasses, 10);
    assert.equal(ds.test.n, 2);
    assert.deepEqual(Array.from(ds.test.y), [7, 1]);
    // Pixel (h=1, w=2), channel c of test record 0 sits at HWC index ((1*32)+2)*3 + c.
    const p = 1 * 32 + 2;
    for (let c = 0; c < 3; c++) assert.equal(ds.test.x[p * 3 + c], Math.fround(byte(4, c, p) / 255));
    // Every value of both test records, exactly.
    for (let r = 0; r < 2; r++) {
      for (let q = 0; q < 1024; q++) {
        for (let c = 0; c < 3; c++) {
          assert.equal(ds.test.x[r * 3072 + q * 3 + c], Math.fround(byte(4 + r, c, q) / 255));
        }
      }
    }
    const labels = Array.from(ds.train.y).sort();
    assert.deepEqual(labels, [3, 9]);
  });

  test('a TF.js NHWC tensor built from the split reads the right pixels', async () => {
    const dir = await makeDir({ 'data_batch_1.bin': batch1, 'test_batch.bin': testBatch });
    const ds = await loadDataset(url(dir));
    const before = tf.memory().numTensors;
    const pixel = tf.tidy(() =>
      tf.tensor4d(ds.test.x, [ds.test.n, 32, 32, 3]).slice([1, 31, 0, 0], [1, 1, 1, 3]).reshape([3]).arraySync(),
    );
    assert.equal(tf.memory().numTensors, before);
    // Row 31, column 0 of test record 1.
    const p = 31 * 32 + 0;
    assert.deepEqual(pixel, [0, 1, 2].map((c) => Math.fround(byte(5, c, p) / 255)));
  });

  test('batches are read in numeric order (1, 2, 10): that is the sha256 order', async () => {
    const dir = await makeDir({
      'data_batch_10.bin': batch10,
      'data_batch_2.bin': batch2,
      'data_batch_1.bin': batch1,
      'test_batch.bin': testBatch,
    });
    const ds = await loadDataset(url(dir), { validationFraction: 0.25 });
    assert.equal(ds.train.n + ds.validation.n, 4);
    assert.equal(ds.validation.n, 1);
    const expected = createHash('sha256').update(batch1).update(batch2).update(batch10).update(testBatch).digest('hex');
    assert.equal(ds.sha256, expected);
    assert.deepEqual([...ds.train.y, ...ds.validation.y].sort(), [0, 3, 5, 9]);
  });

  test('the official tarball layout (cifar-10-batches-bin/) is found from its parent', async () => {
    const dir = await makeDir({ 'cifar-10-batches-bin/data_batch_1.bin': batch1, 'cifar-10-batches-bin/test_batch.bin': testBatch });
    const ds = await loadDataset(url(dir));
    assert.equal(ds.test.n, 2);
  });

  test('explicit batch lists as options', async () => {
    const dir = await makeDir({ 'a.bin': batch2, 'b.bin': batch10, 't.bin': testBatch });
    const ds = await loadDataset(`${url(dir)}?train=a.bin,b.bin&test=t.bin`, { validationFraction: 0 });
    assert.deepEqual(Array.from(ds.train.y).sort(), [0, 5]);
  });
});

describe('CIFAR-10 errors', () => {
  test('a size that is not a whole number of 3073-byte records', async () => {
    const dir = await makeDir({ 'data_batch_1.bin': batch1.subarray(0, 3073 + 100), 'test_batch.bin': testBatch });
    await rejects(loadDataset(url(dir)), 'train', /truncated or corrupt CIFAR-10 batch \(3173 bytes .* 1 whole records \+ 100 bytes\)/, join(dir, 'data_batch_1.bin'));
  });

  test('label byte >= 10', async () => {
    const bad = encodeCifarBatch([record(0, 1), record(1, 12)]);
    const dir = await makeDir({ 'data_batch_1.bin': batch1, 'test_batch.bin': bad });
    await rejects(loadDataset(url(dir)), 'test', /label 12 of record 1 is out of range \[0, 10\)/, join(dir, 'test_batch.bin'));
  });

  test('missing test batch', async () => {
    const dir = await makeDir({ 'data_batch_1.bin': batch1 });
    await rejects(loadDataset(url(dir)), 'test', /file not found/, join(dir, 'test_batch.bin'));
  });

  test('empty batch file', async () => {
    const dir = await makeDir({ 'data_batch_1.bin': new Uint8Array(0), 'test_batch.bin': testBatch });
    await rejects(loadDataset(url(dir)), 'train', /empty CIFAR-10 batch file/, join(dir, 'data_batch_1.bin'));
  });
});

describe('CIFAR-10 over http (loopback)', () => {
  let close: () => Promise<void>;
  let base: string;
  before(async () => {
    const served = new Map([['/c/data_batch_1.bin', batch1], ['/c/test_batch.bin', testBatch]]);
    ({ base, close } = await listenLoopback((req, res) => {
      const body = served.get(req.url ?? '');
      if (body === undefined) res.writeHead(404).end();
      else res.writeHead(200).end(body);
    }));
  });
  after(() => close());

  test('named batches under a base URL', async () => {
    const ds = await loadDataset(`${base}/c/#format=cifar10&train=data_batch_1.bin`, { access: loopbackAccess });
    assert.equal(ds.test.n, 2);
    assert.equal(ds.name, 'c');
    assert.equal(ds.sha256, createHash('sha256').update(batch1).update(testBatch).digest('hex'));
  });

  test('without names the five standard batches are expected', async () => {
    await rejects(loadDataset(`${base}/c/#format=cifar10`, { access: loopbackAccess }), 'train', /file not found/, `${base}/c/data_batch_2.bin`);
  });
});
