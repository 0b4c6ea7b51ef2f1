// Brings a decoded image to the model's input: channels fitted (alpha dropped,
// RGB to gray by ITU-R 601 luma weights, gray to RGB by repetition), then a
// bilinear resize with half-pixel centres (as PIL and TF's resize with
// half_pixel_centers), values scaled to [0, 1] like the other readers.

import type { DecodedImage } from './decode.js';
import { DatasetError } from '../errors.js';

/** Luma weights of ITU-R BT.601, as PIL's convert('L'). */
export const LUMA = [0.299, 0.587, 0.114] as const;

/** Float pixels, HWC. */
export interface FloatImage {
  width: number;
  height: number;
  channels: number;
  values: Float32Array;
}

/** Channels 1 or 3 from 1 to 4 input channels; values stay on the input's scale. */
export function fitChannels(image: DecodedImage, channels: number, file = 'image'): FloatImage {
  if (channels !== 1 && channels !== 3) {
    throw new DatasetError(`${file}: the model takes ${channels} channels; images fit 1 (gray) or 3 (RGB)`, 'inputShape', file);
  }
  const { width, height, pixels } = image;
  const src = image.channels;
  // Alpha is the last channel of 2 and 4; colour is the first 3 of 3 and 4.
  const colour = src >= 3;
  const n = width * height;
  const values = new Float32Array(n * channels);
  for (let p = 0; p < n; p++) {
    const o = p * src;
    if (channels === 1) {
      values[p] = colour ? LUMA[0] * pixels[o] + LUMA[1] * pixels[o + 1] + LUMA[2] * pixels[o + 2] : pixels[o];
    } else if (colour) {
      values[3 * p] = pixels[o];
      values[3 * p + 1] = pixels[o + 1];
      values[3 * p + 2] = pixels[o + 2];
    } else {
      values[3 * p] = values[3 * p + 1] = values[3 * p + 2] = pixels[o];
    }
  }
  return { width, height, channels, values };
}

/** Bilinear resize with half-pixel centres; the same size is returned as is. */
export function resizeBilinear(image: FloatImage, height: number, width: number): FloatImage {
  if (image.height === height && image.width === width) return image;
  const { channels } = image;
  const values = new Float32Array(height * width * channels);
  const ys = samples(image.height, height);
  const xs = samples(image.width, width);
  for (let y = 0; y < height; y++) {
    const [y0, y1, fy] = ys[y];
    for (let x = 0; x < width; x++) {
      const [x0, x1, fx] = xs[x];
      for (let c = 0; c < channels; c++) {
        const at = (yy: number, xx: number) => image.values[(yy * image.width + xx) * channels + c];
        const top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx;
        const bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx;
        values[(y * width + x) * channels + c] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return { width, height, channels, values };
}

/** For each output index: the two source indices and the weight of the second. */
function samples(inSize: number, outSize: number): [number, number, number][] {
  const scale = inSize / outSize;
  return Array.from({ length: outSize }, (_, i) => {
    const s = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), inSize - 1);
    const i0 = Math.floor(s);
    const i1 = Math.min(i0 + 1, inSize - 1);
    return [i0, i1, s - i0];
  });
}

/** Channels fitted, resized to height x width, scaled to [0, 1]: one example in HWC order. */
export function toInput(image: DecodedImage, height: number, width: number, channels: number, file = 'image'): Float32Array {
  const resized = resizeBilinear(fitChannels(image, channels, file), height, width);
  const out = resized.values;
  for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, out[i] / 255));
  return out;
}
