// The dataset probe: every format (IDX plain and gzipped, NPY, NPZ stored and
// deflated, CIFAR-10) with hand-built tiny files, valid and with each defect
// (wrong magic, label outside the classes, truncated or over-long data,
// image/label count mismatch, train/test shape mismatch, bombs), on disk and
// over loopback http. Messages name the file as the reference named it and
// never the server's directory.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync, zipSync } from 'fflate';
import { DatasetError, loadDataset } from '../../src/engine/data/index.js';
import { encodeCifarBatch, encodeIdx, encodeNpy } from '../../src/engine/data/encode.js';
import { probeBytes, probeDataset, type DatasetProbe } from '../../src/engine/data/probe.js';
import { OutboundGuard } from '../../src/runtime/outbound.js';
import { listenLoopback, scratchDirs } from './fixtures/scratch.js';

/** The test servers listen on loopback, which the outbound guard refuses unless allowed. */
const LOOPBACK = { fetch: new OutboundGuard({ allow: ['127.0.0.1/32'] }).fetch };

const scratch = scratchDirs('ts-data-probe-');
const url = (p: string, query = '') => pathToFileURL(p).href + query;

const idxSet = (o: { trainLabels?: number[]; trainImages?: Uint8Array; testImages?: Uint8Array } = {}) => ({
  'train-images-idx3-ubyte': o.trainImages ?? encodeIdx('ubyte', [3, 2, 2], new Array(12).fill(7)),
  'train-labels-idx1-ubyte': encodeIdx('ubyte', [o.trainLabels?.length ?? 3], o.trainLabels ?? [0, 1, 2]),
  't10k-images-idx3-ubyte': o.testImages ?? encodeIdx('ubyte', [2, 2, 2], new Array(8).fill(9)),
  't10k-labels-idx1-ubyte': encodeIdx('ubyte', [2], [2, 1]),
});

const gz = (files: Record<string, Uint8Array>) => Object.fromEntries(Object.entries(files).map(([k, v]) => [`${k}.gz`, gzipSync(v)]));

const npySet = (o: { yTrain?: number[]; xTest?: Uint8Array } = {}) => ({
  'x_train.npy': encodeNpy('|u1', [3, 2, 2], new Array(12).fill(5)),
  'y_train.npy': encodeNpy('<i8', [o.yTrain?.length ?? 3], o.yTrain ?? [0, 1, 3]),
  'x_test.npy': o.xTest ?? encodeNpy('<f4', [1, 2, 2], [0, 0.5, 1, 0.25]),
  'y_test.npy': encodeNpy('|u1', [1], [2]),
});

const cifarRecords = (labels: number[]) => encodeCifarBatch(labels.map((label) => ({ label, pixels: new Array(3072).fill(label) })));

/** Asserts a DatasetError whose message matches, names `file`, and holds no server path. */
async function refused(p: Promise<unknown>, message: RegExp, file: string, root: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DatasetError, `DatasetError expected, got ${String(e)}`);
    assert.match(e.message, message);
    assert.ok(e.message.startsWith(file), `message should start with '${file}': ${e.message}`);
    assert.ok(!e.message.includes(root), `server path in: ${e.message}`);
    assert.ok(e.message.length < 300, `too long: ${e.message}`);
    return true;
  });
}

describe('IDX', () => {
  test('a valid set, plain and gzipped, gives shape, classes, counts, byte sizes and the loader sha256', async () => {
    for (const files of [idxSet(), gz(idxSet())]) {
      const dir = await scratch.make(files);
      const p = await probeDataset(url(dir));
      assert.deepEqual(p.inputShape, [2, 2, 1]);
      assert.equal(p.numClasses, 3);
      assert.deepEqual(p.labels, { min: 0, max: 2 });
      assert.deepEqual(p.counts, { train: 3, test: 2 });
      assert.equal(p.format, 'idx');
      assert.equal(p.files.length, 4);
      assert.equal(p.unpackedBytes, Object.values(idxSet()).reduce((a, b) => a + b.length, 0));
      assert.equal(p.bytes, Object.values(files).reduce((a, b) => a + b.length, 0));
      const ds = await loadDataset(url(dir), { validationFraction: 0 });
      assert.equal(p.sha256, ds.sha256, 'the probe hashes what the worker hashes');
    }
  });

  test('a wrong magic is one short sentence naming the file and both magics', async () => {
    const files = { ...gz(idxSet()), 'train-images-idx3-ubyte.gz': gzipSync(gzipSync(idxSet()['train-images-idx3-ubyte'])) };
    const dir = await scratch.make(files);
    await refused(probeDataset(url(dir)), /^train-images-idx3-ubyte\.gz: not an IDX file \(magic 0x1f8b0800; expected 0x00000803\)$/, 'train-images-idx3-ubyte.gz', dir);
    const swapped = await scratch.make({ ...idxSet(), 'train-images-idx3-ubyte': idxSet()['train-labels-idx1-ubyte'] });
    await refused(probeDataset(url(swapped)), /rank 1 .*expected 0x00000803/, 'train-images-idx3-ubyte', swapped);
  });

  test('a label outside the declared classes', async () => {
    const dir = await scratch.make(idxSet({ trainLabels: [0, 1, 12] }));
    await refused(probeDataset(url(dir, '?classes=10')), /label 12 is outside the 10 classes/, 'train-labels-idx1-ubyte', dir);
    assert.equal((await probeDataset(url(dir))).numClasses, 13, 'without classes= the largest label decides');
  });

  test('truncated images, plain and gzipped, and trailing bytes', async () => {
    const full = idxSet()['train-images-idx3-ubyte'];
    const cut = await scratch.make(idxSet({ trainImages: full.subarray(0, full.length - 3) }));
    await refused(probeDataset(url(cut)), /truncated \(header declares 3x2x2 ubyte = 12 bytes of data, file has 9\)/, 'train-images-idx3-ubyte', cut);
    const gzCut = gzipSync(full);
    const cutGz = await scratch.make({ ...gz(idxSet()), 'train-images-idx3-ubyte.gz': gzCut.subarray(0, gzCut.length - 6) });
    await refused(probeDataset(url(cutGz)), /truncated/, 'train-images-idx3-ubyte.gz', cutGz);
    const long = new Uint8Array(full.length + 5);
    long.set(full);
    const extra = await scratch.make(idxSet({ trainImages: long }));
    await refused(probeDataset(url(extra)), /trailing bytes after the 12 bytes of data/, 'train-images-idx3-ubyte', extra);
  });

  test('image and label counts that differ', async () => {
    const dir = await scratch.make(idxSet({ trainLabels: [0, 1, 2, 1] }));
    await refused(probeDataset(url(dir)), /4 labels but train-images-idx3-ubyte has 3 images/, 'train-labels-idx1-ubyte', dir);
  });

  test('train and test images of different shapes', async () => {
    const dir = await scratch.make(idxSet({ testImages: encodeIdx('ubyte', [2, 3, 3], new Array(18).fill(1)) }));
    await refused(probeDataset(url(dir)), /test images are 3x3x1 but training images .* are 2x2x1/, 't10k-images-idx3-ubyte', dir);
  });

  test('a header declaring more than the byte cap is refused before its data is read', async () => {
    const huge = new Uint8Array(16);
    huge.set([0, 0, 8, 3]);
    new DataView(huge.buffer).setUint32(4, 1_000_000, false);
    new DataView(huge.buffer).setUint32(8, 100, false);
    new DataView(huge.buffer).setUint32(12, 100, false);
    const dir = await scratch.make(idxSet({ trainImages: huge }));
    await refused(probeDataset(url(dir)), /declares 1000000x100x100 ubyte = 10000000000 bytes, over the/, 'train-images-idx3-ubyte', dir);
  });

  test('over loopback http, with the file names as given', async () => {
    const files: Record<string, Uint8Array> = gz(idxSet());
    const server = await listenLoopback((req, res) => {
      const name = (req.url ?? '').replace(/^\/d\//, '');
      const body = files[name];
      if (body === undefined) res.writeHead(404).end();
      else res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    try {
      const p = await probeDataset(`${server.base}/d/#format=idx`, {}, LOOPBACK);
      assert.deepEqual(p.counts, { train: 3, test: 2 });
      files['t10k-labels-idx1-ubyte.gz'] = gzipSync(encodeIdx('ubyte', [3], [0, 0, 0]));
      await refused(probeDataset(`${server.base}/d/#format=idx`, {}, LOOPBACK), /3 labels but t10k-images-idx3-ubyte\.gz has 2 images/, 't10k-labels-idx1-ubyte.gz', '/d/');
    } finally {
      await server.close();
    }
  });
});

describe('NPY', () => {
  test('a valid set: flat and 2-D images, int64 and uint8 labels', async () => {
    const dir = await scratch.make(npySet());
    const p = await probeDataset(url(dir));
    assert.deepEqual(p.inputShape, [2, 2, 1]);
    assert.equal(p.numClasses, 4);
    assert.deepEqual(p.counts, { train: 3, test: 1 });
    const ds = await loadDataset(url(dir), { validationFraction: 0 });
    assert.equal(p.sha256, ds.sha256);
  });

  test('wrong magic, label outside the classes, truncation, count mismatch, shape mismatch', async () => {
    const bad = await scratch.make({ ...npySet(), 'x_train.npy': encodeIdx('ubyte', [3, 2, 2], new Array(12).fill(0)) });
    await refused(probeDataset(url(bad)), /not an NPY file \(magic bytes 00 00 08 03 00 00;/, 'x_train.npy', bad);
    const label = await scratch.make(npySet());
    await refused(probeDataset(url(label, '?classes=3')), /label 3 is outside the 3 classes/, 'y_train.npy', label);
    const full = npySet()['x_train.npy'];
    const cut = await scratch.make({ ...npySet(), 'x_train.npy': full.subarray(0, full.length - 1) });
    await refused(probeDataset(url(cut)), /truncated \(header declares shape \(3, 2, 2\) \|u1 = 12 bytes of data, file has 11\)/, 'x_train.npy', cut);
    const count = await scratch.make(npySet({ yTrain: [0, 1] }));
    await refused(probeDataset(url(count)), /2 labels but x_train\.npy has 3 images/, 'y_train.npy', count);
    const shape = await scratch.make(npySet({ xTest: encodeNpy('|u1', [1, 4], [1, 2, 3, 4]) }));
    await refused(probeDataset(url(shape)), /test images are 4 but training images/, 'x_test.npy', shape);
    const float = await scratch.make({ ...npySet(), 'y_train.npy': encodeNpy('<f4', [3], [0, 1.5, 2]) });
    await refused(probeDataset(url(float)), /label 1\.5 at index 1 is not a class index/, 'y_train.npy', float);
  });
});

describe('NPZ', () => {
  const members = (o: { yTest?: Uint8Array } = {}) => {
    const s = npySet();
    return { 'x_train.npy': s['x_train.npy'], 'y_train.npy': s['y_train.npy'], 'x_test.npy': s['x_test.npy'], 'y_test.npy': o.yTest ?? s['y_test.npy'] };
  };

  test('stored and deflated archives (and one written by numpy, zip64 headers) probe like the loader reads them', async () => {
    for (const level of [0, 6] as const) {
      const dir = await scratch.make({ 'data.npz': zipSync(members(), { level }) });
      const p = await probeDataset(url(join(dir, 'data.npz')));
      assert.equal(p.format, 'npz');
      assert.deepEqual(p.counts, { train: 3, test: 1 });
      assert.equal(p.sha256, (await loadDataset(url(join(dir, 'data.npz')), { validationFraction: 0 })).sha256);
    }
    const numpy = Buffer.from(NUMPY_NPZ, 'base64');
    const dir = await scratch.make({ 'np.npz': numpy });
    const p = await probeDataset(url(join(dir, 'np.npz')));
    assert.deepEqual({ shape: p.inputShape, counts: p.counts, classes: p.numClasses }, { shape: [2, 2, 1], counts: { train: 3, test: 1 }, classes: 3 });
  });

  test('a member with a label outside the classes, a count mismatch, a missing member, a truncated archive', async () => {
    const dir = await scratch.make({
      'a.npz': zipSync(members({ yTest: encodeNpy('|u1', [1], [9]) })),
      'b.npz': zipSync(members({ yTest: encodeNpy('|u1', [2], [1, 1]) })),
      'c.npz': zipSync({ 'x_train.npy': members()['x_train.npy'] }),
      'd.npz': zipSync(members(), { level: 0 }).subarray(0, 300),
    });
    await refused(probeDataset(url(join(dir, 'a.npz'), '?classes=4')), /label 9 is outside the 4 classes/, 'a.npz[y_test.npy]', dir);
    await refused(probeDataset(url(join(dir, 'b.npz'))), /2 labels but a?.*x_test\.npy\] has 1 images/, 'b.npz[y_test.npy]', dir);
    await refused(probeDataset(url(join(dir, 'c.npz'))), /NPZ archive has no 'y_train' array/, 'c.npz', dir);
    await refused(probeDataset(url(join(dir, 'd.npz'))), /truncated/, 'd.npz', dir);
  });

  test('a member declaring a huge expansion is refused from its header, before inflating', async () => {
    const zeros = new Uint8Array(8 * 1024 * 1024);
    const npy = encodeNpy('|u1', [zeros.length], []);
    const member = new Uint8Array(npy.length + zeros.length);
    member.set(npy);
    const dir = await scratch.make({ 'bomb.npz': zipSync({ 'x_train.npy': member }, { level: 9 }) });
    let biggest = 0;
    await refused(
      probeDataset(url(join(dir, 'bomb.npz')), { onAlloc: (n) => (biggest = Math.max(biggest, n)) }),
      /bomb\.npz\[x_train\.npy\]: declares \d+ bytes unpacked from \d+, more than the 200-fold limit/,
      'bomb.npz[x_train.npy]',
      dir,
    );
    assert.ok(biggest < 4096, `largest buffer ${biggest} bytes`);
  });
});

describe('CIFAR-10', () => {
  test('valid batches: 32x32x3, 10 classes, record counts', async () => {
    const dir = await scratch.make({ 'data_batch_1.bin': cifarRecords([0, 1]), 'data_batch_2.bin': cifarRecords([9]), 'test_batch.bin': cifarRecords([3]) });
    const p = await probeDataset(url(dir));
    assert.deepEqual({ shape: p.inputShape, classes: p.numClasses, counts: p.counts }, { shape: [32, 32, 3], classes: 10, counts: { train: 3, test: 1 } });
    assert.equal(p.sha256, (await loadDataset(url(dir), { validationFraction: 0 })).sha256);
  });

  test('a label of 10 or more, a partial record, an empty batch, a gzipped batch with the wrong content', async () => {
    const good = cifarRecords([1]);
    const label = await scratch.make({ 'data_batch_1.bin': cifarRecords([1, 2, 10]), 'test_batch.bin': good });
    await refused(probeDataset(url(label)), /label 10 of record 2 is outside the 10 CIFAR-10 classes/, 'data_batch_1.bin', label);
    const part = await scratch.make({ 'data_batch_1.bin': cifarRecords([1, 2]).subarray(0, 5000), 'test_batch.bin': good });
    await refused(probeDataset(url(part)), /5000 bytes is not a whole number of 3073-byte records/, 'data_batch_1.bin', part);
    const empty = await scratch.make({ 'data_batch_1.bin': good, 'test_batch.bin': new Uint8Array(0) });
    await refused(probeDataset(url(empty)), /empty CIFAR-10 batch/, 'test_batch.bin', empty);
  });
});

describe('bombs and caps', () => {
  test('a gzip whose trailer declares a huge expansion is refused before inflating; without a trailer, while streaming', async () => {
    // A valid IDX header (16384 images of 32x32) and 16 MiB of zeros: it parses, so only the caps stop it.
    const plain = new Uint8Array(16 + 16 * 1024 * 1024);
    plain.set(encodeIdx('ubyte', [16384, 32, 32], []));
    const bomb = gzipSync(plain, { level: 9 });
    const dir = await scratch.make({ ...gz(idxSet()), 'train-images-idx3-ubyte.gz': bomb });
    await refused(probeDataset(url(dir)), /gzip trailer declares 16777232 bytes unpacked from \d+, more than the 200-fold limit/, 'train-images-idx3-ubyte.gz', dir);
    // In memory there is no trailer to read first: the running ratio stops it.
    await assert.rejects(probeBytes('idx-images', bomb), /expands more than 200-fold/);
    // CIFAR batches have no header to judge: the running byte count stops them.
    await assert.rejects(probeBytes('cifar', bomb, { maxRatio: 10_000, maxBytes: 1024 * 1024 }), /unpacks to more than the 1048576-byte limit/);
  });

  test('a file over the byte cap is refused from its size; a download from its Content-Length or its running count', async () => {
    const dir = await scratch.make(idxSet());
    await refused(probeDataset(url(dir), { maxBytes: 10 }), /larger than the 10-byte limit/, 'train-images-idx3-ubyte', dir);
    const body = idxSet()['train-images-idx3-ubyte'];
    const server = await listenLoopback((req, res) => {
      if (req.url?.startsWith('/chunked/')) {
        res.writeHead(200);
        res.write(body);
        res.end(body);
      } else res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    try {
      await refused(probeDataset(`${server.base}/len/#format=idx`, { maxBytes: 20 }, LOOPBACK), /larger than the 20-byte limit/, 'train-images-idx3-ubyte.gz', '/len/');
      await refused(probeDataset(`${server.base}/chunked/#format=idx`, { maxBytes: 20 }, LOOPBACK), /larger than the 20-byte limit/, 'train-images-idx3-ubyte.gz', '/chunked/');
    } finally {
      await server.close();
    }
  });
});

test('builtins are known without I/O', async () => {
  const p: DatasetProbe = await probeDataset('builtin:mnist');
  assert.deepEqual({ shape: p.inputShape, classes: p.numClasses, counts: p.counts }, { shape: [28, 28, 1], classes: 10, counts: { train: 8004, test: 1996 } });
});

test('the probe sha256 matches a plain sha256 of the files in the loader order', async () => {
  const files = idxSet();
  const dir = await scratch.make(files);
  const order = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];
  const h = createHash('sha256');
  for (const n of order) h.update(await readFile(join(dir, n)));
  assert.equal((await probeDataset(url(dir))).sha256, h.digest('hex'));
});

// np.savez of x_train (3,2,2) u1, y_train (3,) i8 [2,0,1], x_test (1,2,2) f4, y_test (1,) u1: zip64 local headers.
const NUMPY_NPZ =
  'UEsDBC0AAAAAAAAAIQCo6ds6//////////8LABQAeF90cmFpbi5ucHkBABAAjAAAAAAAAACMAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJ3x1MScsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgzLCAyLCAyKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAP8zZv8AAP8KFB4oUEsDBC0AAAAAAAAAIQCKGs4T//////////8LABQAeV90cmFpbi5ucHkBABAAmAAAAAAAAACYAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxpOCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgzLCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAgAAAAAAAAAAAAAAAAAAAAEAAAAAAAAAUEsDBC0AAAAAAAAAIQCyjawc//////////8KABQAeF90ZXN0Lm5weQEAEACQAAAAAAAAAJAAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsIDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAA/AACAPwAAAAAAAIA+UEsDBC0AAAAAAAAAIQB7sqbA//////////8KABQAeV90ZXN0Lm5weQEAEACBAAAAAAAAAIEAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBUEsBAi0DLQAAAAAAAAAhAKjp2zqMAAAAjAAAAAsAAAAAAAAAAAAAAIABAAAAAHhfdHJhaW4ubnB5UEsBAi0DLQAAAAAAAAAhAIoazhOYAAAAmAAAAAsAAAAAAAAAAAAAAIAByQAAAHlfdHJhaW4ubnB5UEsBAi0DLQAAAAAAAAAhALKNrByQAAAAkAAAAAoAAAAAAAAAAAAAAIABngEAAHhfdGVzdC5ucHlQSwECLQMtAAAAAAAAACEAe7KmwIEAAACBAAAACgAAAAAAAAAAAAAAgAFqAgAAeV90ZXN0Lm5weVBLBQYAAAAABAAEAOIAAAAnAwAAAAA=';
