// Decodes one PNG or JPEG file into 8-bit pixels (pngjs, jpeg-js), after reading
// only its header to refuse an image over the pixel cap before any pixel is
// allocated: a small file must not be able to ask for gigabytes.

import { inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { DatasetError, describeError } from '../errors.js';

/** Row-major HWC pixels, 0..255; channels 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA). */
export interface DecodedImage {
  width: number;
  height: number;
  channels: number;
  pixels: Uint8Array;
}

export interface DecodeLimits {
  /** Largest width * height accepted. */
  maxPixels: number;
}

/** Default pixel cap: 4096 x 4096. */
export const DEFAULT_MAX_PIXELS = 4096 * 4096;

export type ImageFormat = 'png' | 'jpeg';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  /** Colour components in the file (JPEG: 1 or 3; PNG: before expansion to RGBA). */
  components: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format and size from the first bytes, or a DatasetError naming `file`. */
export function readHeader(bytes: Uint8Array, file: string, field = 'reference'): ImageHeader {
  if (bytes.length >= 24 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const colorType = bytes[25];
    const components = colorType === 0 ? 1 : colorType === 4 ? 2 : colorType === 6 ? 4 : 3;
    return { format: 'png', width: view.getUint32(16), height: view.getUint32(20), components };
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    // Walk the marker segments to the first start-of-frame; its header holds the size.
    let i = 2;
    while (i + 4 <= bytes.length) {
      if (bytes[i] !== 0xff) break;
      const marker = bytes[i + 1];
      if (marker === 0xff) {
        i += 1;
        continue;
      }
      const length = (bytes[i + 2] << 8) | bytes[i + 3];
      const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isFrame && i + 10 <= bytes.length) {
        const height = (bytes[i + 5] << 8) | bytes[i + 6];
        const width = (bytes[i + 7] << 8) | bytes[i + 8];
        return { format: 'jpeg', width, height, components: bytes[i + 9] };
      }
      i += 2 + length;
    }
    throw new DatasetError(`${file}: cannot decode image: JPEG without a frame header`, field, file);
  }
  throw new DatasetError(`${file}: cannot decode image: not a PNG or JPEG file`, field, file);
}

/** Decodes PNG or JPEG bytes; refuses undecodable bytes and images over `maxPixels`, naming `file`. */
export function decodeImage(
  bytes: Uint8Array,
  file: string,
  limits: DecodeLimits = { maxPixels: DEFAULT_MAX_PIXELS },
  field = 'reference',
): DecodedImage {
  const header = readHeader(bytes, file, field);
  checkPixels(header, file, limits.maxPixels, field);
  let image: DecodedImage;
  try {
    image = header.format === 'png' ? decodePng(bytes, header) : decodeJpeg(bytes, header, limits.maxPixels);
  } catch (err) {
    throw new DatasetError(`${file}: cannot decode image: ${describeError(err)}`, field, file, { cause: err });
  }
  // The header could lie about the size; the decoded image is what counts.
  checkPixels(image, file, limits.maxPixels, field);
  if (image.width === 0 || image.height === 0) {
    throw new DatasetError(`${file}: cannot decode image: it has no pixels (${image.width}x${image.height})`, field, file);
  }
  return image;
}

function checkPixels(size: { width: number; height: number }, file: string, maxPixels: number, field: string): void {
  if (size.width * size.height > maxPixels) {
    throw new DatasetError(
      `${file}: image is ${size.width}x${size.height} = ${size.width * size.height} pixels, over the cap of ${maxPixels}`,
      field,
      file,
    );
  }
}

/** Samples a pixel by PNG colour type. */
const PNG_SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * pngjs bounds its inflate by the image size only for non-interlaced files; an
 * interlaced one is inflated here first with a bound, so a bomb stops at it.
 */
function checkInterlacedInflate(bytes: Uint8Array, header: ImageHeader): void {
  if (bytes[28] !== 1) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idat: Uint8Array[] = [];
  for (let i = 8; i + 8 <= bytes.length; ) {
    const length = view.getUint32(i);
    const type = String.fromCharCode(...bytes.subarray(i + 4, i + 8));
    if (type === 'IDAT') idat.push(bytes.subarray(i + 8, i + 8 + length));
    if (type === 'IEND') break;
    i += 12 + length;
  }
  const bitsPerPixel = (PNG_SAMPLES[bytes[25]] ?? 4) * bytes[24];
  // Adam7 adds at most one filter byte per row of each of its 7 passes, and pads each row to a byte.
  const bound = Math.ceil((header.width * bitsPerPixel) / 8) * header.height + 7 * (header.height + 1) * 2 + 64;
  try {
    inflateSync(Buffer.concat(idat), { maxOutputLength: bound });
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_BUFFER_TOO_LARGE') throw err;
    throw new Error(`its pixel data inflates past the ${bound} bytes a ${header.width}x${header.height} image needs`);
  }
}

function decodePng(bytes: Uint8Array, header: ImageHeader): DecodedImage {
  checkInterlacedInflate(bytes, header);
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  // pngjs always hands back RGBA; keep only the channels the file has.
  const channels = (png.color ? 3 : 1) + (png.alpha ? 1 : 0);
  const n = png.width * png.height;
  const pixels = new Uint8Array(n * channels);
  const src = png.data;
  for (let p = 0; p < n; p++) {
    const o = p * channels;
    if (png.color) {
      pixels[o] = src[4 * p];
      pixels[o + 1] = src[4 * p + 1];
      pixels[o + 2] = src[4 * p + 2];
    } else {
      pixels[o] = src[4 * p];
    }
    if (png.alpha) pixels[o + channels - 1] = src[4 * p + 3];
  }
  return { width: png.width, height: png.height, channels, pixels };
}

function decodeJpeg(bytes: Uint8Array, header: ImageHeader, maxPixels: number): DecodedImage {
  const decoded = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: false,
    maxResolutionInMP: maxPixels / 1e6,
    // Room for the decoder's component planes and the RGB output, with slack for its tables.
    maxMemoryUsageInMB: Math.ceil((maxPixels * 8) / 2 ** 20) + 16,
  });
  const rgb = decoded.data;
  if (header.components !== 1) return { width: decoded.width, height: decoded.height, channels: 3, pixels: rgb };
  // jpeg-js repeats a gray plane into RGB; undo it so gray stays one channel.
  const n = decoded.width * decoded.height;
  const pixels = new Uint8Array(n);
  for (let p = 0; p < n; p++) pixels[p] = rgb[3 * p];
  return { width: decoded.width, height: decoded.height, channels: 1, pixels };
}
