// Property tests of the dataset header parsers (IDX, NPY, NPZ, CIFAR-10), both
// the streaming probe and the worker's in-memory readers: arbitrary bytes and
// mutated valid files (bytes set, cut, appended, gzipped) must come back as a
// result or a DatasetError, nothing else; and no declared size may drive an
// allocation: with a small byte cap, the probe's largest buffer stays at a
// header's size, and a header declaring more than the cap is refused as such.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { gzipSync, zipSync } from 'fflate';
import { DatasetError } from '../../src/engine/data/errors.js';
import { encodeCifarBatch, encodeIdx, encodeNpy } from '../../src/engine/data/encode.js';
import { idxImages, idxLabels, parseIdx } from '../../src/engine/data/idx.js';
import { MAX_NPY_HEADER, npyImages, npyLabels, parseNpy, parseNpz } from '../../src/engine/data/npy.js';
import { parseCifarBatch } from '../../src/engine/data/cifar.js';
import { probeBytes } from '../../src/engine/data/probe.js';

const RUNS = 300;
const CAP = 4096;
/** The most one read may take whatever a file declares: the longest NPY preamble + header. */
const LARGEST_READ = MAX_NPY_HEADER + 12;

type Kind = 'idx-images' | 'idx-labels' | 'npy-images' | 'npy-labels' | 'cifar' | 'npz';
const KINDS: Kind[] = ['idx-images', 'idx-labels', 'npy-images', 'npy-labels', 'cifar', 'npz'];

const VALID: Record<Kind, Uint8Array> = {
  'idx-images': encodeIdx('ubyte', [2, 3, 3], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]),
  'idx-labels': encodeIdx('short', [3], [0, 4, 2]),
  'npy-images': encodeNpy('<f4', [2, 2, 2], [0, 0.5, 1, 0.25, 0, 0, 1, 1]),
  'npy-labels': encodeNpy('<i8', [3], [1, 0, 2]),
  cifar: encodeCifarBatch([{ label: 3, pixels: new Array(3072).fill(7) }]),
  npz: zipSync({
    'x_train.npy': encodeNpy('|u1', [1, 2], [1, 2]),
    'y_train.npy': encodeNpy('|u1', [1], [0]),
    'x_test.npy': encodeNpy('|u1', [1, 2], [3, 4]),
    'y_test.npy': encodeNpy('|u1', [1], [1]),
  }, { level: 6 }),
};

/** A valid file with a few edits: bytes overwritten, a cut, bytes appended, optionally gzipped. */
const mutated = (kind: Kind) =>
  fc
    .record({
      sets: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
      tail: fc.uint8Array({ maxLength: 16 }),
      gzip: fc.boolean(),
    })
    .map(({ sets, cut, tail, gzip }) => {
      const base = VALID[kind];
      let b: Uint8Array = base.slice();
      for (const [at, v] of sets) b[at % b.length] = v;
      if (cut !== undefined) b = b.subarray(0, cut % (b.length + 1));
      const out = new Uint8Array(b.length + tail.length);
      out.set(b);
      out.set(tail, b.length);
      return gzip && kind !== 'npz' ? gzipSync(out) : out;
    });

const anyBytes = fc.uint8Array({ maxLength: 600 });

function onlyDatasetErrors(e: unknown): void {
  if (!(e instanceof DatasetError)) throw new Error(`not a DatasetError: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
}

async function probeChecked(kind: Kind, bytes: Uint8Array, chunk: number): Promise<void> {
  let largest = 0;
  try {
    await probeBytes(kind, bytes, { maxBytes: CAP, onAlloc: (n) => (largest = Math.max(largest, n)) }, chunk);
  } catch (e) {
    onlyDatasetErrors(e);
  }
  assert.ok(largest <= LARGEST_READ, `${kind}: a ${largest}-byte buffer`);
}

/** The worker's in-memory readers, as the loaders chain them. */
function readInMemory(kind: Kind, bytes: Uint8Array): void {
  try {
    if (kind === 'idx-images') idxImages(parseIdx(bytes, 'f', 'f'), 'f', 'f');
    else if (kind === 'idx-labels') idxLabels(parseIdx(bytes, 'f', 'f'), 'f', 'f');
    else if (kind === 'npy-images') npyImages(parseNpy(bytes, 'f', 'f'), 'f', 'f');
    else if (kind === 'npy-labels') npyLabels(parseNpy(bytes, 'f', 'f'), 'f', 'f');
    else if (kind === 'cifar') parseCifarBatch(bytes, 'f', 'f');
    else for (const member of parseNpz(bytes, 'f', 'f').values()) parseNpy(member, 'f', 'f');
  } catch (e) {
    onlyDatasetErrors(e);
  }
}

test('the valid seeds probe cleanly (so the properties start from files that parse)', async () => {
  for (const kind of KINDS) await probeBytes(kind, VALID[kind], { maxBytes: CAP });
});

test('probe: arbitrary bytes give a result or a DatasetError, with no buffer beyond a header', async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...KINDS), anyBytes, fc.integer({ min: 1, max: 64 }), (kind, bytes, chunk) => probeChecked(kind, bytes, chunk)),
    { numRuns: RUNS },
  );
});

test('probe: mutated valid files give a result or a DatasetError, with no buffer beyond a header', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...KINDS).chain((kind) => fc.tuple(fc.constant(kind), mutated(kind), fc.integer({ min: 1, max: 4096 }))),
      ([kind, bytes, chunk]) => probeChecked(kind, bytes, chunk),
    ),
    { numRuns: RUNS },
  );
});

test('in-memory readers: arbitrary and mutated bytes give a result or a DatasetError', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...KINDS).chain((kind) => fc.tuple(fc.constant(kind), fc.oneof(anyBytes, mutated(kind)))),
      ([kind, bytes]) => readInMemory(kind, bytes),
    ),
    { numRuns: RUNS },
  );
});

test('a header declaring more than the cap is refused as such, before its data is read', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 1, max: 0xffffffff }), { minLength: 3, maxLength: 4 }),
      fc.constantFrom('ubyte', 'float', 'double'),
      async (dims, type) => {
        const size = { ubyte: 1, float: 4, double: 8 }[type];
        fc.pre(dims.reduce((a, b) => a * b, 1) * size > CAP);
        // The header alone: no data follows, so only the declared size can decide.
        const header = encodeIdx(type as 'ubyte', dims, []);
        let largest = 0;
        await assert.rejects(probeBytes('idx-images', header, { maxBytes: CAP, onAlloc: (n) => (largest = Math.max(largest, n)) }), (e: unknown) => {
          assert.ok(e instanceof DatasetError);
          assert.match(e.message, new RegExp(`over the ${CAP}-byte limit`));
          return true;
        });
        assert.ok(largest <= 16, `a ${largest}-byte buffer`);
      },
    ),
    { numRuns: RUNS },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 2 ** 40 }), { minLength: 1, maxLength: 3 }), async (shape) => {
      fc.pre(shape.reduce((a, b) => a * b, 1) > CAP);
      const header = encodeNpy('|u1', shape, []);
      await assert.rejects(probeBytes('npy-labels', header, { maxBytes: CAP }), /over the 4096-byte limit/);
    }),
    { numRuns: RUNS },
  );
});
