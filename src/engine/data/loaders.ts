// One loader per on-disk format (IDX, CIFAR-10 binary, NPY, NPZ): find the
// files of a reference, read them in the format's fixed order (that order is
// the sha256 order), decode, and pair images with labels. Image folders are
// located here too (a directory of class folders, or a .zip that is not an
// NPZ) and loaded by ./images/load.ts.

import { createHash } from 'node:crypto';
import { open, readdir, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { isGzip, isZip, maybeGunzip } from './bytes.js';
import { zipHoldsOnlyNpy } from './images/archive.js';
import { readArchive, shownName } from './images/load.js';
import { CIFAR_CHANNELS, CIFAR_CLASSES, CIFAR_SIDE, concatBatches, parseCifarBatch } from './cifar.js';
import { DatasetError, describeError } from './errors.js';
import type { Examples, Images, LoadedData } from './examples.js';
import { idxImages, idxLabels, parseIdx } from './idx.js';
import { npyImages, npyLabels, parseNpy, parseNpz } from './npy.js';
import type { DatasetFormat, DatasetReference } from './reference.js';
import { confineFile } from './access.js';
import { childLocation, datasetLimits, describeLocation, read, readFirst } from './source.js';
import type { Location, ReadOptions } from './source.js';

type LocationReference = Extract<DatasetReference, { kind: 'location' }>;

/** Hashes raw bytes as they are read; callers read in the format's fixed order. */
class Digest {
  private readonly hash = createHash('sha256');
  add(bytes: Uint8Array): Uint8Array {
    this.hash.update(bytes);
    return bytes;
  }
  hex(): string {
    return this.hash.digest('hex');
  }
}

/** Where a reference's data is and in which format; `archive`: the bytes already read to tell a .zip's format. */
export interface Located {
  location: Location;
  format: DatasetFormat;
  archive?: Uint8Array;
}

/** The format of a reference: given, or decided from the directory's names or the archive's members. */
export async function locate(ref: LocationReference, opts: ReadOptions): Promise<Located> {
  if (ref.format !== undefined) return { location: ref.location, format: ref.format };
  // An http(s) reference without a format names a .zip (checked when parsed): its members decide.
  if (ref.location.kind === 'http') return zipFormat(ref.location, opts);
  const found = await detectFormat(ref.location, opts);
  return found.format === 'npz' && found.location === ref.location ? zipFormat(found.location, opts) : found;
}

/** A .zip is an NPZ when it holds only .npy members, else an image folder. */
async function zipFormat(location: Location, opts: ReadOptions): Promise<Located> {
  const archive = await readArchive(location, opts);
  if (!isZip(archive)) return { location, format: 'npz', archive };
  const limits = datasetLimits(opts);
  const npz = zipHoldsOnlyNpy(archive, shownName(location), { ...limits, maxFiles: Number.MAX_SAFE_INTEGER });
  return { location, format: npz ? 'npz' : 'images', archive };
}

export async function loadLocation(ref: LocationReference, opts: ReadOptions, where?: Located): Promise<LoadedData> {
  const { location, format, archive } = where ?? (await locate(ref, opts));
  if (format === 'images') throw new Error('image folders are loaded by loadImages');
  const loaded = await LOADERS[format](location, ref, { ...opts, archive });
  return { ...loaded, numClasses: ref.classes ?? loaded.numClasses };
}

type Loader = (location: Location, ref: LocationReference, opts: ReadOptions & { archive?: Uint8Array }) => Promise<LoadedData>;

const IDX_STANDARD: Record<'train_images' | 'train_labels' | 'test_images' | 'test_labels', string> = {
  train_images: 'train-images-idx3-ubyte',
  train_labels: 'train-labels-idx1-ubyte',
  test_images: 't10k-images-idx3-ubyte',
  test_labels: 't10k-labels-idx1-ubyte',
};

/** The IDX loader, also used by builtin:fashion-mnist. */
export async function loadIdx(location: Location, ref: LocationReference, opts: ReadOptions): Promise<LoadedData> {
  const digest = new Digest();
  const readRole = async (role: keyof typeof IDX_STANDARD): Promise<{ file: string; bytes: Uint8Array }> => {
    const given = ref.files[role];
    const std = IDX_STANDARD[role];
    // The gzipped name first: it is how the files are distributed. The dotted
    // variant (train-images.idx3-ubyte) is how several mirrors unpack them.
    const names = given !== undefined ? [given] : [`${std}.gz`, std, std.replace('-idx', '.idx')];
    const { loc, bytes } = await readFirst(names.map((n) => childLocation(location, n, role)), role, opts);
    const file = describeLocation(loc);
    return { file, bytes: maybeGunzip(digest.add(bytes), file, role, datasetLimits(opts)) };
  };
  const split = async (images: 'train_images' | 'test_images', labels: 'train_labels' | 'test_labels') => {
    const img = await readRole(images);
    const imgs = idxImages(parseIdx(img.bytes, img.file, images), img.file, images);
    const lbl = await readRole(labels);
    const y = idxLabels(parseIdx(lbl.bytes, lbl.file, labels), lbl.file, labels);
    return pair(imgs, img.file, images, y, lbl.file, labels);
  };
  const train = await split('train_images', 'train_labels');
  const test = await split('test_images', 'test_labels');
  return { name: ref.name, sha256: digest.hex(), train, test };
}

async function loadCifar(location: Location, ref: LocationReference, opts: ReadOptions): Promise<LoadedData> {
  const digest = new Digest();
  const trainNames =
    ref.files.train !== undefined
      ? ref.files.train.split(',').map((s) => s.trim()).filter((s) => s !== '')
      : await cifarTrainNames(location, opts);
  const readBatch = async (name: string, field: 'train' | 'test') => {
    const loc = childLocation(location, name, field);
    const file = describeLocation(loc);
    const bytes = maybeGunzip(digest.add(await read(loc, field, opts)), file, field, datasetLimits(opts));
    return { file, batch: parseCifarBatch(bytes, file, field) };
  };
  const trainBatches = [];
  for (const name of trainNames) trainBatches.push(await readBatch(name, 'train'));
  const testBatch = await readBatch(ref.files.test ?? 'test_batch.bin', 'test');
  const shape = [CIFAR_SIDE, CIFAR_SIDE, CIFAR_CHANNELS];
  const trainAll = concatBatches(trainBatches.map((b) => b.batch));
  const trainFile = trainBatches.map((b) => b.file).join(', ');
  const train: Examples = { ...trainAll, shape, imageFile: trainFile, imageField: 'train', labelFile: trainFile, labelField: 'train' };
  const t = testBatch.batch;
  const test: Examples = { ...t, shape, imageFile: testBatch.file, imageField: 'test', labelFile: testBatch.file, labelField: 'test' };
  return { name: ref.name, sha256: digest.hex(), numClasses: CIFAR_CLASSES, train, test };
}

/** data_batch_N.bin in numeric order; a server cannot be listed, so http gets the standard five. */
async function cifarTrainNames(location: Location, opts: ReadOptions): Promise<string[]> {
  if (location.kind === 'http') return [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
  const names = (await listDir(await confineFile(location.path, opts.files, 'train'), 'train', location.path))
    .map((n) => /^data_batch_(\d+)\.bin$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map((m) => m[0]);
  if (names.length === 0) {
    const file = join(location.path, 'data_batch_1.bin');
    throw new DatasetError(`${file}: file not found (no data_batch_N.bin in ${location.path})`, 'train', file);
  }
  return names;
}

async function loadNpy(location: Location, ref: LocationReference, opts: ReadOptions): Promise<LoadedData> {
  const digest = new Digest();
  const readRole = async (role: 'x_train' | 'y_train' | 'x_test' | 'y_test') => {
    const loc = childLocation(location, ref.files[role] ?? `${role}.npy`, role);
    const file = describeLocation(loc);
    const bytes = maybeGunzip(digest.add(await read(loc, role, opts)), file, role, datasetLimits(opts));
    return { file, arr: parseNpy(bytes, file, role) };
  };
  const split = async (xRole: 'x_train' | 'x_test', yRole: 'y_train' | 'y_test') => {
    const xs = await readRole(xRole);
    const images = npyImages(xs.arr, xs.file, xRole);
    const ys = await readRole(yRole);
    return pair(images, xs.file, xRole, npyLabels(ys.arr, ys.file, yRole), ys.file, yRole);
  };
  const train = await split('x_train', 'y_train');
  const test = await split('x_test', 'y_test');
  return { name: ref.name, sha256: digest.hex(), train, test };
}

async function loadNpz(location: Location, ref: LocationReference, opts: ReadOptions & { archive?: Uint8Array }): Promise<LoadedData> {
  const file = describeLocation(location);
  const raw = opts.archive ?? (await read(location, 'reference', opts));
  const members = parseNpz(raw, file, 'reference', datasetLimits(opts));
  const array = (key: 'x_train' | 'y_train' | 'x_test' | 'y_test') => {
    const bytes = members.get(key);
    const where = `${file}[${key}.npy]`;
    if (bytes === undefined) {
      const has = [...members.keys()].join(', ') || 'nothing';
      throw new DatasetError(`${file}: NPZ archive has no '${key}' array (it has: ${has})`, key, file);
    }
    return { where, arr: parseNpy(bytes, where, key) };
  };
  const split = (xKey: 'x_train' | 'x_test', yKey: 'y_train' | 'y_test') => {
    const xs = array(xKey);
    const ys = array(yKey);
    return pair(npyImages(xs.arr, xs.where, xKey), xs.where, xKey, npyLabels(ys.arr, ys.where, yKey), ys.where, yKey);
  };
  const train = split('x_train', 'y_train');
  const test = split('x_test', 'y_test');
  const sha256 = createHash('sha256').update(raw).digest('hex');
  return { name: ref.name, sha256, train, test };
}

const LOADERS: Record<Exclude<DatasetFormat, 'images'>, Loader> = { idx: loadIdx, cifar10: loadCifar, npy: loadNpy, npz: loadNpz };

function pair(
  images: Images,
  imageFile: string,
  imageField: string,
  y: Int32Array,
  labelFile: string,
  labelField: string,
): Examples {
  if (y.length !== images.n) {
    throw new DatasetError(
      `${labelFile}: ${y.length} labels but ${imageFile} has ${images.n} images (counts must match)`,
      labelField,
      labelFile,
    );
  }
  return { ...images, y, imageFile, imageField, labelFile, labelField };
}

/** Decides the format of a `file:` reference that did not name one, from the names present. */
async function detectFormat(location: Location, opts: ReadOptions): Promise<{ location: Location; format: DatasetFormat }> {
  if (location.kind === 'http') throw new Error('http references carry their format (checked when parsed)');
  const dir = location.path;
  // I/O goes to the confined real path; messages name the path the reference gave.
  const real = await confineFile(dir, opts.files, 'reference');
  let info: Stats;
  try {
    info = await stat(real);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file or directory' : `cannot read (${describeError(err).split(real).join(dir)})`;
    throw new DatasetError(`${dir}: ${why}`, 'reference', dir, { cause: err });
  }
  if (info.isFile()) {
    const head = await readHead(real, dir);
    // A zip is an NPZ or an image folder (the caller reads its members); a gzip is a .tar.gz image folder.
    if (isZip(head)) return { location, format: 'npz' };
    if (isGzip(head)) return { location, format: 'images' };
    throw new DatasetError(
      `${dir}: a single-file reference must be an .npz archive (or a .zip or .tar.gz image folder); for IDX, CIFAR-10 or NPY files give their directory`,
      'reference',
      dir,
    );
  }
  const names = await listDir(real, 'reference', dir);
  const found: { format: DatasetFormat; location: Location; why: string }[] = [];
  if (names.some((n) => /^train-images[.-]idx3-ubyte(\.gz)?$/.test(n))) {
    found.push({ format: 'idx', location, why: 'train-images-idx3-ubyte' });
  }
  if (names.some((n) => /^data_batch_\d+\.bin$/.test(n))) {
    found.push({ format: 'cifar10', location, why: 'data_batch_N.bin' });
  } else if (names.includes('cifar-10-batches-bin')) {
    // How the official tarball unpacks: accept the parent directory too.
    const sub = join(dir, 'cifar-10-batches-bin');
    const inner = await listDir(await confineFile(sub, opts.files, 'reference'), 'reference', sub);
    if (inner.some((n) => /^data_batch_\d+\.bin$/.test(n))) {
      found.push({ format: 'cifar10', location: { kind: 'file', path: sub }, why: 'cifar-10-batches-bin/' });
    }
  }
  if (names.includes('x_train.npy')) found.push({ format: 'npy', location, why: 'x_train.npy' });
  const npz = names.filter((n) => /\.npz$/i.test(n)).sort();
  if (npz.length > 1) {
    throw new DatasetError(
      `${dir}: ${npz.length} .npz archives (${npz.join(', ')}); name one: file://${join(dir, npz[0])}`,
      'reference',
      dir,
    );
  }
  if (npz.length === 1) found.push({ format: 'npz', location: { kind: 'file', path: join(dir, npz[0]) }, why: npz[0] });
  if (found.length === 0 && (await holdsFolders(real))) return { location, format: 'images' };
  if (found.length === 0) {
    throw new DatasetError(
      `${dir}: no dataset files found (expected IDX train-images-idx3-ubyte[.gz] + t10k-..., CIFAR-10 ` +
        `data_batch_N.bin + test_batch.bin, one *.npz, or x_train.npy/y_train.npy/x_test.npy/y_test.npy)`,
      'reference',
      dir,
    );
  }
  if (found.length > 1) {
    throw new DatasetError(
      `${dir}: ambiguous directory (${found.map((f) => `${f.format}: ${f.why}`).join('; ')}); add ?format=...`,
      'format',
      dir,
    );
  }
  return found[0];
}

/** Whether a directory with no IDX, CIFAR-10 or NPY files holds a visible folder: an image folder's classes (or splits). */
export async function holdsFolders(dir: string): Promise<boolean> {
  const listed = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return listed.some((d) => (d.isDirectory() || d.isSymbolicLink()) && !d.name.startsWith('.') && d.name !== 'cifar-10-batches-bin' && d.name !== '__MACOSX');
}

/** Lists `dir`; messages name `shown` (the path as the reference gave it). */
async function listDir(dir: string, field: string, shown = dir): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'directory not found'
        : code === 'ENOTDIR'
          ? 'not a directory'
          : `cannot list (${describeError(err).split(dir).join(shown)})`;
    throw new DatasetError(`${shown}: ${why}`, field, shown, { cause: err });
  }
}

async function readHead(path: string, shown = path): Promise<Uint8Array> {
  try {
    const handle = await open(path, 'r');
    try {
      const buf = new Uint8Array(4);
      const { bytesRead } = await handle.read(buf, 0, 4, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new DatasetError(`${shown}: cannot read (${describeError(err).split(path).join(shown)})`, 'reference', shown, { cause: err });
  }
}
