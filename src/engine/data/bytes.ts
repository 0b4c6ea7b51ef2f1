// Byte-level helpers shared by the format readers: gzip detection by magic
// bytes (file names lie), gzip expansion with the checks fflate leaves out,
// and magic-byte sniffing used to give "wrong format" errors a useful hint.

import { Gunzip, gunzipSync } from 'fflate';
import { DatasetError, describeError } from './errors.js';
import { ratioAllowance } from './source.js';
import { DEFAULT_DATASET_LIMITS, type DatasetLimits } from '../../runtime/engine-config.js';

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/**
 * The file's content, gunzipped when it starts with the gzip magic.
 * fflate checks neither the CRC nor the length in the gzip trailer, so a
 * flipped bit inside a stored block would pass silently; both are checked here.
 */
export function maybeGunzip(bytes: Uint8Array, file: string, field: string, limits: DatasetLimits = DEFAULT_DATASET_LIMITS): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  // A trailer claiming more than the limit (a gzip bomb, or a truncated file whose last
  // bytes are not a trailer) is inflated as a stream that stops at the limit. The limit
  // is the byte cap or the ratio cap, whichever is smaller.
  const declaredSize = bytes.length >= 18 ? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(bytes.length - 4, true) : 0;
  const { maxBytes: max, maxRatio: ratio } = limits;
  const limit = Math.min(max, ratioAllowance(bytes.length, ratio));
  let out: Uint8Array;
  try {
    // gunzipSync allocates what the trailer claims (and writes no further), so a large claim is never handed to it.
    out = declaredSize > limit ? inflateCapped(bytes, limit, file, field, limit < max ? ratio : undefined) : gunzipSync(bytes);
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    throw new DatasetError(`${file}: corrupt or truncated gzip data (${describeError(err)})`, field, file, { cause: err });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const expectedCrc = view.getUint32(bytes.length - 8, true);
  const expectedSize = view.getUint32(bytes.length - 4, true);
  // ISIZE is the length modulo 2^32, as the format defines it.
  if ((out.length >>> 0) !== expectedSize) {
    throw new DatasetError(
      `${file}: corrupt gzip data (trailer says ${expectedSize} bytes, expanded to ${out.length})`,
      field,
      file,
    );
  }
  if (crc32(out) !== expectedCrc) {
    throw new DatasetError(`${file}: corrupt gzip data (CRC-32 mismatch)`, field, file);
  }
  return out;
}

/** At most ~4 MiB of output per push, at deflate's best ratio (1032:1). */
const PUSH_BYTES = 4096;

/**
 * For a trailer that claims more than `max`: inflates as a stream, counting
 * only, and always throws. Past `max` it is a bomb; ending within `max` the
 * trailer lied (a truncated or corrupt file). Nothing is kept, so memory stays
 * at one chunk whatever the file claims.
 */
function inflateCapped(bytes: Uint8Array, max: number, file: string, field: string, ratio?: number): never {
  let total = 0;
  const overLimit =
    ratio === undefined
      ? new DatasetError(`${file}: unpacks to more than the ${max}-byte limit for a dataset file (TICKETSMITH_MAX_DATASET_BYTES)`, field, file)
      : new DatasetError(`${file}: expands more than ${ratio}-fold, the limit for compressed dataset files (TICKETSMITH_MAX_DATASET_RATIO)`, field, file);
  const stream = new Gunzip((chunk) => {
    total += chunk.length;
    if (total > max) throw overLimit;
  });
  try {
    // Small pushes: fflate inflates a whole push before handing any of it on, so
    // one 1 MiB push of a bomb would expand to a gigabyte in one buffer.
    for (let at = 0; at < bytes.length; at += PUSH_BYTES) stream.push(bytes.subarray(at, at + PUSH_BYTES), at + PUSH_BYTES >= bytes.length);
  } catch (err) {
    if (err === overLimit) throw err;
    throw new DatasetError(`${file}: corrupt or truncated gzip data (${describeError(err)})`, field, file, { cause: err });
  }
  const declared = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(bytes.length - 4, true);
  throw new DatasetError(`${file}: corrupt gzip data (trailer says ${declared} bytes, expanded to ${total})`, field, file);
}

/** First bytes as hex, for "wrong magic" messages. */
export function hexPrefix(bytes: Uint8Array, n = 4): string {
  return Array.from(bytes.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join(' ');
}
