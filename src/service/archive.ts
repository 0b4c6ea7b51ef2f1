// Unpacking an uploaded model or dataset archive (.zip, .tar.gz/.tgz or plain
// .tar) into named files, with the size limit enforced while inflating so a
// small archive cannot expand into an unbounded one. Names are normalised and
// any that would escape the upload ('..', absolute) are rejected. Optional
// caps bound the member count (dataset uploads) and the expansion ratio of
// each member and of the whole archive (both doors' uploads), checked from the
// zip's declared sizes and the gzip trailer before anything is inflated.
import { gunzipSync } from 'node:zlib';
import { unzipSync } from 'fflate';
import { invalid, ServiceError } from './errors.js';
import { isGzip, isZip } from '../engine/data/bytes.js';
import { ratioAllowance } from '../engine/data/source.js';

export interface ArchiveCaps {
  /** Most regular files an archive may hold. */
  maxMembers?: number;
  /** Most one compressed member (or a whole .tar.gz) may expand (engine/data's ratio rule, with its floor for tiny files). */
  maxRatio?: number;
  /**
   * A zip whose declared sizes pass the byte cap is a 413 before its ratio is
   * looked at: the model door answered so before it had a ratio cap, and
   * clients may rely on it. The dataset door names the member that would
   * expand first (400), as it always has.
   */
  bytesBeforeRatio?: boolean;
}

const tooManyMembers = (max: number) => invalid('archive', `archive: more than ${max} files (the limit for one upload)`);
const tooExpanded = (name: string, ratio: number) =>
  invalid('archive', `archive: '${name}' expands more than ${ratio}-fold, the limit for compressed upload files (a zip bomb?)`);

export interface NamedFile {
  name: string;
  bytes: Uint8Array;
}

const isTar = (b: Uint8Array) => b.length >= 512 && new TextDecoder().decode(b.subarray(257, 262)) === 'ustar';

const tooLarge = (max: number) => new ServiceError('PAYLOAD_TOO_LARGE', `the unpacked upload exceeds ${max} bytes`, 'archive');

/** A safe relative path, or an INVALID_ARGUMENT naming `field`. */
export function safeName(raw: string, field: string): string {
  const name = raw.replace(/\\/g, '/').replace(/^(\.\/)+/, '');
  const parts = name.split('/');
  if (name === '' || name.startsWith('/') || /^[A-Za-z]:/.test(name) || parts.some((p) => p === '..' || p === '') || name.includes('\0')) {
    throw invalid(field, `${field}: unsafe file name '${raw}'`);
  }
  return name;
}

export function unpackArchive(bytes: Uint8Array, maxBytes: number, caps: ArchiveCaps = {}): NamedFile[] {
  if (isZip(bytes)) return unzip(bytes, maxBytes, caps);
  if (isGzip(bytes)) {
    // Under a ratio cap the inflate stops where the ratio would be crossed, so a bomb is never expanded whole.
    const ratioLimit = caps.maxRatio === undefined ? Infinity : ratioAllowance(bytes.byteLength, caps.maxRatio);
    const limit = Math.min(maxBytes + 1024 * 1024, ratioLimit);
    // ISIZE is the last member's length mod 2^32: the stream holds at least that much, so a claim past the
    // limit is refused before a byte is inflated (a claim under it is only a hint: the inflate stays capped).
    const declared = bytes.byteLength >= 18 ? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(bytes.byteLength - 4, true) : 0;
    if (declared > limit) {
      const e = limit === ratioLimit ? tooExpanded('archive', caps.maxRatio!) : tooLarge(maxBytes);
      // A cut-off file ends in arbitrary bytes, not its trailer: the message allows for that too.
      throw new ServiceError(e.code, `${e.message} (its gzip trailer declares ${declared} bytes; or the file is cut off)`, e.field);
    }
    let tar: Uint8Array;
    try {
      tar = new Uint8Array(gunzipSync(bytes, { maxOutputLength: limit }));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        if (limit === ratioLimit) throw tooExpanded('archive', caps.maxRatio!);
        throw tooLarge(maxBytes);
      }
      throw invalid('archive', `archive: not a valid gzip stream (${(e as Error).message})`);
    }
    return untar(tar, maxBytes, caps);
  }
  if (isTar(bytes)) return untar(bytes, maxBytes, caps);
  throw invalid('archive', 'archive: expected a .zip, .tar.gz or .tar file');
}

function unzip(bytes: Uint8Array, maxBytes: number, caps: ArchiveCaps): NamedFile[] {
  let declared = 0;
  let members = 0;
  const sizes = new Map<string, number>();
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes, {
      filter: (f) => {
        if (f.name.endsWith('/')) return false;
        // fflate slices what the header claims and allocates the claimed size before inflating: a compressed
        // size past the archive would buy a ratio allowance (and an allocation) no bytes were sent for.
        if (f.size > bytes.byteLength) throw invalid('archive', `archive: '${f.name}' is corrupt (its compressed size runs past the end of the archive)`);
        members++;
        if (caps.maxMembers !== undefined && members > caps.maxMembers) throw tooManyMembers(caps.maxMembers);
        declared += f.originalSize;
        if (caps.bytesBeforeRatio && declared > maxBytes) throw tooLarge(maxBytes);
        if (caps.maxRatio !== undefined && f.originalSize > ratioAllowance(f.size, caps.maxRatio)) throw tooExpanded(f.name, caps.maxRatio);
        if (declared > maxBytes) throw tooLarge(maxBytes);
        // The floor spares one tiny file; thousands of members each at the floor are a bomb of the whole archive.
        if (caps.maxRatio !== undefined && declared > ratioAllowance(bytes.byteLength, caps.maxRatio)) {
          throw invalid('archive', `archive: its members unpack to more than ${caps.maxRatio}-fold the archive's ${bytes.byteLength} bytes, the limit for compressed upload files (a zip bomb?)`);
        }
        sizes.set(f.name, f.originalSize);
        return true;
      },
    });
  } catch (e) {
    if (e instanceof ServiceError) throw e;
    throw invalid('archive', `archive: not a valid zip file (${(e as Error).message})`);
  }
  let total = 0;
  return Object.entries(entries).map(([name, data]) => {
    // fflate stops at the declared size but does not say when a member holds less: a header that lies is corrupt.
    const size = sizes.get(name);
    if (size !== undefined && data.byteLength !== size) {
      throw invalid('archive', `archive: '${name}' is corrupt (header says ${size} bytes, holds ${data.byteLength})`);
    }
    total += data.byteLength;
    if (total > maxBytes) throw tooLarge(maxBytes);
    return { name: safeName(name, 'archive'), bytes: data };
  });
}

function field(block: Uint8Array, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const end = raw.indexOf(0);
  return new TextDecoder().decode(end === -1 ? raw : raw.subarray(0, end));
}

/** Tar entry types refused outright (ustar typeflags). */
const LINK_OR_DEVICE: Record<string, string> = { '1': 'hard link', '2': 'symbolic link', '3': 'character device', '4': 'block device', '6': 'named pipe' };

function untar(tar: Uint8Array, maxBytes: number, caps: ArchiveCaps = {}): NamedFile[] {
  const out: NamedFile[] = [];
  let offset = 0;
  let total = 0;
  let longName: string | null = null;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(field(header, 124, 12).trim() || '0', 8);
    if (!Number.isFinite(size) || size < 0) throw invalid('archive', 'archive: corrupt tar header');
    const type = String.fromCharCode(header[156] ?? 0);
    const prefix = field(header, 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    const dataStart = offset + 512;
    if (dataStart + size > tar.length) throw invalid('archive', 'archive: truncated tar file');
    const data = tar.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / 512) * 512;
    longName = null;
    if (type === 'L') {
      longName = new TextDecoder().decode(data).replace(/\0+$/, '');
    } else if (type === 'x') {
      const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(new TextDecoder().decode(data));
      if (path) longName = path[1]!;
    } else if (type === '0' || type === '\0' || type === '7') {
      total += size;
      if (total > maxBytes) throw tooLarge(maxBytes);
      if (caps.maxMembers !== undefined && out.length >= caps.maxMembers) throw tooManyMembers(caps.maxMembers);
      out.push({ name: safeName(name, 'archive'), bytes: data.slice() });
    } else if (LINK_OR_DEVICE[type]) {
      // A link could make a later reader follow it out of the upload; a model never needs one.
      throw invalid('archive', `archive: '${name}' is a ${LINK_OR_DEVICE[type]}; only regular files and folders are accepted`);
    }
    // Folders and pax/GNU metadata entries carry nothing a model needs.
  }
  return out;
}
