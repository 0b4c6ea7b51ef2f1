// Parses a dataset reference string into a typed description, without touching
// the disk or the network, so the API can reject a bad reference at submit time.
// The syntax is documented in ./README.md.

import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatasetError, describeError } from './errors.js';
import type { Location } from './source.js';

export const BUILTIN_NAMES = ['mnist', 'fashion-mnist'] as const;
export type BuiltinName = (typeof BUILTIN_NAMES)[number];

export const FORMATS = ['idx', 'cifar10', 'npy', 'npz'] as const;
export type DatasetFormat = (typeof FORMATS)[number];

/** Option names that name a file, per format; order = the fixed sha256 order. */
export const ROLES = {
  idx: ['train_images', 'train_labels', 'test_images', 'test_labels'],
  cifar10: ['train', 'test'],
  npy: ['x_train', 'y_train', 'x_test', 'y_test'],
  npz: [],
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
    };

const GENERAL_OPTIONS = ['format', 'classes'] as const;

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
    if (!(GENERAL_OPTIONS as readonly string[]).includes(key) && !allRoles.has(key)) {
      throw new DatasetError(
        `${ref}: unknown option '${key}' (known: ${[...GENERAL_OPTIONS, ...allRoles].join(', ')})`,
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
  }

  if (location.kind === 'http' && format === undefined) {
    throw new DatasetError(
      `${ref}: an http(s) reference must name an .npz file or carry #format=idx|cifar10|npy (a server cannot be listed)`,
      'format',
    );
  }

  const trimmed = path.replace(/\/+$/, '');
  const name = basename(trimmed).replace(/\.npz$/i, '') || 'dataset';
  return { kind: 'location', location, format, files, classes, name };
}
