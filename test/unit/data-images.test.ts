// Image-folder datasets: PNG and JPEG bytes made here with pngjs and jpeg-js,
// decoded, fitted to the model's channels, resized, and laid out as ImageFolder
// trees (`class/img.png`, optional train/ val/ test/), with each refusal's message.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { crc32, deflateSync } from 'node:zlib';
import { DatasetError } from '../../src/engine/data/errors.js';
import { decodeImage, type DecodedImage } from '../../src/engine/data/images/decode.js';
import { fitChannels, LUMA, resizeBilinear, toInput } from '../../src/engine/data/images/resize.js';
import { loadImageFolder, type FolderEntry, type ImageFolderOptions } from '../../src/engine/data/images/folder.js';

/** PNG of colour type 0 (gray, 1 byte a pixel), 2 (RGB, 3), 4 (gray + alpha, 2) or 6 (RGBA, 4). */
function png(width: number, height: number, colorType: 0 | 2 | 4 | 6, data: number[]): Uint8Array {
  const image = new PNG({ width, height, colorType, inputColorType: colorType, inputHasAlpha: colorType === 4 || colorType === 6 });
  image.data = Buffer.from(data);
  return new Uint8Array(PNG.sync.write(image, { colorType, inputColorType: colorType, inputHasAlpha: colorType === 4 || colorType === 6 }));
}

/** A gray 8-bit Adam7-interlaced PNG whose IDAT inflates to `raw` (pngjs writes no interlaced files). */
function interlacedPng(width: number, height: number, raw: Uint8Array): Uint8Array {
  const chunk = (type: string, data: Uint8Array) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 1], 8);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return new Uint8Array(Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]));
}

/** A uniform RGB JPEG (jpeg-js writes three components). */
function jpg(width: number, height: number, rgb: [number, number, number]): Uint8Array {
  const data = Buffer.alloc(width * height * 4);
  for (let p = 0; p < width * height; p++) data.set([...rgb, 255], 4 * p);
  return new Uint8Array(jpeg.encode({ width, height, data }, 100).data);
}

/** A uniform gray PNG of one value: each class gets its own so labels can be checked through pixels. */
const grayPng = (value: number, size = 2) => png(size, size, 0, new Array<number>(size * size).fill(value));

function refusal(pattern: RegExp, file?: string) {
  return (err: unknown) => {
    assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
    assert.match(err.message, pattern);
    if (file !== undefined) assert.equal(err.file, file);
    return true;
  };
}

const options = (extra: Partial<ImageFolderOptions> = {}): ImageFolderOptions => ({
  reference: 'file:///data/pets',
  name: 'pets',
  maxFiles: 100,
  validationFraction: 0,
  seed: 0,
  ...extra,
});

describe('decode', () => {
  test('PNG keeps its values and its channels', () => {
    const rgb = decodeImage(png(2, 1, 2, [10, 20, 30, 40, 50, 60]), 'a.png');
    assert.deepEqual(rgb, { width: 2, height: 1, channels: 3, pixels: new Uint8Array([10, 20, 30, 40, 50, 60]) });
    const gray = decodeImage(png(1, 2, 0, [7, 250]), 'g.png');
    assert.deepEqual(gray, { width: 1, height: 2, channels: 1, pixels: new Uint8Array([7, 250]) });
    const rgba = decodeImage(png(1, 1, 6, [1, 2, 3, 128]), 'r.png');
    assert.deepEqual(rgba, { width: 1, height: 1, channels: 4, pixels: new Uint8Array([1, 2, 3, 128]) });
    const grayAlpha = decodeImage(png(1, 1, 4, [99, 0]), 'ga.png');
    assert.deepEqual(grayAlpha, { width: 1, height: 1, channels: 2, pixels: new Uint8Array([99, 0]) });
  });

  test('JPEG decodes to RGB within the loss of quality 100', () => {
    const image = decodeImage(jpg(8, 8, [200, 100, 50]), 'c.jpg');
    assert.equal(image.width, 8);
    assert.equal(image.height, 8);
    assert.equal(image.channels, 3);
    for (let p = 0; p < 64; p++) {
      [200, 100, 50].forEach((v, c) => assert.ok(Math.abs(image.pixels[3 * p + c] - v) <= 3, `pixel ${p} channel ${c}`));
    }
  });

  test('undecodable bytes are refused naming the file', () => {
    assert.throws(() => decodeImage(new TextEncoder().encode('hello, not an image'), 'cat/1.png'), refusal(/^cat\/1\.png: cannot decode image: not a PNG or JPEG file$/, 'cat/1.png'));
    const cut = png(4, 4, 2, new Array<number>(48).fill(9)).subarray(0, 40);
    assert.throws(() => decodeImage(cut, 'cat/2.png'), refusal(/^cat\/2\.png: cannot decode image: /, 'cat/2.png'));
    const jpegCut = jpg(8, 8, [1, 2, 3]).subarray(0, 30);
    assert.throws(() => decodeImage(jpegCut, 'dog/3.jpg'), refusal(/^dog\/3\.jpg: cannot decode image/, 'dog/3.jpg'));
  });

  test('an image over the pixel cap is refused before it is decoded', () => {
    assert.throws(
      () => decodeImage(grayPng(0, 10), 'big.png', { maxPixels: 99 }),
      refusal(/^big\.png: image is 10x10 = 100 pixels, over the cap of 99$/, 'big.png'),
    );
    assert.throws(() => decodeImage(jpg(16, 16, [0, 0, 0]), 'big.jpg', { maxPixels: 255 }), refusal(/^big\.jpg: image is 16x16 = 256 pixels, over the cap of 255$/));
    assert.equal(decodeImage(grayPng(0, 10), 'ok.png', { maxPixels: 100 }).width, 10);
  });
});

describe('interlaced PNG', () => {
  test('decodes, and a decompression bomb in one stops at the bound', () => {
    // 1x1: Adam7's first pass holds the only pixel, after its filter byte.
    assert.deepEqual(decodeImage(interlacedPng(1, 1, new Uint8Array([0, 77])), 'one.png').pixels, new Uint8Array([77]));
    const bomb = interlacedPng(4, 4, new Uint8Array(64 * 2 ** 20));
    assert.ok(bomb.length < 200_000, `${bomb.length} bytes`);
    assert.throws(() => decodeImage(bomb, 'cat/bomb.png'), refusal(/^cat\/bomb\.png: cannot decode image: its pixel data inflates past the \d+ bytes a 4x4 image needs$/, 'cat/bomb.png'));
  });
});

describe('resize and channels', () => {
  test('2x2 to 4x4 bilinear with half-pixel centres', () => {
    const out = resizeBilinear({ width: 2, height: 2, channels: 1, values: new Float32Array([0, 100, 200, 40]) }, 4, 4);
    assert.deepEqual(
      [...out.values],
      [0, 25, 75, 100, 50, 58.75, 76.25, 85, 150, 126.25, 78.75, 55, 200, 160, 80, 40],
    );
    // The same through toInput, scaled to [0, 1].
    const scaled = toInput({ width: 2, height: 2, channels: 1, pixels: new Uint8Array([0, 100, 200, 40]) }, 4, 4, 1);
    assert.ok(Math.abs(scaled[5] - 58.75 / 255) < 1e-6);
    assert.ok(Math.abs(scaled[12] - 200 / 255) < 1e-6);
  });

  test('channels are resized each on their own, and the same size is left alone', () => {
    const out = resizeBilinear({ width: 2, height: 1, channels: 2, values: new Float32Array([0, 10, 100, 20]) }, 1, 4);
    assert.deepEqual([...out.values], [0, 10, 25, 12.5, 75, 17.5, 100, 20]);
    const same = { width: 2, height: 1, channels: 1, values: new Float32Array([1, 2]) };
    assert.equal(resizeBilinear(same, 1, 2), same);
  });

  test('RGB to gray by luma weights, gray to RGB by repetition, alpha dropped', () => {
    const rgba: DecodedImage = { width: 2, height: 1, channels: 4, pixels: new Uint8Array([255, 0, 0, 7, 10, 20, 30, 0]) };
    const gray = fitChannels(rgba, 1);
    assert.ok(Math.abs(gray.values[0] - 255 * LUMA[0]) < 1e-4);
    assert.ok(Math.abs(gray.values[1] - (10 * 0.299 + 20 * 0.587 + 30 * 0.114)) < 1e-4);
    assert.deepEqual([...fitChannels(rgba, 3).values], [255, 0, 0, 10, 20, 30]);
    const grayAlpha: DecodedImage = { width: 1, height: 2, channels: 2, pixels: new Uint8Array([40, 255, 90, 0]) };
    assert.deepEqual([...fitChannels(grayAlpha, 3).values], [40, 40, 40, 90, 90, 90]);
    assert.deepEqual([...fitChannels(grayAlpha, 1).values], [40, 90]);
    assert.throws(() => fitChannels(grayAlpha, 4, 'x.png'), refusal(/^x\.png: the model takes 4 channels/));
  });
});

describe('image folder', () => {
  // Class k's images are gray k * 50 + 10, so a label can be read back from the pixels.
  const value = (k: number) => k * 50 + 10;
  const tree = (splits: Record<string, Record<string, number>>): FolderEntry[] => {
    const entries: FolderEntry[] = [];
    for (const [split, classes] of Object.entries(splits)) {
      for (const [cls, n] of Object.entries(classes)) {
        const k = ['bird', 'cat', 'dog'].indexOf(cls);
        for (let i = 0; i < n; i++) entries.push({ path: `${split}${cls}/${i}.png`, bytes: grayPng(value(k)) });
      }
    }
    return entries;
  };
  const labelsMatchPixels = (split: { x: Float32Array; y: Int32Array; n: number }, size: number, classNames: string[] = ['bird', 'cat', 'dog']) => {
    for (let i = 0; i < split.n; i++) {
      const k = ['bird', 'cat', 'dog'].indexOf(classNames[split.y[i]]);
      assert.ok(Math.abs(split.x[i * size] - value(k) / 255) < 1e-6, `example ${i}`);
    }
  };

  test('train/ and test/ beside each other: classes sorted, counts and labels', async () => {
    // Listed out of order, classes too: the result must not depend on it.
    const entries = tree({ 'test/': { dog: 2, bird: 1, cat: 3 }, 'train/': { dog: 4, cat: 5, bird: 6 } }).reverse();
    const ds = await loadImageFolder(entries, options());
    assert.deepEqual(ds.classNames, ['bird', 'cat', 'dog']);
    assert.equal(ds.numClasses, 3);
    assert.deepEqual(ds.inputShape, [2, 2, 1]);
    assert.equal(ds.train.n, 15);
    assert.equal(ds.validation.n, 0);
    assert.equal(ds.test.n, 6);
    const count = (y: Int32Array, k: number) => y.filter((v) => v === k).length;
    assert.deepEqual([0, 1, 2].map((k) => count(ds.train.y, k)), [6, 5, 4]);
    assert.deepEqual([...ds.test.y], [0, 1, 1, 1, 2, 2]);
    labelsMatchPixels(ds.train, 4);
    labelsMatchPixels(ds.test, 4);
    assert.equal(ds.reference, 'file:///data/pets');
    assert.match(ds.sha256, /^[0-9a-f]{64}$/);
    const again = await loadImageFolder(tree({ 'train/': { bird: 6, cat: 5, dog: 4 }, 'test/': { bird: 1, cat: 3, dog: 2 } }), options());
    assert.equal(again.sha256, ds.sha256);
  });

  test('val/ replaces the carve; entries read lazily; one wrapping folder is dropped', async () => {
    const entries = tree({ 'pets/train/': { cat: 3, dog: 3 }, 'pets/val/': { cat: 1, dog: 1 }, 'pets/test/': { cat: 1, dog: 2 } }).map(
      ({ path, bytes }): FolderEntry => ({ path, read: async () => bytes as Uint8Array }),
    );
    entries.push({ path: 'pets/' }, { path: 'pets/README.txt', bytes: new Uint8Array([1]) }, { path: 'pets/.DS_Store', bytes: new Uint8Array([2]) });
    const ds = await loadImageFolder(entries, options({ validationFraction: 0.5 }));
    assert.deepEqual(ds.classNames, ['cat', 'dog']);
    assert.deepEqual([ds.train.n, ds.validation.n, ds.test.n], [6, 2, 3]);
    assert.deepEqual([...ds.validation.y], [0, 1]);
    labelsMatchPixels(ds.validation, 4, ds.classNames);
    labelsMatchPixels(ds.train, 4, ds.classNames);
  });

  test('class folders at the top: test and validation carved by seed, resized to the model and made RGB', async () => {
    const entries = tree({ '': { bird: 10, cat: 10 } });
    // One JPEG of another size among the PNGs: resizing brings it to the model's size.
    entries.push({ path: 'cat/big.jpg', bytes: jpg(8, 8, [value(1), value(1), value(1)]) });
    const ds = await loadImageFolder(entries, options({ inputShape: [3, 3, 3], validationFraction: 0.25, testFraction: 0.2 }));
    assert.deepEqual(ds.inputShape, [3, 3, 3]);
    assert.deepEqual([ds.train.n, ds.validation.n, ds.test.n], [13, 4, 4]);
    assert.equal(ds.train.x.length, 13 * 27);
    for (const split of [ds.train, ds.validation, ds.test]) {
      for (let i = 0; i < split.n; i++) {
        for (let j = 0; j < 27; j++) assert.ok(Math.abs(split.x[i * 27 + j] - value(split.y[i]) / 255) < 4 / 255);
      }
    }
    const again = await loadImageFolder(entries, options({ inputShape: [3, 3, 3], validationFraction: 0.25, testFraction: 0.2 }));
    assert.deepEqual(again.test.y, ds.test.y);
    assert.deepEqual(again.train.y, ds.train.y);
  });

  describe('refusals', () => {
    const refuse = (entries: FolderEntry[], pattern: RegExp, file?: string, extra: Partial<ImageFolderOptions> = {}) =>
      assert.rejects(loadImageFolder(entries, options(extra)), refusal(pattern, file));

    test('no class folders', async () => {
      await refuse([{ path: 'a.png', bytes: grayPng(1) }], /^a\.png: not inside a class folder$/, 'a.png');
      await refuse([{ path: 'notes.txt', bytes: new Uint8Array([1]) }], /no class folders in the top folder/);
      await refuse(tree({ 'test/': { cat: 1, dog: 1 } }), /^no class folders in train\//, 'train/');
    });

    test('one class only', async () => {
      await refuse(tree({ '': { cat: 3 } }), /^cat\/: only one class; a classifier needs at least two class folders$/, 'cat/');
      await refuse(tree({ 'train/': { cat: 3 }, 'test/': { cat: 1 } }), /^train\/cat\/: only one class/, 'train/cat/');
    });

    test('an empty class', async () => {
      await refuse([...tree({ '': { cat: 2, dog: 2 } }), { path: 'bird/' }], /^bird\/: empty class folder \(no PNG or JPEG images\)$/, 'bird/');
      await refuse([...tree({ 'train/': { cat: 2, dog: 2 } }), { path: 'train/bird/notes.txt', bytes: new Uint8Array([1]) }], /^train\/bird\/: empty class folder/, 'train/bird/');
    });

    test('mixed sizes when resizing is off', async () => {
      const entries = [...tree({ '': { cat: 2, dog: 2 } }), { path: 'dog/wide.png', bytes: png(3, 2, 0, new Array<number>(6).fill(0)) }];
      await refuse(entries, /^dog\/wide\.png: image is 2x3, not 2x2 like cat\/0\.png, and resizing is off$/, 'dog/wide.png', { resize: false });
      await refuse(tree({ '': { cat: 1, dog: 1 } }), /^cat\/0\.png: image is 2x2, not the model's 4x4, and resizing is off$/, 'cat/0.png', { resize: false, inputShape: [4, 4, 1] });
      // Resizing on, the same tree loads.
      const ds = await loadImageFolder(entries, options({ inputShape: [2, 2, 1] }));
      assert.equal(ds.train.n + ds.test.n, 5);
    });

    test('too many files', async () => {
      const entries = tree({ '': { cat: 3, dog: 3 } });
      await refuse(entries, /^dog\/2\.png: too many files: more than the cap of 5$/, 'dog/2.png', { maxFiles: 5 });
      assert.equal((await loadImageFolder(entries, options({ maxFiles: 6 }))).classNames?.length, 2);
    });

    test('an image over the pixel cap', async () => {
      const entries = [...tree({ '': { cat: 2, dog: 2 } }), { path: 'dog/huge.png', bytes: grayPng(0, 20) }];
      await refuse(entries, /^dog\/huge\.png: image is 20x20 = 400 pixels, over the cap of 399$/, 'dog/huge.png', { maxPixels: 399 });
      // And over the cap for the whole folder: four 2x2 images before it, in class then path order.
      await refuse(entries, /^dog\/huge\.png: images up to here hold 416 pixels, over the cap of 415 for the whole folder$/, 'dog/huge.png', { maxTotalPixels: 415 });
      assert.equal((await loadImageFolder(entries, options({ maxTotalPixels: 416 }))).classNames?.length, 2);
    });

    test('an undecodable image, a stray image, a class unknown to train/', async () => {
      await refuse([...tree({ '': { cat: 2, dog: 2 } }), { path: 'dog/bad.jpg', bytes: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]) }], /^dog\/bad\.jpg: cannot decode image/, 'dog/bad.jpg');
      await refuse([...tree({ 'train/': { cat: 2, dog: 2 } }), { path: 'extra/x.png', bytes: grayPng(0) }], /^extra\/x\.png: outside train\/, val\/ and test\/$/);
      await refuse([...tree({ '': { cat: 2, dog: 2 } }), { path: 'dog/deeper/x.png', bytes: grayPng(0) }], /^dog\/deeper\/x\.png: nested below its class folder/);
      await refuse(tree({ 'train/': { cat: 2, dog: 2 }, 'test/': { bird: 1 } }), /^test\/bird\/: class not in train\/ \(classes: cat, dog\)$/, 'test/bird/');
    });
  });
});
