// Bytes for the bad-input corpus, built in memory: Layers model files (good
// and broken), archives (zip, tar, tar.gz, with traversal, links and bombs)
// and dataset files (IDX, NPY, CIFAR) with one defect each. Nothing here is
// checked in as binary; every case says in code what is wrong with it.
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { encodeCifarBatch, encodeIdx, encodeNpy } from '../../src/engine/data/encode.js';

const enc = new TextEncoder();
export const utf8 = (s: string) => enc.encode(s);

export interface NamedBytes {
  name: string;
  bytes: Uint8Array;
}

/** A Keras-style Sequential topology of Dense layers on a flat input, as TF.js saves it. */
export function denseTopology(inputDim: number, units: number[], opts: { className?: string; inputShape?: unknown; image?: number[] } = {}) {
  // An image input goes through a Flatten first (no weights): what a model for MNIST-shaped data looks like.
  const flatten = opts.image ? [{ class_name: 'Flatten', config: { name: 'flat', batch_input_shape: [null, ...opts.image], dtype: 'float32', trainable: true } }] : [];
  const dense = units.map((u, i) => ({
    class_name: i === 0 && opts.className ? opts.className : 'Dense',
    config: {
      name: `d${i}`,
      units: u,
      activation: i === units.length - 1 ? 'softmax' : 'relu',
      use_bias: true,
      kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } },
      bias_initializer: { class_name: 'Zeros', config: {} },
      ...(i === 0 && !opts.image ? { batch_input_shape: opts.inputShape ?? [null, inputDim] } : {}),
      dtype: 'float32',
      trainable: true,
    },
  }));
  const layers = [...flatten, ...dense];
  return { class_name: 'Sequential', config: { name: 'seq', layers }, keras_version: 'tfjs-layers 4.22.0', backend: 'tensor_flow.js' };
}

/** model.json + weights.bin for `denseTopology`, with every weight listed in the manifest. */
export function denseModel(inputDim: number, units: number[], opts: { className?: string; inputShape?: unknown; image?: number[]; dropBytes?: number; extraBytes?: number } = {}): NamedBytes[] {
  const weights: { name: string; shape: number[]; dtype: 'float32' }[] = [];
  let fanIn = inputDim;
  let count = 0;
  units.forEach((u, i) => {
    weights.push({ name: `d${i}/kernel`, shape: [fanIn, u], dtype: 'float32' });
    weights.push({ name: `d${i}/bias`, shape: [u], dtype: 'float32' });
    count += fanIn * u + u;
    fanIn = u;
  });
  const modelJson = {
    format: 'layers-model',
    generatedBy: 'corpus',
    convertedBy: null,
    modelTopology: denseTopology(inputDim, units, opts),
    weightsManifest: [{ paths: ['weights.bin'], weights }],
  };
  // Huge declared layers get a token weight file: the shapes, not the bytes, must be refused.
  const bytes = Math.min(count * 4, 64 * 1024);
  const size = Math.max(0, bytes - (opts.dropBytes ?? 0) + (opts.extraBytes ?? 0));
  return [
    { name: 'model.json', bytes: utf8(JSON.stringify(modelJson)) },
    { name: 'weights.bin', bytes: new Uint8Array(size) },
  ];
}

/** The valid small model every "one thing wrong" case starts from: 28x28x1 → flatten → 16 → 10. */
export const goodModel = () => denseModel(784, [16, 10], { image: [28, 28, 1] });

export function withModelJson(files: NamedBytes[], edit: (j: Record<string, unknown>) => unknown): NamedBytes[] {
  const j = JSON.parse(new TextDecoder().decode(files[0]!.bytes)) as Record<string, unknown>;
  const out = edit(j) ?? j;
  return [{ name: 'model.json', bytes: utf8(JSON.stringify(out)) }, ...files.slice(1)];
}

export const zipOf = (files: NamedBytes[]) => zipSync(Object.fromEntries(files.map((f) => [f.name, f.bytes])));

/** A ustar archive; `type` '0' file, '2' symlink (to `link`), '5' directory. */
export function tarOf(entries: Array<NamedBytes & { type?: '0' | '2' | '5'; link?: string }>): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const e of entries) {
    const h = new Uint8Array(512);
    const put = (s: string, at: number, len: number) => h.set(utf8(s).subarray(0, len), at);
    const octal = (n: number, len: number) => n.toString(8).padStart(len - 1, '0') + '\0';
    const data = e.type === '2' || e.type === '5' ? new Uint8Array(0) : e.bytes;
    put(e.name, 0, 100);
    put(octal(0o644, 8), 100, 8);
    put(octal(0, 8), 108, 8);
    put(octal(0, 8), 116, 8);
    put(octal(data.length, 12), 124, 12);
    put(octal(0, 12), 136, 12);
    put('        ', 148, 8);
    put(e.type ?? '0', 156, 1);
    if (e.link) put(e.link, 157, 100);
    put('ustar\0', 257, 6);
    put('00', 263, 2);
    let sum = 0;
    for (const b of h) sum += b;
    put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
    blocks.push(h, data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  const total = blocks.reduce((n, b) => n + b.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

export const tgzOf = (entries: Parameters<typeof tarOf>[0]) => new Uint8Array(gzipSync(tarOf(entries)));

/**
 * A gzip file of `bytes` zeros that is never held expanded: one 16 MiB member
 * compressed once and repeated (gzip allows concatenated members, and every
 * reader must inflate them all). 1 GiB comes out at about 1 MiB.
 */
export function gzipZeros(bytes: number): Uint8Array {
  const sliceSize = Math.min(bytes, 16 * 1024 * 1024);
  const member = gzipSync(Buffer.alloc(sliceSize), { level: 9 });
  const count = Math.ceil(bytes / sliceSize);
  const out = new Uint8Array(member.length * count);
  for (let i = 0; i < count; i++) out.set(member, i * member.length);
  return out;
}

/**
 * An IDX image file, gzipped, whose header honestly declares `bytes` of
 * pixels (all zeros): under the byte cap, but expanding about a thousand-fold,
 * so only the ratio cap, checked while streaming, stops it.
 */
export function gzipIdxBomb(bytes: number): Uint8Array {
  const rows = 28;
  const n = Math.floor(bytes / (rows * rows));
  const header = encodeIdx('ubyte', [n, rows, rows], []);
  const first = gzipSync(Buffer.concat([Buffer.from(header), Buffer.alloc(16 * 1024 * 1024 - header.length)]), { level: 9 });
  return new Uint8Array(Buffer.concat([Buffer.from(first), Buffer.from(gzipZeros(n * rows * rows + header.length - 16 * 1024 * 1024))]));
}

// ---- datasets (one folder per case, each under the corpus's file root) ----

const pixels = (n: number, d: number) => Array.from({ length: n * d }, (_, i) => (i * 7) % 256);
const labels = (n: number, classes = 10) => Array.from({ length: n }, (_, i) => i % classes);

/** The four IDX files of a small MNIST-shaped set (28×28), `n` train and `n` test examples. */
export function idxSet(n = 40, opts: { rows?: number; cols?: number; labelOf?: (i: number) => number; trainLabels?: number } = {}): NamedBytes[] {
  const rows = opts.rows ?? 28;
  const cols = opts.cols ?? 28;
  const lab = (k: number) => Array.from({ length: k }, (_, i) => (opts.labelOf ? opts.labelOf(i) : i % 10));
  return [
    { name: 'train-images-idx3-ubyte', bytes: encodeIdx('ubyte', [n, rows, cols], pixels(n, rows * cols)) },
    { name: 'train-labels-idx1-ubyte', bytes: encodeIdx('ubyte', [opts.trainLabels ?? n], lab(opts.trainLabels ?? n)) },
    { name: 't10k-images-idx3-ubyte', bytes: encodeIdx('ubyte', [n, rows, cols], pixels(n, rows * cols)) },
    { name: 't10k-labels-idx1-ubyte', bytes: encodeIdx('ubyte', [n], lab(n)) },
  ];
}

export function replaceFile(set: NamedBytes[], name: string, bytes: Uint8Array): NamedBytes[] {
  return set.map((f) => (f.name === name ? { name, bytes } : f));
}

export function npySet(n = 40, opts: { xShape?: number[]; yValues?: number[]; xBytes?: Uint8Array } = {}): NamedBytes[] {
  const xShape = opts.xShape ?? [n, 28, 28];
  const d = xShape.slice(1).reduce((a, b) => a * b, 1);
  const x = opts.xBytes ?? encodeNpy('|u1', xShape, pixels(n, d));
  const y = encodeNpy('<i8', [n], opts.yValues ?? labels(n));
  return [
    { name: 'x_train.npy', bytes: x },
    { name: 'y_train.npy', bytes: y },
    { name: 'x_test.npy', bytes: x },
    { name: 'y_test.npy', bytes: y },
  ];
}

export function cifarSet(n = 20, opts: { truncate?: number; label?: number } = {}): NamedBytes[] {
  const records = Array.from({ length: n }, (_, i) => ({ label: opts.label ?? i % 10, pixels: pixels(1, 3072) }));
  const batch = encodeCifarBatch(records);
  const cut = opts.truncate ? batch.subarray(0, batch.length - opts.truncate) : batch;
  return [
    { name: 'data_batch_1.bin', bytes: cut },
    { name: 'test_batch.bin', bytes: batch },
  ];
}

export { encodeIdx, encodeNpy };
