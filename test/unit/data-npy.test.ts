// NPY / NPZ reader: archives written by numpy itself (embedded below), plus
// arrays the test writes, on disk and over loopback http.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync, zipSync } from 'fflate';
import { DatasetError, loadDataset } from '../../src/engine/data/index.js';
import { listenLoopback, scratchDirs, loopbackAccess } from './fixtures/scratch.js';
import { encodeIdx, encodeNpy } from '../../src/engine/data/encode.js';

// Written by numpy 2.4 (np.savez / np.savez_compressed, which add zip64 extras):
//   x_train = uint8 (3, 2, 2) [[[0, 255], [51, 102]], [[255, 0], [0, 255]], [[10, 20], [30, 40]]]
//   y_train = int64 [2, 0, 1];  x_test = float32 (1, 2, 2) [[[0.5, 1], [0, 0.25]]];  y_test = uint8 [1]
const NUMPY_NPZ = Buffer.from('UEsDBC0AAAAAAAAAIQCo6ds6//////////8LABQAeF90cmFpbi5ucHkBABAAjAAAAAAAAACMAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJ3x1MScsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgzLCAyLCAyKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAP8zZv8AAP8KFB4oUEsDBC0AAAAAAAAAIQCKGs4T//////////8LABQAeV90cmFpbi5ucHkBABAAmAAAAAAAAACYAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxpOCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgzLCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAgAAAAAAAAAAAAAAAAAAAAEAAAAAAAAAUEsDBC0AAAAAAAAAIQCyjawc//////////8KABQAeF90ZXN0Lm5weQEAEACQAAAAAAAAAJAAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsIDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAA/AACAPwAAAAAAAIA+UEsDBC0AAAAAAAAAIQB7sqbA//////////8KABQAeV90ZXN0Lm5weQEAEACBAAAAAAAAAIEAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBUEsBAi0DLQAAAAAAAAAhAKjp2zqMAAAAjAAAAAsAAAAAAAAAAAAAAIABAAAAAHhfdHJhaW4ubnB5UEsBAi0DLQAAAAAAAAAhAIoazhOYAAAAmAAAAAsAAAAAAAAAAAAAAIAByQAAAHlfdHJhaW4ubnB5UEsBAi0DLQAAAAAAAAAhALKNrByQAAAAkAAAAAoAAAAAAAAAAAAAAIABngEAAHhfdGVzdC5ucHlQSwECLQMtAAAAAAAAACEAe7KmwIEAAACBAAAACgAAAAAAAAAAAAAAgAFqAgAAeV90ZXN0Lm5weVBLBQYAAAAABAAEAOIAAAAnAwAAAAA=', 'base64');
const NUMPY_NPZ_COMPRESSED = Buffer.from('UEsDBC0AAAAIAAAAIQCo6ds6//////////8LABQAeF90cmFpbi5ucHkBABAAjAAAAAAAAABUAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loF5Taqiuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GsY6CkZApKmjUKtAHuBi+G+c9p+B4T+XiJwGAFBLAwQtAAAACAAAACEAihrOE///////////CwAUAHlfdHJhaW4ubnB5AQAQAJgAAAAAAAAASgAAAAAAAACb7BfqGxDJyFDGUK2eklqcXKRupaBuk2mhrqOgnpZfVFKUmBefX5SSChJ3S8wpTgWKF2ckFqQC+RrGOpo6CrUKFAAuJgZUwAilAVBLAwQtAAAACAAAACEAso2sHP//////////CgAUAHhfdGVzdC5ucHkBABAAkAAAAAAAAABUAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TZqKuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GoY6CkZApKmjUKtAHuBiYGCwZ2BoAGIQaLADAFBLAwQtAAAACAAAACEAe7KmwP//////////CgAUAHlfdGVzdC5ucHkBABAAgQAAAAAAAABFAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loF5Taqiuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GoY6mjoKtQoUAC5GAFBLAQItAy0AAAAIAAAAIQCo6ds6VAAAAIwAAAALAAAAAAAAAAAAAACAAQAAAAB4X3RyYWluLm5weVBLAQItAy0AAAAIAAAAIQCKGs4TSgAAAJgAAAALAAAAAAAAAAAAAACAAZEAAAB5X3RyYWluLm5weVBLAQItAy0AAAAIAAAAIQCyjawcVAAAAJAAAAAKAAAAAAAAAAAAAACAARgBAAB4X3Rlc3QubnB5UEsBAi0DLQAAAAgAAAAhAHuypsBFAAAAgQAAAAoAAAAAAAAAAAAAAIABqAEAAHlfdGVzdC5ucHlQSwUGAAAAAAQABADiAAAAKQIAAAAA', 'base64');
// np.save of np.array([[0, 128, 255], [1, 2, 3]], dtype=np.uint8)
const NUMPY_U1 = Buffer.from('k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAgP8BAgM=', 'base64');

const scratch = scratchDirs('ts-data-npy-');
const makeDir = scratch.make;
const url = (p: string) => pathToFileURL(p).href;

async function rejects(p: Promise<unknown>, field: string, message: RegExp, file: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof DatasetError, String(err));
    assert.equal(err.field, field, err.message);
    assert.match(err.message, message);
    assert.ok(err.message.includes(file), `${err.message} names ${file}`);
    return true;
  });
}

const npyFiles = {
  'x_train.npy': encodeNpy('|u1', [3, 2, 2], [0, 255, 51, 102, 255, 0, 0, 255, 10, 20, 30, 40]),
  'y_train.npy': encodeNpy('<i8', [3], [2, 0, 1]),
  'x_test.npy': encodeNpy('<f4', [1, 2, 2], [0.5, 1, 0, 0.25]),
  'y_test.npy': encodeNpy('<i4', [1], [1]),
};

/** Training pixels by label (labels are distinct in these fixtures). */
function trainByLabel(ds: { train: { x: Float32Array; y: Int32Array; n: number }; validation: { x: Float32Array; y: Int32Array; n: number } }, size: number) {
  const out = new Map<number, number[]>();
  for (const s of [ds.train, ds.validation]) for (let i = 0; i < s.n; i++) out.set(s.y[i], Array.from(s.x.subarray(i * size, (i + 1) * size)));
  return out;
}

describe('NPY encoding', () => {
  test('encodeNpy writes the same bytes as np.save', () => {
    assert.deepEqual(Buffer.from(encodeNpy('|u1', [2, 3], [0, 128, 255, 1, 2, 3])), NUMPY_U1);
  });
});

describe('NPZ', () => {
  for (const [kind, bytes] of [['np.savez', NUMPY_NPZ], ['np.savez_compressed', NUMPY_NPZ_COMPRESSED]] as const) {
    test(`archive from ${kind}: uint8 scaled, float32 kept, int64 labels`, async () => {
      const dir = await makeDir({ 'tiny.npz': bytes });
      const ds = await loadDataset(url(join(dir, 'tiny.npz')), { validationFraction: 0 });
      assert.equal(ds.name, 'tiny');
      assert.deepEqual(ds.inputShape, [2, 2, 1]);
      assert.equal(ds.numClasses, 3);
      assert.equal(ds.sha256, createHash('sha256').update(bytes).digest('hex'));
      const seen = trainByLabel(ds, 4);
      assert.deepEqual(seen.get(2), [0, 1, Math.fround(51 / 255), Math.fround(102 / 255)]);
      assert.deepEqual(seen.get(0), [1, 0, 0, 1]);
      assert.deepEqual(seen.get(1), [10, 20, 30, 40].map((v) => Math.fround(v / 255)));
      assert.deepEqual(Array.from(ds.test.x), [0.5, 1, 0, 0.25]);
      assert.deepEqual(Array.from(ds.test.y), [1]);
    });
  }

  test('found by scanning its directory, or by zip magic under any name', async () => {
    const dir = await makeDir({ 'only.npz': NUMPY_NPZ });
    // The name comes from the reference (the directory), not from what the scan found.
    const scanned = await loadDataset(url(dir));
    assert.equal(scanned.name, dir.split('/').pop());
    assert.equal(scanned.test.n, 1);
    const other = await makeDir({ 'archive.bin': NUMPY_NPZ });
    assert.equal((await loadDataset(url(join(other, 'archive.bin')))).test.n, 1);
    assert.equal((await loadDataset(`${url(join(other, 'archive.bin'))}?format=npz`)).test.n, 1);
  });

  test('missing key names the key and what the archive holds', async () => {
    const { y_test: _, ...rest } = Object.fromEntries(Object.entries(npyFiles).map(([k, v]) => [k.replace('.npy', ''), v]));
    const zip = zipSync(Object.fromEntries(Object.entries(rest).map(([k, v]) => [`${k}.npy`, v])));
    const dir = await makeDir({ 'd.npz': zip });
    const f = join(dir, 'd.npz');
    await rejects(loadDataset(url(f)), 'y_test', /NPZ archive has no 'y_test' array \(it has: x_train, y_train, x_test\)/, f);
  });

  test('truncated archive', async () => {
    const dir = await makeDir({ 'cut.npz': NUMPY_NPZ_COMPRESSED.subarray(0, 300) });
    const f = join(dir, 'cut.npz');
    await rejects(loadDataset(url(f)), 'reference', /corrupt or truncated NPZ archive/, f);
  });

  test('an .npz that is not a zip', async () => {
    const dir = await makeDir({ 'fake.npz': npyFiles['x_train.npy'] });
    const f = join(dir, 'fake.npz');
    await rejects(loadDataset(url(f)), 'reference', /not an NPZ \(zip\) archive \(magic bytes 93 4e 55 4d/, f);
  });

  test('a single file that is not an archive', async () => {
    const dir = await makeDir({ 'x_train.npy': npyFiles['x_train.npy'] });
    const f = join(dir, 'x_train.npy');
    await rejects(loadDataset(url(f)), 'reference', /a single-file reference must be an \.npz archive/, f);
  });

  test('two archives in one directory must be named', async () => {
    const dir = await makeDir({ 'a.npz': NUMPY_NPZ, 'b.npz': NUMPY_NPZ });
    await rejects(loadDataset(url(dir)), 'reference', /2 \.npz archives \(a\.npz, b\.npz\); name one/, dir);
  });
});

describe('NPY directory', () => {
  test('x_/y_train and x_/y_test arrays; gzipped members accepted', async () => {
    const dir = await makeDir({ ...npyFiles, 'y_train.npy': gzipSync(npyFiles['y_train.npy']) });
    const ds = await loadDataset(url(dir), { validationFraction: 0 });
    assert.deepEqual(ds.inputShape, [2, 2, 1]);
    assert.deepEqual(trainByLabel(ds, 4).get(0), [1, 0, 0, 1]);
    const h = createHash('sha256');
    h.update(npyFiles['x_train.npy']).update(gzipSync(npyFiles['y_train.npy'])).update(npyFiles['x_test.npy']).update(npyFiles['y_test.npy']);
    assert.equal(ds.sha256, h.digest('hex'));
  });

  test('flat (n, d) float64 features, (n, 1) labels, big-endian float32, whole-number float labels', async () => {
    const dir = await makeDir({
      'x_train.npy': encodeNpy('<f8', [2, 3], [0, 0.5, 1, 0.25, 0.75, 0.125]),
      'y_train.npy': encodeNpy('<i4', [2, 1], [4, 0]),
      'x_test.npy': encodeNpy('>f4', [1, 3], [0.5, 0.25, 1]),
      'y_test.npy': encodeNpy('<f8', [1], [3]),
    });
    const ds = await loadDataset(url(dir), { validationFraction: 0 });
    assert.deepEqual(ds.inputShape, [3]);
    assert.equal(ds.numClasses, 5);
    assert.deepEqual(trainByLabel(ds, 3).get(4), [0, 0.5, 1]);
    assert.deepEqual(Array.from(ds.test.x), [0.5, 0.25, 1]);
    assert.deepEqual(Array.from(ds.test.y), [3]);
  });

  test('(n, h, w, c) keeps channels', async () => {
    const dir = await makeDir({ ...npyFiles, 'x_train.npy': encodeNpy('|u1', [3, 1, 2, 2], Array(12).fill(255)), 'x_test.npy': encodeNpy('<f4', [1, 1, 2, 2], [0, 0, 0, 0]) });
    const ds = await loadDataset(url(dir));
    assert.deepEqual(ds.inputShape, [1, 2, 2]);
  });

  test('a directory holding two formats must say which', async () => {
    const dir = await makeDir({ ...npyFiles, 'train-images-idx3-ubyte': encodeIdx('ubyte', [1, 1, 1], [0]) });
    await rejects(loadDataset(url(dir)), 'format', /ambiguous directory \(idx: .*; npy: x_train\.npy\); add \?format=/, dir);
    const ds = await loadDataset(`${url(dir)}?format=npy`);
    assert.equal(ds.test.n, 1);
  });
});

describe('NPY errors name the file and the problem', () => {
  const withFile = async (name: keyof typeof npyFiles, bytes: Uint8Array) => {
    const dir = await makeDir({ ...npyFiles, [name]: bytes });
    return { dir, file: join(dir, name) };
  };

  test('wrong magic', async () => {
    const { dir, file } = await withFile('x_test.npy', new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0, 0, 0]));
    await rejects(loadDataset(url(dir)), 'x_test', /not an NPY file \(magic bytes 50 4b 03 04 00 00/, file);
  });

  test('data shorter than the header says', async () => {
    const full = npyFiles['x_train.npy'];
    const { dir, file } = await withFile('x_train.npy', full.subarray(0, full.length - 5));
    await rejects(loadDataset(url(dir)), 'x_train', /truncated NPY data \(header says shape \(3, 2, 2\) \|u1 = 12 bytes, file has 7 bytes/, file);
  });

  test('Fortran order', async () => {
    const bytes = Uint8Array.from(npyFiles['x_train.npy']);
    const text = Buffer.from(bytes).toString('latin1').replace("'fortran_order': False", "'fortran_order': True ");
    const { dir, file } = await withFile('x_train.npy', Buffer.from(text, 'latin1'));
    await rejects(loadDataset(url(dir)), 'x_train', /Fortran-ordered arrays are not supported/, file);
  });

  test('one-hot labels', async () => {
    const { dir, file } = await withFile('y_train.npy', encodeNpy('<f4', [3, 3], [0, 0, 1, 1, 0, 0, 0, 1, 0]));
    await rejects(loadDataset(url(dir)), 'y_train', /labels must have shape \(n,\) or \(n, 1\), got \(3, 3\) \(one-hot labels are not supported/, file);
  });

  test('float pixels outside [0, 1]', async () => {
    const { dir, file } = await withFile('x_test.npy', encodeNpy('<f4', [1, 2, 2], [0, -0.5, 0, 0]));
    await rejects(loadDataset(url(dir)), 'x_test', /pixel -0\.5 at element 1 is outside \[0, 1\]/, file);
  });

  test('integer images other than uint8', async () => {
    const { dir, file } = await withFile('x_train.npy', encodeNpy('<i8', [3, 2, 2], Array(12).fill(1)));
    await rejects(loadDataset(url(dir)), 'x_train', /images must be uint8 .* got dtype '<i8'/, file);
  });

  test('negative and fractional labels', async () => {
    const neg = await withFile('y_train.npy', encodeNpy('<i8', [3], [0, -2, 1]));
    await rejects(loadDataset(url(neg.dir)), 'y_train', /label -2 at index 1 is not a class index/, neg.file);
    const frac = await withFile('y_test.npy', encodeNpy('<f8', [1], [1.5]));
    await rejects(loadDataset(url(frac.dir)), 'y_test', /label 1\.5 at index 0 is not a class index/, frac.file);
  });

  test('label and image counts differ', async () => {
    const { dir, file } = await withFile('y_train.npy', encodeNpy('<i8', [2], [0, 1]));
    await rejects(loadDataset(url(dir)), 'y_train', /2 labels but .*x_train\.npy has 3 images/, file);
  });

  test('label out of a pinned class range', async () => {
    const dir = await makeDir(npyFiles);
    await rejects(loadDataset(`${url(dir)}?classes=2`), 'y_train', /label 2 at index 0 is out of range \[0, 2\)/, join(dir, 'y_train.npy'));
  });

  test('structured dtype', async () => {
    const header = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }";
    const padded = header + ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
    const bytes = new Uint8Array(10 + padded.length + 4);
    bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, padded.length & 0xff, padded.length >> 8]);
    bytes.set(Buffer.from(padded, 'latin1'), 10);
    const { dir, file } = await withFile('y_test.npy', bytes);
    await rejects(loadDataset(url(dir)), 'y_test', /unsupported or corrupt NPY header .*structured dtypes are not supported/, file);
  });

  test('missing array', async () => {
    const { 'x_test.npy': _, ...rest } = npyFiles;
    const dir = await makeDir(rest);
    await rejects(loadDataset(url(dir)), 'x_test', /file not found/, join(dir, 'x_test.npy'));
  });
});

describe('NPZ over http (loopback)', () => {
  let close: () => Promise<void>;
  let base: string;
  const seen: string[] = [];
  before(async () => {
    ({ base, close } = await listenLoopback((req, res) => {
      seen.push(req.url ?? '');
      if (req.url === '/sets/tiny.npz' || req.url === '/get?id=7&sig=abc') res.writeHead(200).end(NUMPY_NPZ_COMPRESSED);
      else res.writeHead(404).end();
    }));
  });
  after(() => close());

  test('an .npz URL', async () => {
    const ds = await loadDataset(`${base}/sets/tiny.npz`, { access: loopbackAccess });
    assert.equal(ds.name, 'tiny');
    assert.equal(ds.sha256, createHash('sha256').update(NUMPY_NPZ_COMPRESSED).digest('hex'));
  });

  test("a signed URL keeps its query; options ride in the fragment, which is never sent", async () => {
    const ds = await loadDataset(`${base}/get?id=7&sig=abc#format=npz&classes=4`, { access: loopbackAccess });
    assert.equal(ds.numClasses, 4);
    assert.ok(seen.includes('/get?id=7&sig=abc'), seen.join(' '));
  });

  test('404 is a missing file naming the URL', async () => {
    await rejects(loadDataset(`${base}/sets/other.npz`, { access: loopbackAccess }), 'reference', /file not found/, `${base}/sets/other.npz`);
  });
});
