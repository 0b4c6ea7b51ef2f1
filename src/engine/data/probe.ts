// The dataset probe: judges a reference at the door (registration, submit)
// by streaming its files once, holding only headers and small windows: magic,
// dtype and dims from each header, the declared data size against the bytes
// actually streamed (truncation, trailing garbage), labels read on the fly for
// their range, image/label counts per split, and the example shape. Gzip and
// NPZ members are inflated as streams under three caps, checked before and
// while expanding: the declared size (gzip ISIZE, zip header sizes), the
// expansion ratio, and a running byte count (maxBytes). Nothing here holds a
// file; memory stays at a few chunks whatever the data declares.
//
// What it does not do: decode pixels (the worker's loaders do, see ./loaders.ts),
// nor check float pixels lie in [0, 1] (that needs every pixel as a number).
//
// Messages name a file as the tenant named it (`train-labels-idx1-ubyte.gz`,
// `data.npz[x_train.npy]`), never a server path.

import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createInflateRaw } from 'node:zlib';
import { MNIST_TEST_COUNT, MNIST_TRAIN_COUNT } from './builtin.js';
import { CIFAR_CHANNELS, CIFAR_CLASSES, CIFAR_RECORD, CIFAR_SIDE } from './cifar.js';
import { DatasetError, describeError } from './errors.js';
import { IDX_TYPES, parseIdxHeader } from './idx.js';
import { MAX_NPY_HEADER, npyPreambleSize, parseNpyHeader, type NpyHeader } from './npy.js';
import { MAX_CLASSES, parseReference, type DatasetFormat, type DatasetReference } from './reference.js';
import { guardedFetch, OutboundRefusedError } from '../../runtime/outbound.js';
import { confineFile, type DataAccess } from './access.js';
import { ratioAllowance, refusedUrl, type Location } from './source.js';
import { isGzip, isZip } from './bytes.js';
import { zipHoldsOnlyNpy } from './images/archive.js';
import { probeImages, readArchive, shownName, type ImageProbe } from './images/load.js';
import { holdsFolders } from './loaders.js';
import { DEFAULT_DATASET_LIMITS } from '../../runtime/engine-config.js';

export interface ProbeLimits {
  /** Most bytes one file may have, downloaded or unpacked (default: DEFAULT_DATASET_LIMITS; the service passes TICKETSMITH_MAX_DATASET_BYTES). */
  maxBytes: number;
  /** Most a compressed file or member may expand (default: DEFAULT_DATASET_LIMITS; the service passes TICKETSMITH_MAX_DATASET_RATIO). */
  maxRatio: number;
  /** The whole probe's time budget. */
  timeoutMs: number;
  /** Told the size of every buffer the probe allocates (tests watch for huge ones). */
  onAlloc?: (bytes: number) => void;
}

export const DEFAULT_PROBE_TIMEOUT_MS = 120_000;

export interface ProbedFile {
  /** The file as the tenant named it. */
  name: string;
  /** The reference option it fills (`train_images`, `x_test`, `train`...). */
  role: string;
  /** Bytes as stored (compressed when gzipped). */
  bytes: number;
  /** Bytes after gunzip / inflate. */
  unpackedBytes: number;
}

/** What registration stores in Dataset.shapes and submit checks a model against. */
export interface DatasetProbe {
  format: 'builtin' | DatasetFormat;
  /** Shape of one example, e.g. [28, 28, 1]; a flat (n, d) array gives [d]. */
  inputShape: number[];
  /** The `classes` option, 10 for the builtins and CIFAR-10, else the largest label + 1. */
  numClasses: number;
  labels: { min: number; max: number };
  counts: { train: number; test: number };
  files: ProbedFile[];
  /** Totals over files: as stored, and unpacked. */
  bytes: number;
  unpackedBytes: number;
  /** sha256 of the raw bytes in the loaders' fixed order (the worker computes the same); absent for builtins. */
  sha256?: string;
  /** Image folders: the class folders' names in label order. */
  classNames?: string[];
  /**
   * Image folders: `resize` on, the images are resized to any model's input
   * (inputShape is the first image's size, what a zoo model is built for);
   * off, they must match it. `sizes`: the distinct sizes seen, as `HxW`.
   */
  images?: { resize: boolean; sizes: string[] };
}

const BUILTIN_PROBES: Record<'mnist' | 'fashion-mnist', DatasetProbe> = {
  mnist: builtinProbe(MNIST_TRAIN_COUNT, MNIST_TEST_COUNT),
  'fashion-mnist': builtinProbe(60_000, 10_000),
};

function builtinProbe(train: number, test: number): DatasetProbe {
  return {
    format: 'builtin',
    inputShape: [28, 28, 1],
    numClasses: 10,
    labels: { min: 0, max: 9 },
    counts: { train, test },
    files: [],
    bytes: 0,
    unpackedBytes: 0,
  };
}

export function defaultProbeLimits(): ProbeLimits {
  return { maxBytes: DEFAULT_DATASET_LIMITS.maxBytes, maxRatio: DEFAULT_DATASET_LIMITS.maxRatio, timeoutMs: DEFAULT_PROBE_TIMEOUT_MS };
}

/**
 * Probes a reference (a string, or one already parsed). Builtins are known
 * without I/O. Files are read and URLs fetched under `access` (the tenant's
 * file roots and the outbound guard, as the worker's loads are). Throws
 * DatasetError naming the file and what is wrong with it.
 */
export async function probeDataset(reference: string | DatasetReference, limits: Partial<ProbeLimits> = {}, access: DataAccess = {}): Promise<DatasetProbe> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  if (ref.kind === 'builtin') return structuredClone(BUILTIN_PROBES[ref.name]);
  const lim: ProbeLimits = { ...defaultProbeLimits(), ...limits };
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), lim.timeoutMs);
  const run = new ProbeRun(lim, ac.signal, access);
  try {
    let { location, format } = ref;
    let archive: Uint8Array | undefined;
    if (format === undefined) ({ location, format, archive } = await detectFormat(location, access, lim));
    if (format === 'images') {
      const found = await untilAborted(probeImages(location, ref, { ...access, limits: { maxBytes: lim.maxBytes, maxRatio: lim.maxRatio } }, archive), ac.signal);
      return imagesProbe(location, found);
    }
    const splits = await PROBERS[format](run, location, ref);
    return run.summarise(format, splits, ref.classes);
  } catch (err) {
    if (ac.signal.aborted) {
      throw new DatasetError(`${ref.name}: reading the dataset took longer than ${Math.round(lim.timeoutMs / 1000)} s`, 'reference');
    }
    if (err instanceof DatasetError) throw err;
    throw new DatasetError(`${ref.name}: cannot read the dataset (${describeError(err)})`, 'reference', undefined, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- streams

/**
 * A pull reader over chunks: exact small reads (headers), bounded streaming
 * of a known count (payloads), and an end test. Holds at most one chunk plus
 * what a read asked for.
 */
export class ByteReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;
  private readonly it: AsyncIterator<Uint8Array>;

  constructor(
    source: AsyncIterable<Uint8Array>,
    private readonly onAlloc?: (bytes: number) => void,
  ) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    if (r.value.length > 0) {
      this.chunks.push(r.value);
      this.buffered += r.value.length;
    }
    return true;
  }

  /** Up to `n` bytes (fewer only at the end). Callers bound `n`: it is allocated. */
  async read(n: number): Promise<Uint8Array> {
    while (this.buffered < n && (await this.fill()));
    const take = Math.min(n, this.buffered);
    this.onAlloc?.(take);
    const out = new Uint8Array(take);
    let at = 0;
    while (at < take) {
      const head = this.chunks[0]!;
      const k = Math.min(head.length, take - at);
      out.set(head.subarray(0, k), at);
      at += k;
      this.consume(k);
    }
    return out;
  }

  private consume(k: number): void {
    const head = this.chunks[0]!;
    if (k === head.length) this.chunks.shift();
    else this.chunks[0] = head.subarray(k);
    this.buffered -= k;
  }

  /** Streams up to `n` bytes as chunks (views, not copies); stops early only at the end. */
  async *take(n: number): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill())) return;
      if (this.buffered === 0) continue;
      const head = this.chunks[0]!;
      const k = Math.min(head.length, left);
      const piece = head.subarray(0, k);
      this.consume(k);
      left -= k;
      yield piece;
    }
  }

  /** Consumes up to `n` bytes, calling `fn` on each piece; returns how many there were. */
  async skip(n: number, fn?: (piece: Uint8Array, offset: number) => void): Promise<number> {
    let seen = 0;
    for await (const piece of this.take(n)) {
      fn?.(piece, seen);
      seen += piece.length;
    }
    return seen;
  }

  async atEnd(): Promise<boolean> {
    while (this.buffered === 0) if (!(await this.fill())) return true;
    return false;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

/** Counts raw bytes (and hashes them) with the running cap, between the source and any decoder. */
async function* counted(
  source: AsyncIterable<Uint8Array>,
  tally: { raw: number },
  max: number,
  name: string,
  field: string,
  hash: Hash | undefined,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    if (signal.aborted) throw new Error('aborted');
    tally.raw += chunk.length;
    if (tally.raw > max) throw new DatasetError(`${name}: larger than the ${max}-byte limit for a dataset file`, field);
    hash?.update(chunk);
    yield chunk;
  }
}

/**
 * Inflates `source` through zlib as a stream, refusing once the output passes
 * `max` or outgrows the ratio cap against the input read so far: a bomb is
 * stopped after a bounded amount of work, never expanded.
 */
async function* inflated(
  source: AsyncIterable<Uint8Array>,
  kind: 'gzip' | 'deflate',
  tally: { raw: number; unpacked: number },
  lim: ProbeLimits,
  name: string,
  field: string,
  max = lim.maxBytes,
): AsyncGenerator<Uint8Array> {
  const z = kind === 'gzip' ? createGunzip() : createInflateRaw();
  const feeding = pipeline(Readable.from(source, { objectMode: false }), z).catch(() => undefined);
  const tooBig = () => new DatasetError(`${name}: unpacks to more than the ${max}-byte limit for a dataset file`, field);
  try {
    for await (const chunk of z as AsyncIterable<Buffer>) {
      tally.unpacked += chunk.length;
      if (tally.unpacked > max) throw tooBig();
      if (tally.unpacked > ratioAllowance(tally.raw, lim.maxRatio)) {
        throw new DatasetError(`${name}: expands more than ${lim.maxRatio}-fold, the limit for compressed dataset files`, field);
      }
      yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    const cause = (err as { cause?: unknown }).cause ?? err;
    if (cause instanceof DatasetError) throw cause;
    const what = kind === 'gzip' ? 'gzip data' : 'zip member';
    throw new DatasetError(`${name}: corrupt or truncated ${what} (${describeError(err)})`, field, undefined, { cause: err });
  } finally {
    z.destroy();
    await feeding;
  }
}

// ---------------------------------------------------------------- one probe run

interface FileCtx {
  name: string;
  role: string;
}

interface ImagesInfo extends FileCtx {
  n: number;
  shape: number[];
}

interface LabelsInfo extends FileCtx {
  n: number;
  min: number;
  max: number;
  /** The distinct label values seen (at most MAX_CLASSES of them). */
  seen: ReadonlySet<number>;
}

interface SplitInfo {
  images: ImagesInfo;
  labels: LabelsInfo;
}

class ProbeRun {
  readonly files: ProbedFile[] = [];
  readonly hash = createHash('sha256');

  constructor(
    readonly lim: ProbeLimits,
    readonly signal: AbortSignal,
    readonly access: DataAccess,
  ) {}

  /**
   * Opens a file as a decoded byte stream (gunzipped when it starts with the
   * gzip magic), or null when it does not exist. For a local gzip file the
   * trailer's ISIZE is judged before anything is inflated.
   */
  async open(loc: Location, name: string, role: string, opts: { gzip: boolean; hash: boolean }): Promise<{ reader: ByteReader; done(): void } | null> {
    const raw = await this.rawSource(loc, name, role);
    if (raw === null) return null;
    const entry: ProbedFile = { name, role, bytes: 0, unpackedBytes: 0 };
    const tally = { raw: 0, unpacked: 0 };
    const first = new ByteReader(counted(raw.chunks, tally, this.lim.maxBytes, name, role, opts.hash ? this.hash : undefined, this.signal), this.lim.onAlloc);
    const head = await first.read(2);
    const gzip = opts.gzip && head.length === 2 && head[0] === 0x1f && head[1] === 0x8b;
    if (gzip && raw.size !== undefined && raw.isize !== undefined) this.judgeDeclared(raw.isize, raw.size, name, role);
    const rest = (async function* () {
      yield head;
      for await (const c of first.take(Number.POSITIVE_INFINITY)) yield c;
    })();
    const source = gzip ? inflated(rest, 'gzip', tally, this.lim, name, role) : rest;
    this.files.push(entry);
    return {
      reader: new ByteReader(source, this.lim.onAlloc),
      done: () => {
        entry.bytes = tally.raw;
        entry.unpackedBytes = gzip ? tally.unpacked : tally.raw;
      },
    };
  }

  /** A declared unpacked size (gzip ISIZE, zip header) against both caps, before inflating. */
  judgeDeclared(isize: number, compressed: number, name: string, field: string): void {
    // A truncated file's last four bytes are not a trailer either; both are refused, and the message says so.
    if (isize > this.lim.maxBytes) {
      throw new DatasetError(
        `${name}: gzip trailer declares ${isize} bytes unpacked, over the ${this.lim.maxBytes}-byte limit for a dataset file (or the file is truncated)`,
        field,
      );
    }
    if (isize > ratioAllowance(compressed, this.lim.maxRatio)) {
      throw new DatasetError(
        `${name}: gzip trailer declares ${isize} bytes unpacked from ${compressed}, more than the ${this.lim.maxRatio}-fold limit for compressed dataset files (or the file is truncated)`,
        field,
      );
    }
  }

  private async rawSource(loc: Location, name: string, role: string): Promise<{ chunks: AsyncIterable<Uint8Array>; size?: number; isize?: number } | null> {
    if (loc.kind === 'file') {
      // The real path inside a file root (or a refusal that names no path); opened by that name from here on.
      const real = await confineFile(loc.path, this.access.files, role);
      let size: number;
      try {
        const info = await stat(real);
        if (info.isDirectory()) throw new DatasetError(`${name}: is a directory, not a file`, role);
        size = info.size;
      } catch (err) {
        if (err instanceof DatasetError) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return null;
        throw new DatasetError(`${name}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, role, undefined, { cause: err });
      }
      if (size > this.lim.maxBytes) throw new DatasetError(`${name}: larger than the ${this.lim.maxBytes}-byte limit for a dataset file`, role);
      const isize = size >= 18 ? await readTrailer(real) : undefined;
      const stream = createReadStream(real, { highWaterMark: 64 * 1024, signal: this.signal });
      return { chunks: stream as AsyncIterable<Buffer>, size, isize };
    }
    let res: Response;
    try {
      res = await (this.access.fetch ?? guardedFetch)(loc.url, { signal: this.signal });
    } catch (err) {
      if (this.signal.aborted) throw err;
      if (err instanceof OutboundRefusedError) throw refusedUrl(role);
      throw new DatasetError(`${name}: download failed (${describeError(err)})`, role, undefined, { cause: err });
    }
    if (res.status === 404 || res.status === 410) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new DatasetError(`${name}: HTTP ${res.status}`, role);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > this.lim.maxBytes) {
      await res.body?.cancel();
      throw new DatasetError(`${name}: larger than the ${this.lim.maxBytes}-byte limit for a dataset file`, role);
    }
    const body = res.body;
    const chunks = body === null ? emptySource() : (body as unknown as AsyncIterable<Uint8Array>);
    return { chunks };
  }

  /** The first of `names` (relative to `dir`) that exists, opened. */
  async openFirst(dir: Location, names: string[], role: string, gzip: boolean): Promise<{ name: string; reader: ByteReader; done(): void }> {
    for (const name of names) {
      const opened = await this.open(childOf(dir, name, role), name, role, { gzip, hash: true });
      if (opened !== null) return { name, ...opened };
    }
    const tried = names.length > 1 ? ` (tried ${names.join(', ')})` : '';
    throw new DatasetError(`${names[0]}: file not found${tried}`, role);
  }

  summarise(format: DatasetFormat, splits: { train: SplitInfo; test: SplitInfo }, classes: number | undefined): DatasetProbe {
    const { train, test } = splits;
    for (const s of [train, test]) {
      if (s.images.n === 0) throw new DatasetError(`${s.images.name}: empty split (0 examples)`, s.images.role);
    }
    if (train.images.shape.join('x') !== test.images.shape.join('x')) {
      throw new DatasetError(
        `${test.images.name}: test images are ${test.images.shape.join('x')} but training images (${train.images.name}) are ${train.images.shape.join('x')}`,
        test.images.role,
      );
    }
    // One class to learn is no classifier: refused here, naming the training labels' file, whatever the label.
    if (train.labels.seen.size < 2) {
      throw new DatasetError(
        `${train.labels.name}: the dataset has a single class (every label is ${train.labels.max}); training needs at least 2`,
        train.labels.role,
      );
    }
    const min = Math.min(train.labels.min, test.labels.min);
    const max = Math.max(train.labels.max, test.labels.max);
    const numClasses = classes ?? (format === 'cifar10' ? CIFAR_CLASSES : max + 1);
    for (const l of [train.labels, test.labels]) {
      if (l.max >= numClasses) {
        throw new DatasetError(`${l.name}: label ${l.max} is outside the ${numClasses} classes (labels must be < ${numClasses})`, l.role);
      }
    }
    const bytes = this.files.reduce((a, f) => a + f.bytes, 0);
    const unpackedBytes = this.files.reduce((a, f) => a + f.unpackedBytes, 0);
    return {
      format,
      inputShape: [...train.images.shape],
      numClasses,
      labels: { min, max },
      counts: { train: train.images.n, test: test.images.n },
      files: this.files,
      bytes,
      unpackedBytes,
      sha256: this.hash.digest('hex'),
    };
  }
}

async function* emptySource(): AsyncGenerator<Uint8Array> {}

async function readTrailer(path: string): Promise<number | undefined> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const buf = new Uint8Array(4);
    const { bytesRead } = await handle.read(buf, 0, 4, size - 4);
    return bytesRead === 4 ? new DataView(buf.buffer).getUint32(0, true) : undefined;
  } finally {
    await handle.close();
  }
}

function childOf(dir: Location, name: string, role: string): Location {
  if (dir.kind === 'file') return { kind: 'file', path: resolve(dir.path, name) };
  let url: URL;
  try {
    url = new URL(name, dir.url.endsWith('/') ? dir.url : `${dir.url}/`);
  } catch {
    throw new DatasetError(`${name}: not a valid file name`, role);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DatasetError(`${name}: files of an http(s) reference must be http(s) URLs`, role);
  return { kind: 'http', url: url.href };
}

function pairCounts(images: ImagesInfo, labels: LabelsInfo): SplitInfo {
  if (images.n !== labels.n) {
    throw new DatasetError(`${labels.name}: ${labels.n} labels but ${images.name} has ${images.n} images (counts must match)`, labels.role);
  }
  return { images, labels };
}

/** Reads the rest of a file's payload; names truncation and trailing bytes. */
async function expectPayload(r: ByteReader, declared: number, what: string, f: FileCtx, fn?: (piece: Uint8Array, offset: number) => void): Promise<void> {
  const got = await r.skip(declared, fn);
  if (got < declared) {
    throw new DatasetError(`${f.name}: truncated (header declares ${what} = ${declared} bytes of data, file has ${got})`, f.role);
  }
  if (!(await r.atEnd())) throw new DatasetError(`${f.name}: trailing bytes after the ${declared} bytes of data its header declares (${what})`, f.role);
}

/** Label values streamed element by element across chunk boundaries. */
class LabelScan {
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  private readonly part: Uint8Array;
  private partLen = 0;
  private index = 0;

  constructor(
    private readonly size: number,
    private readonly decode: (view: DataView, offset: number) => number,
    private readonly f: FileCtx,
  ) {
    this.part = new Uint8Array(size);
  }

  readonly feed = (piece: Uint8Array): void => {
    let i = 0;
    if (this.partLen > 0) {
      const k = Math.min(this.size - this.partLen, piece.length);
      this.part.set(piece.subarray(0, k), this.partLen);
      this.partLen += k;
      i = k;
      if (this.partLen < this.size) return;
      this.value(this.decode(new DataView(this.part.buffer), 0));
      this.partLen = 0;
    }
    const view = new DataView(piece.buffer, piece.byteOffset, piece.byteLength);
    for (; i + this.size <= piece.length; i += this.size) this.value(this.decode(view, i));
    if (i < piece.length) {
      this.part.set(piece.subarray(i), 0);
      this.partLen = piece.length - i;
    }
  };

  private value(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw new DatasetError(`${this.f.name}: label ${v} at index ${this.index} is not a class index (an integer >= 0)`, this.f.role);
    }
    if (v >= MAX_CLASSES) {
      throw new DatasetError(`${this.f.name}: label ${v} at index ${this.index} is not below ${MAX_CLASSES} (the most classes a dataset may have)`, this.f.role);
    }
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    this.seen.add(v);
    this.index++;
  }

  readonly seen = new Set<number>();

  result(n: number): LabelsInfo {
    return { ...this.f, n, min: n === 0 ? 0 : this.min, max: n === 0 ? -1 : this.max, seen: this.seen };
  }
}

// ---------------------------------------------------------------- IDX

const IDX_IMAGES_MAGIC = 0x00000803;
const IDX_LABELS_MAGIC = 0x00000801;
const hex32 = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** Judges one IDX file from its stream: images (rank 3 or 4) or labels (rank 1). */
export async function probeIdxStream(r: ByteReader, f: FileCtx, kind: 'images' | 'labels', lim: Pick<ProbeLimits, 'maxBytes'>): Promise<ImagesInfo | LabelsInfo> {
  const expectedMagic = kind === 'images' ? IDX_IMAGES_MAGIC : IDX_LABELS_MAGIC;
  const start = await r.read(4);
  const magicOf = (b: Uint8Array) => (b.length === 4 ? new DataView(b.buffer, b.byteOffset, 4).getUint32(0, false) : -1);
  const magic = magicOf(start);
  if (start.length < 4 || start[0] !== 0 || start[1] !== 0 || IDX_TYPES[start[2]] === undefined) {
    const shown = start.length === 4 ? `magic ${hex32(magic)}` : `only ${start.length} bytes`;
    throw new DatasetError(`${f.name}: not an IDX file (${shown}; expected ${hex32(expectedMagic)})`, f.role);
  }
  const rank = start[3];
  const rankOk = kind === 'images' ? rank === 3 || rank === 4 : rank === 1;
  if (!rankOk) {
    const want = kind === 'images' ? 'rank 3 or 4' : 'rank 1';
    throw new DatasetError(`${f.name}: IDX ${kind} need ${want}, the header says rank ${rank} (magic ${hex32(magic)}; expected ${hex32(expectedMagic)})`, f.role);
  }
  const dimsBytes = await r.read(4 * rank);
  const header = new Uint8Array(4 + dimsBytes.length);
  header.set(start);
  header.set(dimsBytes, 4);
  const h = parseIdxHeader(header, f.name, f.role);
  if (h.dataBytes > lim.maxBytes) {
    throw new DatasetError(`${f.name}: header declares ${h.dims.join('x')} ${h.type.name} = ${h.dataBytes} bytes, over the ${lim.maxBytes}-byte limit for a dataset file`, f.role);
  }
  const what = `${h.dims.join('x')} ${h.type.name}`;
  if (kind === 'images') {
    if (!['ubyte', 'float', 'double'].includes(h.type.name)) {
      throw new DatasetError(`${f.name}: IDX images must be ubyte, float or double, not ${h.type.name}`, f.role);
    }
    await expectPayload(r, h.dataBytes, what, f);
    const [n, ...rest] = h.dims;
    return { ...f, n: n!, shape: rest.length === 2 ? [rest[0]!, rest[1]!, 1] : rest };
  }
  if (h.type.name === 'float' || h.type.name === 'double') {
    throw new DatasetError(`${f.name}: IDX labels must be an integer type, not ${h.type.name}`, f.role);
  }
  const scan = new LabelScan(h.type.size, h.type.get, f);
  await expectPayload(r, h.dataBytes, what, f, scan.feed);
  return scan.result(h.dims[0]!);
}

const IDX_STANDARD = {
  train_images: 'train-images-idx3-ubyte',
  train_labels: 'train-labels-idx1-ubyte',
  test_images: 't10k-images-idx3-ubyte',
  test_labels: 't10k-labels-idx1-ubyte',
} as const;

type Prober = (run: ProbeRun, location: Location, ref: LocationReference) => Promise<{ train: SplitInfo; test: SplitInfo }>;
type LocationReference = Extract<DatasetReference, { kind: 'location' }>;

const probeIdx: Prober = async (run, location, ref) => {
  const file = async <K extends 'images' | 'labels'>(role: keyof typeof IDX_STANDARD, kind: K) => {
    const given = ref.files[role];
    const std = IDX_STANDARD[role];
    const names = given !== undefined ? [given] : [`${std}.gz`, std, std.replace('-idx', '.idx')];
    const { name, reader, done } = await run.openFirst(location, names, role, true);
    try {
      const info = await probeIdxStream(reader, { name, role }, kind, run.lim);
      done();
      return info as K extends 'images' ? ImagesInfo : LabelsInfo;
    } finally {
      await reader.close();
    }
  };
  const split = async (images: 'train_images' | 'test_images', labels: 'train_labels' | 'test_labels') =>
    pairCounts(await file(images, 'images'), await file(labels, 'labels'));
  return { train: await split('train_images', 'train_labels'), test: await split('test_images', 'test_labels') };
};

// ---------------------------------------------------------------- CIFAR-10

/** Judges one CIFAR-10 batch: whole 3073-byte records, labels < 10. */
export async function probeCifarStream(r: ByteReader, f: FileCtx): Promise<SplitInfo> {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  const seen = new Set<number>();
  const total = await r.skip(Number.POSITIVE_INFINITY, (piece, offset) => {
    // Label bytes sit at every multiple of the record size.
    const first = (CIFAR_RECORD - (offset % CIFAR_RECORD)) % CIFAR_RECORD;
    for (let i = first; i < piece.length; i += CIFAR_RECORD) {
      const label = piece[i]!;
      if (label >= CIFAR_CLASSES) {
        throw new DatasetError(
          `${f.name}: label ${label} of record ${(offset + i) / CIFAR_RECORD} is outside the ${CIFAR_CLASSES} CIFAR-10 classes`,
          f.role,
        );
      }
      if (label < min) min = label;
      if (label > max) max = label;
      seen.add(label);
    }
  });
  if (total === 0) throw new DatasetError(`${f.name}: empty CIFAR-10 batch file`, f.role);
  if (total % CIFAR_RECORD !== 0) {
    throw new DatasetError(
      `${f.name}: truncated or corrupt CIFAR-10 batch (${total} bytes is not a whole number of ${CIFAR_RECORD}-byte records)`,
      f.role,
    );
  }
  const n = total / CIFAR_RECORD;
  return { images: { ...f, n, shape: [CIFAR_SIDE, CIFAR_SIDE, CIFAR_CHANNELS] }, labels: { ...f, n, min, max, seen } };
}

const probeCifar: Prober = async (run, location, ref) => {
  const trainNames =
    ref.files.train !== undefined
      ? ref.files.train.split(',').map((s) => s.trim()).filter((s) => s !== '')
      : await cifarTrainNames(location);
  const batch = async (name: string, role: 'train' | 'test') => {
    const { reader, done } = await run.openFirst(location, [name], role, true);
    try {
      const info = await probeCifarStream(reader, { name, role });
      done();
      return info;
    } finally {
      await reader.close();
    }
  };
  const parts: SplitInfo[] = [];
  for (const name of trainNames) parts.push(await batch(name, 'train'));
  const test = await batch(ref.files.test ?? 'test_batch.bin', 'test');
  const name = trainNames.join(', ');
  const n = parts.reduce((a, p) => a + p.images.n, 0);
  const train: SplitInfo = {
    images: { name, role: 'train', n, shape: [CIFAR_SIDE, CIFAR_SIDE, CIFAR_CHANNELS] },
    labels: { name, role: 'train', n, min: Math.min(...parts.map((p) => p.labels.min)), max: Math.max(...parts.map((p) => p.labels.max)), seen: new Set(parts.flatMap((p) => [...p.labels.seen])) },
  };
  return { train, test };
};

async function cifarTrainNames(location: Location): Promise<string[]> {
  if (location.kind === 'http') return [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
  const names = (await listDir(location.path, 'train'))
    .map((n) => /^data_batch_(\d+)\.bin$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map((m) => m[0]);
  if (names.length === 0) throw new DatasetError('data_batch_1.bin: file not found (no data_batch_N.bin in the directory)', 'train');
  return names;
}

// ---------------------------------------------------------------- NPY

function npyDecoder(h: NpyHeader): (view: DataView, offset: number) => number {
  const le = !h.bigEndian;
  switch (`${h.kind}${h.itemsize}`) {
    case 'u1':
    case 'b1':
      return (v, o) => v.getUint8(o);
    case 'i1':
      return (v, o) => v.getInt8(o);
    case 'u2':
      return (v, o) => v.getUint16(o, le);
    case 'i2':
      return (v, o) => v.getInt16(o, le);
    case 'u4':
      return (v, o) => v.getUint32(o, le);
    case 'i4':
      return (v, o) => v.getInt32(o, le);
    case 'u8':
      return (v, o) => Number(v.getBigUint64(o, le));
    case 'i8':
      return (v, o) => Number(v.getBigInt64(o, le));
    case 'f4':
      return (v, o) => v.getFloat32(o, le);
    default:
      return (v, o) => v.getFloat64(o, le);
  }
}

/** Reads an NPY preamble and header (bounded by MAX_NPY_HEADER) from the stream. */
export async function readNpyHeader(r: ByteReader, f: FileCtx): Promise<NpyHeader> {
  const pre = await r.read(10);
  if (pre.length < 10) {
    // Let the parser say what is wrong (wrong magic or truncated).
    return parseNpyHeader(pre, f.name, f.role);
  }
  const major = pre[6]!;
  const more = npyPreambleSize(major) - 10;
  const pre2 = more > 0 ? await r.read(more) : new Uint8Array(0);
  const preamble = new Uint8Array(pre.length + pre2.length);
  preamble.set(pre);
  preamble.set(pre2, pre.length);
  let headerLen = 0;
  if (MAGIC_OK(preamble) && (major === 1 || major === 2 || major === 3) && preamble.length === npyPreambleSize(major)) {
    const view = new DataView(preamble.buffer);
    headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  }
  // An oversized or absent header is refused by the parser before it is read.
  const header = headerLen > 0 && headerLen <= MAX_NPY_HEADER ? await r.read(headerLen) : new Uint8Array(0);
  const all = new Uint8Array(preamble.length + header.length);
  all.set(preamble);
  all.set(header, preamble.length);
  return parseNpyHeader(all, f.name, f.role);
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
const MAGIC_OK = (b: Uint8Array) => NPY_MAGIC.every((m, i) => b[i] === m);

/** Judges one NPY array from its stream: images (n, d), (n, h, w), (n, h, w, c) or labels (n,) / (n, 1). */
export async function probeNpyStream(r: ByteReader, f: FileCtx, kind: 'images' | 'labels', lim: Pick<ProbeLimits, 'maxBytes'>): Promise<ImagesInfo | LabelsInfo> {
  const h = await readNpyHeader(r, f);
  const count = h.shape.reduce((a, b) => a * b, 1);
  const bytes = count * h.itemsize;
  const what = `shape (${h.shape.join(', ')}) ${h.descr}`;
  if (bytes > lim.maxBytes) {
    throw new DatasetError(`${f.name}: header declares ${what} = ${bytes} bytes, over the ${lim.maxBytes}-byte limit for a dataset file`, f.role);
  }
  if (kind === 'images') {
    if (h.shape.length < 2 || h.shape.length > 4) {
      throw new DatasetError(`${f.name}: images must have shape (n, d), (n, h, w) or (n, h, w, c), got (${h.shape.join(', ')})`, f.role);
    }
    if (!((h.kind === 'u' && h.itemsize === 1) || h.kind === 'f')) {
      throw new DatasetError(`${f.name}: images must be uint8 or float32/float64, got dtype '${h.descr}'`, f.role);
    }
    await expectPayload(r, bytes, what, f);
    const [n, ...rest] = h.shape;
    return { ...f, n: n!, shape: rest.length === 2 ? [rest[0]!, rest[1]!, 1] : rest };
  }
  if (!(h.shape.length === 1 || (h.shape.length === 2 && h.shape[1] === 1))) {
    const hint = h.shape.length === 2 ? ' (one-hot labels are not supported: save argmax(y, axis=1))' : '';
    throw new DatasetError(`${f.name}: labels must have shape (n,) or (n, 1), got (${h.shape.join(', ')})${hint}`, f.role);
  }
  const scan = new LabelScan(h.itemsize, npyDecoder(h), f);
  await expectPayload(r, bytes, what, f, scan.feed);
  return scan.result(h.shape[0]!);
}

const NPY_ROLES = { x_train: 'images', y_train: 'labels', x_test: 'images', y_test: 'labels' } as const;

const probeNpy: Prober = async (run, location, ref) => {
  const file = async (role: keyof typeof NPY_ROLES) => {
    const name = ref.files[role] ?? `${role}.npy`;
    const { reader, done } = await run.openFirst(location, [name], role, true);
    try {
      const info = await probeNpyStream(reader, { name, role }, NPY_ROLES[role], run.lim);
      done();
      return info;
    } finally {
      await reader.close();
    }
  };
  const split = async (x: 'x_train' | 'x_test', y: 'y_train' | 'y_test') =>
    pairCounts((await file(x)) as ImagesInfo, (await file(y)) as LabelsInfo);
  return { train: await split('x_train', 'y_train'), test: await split('x_test', 'y_test') };
};

// ---------------------------------------------------------------- NPZ

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL = 0x06054b50;

/**
 * Walks an NPZ archive front to back through its local headers (so it works
 * on a download too): each member's declared sizes are judged against the
 * caps before it is inflated, then the member is probed as a stream whose
 * output may not pass its declared size.
 */
export async function probeNpzStream(r: ByteReader, archive: string, lim: ProbeLimits): Promise<Map<string, ImagesInfo | LabelsInfo>> {
  const found = new Map<string, ImagesInfo | LabelsInfo>();
  const corrupt = (why: string) => new DatasetError(`${archive}: corrupt NPZ (zip) archive (${why})`, 'reference');
  for (let members = 0; ; members++) {
    if (members > 10_000) throw corrupt('more than 10000 members');
    const sigBytes = await r.read(4);
    if (sigBytes.length === 0 && members > 0) break;
    if (sigBytes.length < 4) throw corrupt('ends inside a header');
    const sig = new DataView(sigBytes.buffer).getUint32(0, true);
    if (sig === CENTRAL_HEADER || sig === END_OF_CENTRAL) {
      if (members === 0) throw corrupt('no members');
      break;
    }
    if (sig !== LOCAL_HEADER) {
      if (members === 0) {
        throw new DatasetError(`${archive}: not an NPZ (zip) archive (magic ${hex32(new DataView(sigBytes.buffer).getUint32(0, false))}; expected 0x504b0304)`, 'reference');
      }
      throw corrupt(`unexpected bytes after member ${members}`);
    }
    const fixed = await r.read(26);
    if (fixed.length < 26) throw corrupt('ends inside a header');
    const v = new DataView(fixed.buffer);
    const flags = v.getUint16(2, true);
    const method = v.getUint16(4, true);
    let csize = v.getUint32(14, true);
    let usize = v.getUint32(18, true);
    const nameLen = v.getUint16(22, true);
    const extraLen = v.getUint16(24, true);
    const nameBytes = await r.read(nameLen);
    const extra = await r.read(extraLen);
    if (nameBytes.length < nameLen || extra.length < extraLen) throw corrupt('ends inside a header');
    const memberName = new TextDecoder().decode(nameBytes);
    const where = `${archive}[${memberName}]`;
    if (csize === 0xffffffff || usize === 0xffffffff) ({ csize, usize } = zip64Sizes(extra, csize, usize, where));
    if (flags & 0x1) throw new DatasetError(`${where}: encrypted zip members are not supported`, 'reference');
    if (flags & 0x8) {
      throw new DatasetError(`${where}: zip members with trailing data descriptors are not supported (write the archive with np.savez to a file)`, 'reference');
    }
    if (method !== 0 && method !== 8) throw new DatasetError(`${where}: zip compression method ${method} is not supported (stored or deflate)`, 'reference');
    if (usize > lim.maxBytes) {
      throw new DatasetError(`${where}: declares ${usize} bytes unpacked, over the ${lim.maxBytes}-byte limit for a dataset file`, 'reference');
    }
    if (method === 0 && usize !== csize) throw corrupt(`${memberName} is stored but its sizes differ`);
    if (method === 8 && usize > ratioAllowance(csize, lim.maxRatio)) {
      throw new DatasetError(`${where}: declares ${usize} bytes unpacked from ${csize}, more than the ${lim.maxRatio}-fold limit for compressed dataset files`, 'reference');
    }
    const key = memberName.replace(/\.npy$/, '');
    const role = Object.hasOwn(NPY_ROLES, key) ? (key as keyof typeof NPY_ROLES) : null;
    if (role === null) {
      const skipped = await r.skip(csize);
      if (skipped < csize) throw corrupt(`${memberName} is truncated`);
      continue;
    }
    const compressed = (async function* () {
      let got = 0;
      for await (const piece of r.take(csize)) {
        got += piece.length;
        yield piece;
      }
      if (got < csize) throw new DatasetError(`${where}: truncated (the archive ends inside this member)`, role);
    })();
    const memberTally = { raw: 0, unpacked: 0 };
    const countedMember = (async function* () {
      for await (const piece of compressed) {
        memberTally.raw += piece.length;
        yield piece;
      }
    })();
    const data = method === 8 ? inflated(countedMember, 'deflate', memberTally, lim, where, role, usize) : countedMember;
    const member = new ByteReader(data, lim.onAlloc);
    try {
      found.set(role, await probeNpyStream(member, { name: where, role }, NPY_ROLES[role], lim));
    } finally {
      await member.close();
    }
    // The member's stream must have been consumed whole before the next header.
    if (memberTally.raw < csize) {
      const rest = await r.skip(csize - memberTally.raw);
      if (rest < csize - memberTally.raw) throw corrupt(`${memberName} is truncated`);
    }
  }
  return found;
}

function zip64Sizes(extra: Uint8Array, csize: number, usize: number, where: string): { csize: number; usize: number } {
  const v = new DataView(extra.buffer, extra.byteOffset, extra.byteLength);
  for (let at = 0; at + 4 <= extra.length; ) {
    const id = v.getUint16(at, true);
    const len = v.getUint16(at + 2, true);
    if (id === 0x0001) {
      let p = at + 4;
      const end = p + len;
      const next = () => {
        if (p + 8 > end || p + 8 > extra.length) throw new DatasetError(`${where}: corrupt zip64 extra field`, 'reference');
        const x = Number(v.getBigUint64(p, true));
        p += 8;
        return x;
      };
      // The zip64 record lists only the sizes whose 32-bit field overflowed, uncompressed first.
      const u = usize === 0xffffffff ? next() : usize;
      const c = csize === 0xffffffff ? next() : csize;
      return { csize: c, usize: u };
    }
    at += 4 + len;
  }
  throw new DatasetError(`${where}: zip64 sizes announced but no zip64 extra field`, 'reference');
}

const probeNpz: Prober = async (run, location, ref) => {
  const name = location.kind === 'file' ? basename(location.path) : decodeURIComponent(basename(new URL(location.url).pathname)) || ref.name;
  const opened = await run.open(location, name, 'reference', { gzip: false, hash: true });
  if (opened === null) throw new DatasetError(`${name}: file not found`, 'reference');
  let found: Map<string, ImagesInfo | LabelsInfo>;
  try {
    found = await probeNpzStream(opened.reader, name, run.lim);
    opened.done();
  } finally {
    await opened.reader.close();
  }
  const get = <T>(key: keyof typeof NPY_ROLES): T => {
    const info = found.get(key);
    if (info === undefined) {
      const has = [...found.keys()].join(', ') || 'none of x_train, y_train, x_test, y_test';
      throw new DatasetError(`${name}: NPZ archive has no '${key}' array (it has: ${has})`, key);
    }
    return info as T;
  };
  return {
    train: pairCounts(get<ImagesInfo>('x_train'), get<LabelsInfo>('y_train')),
    test: pairCounts(get<ImagesInfo>('x_test'), get<LabelsInfo>('y_test')),
  };
};

const PROBERS: Record<Exclude<DatasetFormat, 'images'>, Prober> = { idx: probeIdx, cifar10: probeCifar, npy: probeNpy, npz: probeNpz };

// ---------------------------------------------------------------- format detection

/**
 * The format of a reference that named none, as the loaders decide it: a
 * directory from the names present (class folders and nothing else: an image
 * folder); a file or an http(s) .zip from its bytes (a gzip is a .tar.gz image
 * folder, a zip of .npy members an NPZ, any other zip an image folder).
 */
async function detectFormat(location: Location, access: DataAccess, lim: ProbeLimits): Promise<{ location: Location; format: DatasetFormat; archive?: Uint8Array }> {
  const archiveFormat = async () => {
    const bytes = await readArchive(location, { ...access, limits: { maxBytes: lim.maxBytes, maxRatio: lim.maxRatio } });
    if (isGzip(bytes)) return { location, format: 'images' as const, archive: bytes };
    if (!isZip(bytes)) return { location, format: 'npz' as const };
    const npz = zipHoldsOnlyNpy(bytes, shownName(location), { maxBytes: lim.maxBytes, maxRatio: lim.maxRatio, maxFiles: Number.MAX_SAFE_INTEGER });
    return npz ? { location, format: 'npz' as const } : { location, format: 'images' as const, archive: bytes };
  };
  if (location.kind === 'http') return archiveFormat();
  const dir = await confineFile(location.path, access.files, 'reference');
  const shown = basename(dir) || 'dataset';
  let isFile: boolean;
  try {
    isFile = (await stat(dir)).isFile();
  } catch {
    throw new DatasetError(`${shown}: no such file or directory`, 'reference');
  }
  if (isFile) return archiveFormat();
  const names = await listDir(dir, 'reference');
  const found: { format: DatasetFormat; location: Location; why: string }[] = [];
  if (names.some((n) => /^train-images[.-]idx3-ubyte(\.gz)?$/.test(n))) found.push({ format: 'idx', location, why: 'train-images-idx3-ubyte' });
  if (names.some((n) => /^data_batch_\d+\.bin$/.test(n))) found.push({ format: 'cifar10', location, why: 'data_batch_N.bin' });
  else if (names.includes('cifar-10-batches-bin')) {
    const sub = resolve(dir, 'cifar-10-batches-bin');
    const inner = await listDir(sub, 'reference').catch(() => []);
    if (inner.some((n) => /^data_batch_\d+\.bin$/.test(n))) found.push({ format: 'cifar10', location: { kind: 'file', path: sub }, why: 'cifar-10-batches-bin/' });
  }
  if (names.includes('x_train.npy')) found.push({ format: 'npy', location, why: 'x_train.npy' });
  const npz = names.filter((n) => /\.npz$/i.test(n)).sort();
  if (npz.length > 1) throw new DatasetError(`${shown}: ${npz.length} .npz archives (${npz.join(', ')}); name one`, 'reference');
  if (npz.length === 1) found.push({ format: 'npz', location: { kind: 'file', path: resolve(dir, npz[0]!) }, why: npz[0]! });
  if (found.length === 0 && (await holdsFolders(dir))) return { location, format: 'images' };
  if (found.length === 0) {
    throw new DatasetError(
      `${shown}: no dataset files found (expected IDX train-images-idx3-ubyte[.gz] + t10k-..., CIFAR-10 data_batch_N.bin + test_batch.bin, one *.npz, or x_train.npy/y_train.npy/x_test.npy/y_test.npy)`,
      'reference',
    );
  }
  if (found.length > 1) {
    throw new DatasetError(`${shown}: ambiguous directory (${found.map((f) => `${f.format}: ${f.why}`).join('; ')}); add ?format=...`, 'format');
  }
  return found[0]!;
}

/** An image folder's probe as the summary every format gives (labels are the class indices). */
function imagesProbe(location: Location, p: ImageProbe): DatasetProbe {
  const name = shownName(location);
  return {
    format: 'images',
    inputShape: p.inputShape,
    numClasses: p.numClasses,
    labels: { min: 0, max: p.numClasses - 1 },
    counts: p.counts,
    files: [{ name, role: 'reference', bytes: p.bytes, unpackedBytes: p.unpackedBytes }],
    bytes: p.bytes,
    unpackedBytes: p.unpackedBytes,
    sha256: p.sha256,
    classNames: p.classNames,
    images: { resize: p.resize, sizes: p.sizes },
  };
}

/** `work`, or a rejection once `signal` aborts (the caller turns it into the timeout's message). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolveWork, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolveWork, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

async function listDir(dir: string, field: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'directory not found' : code === 'ENOTDIR' ? 'not a directory' : 'cannot be listed';
    throw new DatasetError(`${basename(dir) || 'dataset'}: ${why}`, field);
  }
}

/**
 * Probes one file's bytes held in memory, through the same decode path as a
 * real file (gzip detected by magic, caps applied): for tests and fuzzing.
 */
export async function probeBytes(
  kind: 'idx-images' | 'idx-labels' | 'npy-images' | 'npy-labels' | 'cifar' | 'npz',
  bytes: Uint8Array,
  limits: Partial<ProbeLimits> = {},
  chunkSize = 4096,
): Promise<unknown> {
  const lim: ProbeLimits = { ...defaultProbeLimits(), ...limits };
  const name = 'file';
  const source = (async function* () {
    for (let i = 0; i < bytes.length; i += chunkSize) yield bytes.subarray(i, i + chunkSize);
  })();
  const tally = { raw: 0, unpacked: 0 };
  const raw = counted(source, tally, lim.maxBytes, name, 'file', undefined, new AbortController().signal);
  const head = new ByteReader(raw, lim.onAlloc);
  const start = await head.read(2);
  const rest = (async function* () {
    yield start;
    for await (const c of head.take(Number.POSITIVE_INFINITY)) yield c;
  })();
  const gzip = kind !== 'npz' && start[0] === 0x1f && start[1] === 0x8b;
  const r = new ByteReader(gzip ? inflated(rest, 'gzip', tally, lim, name, 'file') : rest, lim.onAlloc);
  const f = { name, role: 'file' };
  try {
    switch (kind) {
      case 'idx-images':
        return await probeIdxStream(r, f, 'images', lim);
      case 'idx-labels':
        return await probeIdxStream(r, f, 'labels', lim);
      case 'npy-images':
        return await probeNpyStream(r, f, 'images', lim);
      case 'npy-labels':
        return await probeNpyStream(r, f, 'labels', lim);
      case 'cifar':
        return await probeCifarStream(r, f);
      default:
        return await probeNpzStream(r, name, lim);
    }
  } finally {
    await r.close();
  }
}
