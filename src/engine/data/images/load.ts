// An image-folder reference end to end: its entries from wherever the
// reference points (a `.zip` or `.tar.gz` on disk or over http(s), or a
// directory on disk), then either the worker's load (decode, fit to the
// model's input, split: ./folder.ts) or the door's probe (headers only:
// classes, counts, sizes, the same sha256). Both run under the same caps, and
// every refusal names the archive or folder by its base name, then the member.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Dataset } from '../../types.js';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from '../../../runtime/engine-config.js';
import { confineFile, type DataAccess } from '../access.js';
import { isGzip, isZip } from '../bytes.js';
import { DatasetError } from '../errors.js';
import type { DatasetReference } from '../reference.js';
import { datasetLimits, read, type Location, type ReadOptions } from '../source.js';
import { validationSize, type SplitOptions } from '../split.js';
import { directoryEntries, tarGzEntries, zipEntries, type ArchiveCaps } from './archive.js';
import { decodeImage, readHeader } from './decode.js';
import { DEFAULT_TEST_FRACTION, layout, loadImageFolder, type FolderEntry } from './folder.js';

type LocationReference = Extract<DatasetReference, { kind: 'location' }>;

export const imageLimits = (access: Pick<DataAccess, 'images'> | undefined): ImageLimits => access?.images ?? DEFAULT_IMAGE_LIMITS;

/** The base name a location's messages use: never the server's folder, nor a URL's query. */
export function shownName(location: Location): string {
  if (location.kind === 'file') return basename(location.path.replace(/\/+$/, '')) || 'dataset';
  try {
    return decodeURIComponent(basename(new URL(location.url).pathname)) || 'dataset';
  } catch {
    return 'dataset';
  }
}

/**
 * The bytes of an archive at `location`, with any refusal naming it by its
 * base name: the door's messages never show the server's folder.
 */
export async function readArchive(location: Location, opts: ReadOptions): Promise<Uint8Array> {
  try {
    return await read(location, 'reference', opts);
  } catch (err) {
    if (!(err instanceof DatasetError) || location.kind !== 'file') throw err;
    const shown = shownName(location);
    throw new DatasetError(err.message.split(location.path).join(shown), err.field, shown, { cause: err });
  }
}

interface Source {
  shown: string;
  entries: FolderEntry[];
  /** Bytes as stored: the archive, or the folder's files. */
  bytes: number;
}

/**
 * The entries at `location`: an archive (told by its magic bytes, not its
 * name) or a directory. `archive` is the archive's bytes when the caller
 * already read them (a `.zip` read to tell NPZ from images).
 */
export async function imageSource(location: Location, opts: ReadOptions, archive?: Uint8Array): Promise<Source> {
  const shown = shownName(location);
  const limits = datasetLimits(opts);
  const caps: ArchiveCaps = { maxBytes: limits.maxBytes, maxRatio: limits.maxRatio, maxFiles: imageLimits(opts).maxFiles };
  if (archive === undefined && location.kind === 'file') {
    const real = await confineFile(location.path, opts.files, 'reference');
    const info = await stat(real).catch(() => null);
    if (info === null) throw new DatasetError(`${shown}: no such file or directory`, 'reference', shown);
    if (info.isDirectory()) {
      const entries = await directoryEntries(location.path, shown, opts.files, caps);
      return { shown, entries, bytes: 0 };
    }
  }
  const bytes = archive ?? (await readArchive(location, opts));
  if (isZip(bytes)) return { shown, entries: zipEntries(bytes, shown, caps), bytes: bytes.length };
  if (isGzip(bytes)) return { shown, entries: await tarGzEntries(bytes, shown, caps), bytes: bytes.length };
  throw new DatasetError(`${shown}: an image folder must be a directory, a .zip or a .tar.gz archive`, 'reference', shown);
}

/** `classes` pins labels of array formats; an image folder's classes are its folders (checked when parsed if the format was known). */
function refuseClasses(ref: LocationReference): void {
  if (ref.classes !== undefined) {
    throw new DatasetError(`${ref.name}: 'classes' does not apply to an image folder (its class folders are the classes)`, 'classes');
  }
}

/** A refusal from ./folder.ts (which names members) with the archive or folder in front. */
function named(shown: string, err: unknown): unknown {
  if (!(err instanceof DatasetError) || err.message.startsWith(`${shown}: `) || err.message.startsWith(`${shown}/`)) return err;
  return new DatasetError(`${shown}: ${err.message}`, err.field, err.file === undefined ? shown : `${shown}/${err.file}`, { cause: err });
}

export interface LoadImagesOptions extends SplitOptions {
  /** The reference as given (the Dataset's `reference`). */
  reference: string;
  /** The model's [height, width, channels], when the run knows it; else the first image's size. */
  inputShape?: number[];
}

/** The worker's load: decoded, fitted to `inputShape`, split. */
export async function loadImages(location: Location, ref: LocationReference, opts: ReadOptions, load: LoadImagesOptions, archive?: Uint8Array): Promise<Dataset> {
  refuseClasses(ref);
  const source = await imageSource(location, opts, archive);
  const caps = imageLimits(opts);
  try {
    return await loadImageFolder(source.entries, {
      reference: load.reference,
      name: ref.name,
      inputShape: load.inputShape,
      resize: ref.images?.resize ?? true,
      testFraction: ref.images?.testFraction,
      maxFiles: caps.maxFiles,
      maxPixels: caps.maxPixels,
      maxTotalPixels: caps.maxTotalPixels,
      validationFraction: load.validationFraction,
      seed: load.seed,
      maxTrain: load.maxTrain,
    });
  } catch (err) {
    throw named(source.shown, err);
  }
}

/** What the probe learns of an image folder (stored in the dataset's `shapes` beside the common fields). */
export interface ImageProbe {
  inputShape: number[];
  numClasses: number;
  classNames: string[];
  counts: { train: number; test: number };
  /** Distinct image sizes as `HxW`, at most MAX_SIZES_LISTED of them. */
  sizes: string[];
  resize: boolean;
  bytes: number;
  unpackedBytes: number;
  sha256: string;
}

const MAX_SIZES_LISTED = 16;

/**
 * The door's probe: lists the entries, reads each image's header under the
 * same caps as the load, and refuses what the load would: no class folders,
 * one class, an image or a folder over the pixel caps, mixed sizes with
 * resizing off, and an image that does not decode (each is decoded once,
 * one at a time, its pixels dropped: a truncated or corrupt file is a 4xx at
 * the door, not a failed job later).
 */
export async function probeImages(location: Location, ref: LocationReference, opts: ReadOptions, archive?: Uint8Array): Promise<ImageProbe> {
  refuseClasses(ref);
  const source = await imageSource(location, opts, archive);
  const { shown } = source;
  const caps = imageLimits(opts);
  const resize = ref.images?.resize ?? true;
  try {
    const { files, classNames } = layout(source.entries, caps.maxFiles);
    if (files.length === 0) throw new DatasetError('no PNG or JPEG images', 'reference');
    const digest = createHash('sha256');
    const sizes = new Set<string>();
    const perSplit = { train: 0, val: 0, test: 0 };
    let first: { path: string; size: string } | undefined;
    let colour = false;
    let pixels = 0;
    let unpacked = 0;
    for (const file of files) {
      const bytes = file.entry.bytes ?? (file.entry.read ? await file.entry.read() : undefined);
      if (bytes === undefined) throw new DatasetError(`${file.path}: no bytes to read`, 'reference', file.path);
      digest.update(`${file.path}\0${bytes.length}\0`).update(bytes);
      unpacked += bytes.length;
      const header = readHeader(bytes, file.path);
      if (header.width === 0 || header.height === 0) throw new DatasetError(`${file.path}: cannot decode image: it has no pixels`, 'reference', file.path);
      const area = header.width * header.height;
      if (area > caps.maxPixels) {
        throw new DatasetError(`${file.path}: image is ${header.width}x${header.height}, over the cap of ${caps.maxPixels} pixels`, 'reference', file.path);
      }
      pixels += area;
      if (pixels > caps.maxTotalPixels) {
        throw new DatasetError(`${file.path}: images up to here hold ${pixels} pixels, over the cap of ${caps.maxTotalPixels} for the whole folder`, 'reference', file.path);
      }
      decodeImage(bytes, file.path, { maxPixels: caps.maxPixels });
      const size = `${header.height}x${header.width}`;
      first ??= { path: file.path, size };
      if (!resize && size !== first.size) {
        throw new DatasetError(`${file.path}: image is ${size}, not ${first.size} like ${first.path}, and resizing is off`, 'reference', file.path);
      }
      if (sizes.size < MAX_SIZES_LISTED) sizes.add(size);
      colour ||= header.components >= 3;
      perSplit[file.split] += 1;
    }
    // The load carves test from the training pool when there is no test folder.
    const carved = perSplit.test === 0 ? validationSize(perSplit.train, ref.images?.testFraction ?? DEFAULT_TEST_FRACTION) : 0;
    const [height, width] = first!.size.split('x').map(Number);
    return {
      inputShape: [height!, width!, colour ? 3 : 1],
      numClasses: classNames.length,
      classNames,
      counts: { train: perSplit.train - carved, test: perSplit.test + carved },
      sizes: [...sizes],
      resize,
      bytes: source.bytes || unpacked,
      unpackedBytes: unpacked,
      sha256: digest.digest('hex'),
    };
  } catch (err) {
    throw named(shown, err);
  }
}
