// IDX reader: hand-made files (plain and gzipped) on disk and over loopback http.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'fflate';
import { DatasetError, loadDataset } from '../../src/engine/data/index.js';
import { listenLoopback, scratchDirs, loopbackAccess } from './fixtures/scratch.js';
import { encodeIdx } from '../../src/engine/data/encode.js';
import type { Dataset } from '../../src/engine/types.js';

// Three 2x2 training images with distinct labels, so each can be found after the shuffle.
const TRAIN_PIXELS = [0, 255, 51, 102, 255, 0, 0, 255, 10, 20, 30, 40];
const TRAIN_LABELS = [2, 0, 1];
const TEST_PIXELS = [0, 0, 0, 0, 255, 255, 255, 255];
const TEST_LABELS = [1, 2];

const files = {
  'train-images-idx3-ubyte': encodeIdx('ubyte', [3, 2, 2], TRAIN_PIXELS),
  'train-labels-idx1-ubyte': encodeIdx('ubyte', [3], TRAIN_LABELS),
  't10k-images-idx3-ubyte': encodeIdx('ubyte', [2, 2, 2], TEST_PIXELS),
  't10k-labels-idx1-ubyte': encodeIdx('ubyte', [2], TEST_LABELS),
};
type Name = keyof typeof files;
const NAMES = Object.keys(files) as Name[];

const scratch = scratchDirs('ts-data-idx-');
const makeDir = scratch.make;
const url = (dir: string) => pathToFileURL(dir).href;

/** Training examples (train + validation) keyed by label, as pixel arrays. */
function byLabel(ds: Dataset): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const split of [ds.train, ds.validation]) {
    for (let i = 0; i < split.n; i++) out.set(split.y[i], Array.from(split.x.subarray(i * 4, (i + 1) * 4)));
  }
  return out;
}

async function rejects(p: Promise<unknown>, field: string, message: RegExp, file?: string): Promise<DatasetError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DatasetError, `expected DatasetError, got ${String(err)}`);
    assert.equal(err.field, field, err.message);
    assert.match(err.message, message);
    if (file !== undefined) {
      assert.equal(err.file, file);
      assert.ok(err.message.includes(file), `message names the file: ${err.message}`);
    }
    return err;
  }
  assert.fail('expected a DatasetError');
}

describe('IDX encoding', () => {
  test('header is the LeCun layout: 00 00 type rank, big-endian dims', () => {
    const bytes = encodeIdx('ubyte', [3, 2, 2], TRAIN_PIXELS);
    assert.deepEqual(Array.from(bytes.subarray(0, 16)), [0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2]);
    assert.equal(bytes.length, 16 + 12);
  });
});

describe('IDX directory', () => {
  test('plain files: ubyte pixels scaled by 1/255, labels and split sizes exact', async () => {
    const dir = await makeDir(files);
    const ds = await loadDataset(url(dir), { validationFraction: 0.34 });
    assert.equal(ds.name, dir.split('/').pop());
    assert.equal(ds.reference, url(dir));
    assert.deepEqual(ds.inputShape, [2, 2, 1]);
    assert.equal(ds.numClasses, 3);
    assert.equal(ds.validation.n, 1); // round(0.34 * 3)
    assert.equal(ds.train.n, 2);
    const seen = byLabel(ds);
    const close = (a: number[] | undefined, b: number[]) => b.forEach((v, i) => assert.ok(Math.abs(a![i] - v) < 1e-7, `${a} vs ${b}`));
    close(seen.get(2), [0, 1, 0.2, 0.4]);
    close(seen.get(0), [1, 0, 0, 1]);
    close(seen.get(1), [10 / 255, 20 / 255, 30 / 255, 40 / 255]);
    // Test keeps file order.
    assert.deepEqual(Array.from(ds.test.y), TEST_LABELS);
    assert.deepEqual(Array.from(ds.test.x), [0, 0, 0, 0, 1, 1, 1, 1]);
    // sha256 = the four files in order train images, train labels, test images, test labels.
    const h = createHash('sha256');
    for (const n of NAMES) h.update(files[n]);
    assert.equal(ds.sha256, h.digest('hex'));
  });

  test('gzipped files (.gz names) load to the same values; sha256 is of the bytes read', async () => {
    const gz = Object.fromEntries(NAMES.map((n) => [`${n}.gz`, gzipSync(files[n])]));
    const dir = await makeDir(gz);
    const plain = await loadDataset(url(await makeDir(files)), { seed: 3 });
    const zipped = await loadDataset(url(dir), { seed: 3 });
    assert.deepEqual(zipped.train, plain.train);
    assert.deepEqual(zipped.test, plain.test);
    const h = createHash('sha256');
    for (const n of NAMES) h.update(gz[`${n}.gz`]);
    assert.equal(zipped.sha256, h.digest('hex'));
    assert.notEqual(zipped.sha256, plain.sha256);
  });

  test('gzip is detected by magic bytes, not by name; dotted names are found too', async () => {
    const dir = await makeDir({
      'train-images.idx3-ubyte': gzipSync(files['train-images-idx3-ubyte']),
      'train-labels.idx1-ubyte': files['train-labels-idx1-ubyte'],
      't10k-images.idx3-ubyte': files['t10k-images-idx3-ubyte'],
      't10k-labels.idx1-ubyte': files['t10k-labels-idx1-ubyte'],
    });
    const ds = await loadDataset(url(dir));
    assert.equal(ds.train.n + ds.validation.n, 3);
  });

  test('explicit file names as options, with classes pinned', async () => {
    const dir = await makeDir({ a: files['train-images-idx3-ubyte'], b: files['train-labels-idx1-ubyte'], c: files['t10k-images-idx3-ubyte'], d: files['t10k-labels-idx1-ubyte'] });
    const ds = await loadDataset(`${url(dir)}?train_images=a&train_labels=b&test_images=c&test_labels=d&classes=10`);
    assert.equal(ds.numClasses, 10);
    assert.deepEqual(Array.from(ds.test.y), TEST_LABELS);
  });

  test('rank-4 ubyte and float images keep their channels and values', async () => {
    const dir = await makeDir({
      'train-images-idx3-ubyte': encodeIdx('float', [2, 1, 1, 3], [0, 0.5, 1, 0.25, 0.75, 0.125]),
      'train-labels-idx1-ubyte': encodeIdx('int', [2], [0, 1]),
      't10k-images-idx3-ubyte': encodeIdx('double', [1, 1, 1, 3], [0.1, 0.2, 0.3]),
      't10k-labels-idx1-ubyte': encodeIdx('ubyte', [1], [1]),
    });
    const ds = await loadDataset(url(dir), { validationFraction: 0 });
    assert.deepEqual(ds.inputShape, [1, 1, 3]);
    assert.deepEqual(Array.from(ds.test.x), [Math.fround(0.1), Math.fround(0.2), Math.fround(0.3)]);
    const first = ds.train.y[0] === 0 ? 0 : 1;
    assert.deepEqual(Array.from(ds.train.x.subarray(first * 3, first * 3 + 3)), [0, 0.5, 1]);
  });
});

describe('IDX errors name the file and the problem', () => {
  test('wrong magic', async () => {
    const dir = await makeDir({ ...files, 'train-images-idx3-ubyte': new Uint8Array([0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0]) });
    const f = join(dir, 'train-images-idx3-ubyte');
    await rejects(loadDataset(url(dir)), 'train_images', /not an IDX file \(magic bytes 12 34 56 78/, f);
  });

  test('data shorter than the header says', async () => {
    const dir = await makeDir({ ...files, 'train-images-idx3-ubyte': files['train-images-idx3-ubyte'].subarray(0, 20) });
    const f = join(dir, 'train-images-idx3-ubyte');
    await rejects(loadDataset(url(dir)), 'train_images', /truncated IDX data \(header says 3x2x2 ubyte = 12 bytes, file has 4 bytes/, f);
  });

  test('truncated header', async () => {
    const dir = await makeDir({ ...files, 't10k-labels-idx1-ubyte': new Uint8Array([0, 0, 8, 1, 0, 0]) });
    await rejects(loadDataset(url(dir)), 'test_labels', /truncated IDX header \(rank 1 needs 8 bytes, file has 6\)/, join(dir, 't10k-labels-idx1-ubyte'));
  });

  test('image and label counts differ', async () => {
    const dir = await makeDir({ ...files, 'train-labels-idx1-ubyte': encodeIdx('ubyte', [2], [0, 1]) });
    const f = join(dir, 'train-labels-idx1-ubyte');
    await rejects(loadDataset(url(dir)), 'train_labels', /2 labels but .*train-images-idx3-ubyte has 3 images/, f);
  });

  test('label out of range of a pinned class count', async () => {
    const dir = await makeDir(files);
    await rejects(loadDataset(`${url(dir)}?classes=2`), 'train_labels', /label 2 at index 0 is out of range \[0, 2\)/, join(dir, 'train-labels-idx1-ubyte'));
  });

  test('negative label', async () => {
    const dir = await makeDir({ ...files, 't10k-labels-idx1-ubyte': encodeIdx('byte', [2], [1, -1]) });
    await rejects(loadDataset(url(dir)), 'test_labels', /label -1 at index 1 is negative/, join(dir, 't10k-labels-idx1-ubyte'));
  });

  test('float pixel outside [0, 1]', async () => {
    const dir = await makeDir({ ...files, 't10k-images-idx3-ubyte': encodeIdx('float', [2, 2, 2], [0, 0, 0, 0, 0, 0, 0, 2]) });
    await rejects(loadDataset(url(dir)), 'test_images', /float pixel 2 at element 7 is outside \[0, 1\]/, join(dir, 't10k-images-idx3-ubyte'));
  });

  test('test images of another shape', async () => {
    const dir = await makeDir({ ...files, 't10k-images-idx3-ubyte': encodeIdx('ubyte', [2, 1, 4], TEST_PIXELS) });
    await rejects(loadDataset(url(dir)), 'test_images', /test images are 1x4x1 but training images .* are 2x2x1/, join(dir, 't10k-images-idx3-ubyte'));
  });

  test('empty split', async () => {
    const dir = await makeDir({ ...files, 't10k-images-idx3-ubyte': encodeIdx('ubyte', [0, 2, 2], []), 't10k-labels-idx1-ubyte': encodeIdx('ubyte', [0], []) });
    await rejects(loadDataset(url(dir)), 'test_images', /empty split \(0 examples\)/, join(dir, 't10k-images-idx3-ubyte'));
  });

  test('missing file lists what was tried', async () => {
    const { 't10k-labels-idx1-ubyte': _, ...rest } = files;
    const dir = await makeDir(rest);
    await rejects(loadDataset(url(dir)), 'test_labels', /file not found \(tried .*t10k-labels-idx1-ubyte\.gz, .*t10k-labels-idx1-ubyte, .*t10k-labels\.idx1-ubyte\)/, join(dir, 't10k-labels-idx1-ubyte.gz'));
  });

  test('corrupt gzip: a flipped payload byte fails the CRC', async () => {
    // Level 0 stores the bytes verbatim, so flipping one is still valid deflate: only the CRC catches it.
    const gz = gzipSync(files['train-labels-idx1-ubyte'], { level: 0 });
    gz[gz.length - 9] ^= 0x01;
    const dir = await makeDir({ ...files, 'train-labels-idx1-ubyte': undefined, 'train-labels-idx1-ubyte.gz': gz });
    await rejects(loadDataset(url(dir)), 'train_labels', /corrupt gzip data \(CRC-32 mismatch\)/, join(dir, 'train-labels-idx1-ubyte.gz'));
  });

  test('truncated gzip', async () => {
    const gz = gzipSync(files['train-images-idx3-ubyte']);
    const dir = await makeDir({ ...files, 'train-images-idx3-ubyte': gz.subarray(0, gz.length - 6) });
    await rejects(loadDataset(url(dir)), 'train_images', /corrupt (or truncated )?gzip data/, join(dir, 'train-images-idx3-ubyte'));
  });

  test('a directory without dataset files', async () => {
    const dir = await makeDir({ 'README.txt': new Uint8Array([65]) });
    await rejects(loadDataset(url(dir)), 'reference', /no dataset files found/, dir);
  });

  test('a directory that does not exist', async () => {
    const dir = join(scratch.root(), 'nope');
    await rejects(loadDataset(url(dir)), 'reference', /no such file or directory/, dir);
  });
});

describe('IDX over http (loopback)', () => {
  let close: () => Promise<void>;
  let base: string;
  const hits: string[] = [];
  const served = new Map<string, Uint8Array>(NAMES.map((n) => [`/mnist/${n}.gz`, gzipSync(files[n])]));

  before(async () => {
    ({ base, close } = await listenLoopback((req, res) => {
      hits.push(req.url ?? '');
      if (req.url === '/broken/train-images-idx3-ubyte.gz') {
        res.writeHead(500, 'Internal Server Error').end();
        return;
      }
      const body = served.get(req.url ?? '');
      if (body === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    }));
  });
  after(() => close());

  test('standard .gz names under a base URL, cached in cacheDir, same data as from disk', async () => {
    const cacheDir = join(scratch.root(), 'cache');
    const ref = `${base}/mnist/#format=idx`;
    const ds = await loadDataset(ref, { cacheDir, seed: 5, access: loopbackAccess });
    const local = await loadDataset(url(await makeDir(files)), { seed: 5 });
    assert.deepEqual(ds.train, local.train);
    assert.deepEqual(ds.test, local.test);
    assert.equal(ds.name, 'mnist');
    assert.equal((await readdir(cacheDir)).length, 4);
    const before = hits.length;
    const again = await loadDataset(ref, { cacheDir, seed: 5, access: loopbackAccess });
    assert.equal(hits.length, before, 'second load is served from the cache');
    assert.equal(again.sha256, ds.sha256);
  });

  test('HTTP 500 names the URL and the status', async () => {
    const u = `${base}/broken/train-images-idx3-ubyte.gz`;
    await rejects(loadDataset(`${base}/broken/#format=idx`, { access: loopbackAccess }), 'train_images', /HTTP 500 Internal Server Error/, u);
  });

  test('file names of an http reference may not leave http(s)', async () => {
    await rejects(loadDataset(`${base}/mnist/#train_images=file:///etc/hostname`, { access: loopbackAccess }), 'train_images', /file:\/\/\/etc\/hostname: files of an http\(s\) reference must be http\(s\) URLs/, 'file:///etc/hostname');
  });

  test('404 on every candidate is a missing file', async () => {
    await rejects(loadDataset(`${base}/none/#format=idx`, { access: loopbackAccess }), 'train_images', /file not found/, `${base}/none/train-images-idx3-ubyte.gz`);
  });

  test('connection refused is a download failure, not a stack trace', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const addr = probe.address();
    assert.ok(addr !== null && typeof addr === 'object', "addr !== null && typeof addr === 'object'");
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const u = `http://127.0.0.1:${addr.port}/x/train-images-idx3-ubyte.gz`;
    await rejects(loadDataset(`http://127.0.0.1:${addr.port}/x/#format=idx`, { access: loopbackAccess }), 'train_images', /download failed \(.*(ECONNREFUSED|fetch failed)/, u);
  });
});
