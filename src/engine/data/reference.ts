// Parses a dataset reference string into a typed description, without touching
// the disk or the network, so the API can reject a bad reference at submit time.
// The syntax is documented in ./README.md.

import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatasetError, describeError } from './errors.js';
import type { Location } from './source.js';

/**
 * Most classes a dataset may have: labels are class indices below this (a
 * model's output layer gets one unit per index up to the largest label, so a
 * label of 4,000,000,000 must not become an output layer that size).
 */
export const MAX_CLASSES = 10_000;

export const BUILTIN_NAMES = ['mnist', 'fashion-mnist'] as const;
export type BuiltinName = (typeof BUILTIN_NAMES)[number];

export const FORMATS = ['idx', 'cifar10', 'npy', 'npz', 'images'] as const;
export type DatasetFormat = (typeof FORMATS)[number];

/** Option names that name a file, per format; order = the fixed sha256 order. */
export const ROLES = {
  idx: ['train_images', 'train_labels', 'test_images', 'test_labels'],
  cifar10: ['train', 'test'],
  npy: ['x_train', 'y_train', 'x_test', 'y_test'],
  npz: [],
  images: [],
} as const satisfies Record<DatasetFormat, readonly string[]>;

export type FileRole = (typeof ROLES)[DatasetFormat][number];

export type DatasetReference =
  | { kind: 'builtin'; name: BuiltinName }
  | {
      kind: 'location';
      /** A directory, or a single .npz file. */
      location: Location;
      /** Absent for a `file:` directory: decided by scanning it. */
      format?: DatasetFormat;
      /** File names given as options, relative to `location` (cifar10 `train` may be comma-separated). */
      files: Partial<Record<FileRole, string>>;
      /** Pins the class count; otherwise 10 for builtins and cifar10, else max label + 1. */
      classes?: number;
      /** Short human name: the directory or file name. */
      name: string;
      /** Image folders: `resize=0` turns resizing off (every image must then have one size); `test_fraction` carves test. */
      images?: ImageOptions;
    };

export interface ImageOptions {
  /** Resize images to the model's input (default true). */
  resize: boolean;
  /** Share of the training pool carved as test when there is no test folder (default 0.2). */
  testFraction?: number;
}

const GENERAL_OPTIONS = ['format', 'classes'] as const;
/** Options of image folders only. */
const IMAGE_OPTIONS = ['resize', 'test_fraction'] as const;

/** An archive name that says image folder: a gzipped tar. A `.zip` is an NPZ or an image folder, told apart by its members. */
const TAR_GZ = /\.(tar\.gz|tgz)$/i;
const ZIP = /\.zip$/i;

export function parseReference(reference: string): DatasetReference {
  const ref = reference.trim();
  if (ref.length === 0) throw new DatasetError('dataset reference is empty', 'reference');
  if (ref.startsWith('builtin:')) {
    const name = ref.slice('builtin:'.length);
    if (!(BUILTIN_NAMES as readonly string[]).includes(name)) {
      throw new DatasetError(
        `${ref}: unknown builtin dataset '${name}' (known: ${BUILTIN_NAMES.map((n) => `builtin:${n}`).join(', ')})`,
        'reference',
      );
    }
    return { kind: 'builtin', name: name as BuiltinName };
  }

  let url: URL;
  try {
    url = new URL(ref);
  } catch {
    throw new DatasetError(
      `${ref}: not a dataset reference (expected builtin:mnist, builtin:fashion-mnist, file:///abs/path or http(s)://host/path)`,
      'reference',
    );
  }

  if (url.protocol === 'file:') {
    // A file has no server, so options may sit in the query or the fragment.
    const options = mergeOptions(ref, url.searchParams, new URLSearchParams(url.hash.slice(1)));
    const bare = new URL(url.href);
    bare.search = '';
    bare.hash = '';
    let path: string;
    try {
      path = fileURLToPath(bare);
    } catch (err) {
      throw new DatasetError(
        `${ref}: bad file URL (${describeError(err)}); use file:///absolute/path`,
        'reference',
        undefined,
        { cause: err },
      );
    }
    return describeLocation(ref, { kind: 'file', path }, path, options);
  }

  if (url.protocol === 'http:' || url.protocol === 'https:') {
    // Options live in the fragment: it never reaches the server, and the URL's
    // own query (a signed link, say) is passed through untouched.
    const options = mergeOptions(ref, new URLSearchParams(url.hash.slice(1)));
    const bare = new URL(url.href);
    bare.hash = '';
    let path: string;
    try {
      path = decodeURIComponent(bare.pathname);
    } catch {
      throw new DatasetError(`${ref}: the URL's path has a malformed percent-escape`, 'reference');
    }
    return describeLocation(ref, { kind: 'http', url: bare.href }, path, options);
  }

  throw new DatasetError(
    `${ref}: unknown reference scheme '${url.protocol}' (known: builtin:, file:, http:, https:)`,
    'reference',
  );
}

function mergeOptions(ref: string, ...sources: URLSearchParams[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const params of sources) {
    for (const [key, value] of params) {
      if (out.has(key)) throw new DatasetError(`${ref}: option '${key}' given twice`, key);
      out.set(key, value);
    }
  }
  return out;
}

function describeLocation(
  ref: string,
  location: Location,
  path: string,
  options: Map<string, string>,
): DatasetReference {
  const allRoles = new Set<string>(Object.values(ROLES).flat());
  for (const key of options.keys()) {
    if (!(GENERAL_OPTIONS as readonly string[]).includes(key) && !(IMAGE_OPTIONS as readonly string[]).includes(key) && !allRoles.has(key)) {
      throw new DatasetError(
        `${ref}: unknown option '${key}' (known: ${[...GENERAL_OPTIONS, ...allRoles, ...IMAGE_OPTIONS].join(', ')})`,
        key,
      );
    }
  }

  let format: DatasetFormat | undefined;
  const formatOption = options.get('format');
  if (formatOption !== undefined) {
    if (!(FORMATS as readonly string[]).includes(formatOption)) {
      throw new DatasetError(`${ref}: unknown format '${formatOption}' (known: ${FORMATS.join(', ')})`, 'format');
    }
    format = formatOption as DatasetFormat;
  }

  const isNpzPath = /\.npz$/i.test(path);
  if (isNpzPath) {
    if (format !== undefined && format !== 'npz') {
      throw new DatasetError(`${ref}: format '${format}' given for an .npz file`, 'format');
    }
    format = 'npz';
  }
  if (TAR_GZ.test(path)) {
    if (format !== undefined && format !== 'images') {
      throw new DatasetError(`${ref}: format '${format}' given for a .tar.gz archive, which holds an image folder`, 'format');
    }
    format = 'images';
  }
  const images = imageOptions(ref, options, format);

  const files: Partial<Record<FileRole, string>> = {};
  for (const [key, value] of options) {
    if (!allRoles.has(key)) continue;
    const owner = (Object.keys(ROLES) as DatasetFormat[]).find((f) => (ROLES[f] as readonly string[]).includes(key));
    if (owner === undefined) continue;
    if (format === undefined) format = owner;
    if (format !== owner) {
      throw new DatasetError(`${ref}: option '${key}' belongs to format '${owner}', not '${format}'`, key);
    }
    if (value.trim().length === 0) throw new DatasetError(`${ref}: option '${key}' is empty`, key);
    files[key as FileRole] = value;
  }

  let classes: number | undefined;
  const classesOption = options.get('classes');
  if (classesOption !== undefined) {
    classes = Number(classesOption);
    if (!/^\d+$/.test(classesOption) || !Number.isSafeInteger(classes) || classes < 1) {
      throw new DatasetError(`${ref}: classes must be a positive integer, got '${classesOption}'`, 'classes');
    }
    if (classes > MAX_CLASSES) throw new DatasetError(`${ref}: classes must be at most ${MAX_CLASSES}, got ${classes}`, 'classes');
  }

  if (location.kind === 'http' && format === undefined && !ZIP.test(path)) {
    throw new DatasetError(
      `${ref}: an http(s) reference must name an .npz file or carry #format=idx|cifar10|npy (or name a .zip or .tar.gz image folder; a server cannot be listed)`,
      'format',
    );
  }
  if (format === 'images' && location.kind === 'http' && !ZIP.test(path) && !TAR_GZ.test(path)) {
    throw new DatasetError(`${ref}: an http(s) image folder must be one .zip or .tar.gz archive (a server cannot be listed)`, 'format');
  }
  if (format === 'images' && classes !== undefined) {
    throw new DatasetError(`${ref}: 'classes' does not apply to an image folder (its class folders are the classes)`, 'classes');
  }

  const trimmed = path.replace(/\/+$/, '');
  const name = basename(trimmed).replace(/\.npz$/i, '') || 'dataset';
  return { kind: 'location', location, format, files, classes, name, ...(images ? { images } : {}) };
}

/** `resize` and `test_fraction`, refused on a reference whose format is known and not images. */
function imageOptions(ref: string, options: Map<string, string>, format: DatasetFormat | undefined): ImageOptions | undefined {
  const given = IMAGE_OPTIONS.filter((k) => options.has(k));
  if (given.length === 0) return format === 'images' ? { resize: true } : undefined;
  if (format !== undefined && format !== 'images') {
    throw new DatasetError(`${ref}: option '${given[0]}' applies to image folders only, not format '${format}'`, given[0]!);
  }
  const out: ImageOptions = { resize: true };
  const resize = options.get('resize');
  if (resize !== undefined) {
    if (!['0', '1', 'false', 'true'].includes(resize)) throw new DatasetError(`${ref}: resize must be 0 or 1, got '${resize}'`, 'resize');
    out.resize = resize === '1' || resize === 'true';
  }
  const fraction = options.get('test_fraction');
  if (fraction !== undefined) {
    const value = Number(fraction);
    if (fraction.trim() === '' || !(value > 0 && value < 1)) {
      throw new DatasetError(`${ref}: test_fraction must be a number in (0, 1), got '${fraction}'`, 'test_fraction');
    }
    out.testFraction = value;
  }
  return out;
}
