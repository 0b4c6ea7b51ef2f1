// Unpacking an uploaded model archive (.zip, .tar.gz/.tgz or plain .tar) into
// named files, with the size limit enforced while inflating so a small
// archive cannot expand into an unbounded one. Names are normalised and any
// that would escape the upload ('..', absolute) are rejected.
import { gunzipSync } from 'node:zlib';
import { unzipSync } from 'fflate';
import { invalid, ServiceError } from './errors.js';
import { isGzip, isZip } from '../engine/data/bytes.js';

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

export function unpackArchive(bytes: Uint8Array, maxBytes: number): NamedFile[] {
  if (isZip(bytes)) return unzip(bytes, maxBytes);
  if (isGzip(bytes)) {
    let tar: Uint8Array;
    try {
      tar = new Uint8Array(gunzipSync(bytes, { maxOutputLength: maxBytes + 1024 * 1024 }));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(maxBytes);
      throw invalid('archive', `archive: not a valid gzip stream (${(e as Error).message})`);
    }
    return untar(tar, maxBytes);
  }
  if (isTar(bytes)) return untar(bytes, maxBytes);
  throw invalid('archive', 'archive: expected a .zip, .tar.gz or .tar file');
}

function unzip(bytes: Uint8Array, maxBytes: number): NamedFile[] {
  let declared = 0;
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes, {
      filter: (f) => {
        if (f.name.endsWith('/')) return false;
        declared += f.originalSize;
        if (declared > maxBytes) throw tooLarge(maxBytes);
        return true;
      },
    });
  } catch (e) {
    if (e instanceof ServiceError) throw e;
    throw invalid('archive', `archive: not a valid zip file (${(e as Error).message})`);
  }
  let total = 0;
  return Object.entries(entries).map(([name, data]) => {
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

function untar(tar: Uint8Array, maxBytes: number): NamedFile[] {
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
      out.push({ name: safeName(name, 'archive'), bytes: data.slice() });
    } else if (LINK_OR_DEVICE[type]) {
      // A link could make a later reader follow it out of the upload; a model never needs one.
      throw invalid('archive', `archive: '${name}' is a ${LINK_OR_DEVICE[type]}; only regular files and folders are accepted`);
    }
    // Folders and pax/GNU metadata entries carry nothing a model needs.
  }
  return out;
}
