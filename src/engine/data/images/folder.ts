// Builds a Dataset from an image folder in the ImageFolder convention
// (`class/img.png`), given as the entries an archive or a directory yields.
// Optional `train`, `val` and `test` top folders sit beside each other; a
// split that is not given is carved from the training pool with a seeded
// permutation, as the other readers carve validation.

import { createHash } from 'node:crypto';
import type { Dataset, Split } from '../../types.js';
import { DatasetError } from '../errors.js';
import type { Examples } from '../examples.js';
import { assemble, validationSize, type SplitOptions } from '../split.js';
import { permutation } from '../../rng.js';
import { shareSplit } from '../shared.js';
import { decodeImage, DEFAULT_MAX_PIXELS, readHeader, type DecodedImage } from './decode.js';
import { toInput } from './resize.js';

/** One file or folder of the tree; a path ending in `/` is a folder. */
export interface FolderEntry {
  path: string;
  bytes?: Uint8Array;
  /** Reads the bytes when they are not held yet (a file on disk, an archive member). */
  read?: () => Promise<Uint8Array>;
}

export interface ImageFolderOptions extends SplitOptions {
  reference: string;
  name: string;
  /** The model's [height, width, channels]; without it the first image's size and the widest colour are used. */
  inputShape?: number[];
  /** Resize images to inputShape (default true); off, every image must already have one size. */
  resize?: boolean;
  /** Most image files accepted. */
  maxFiles: number;
  /** Largest width * height of one image. Default 4096 * 4096. */
  maxPixels?: number;
  /** Largest sum of width * height over all images, decoded ones held at once. Default 2^28. */
  maxTotalPixels?: number;
  /** Fraction of the training pool carved as test when there is no `test` folder. Default 0.2. */
  testFraction?: number;
}

export const DEFAULT_TEST_FRACTION = 0.2;
export const DEFAULT_MAX_TOTAL_PIXELS = 2 ** 28;

const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];
const SPLIT_FOLDERS = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLIT_FOLDERS)[number];

export interface ImageFile {
  /** The path as given, for messages. */
  path: string;
  split: SplitName;
  className: string;
  entry: FolderEntry;
}

export async function loadImageFolder(entries: FolderEntry[], opts: ImageFolderOptions): Promise<Dataset> {
  const { files, classNames, hasSplit } = layout(entries, opts.maxFiles);
  if (files.length === 0) throw new DatasetError(`${opts.reference}: no PNG or JPEG images`, 'reference', opts.reference);

  const digest = createHash('sha256');
  const decoded: { file: ImageFile; image: DecodedImage }[] = [];
  const maxTotal = opts.maxTotalPixels ?? DEFAULT_MAX_TOTAL_PIXELS;
  let total = 0;
  for (const file of files) {
    const bytes = file.entry.bytes ?? (file.entry.read ? await file.entry.read() : undefined);
    if (bytes === undefined) throw new DatasetError(`${file.path}: no bytes to read`, 'reference', file.path);
    // Path and length frame each file so the digest names the tree, not just the concatenated bytes.
    digest.update(`${file.path}\0${bytes.length}\0`).update(bytes);
    // Every image is held decoded until the target shape is known: the header's size counts before decoding.
    const header = readHeader(bytes, file.path);
    total += header.width * header.height;
    if (total > maxTotal) {
      throw new DatasetError(`${file.path}: images up to here hold ${total} pixels, over the cap of ${maxTotal} for the whole folder`, 'reference', file.path);
    }
    decoded.push({ file, image: decodeImage(bytes, file.path, { maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS }) });
  }

  const [height, width, channels] = targetShape(decoded, opts);
  const size = height * width * channels;
  const label = new Map(classNames.map((c, i) => [c, i]));
  const bySplit = (split: SplitName): Examples => {
    const chosen = decoded.filter((d) => d.file.split === split);
    const x = new Float32Array(chosen.length * size);
    const y = new Int32Array(chosen.length);
    chosen.forEach((d, i) => {
      x.set(toInput(d.image, height, width, channels, d.file.path), i * size);
      y[i] = label.get(d.file.className) ?? -1;
    });
    const where = hasSplit ? `${split}/` : opts.reference;
    return { x, y, n: chosen.length, shape: [height, width, channels], imageFile: where, imageField: 'reference', labelFile: where, labelField: 'reference' };
  };

  const train = bySplit('train');
  let test = bySplit('test');
  let pool = train;
  if (test.n === 0) {
    [pool, test] = carve(train, opts.testFraction ?? DEFAULT_TEST_FRACTION, opts.seed);
  }
  const sha256 = digest.digest('hex');
  const val = bySplit('val');
  const loaded = { name: opts.name, sha256, numClasses: classNames.length, train: pool, test };
  if (val.n === 0) return { ...assemble(opts.reference, loaded, opts), classNames };
  // A given validation folder replaces the carve; maxTrain still caps the training pool.
  const dataset = assemble(opts.reference, loaded, { ...opts, validationFraction: 0 });
  return { ...dataset, validation: shareSplit({ x: val.x, y: val.y, n: val.n }), classNames };
}

/** Sorts the entries into splits and classes and refuses trees that are not an image folder. */
export function layout(entries: FolderEntry[], maxFiles: number): { files: ImageFile[]; classNames: string[]; hasSplit: boolean } {
  // Every file counts against the cap, images, hidden files or not: a million small files are a bomb too.
  const overCap = entries.filter((e) => !isFolder(e))[maxFiles];
  if (overCap) {
    throw new DatasetError(`${overCap.path}: too many files: more than the cap of ${maxFiles}`, 'reference', overCap.path);
  }
  const visible = entries
    .map((e) => ({ entry: e, parts: e.path.replace(/\\/g, '/').split('/').filter((p) => p !== '' && p !== '.') }))
    .filter(({ parts }) => parts.length > 0 && !parts.some((p) => p.startsWith('.') || p === '__MACOSX'));
  // An archive of `flowers/` holds `flowers/train/cat/1.png`: one top folder around everything is dropped.
  const tops = new Set(visible.map(({ parts }) => parts[0]));
  const images = visible.filter(({ entry, parts }) => isImage(entry, parts));
  const wrapped = tops.size === 1 && !(SPLIT_FOLDERS as readonly string[]).includes(visible[0]?.parts[0] ?? '');
  if (wrapped && images.length > 0 && images.every(({ parts }) => parts.length >= 3)) {
    for (const v of visible) v.parts = v.parts.slice(1);
  }
  const hasSplit = visible.some(({ parts }) => (SPLIT_FOLDERS as readonly string[]).includes(parts[0]) && parts.length >= 2);

  const files: ImageFile[] = [];
  // Every class folder seen, files or not, so an empty one can be refused by name.
  const folders = new Map<string, number>();
  for (const { entry, parts } of visible.filter((v) => v.parts.length > 0)) {
    const rel = hasSplit ? parts.slice(1) : parts;
    const split: SplitName = hasSplit ? (parts[0] as SplitName) : 'train';
    if (hasSplit && !(SPLIT_FOLDERS as readonly string[]).includes(parts[0])) {
      if (isImage(entry, parts)) {
        throw new DatasetError(`${entry.path}: outside train/, val/ and test/`, 'reference', entry.path);
      }
      continue;
    }
    const folderKey = rel.length >= 1 ? `${hasSplit ? `${split}/` : ''}${rel[0]}/` : '';
    if (rel.length >= 1 && (rel.length >= 2 || isFolder(entry))) folders.set(folderKey, folders.get(folderKey) ?? 0);
    if (isFolder(entry) || !isImage(entry, parts)) continue;
    if (rel.length !== 2) {
      const why = rel.length < 2 ? 'not inside a class folder' : 'nested below its class folder; images sit directly in `class/`';
      throw new DatasetError(`${entry.path}: ${why}`, 'reference', entry.path);
    }
    files.push({ path: entry.path, split, className: rel[0], entry });
    folders.set(folderKey, (folders.get(folderKey) ?? 0) + 1);
  }
  const trainPrefix = hasSplit ? 'train/' : '';
  const trainClasses = [...folders.keys()].filter((k) => k.startsWith(trainPrefix));
  if (trainClasses.length === 0) {
    const where = hasSplit ? 'train/' : 'the top folder';
    throw new DatasetError(`no class folders in ${where}: expected \`class/image.png\``, 'reference', hasSplit ? 'train/' : undefined);
  }
  for (const [folder, count] of [...folders].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (count === 0) throw new DatasetError(`${folder}: empty class folder (no PNG or JPEG images)`, 'reference', folder);
  }
  const classNames = trainClasses.map((k) => k.slice(trainPrefix.length, -1)).sort();
  if (classNames.length === 1) {
    throw new DatasetError(`${trainPrefix}${classNames[0]}/: only one class; a classifier needs at least two class folders`, 'reference', `${trainPrefix}${classNames[0]}/`);
  }
  for (const f of files) {
    if (!classNames.includes(f.className)) {
      throw new DatasetError(`${f.split}/${f.className}/: class not in train/ (classes: ${classNames.join(', ')})`, 'reference', `${f.split}/${f.className}/`);
    }
  }
  // A fixed order (split, class, path) so the digest and the examples do not depend on how the tree was listed.
  const order = (f: ImageFile) => `${SPLIT_FOLDERS.indexOf(f.split)}\0${f.className}\0${f.path}`;
  files.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  return { files, classNames, hasSplit };
}

function isFolder(entry: FolderEntry): boolean {
  return entry.path.endsWith('/');
}

function isImage(entry: FolderEntry, parts: string[]): boolean {
  const name = parts[parts.length - 1].toLowerCase();
  return !isFolder(entry) && IMAGE_EXTENSIONS.some((ext) => name.endsWith(ext));
}

/** [height, width, channels] every example is brought to. */
function targetShape(decoded: { file: ImageFile; image: DecodedImage }[], opts: ImageFolderOptions): number[] {
  const first = decoded[0];
  if (opts.resize === false) {
    const [h, w] = opts.inputShape ?? [first.image.height, first.image.width];
    for (const { file, image } of decoded) {
      if (image.height !== h || image.width !== w) {
        const expected = opts.inputShape ? `the model's ${h}x${w}` : `${h}x${w} like ${first.file.path}`;
        throw new DatasetError(`${file.path}: image is ${image.height}x${image.width}, not ${expected}, and resizing is off`, 'reference', file.path);
      }
    }
  }
  if (opts.inputShape) {
    if (opts.inputShape.length !== 3) {
      throw new DatasetError(`inputShape must be [height, width, channels] for images, got [${opts.inputShape.join(', ')}]`, 'inputShape');
    }
    return [...opts.inputShape];
  }
  const colour = decoded.some(({ image }) => image.channels >= 3);
  return [first.image.height, first.image.width, colour ? 3 : 1];
}

/** [rest, carved]: `fraction` of the examples (at least one) moved to a new split by a seeded permutation. */
function carve(src: Examples, fraction: number, seed: number): [Examples, Examples] {
  if (!(fraction > 0 && fraction < 1)) {
    throw new DatasetError(`testFraction must be in (0, 1), got ${String(fraction)}`, 'testFraction');
  }
  // A different stream from the validation carve, which permutes the rest with `seed`.
  const perm = permutation(src.n, seed + 1);
  const nTest = validationSize(src.n, fraction);
  const take = (indices: Int32Array): Split => {
    const size = src.x.length / Math.max(1, src.n);
    const x = new Float32Array(indices.length * size);
    const y = new Int32Array(indices.length);
    indices.forEach((j, i) => {
      x.set(src.x.subarray(j * size, (j + 1) * size), i * size);
      y[i] = src.y[j];
    });
    return { x, y, n: indices.length };
  };
  const where = { imageFile: src.imageFile, imageField: src.imageField, labelFile: src.labelFile, labelField: src.labelField };
  return [
    { ...take(perm.subarray(nTest)), shape: src.shape, ...where },
    { ...take(perm.subarray(0, nTest)), shape: src.shape, ...where },
  ];
}
