// Image-folder datasets: PNG and JPEG bytes made here with pngjs and jpeg-js,
// decoded, fitted to the model's channels and resized, with each refusal's message.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { crc32, deflateSync } from 'node:zlib';
import { DatasetError } from '../../src/engine/data/errors.js';
import { decodeImage, type DecodedImage } from '../../src/engine/data/images/decode.js';
import { fitChannels, LUMA, resizeBilinear, toInput } from '../../src/engine/data/images/resize.js';

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

/** A uniform gray PNG of one value. */
const grayPng = (value: number, size = 2) => png(size, size, 0, new Array<number>(size * size).fill(value));

function refusal(pattern: RegExp, file?: string) {
  return (err: unknown) => {
    assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
    assert.match(err.message, pattern);
    if (file !== undefined) assert.equal(err.file, file);
    return true;
  };
}

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
