// Where an image folder's entries come from: a `.zip` (its central directory
// listed, each member inflated when read), a `.tar.gz` (gunzipped and untarred
// as one stream) or a directory on the server's disk (walked under the file
// policy). All three are bounded before anything large is held: a count of
// files, a size per member, a total of unpacked bytes and an expansion ratio,
// checked against what headers declare and again against what inflating
// really yields, so a member that claims a small size but inflates past it
// (a decompression bomb) is stopped at the claim.
//
// It does not decode images or sort entries into classes (./folder.ts does);
// names are checked here only for safety: no absolute paths, no `..`, no
// links or devices in an archive, no symlink out of the file roots.
import { readdir, readFile, stat } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, inflateRawSync } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import { confineFile, type FilePolicy } from '../access.js';
import { DatasetError, describeError } from '../errors.js';
import { ratioAllowance } from '../source.js';
import type { FolderEntry } from './folder.js';

export interface ArchiveCaps {
  /** Most unpacked bytes over all members (TICKETSMITH_MAX_DATASET_BYTES). */
  maxBytes: number;
  /** Most a compressed member (zip) or the whole stream (tar.gz) may expand (TICKETSMITH_MAX_DATASET_RATIO). */
  maxRatio: number;
  /** Most files (TICKETSMITH_MAX_IMAGE_FILES). */
  maxFiles: number;
  /** Most bytes of one member or file. Default: MAX_MEMBER_BYTES (never above maxBytes). */
  maxMemberBytes?: number;
}

/** No PNG or JPEG in a training set is this large; a member claiming more is refused unread. */
export const MAX_MEMBER_BYTES = 64 * 1024 * 1024;

/** Folders below the given one a walk descends (wrapper/split/class/image is 3). */
const MAX_DEPTH = 4;

const memberCap = (caps: ArchiveCaps) => Math.min(caps.maxBytes, caps.maxMemberBytes ?? MAX_MEMBER_BYTES);

const fail = (archive: string, why: string, field = 'reference') => new DatasetError(`${archive}: ${why}`, field, archive);

/** `raw` as a relative member path, or a refusal naming it: no absolute path, drive, `..` or NUL. */
export function memberPath(raw: string, archive: string): string {
  const name = raw.replace(/\\/g, '/');
  const parts = name.split('/');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name) || parts.includes('..') || name.includes('\0')) {
    throw fail(archive, `member '${raw}' has an unsafe path (absolute or with '..'); archive paths must stay inside the archive`);
  }
  return name.replace(/^(\.\/)+/, '');
}

// ---------------------------------------------------------------- zip

interface ZipMember {
  name: string;
  method: number;
  compressed: number;
  size: number;
  localOffset: number;
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** The central directory's members (folders included), with every declared size checked against the caps. */
function zipDirectory(bytes: Uint8Array, archive: string, caps: ArchiveCaps): ZipMember[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  // The end record sits in the last 22 bytes plus a comment of at most 65535.
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw fail(archive, 'not a zip archive (no end of central directory record)');
  const count = view.getUint16(eocd + 10, true);
  const dirSize = view.getUint32(eocd + 12, true);
  const dirOffset = view.getUint32(eocd + 16, true);
  if (count === 0xffff || dirOffset === 0xffffffff) throw fail(archive, 'zip64 archives are not supported');
  if (dirOffset + dirSize > eocd) throw fail(archive, 'corrupt zip archive (central directory out of bounds)');

  const members: ZipMember[] = [];
  let files = 0;
  let declared = 0;
  let at = dirOffset;
  for (let k = 0; k < count; k++) {
    if (at + 46 > eocd || view.getUint32(at, true) !== CENTRAL) throw fail(archive, 'corrupt zip archive (bad central directory entry)');
    const flags = view.getUint16(at + 8, true);
    const method = view.getUint16(at + 10, true);
    const compressed = view.getUint32(at + 20, true);
    const size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const madeBy = view.getUint16(at + 4, true) >> 8;
    const mode = view.getUint32(at + 38, true) >>> 16;
    const localOffset = view.getUint32(at + 42, true);
    const raw = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    at += 46 + nameLength + extraLength + commentLength;
    const name = memberPath(raw, archive);
    if (name.endsWith('/')) {
      members.push({ name, method, compressed, size: 0, localOffset });
      continue;
    }
    // Made by Unix (3): the mode's file type says whether it is a symbolic link.
    if (madeBy === 3 && (mode & S_IFMT) === S_IFLNK) throw fail(archive, `member '${name}' is a symbolic link; only regular files and folders are accepted`);
    if (flags & 1) throw fail(archive, `member '${name}' is encrypted`);
    if (method !== 0 && method !== 8) throw fail(archive, `member '${name}' uses compression method ${method}; only stored and deflate are supported`);
    if (compressed === 0xffffffff || size === 0xffffffff) throw fail(archive, 'zip64 archives are not supported');
    files += 1;
    if (files > caps.maxFiles) throw fail(archive, `too many files: '${name}' is past the cap of ${caps.maxFiles} (TICKETSMITH_MAX_IMAGE_FILES)`);
    checkMemberSize(name, size, compressed, method === 8, archive, caps);
    declared += size;
    if (declared > caps.maxBytes) throw fail(archive, `unpacks to more than the ${caps.maxBytes}-byte limit for a dataset file (TICKETSMITH_MAX_DATASET_BYTES)`);
    members.push({ name, method, compressed, size, localOffset });
  }
  return members;
}

function checkMemberSize(name: string, size: number, compressed: number, deflated: boolean, archive: string, caps: ArchiveCaps): void {
  const cap = memberCap(caps);
  if (size > cap) throw fail(archive, `member '${name}' unpacks to ${size} bytes, over the ${cap}-byte limit for one file`);
  if (deflated && size > ratioAllowance(compressed, caps.maxRatio)) {
    throw fail(archive, `member '${name}' expands more than ${caps.maxRatio}-fold, the limit for compressed dataset files (TICKETSMITH_MAX_DATASET_RATIO)`);
  }
}

/** One member's bytes: inflated into no more than its declared size, which the caps already judged. */
function readZipMember(bytes: Uint8Array, m: ZipMember, archive: string): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (m.localOffset + 30 > bytes.length || view.getUint32(m.localOffset, true) !== LOCAL) {
    throw fail(archive, `corrupt zip archive (no local header for '${m.name}')`);
  }
  const start = m.localOffset + 30 + view.getUint16(m.localOffset + 26, true) + view.getUint16(m.localOffset + 28, true);
  if (start + m.compressed > bytes.length) throw fail(archive, `corrupt zip archive ('${m.name}' is truncated)`);
  const data = bytes.subarray(start, start + m.compressed);
  let out: Uint8Array;
  if (m.method === 0) {
    out = data;
  } else {
    try {
      // zlib stops once the output passes the bound, so a lying header costs at most its own claim.
      const buf = inflateRawSync(data, { maxOutputLength: Math.max(1, m.size) });
      out = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw fail(archive, `member '${m.name}' inflates past the ${m.size} bytes its header declares (a decompression bomb)`);
      }
      throw fail(archive, `member '${m.name}' is corrupt (${describeError(err)})`);
    }
  }
  if (out.length !== m.size) throw fail(archive, `member '${m.name}' is corrupt (header says ${m.size} bytes, holds ${out.length})`);
  return out;
}

/** The members of a zip held in memory, each inflated only when read. */
export function zipEntries(bytes: Uint8Array, archive: string, caps: ArchiveCaps): FolderEntry[] {
  const members = zipDirectory(bytes, archive, caps);
  // The ratio floor spares one tiny file; many members each at the floor are a bomb of the whole archive.
  const declared = members.reduce((n, m) => n + m.size, 0);
  if (declared > ratioAllowance(bytes.length, caps.maxRatio)) {
    throw fail(archive, `its members unpack to more than ${caps.maxRatio}-fold the archive's ${bytes.length} bytes, the limit for compressed dataset files (TICKETSMITH_MAX_DATASET_RATIO)`);
  }
  return members.map((m) =>
    m.name.endsWith('/') ? { path: m.name } : { path: m.name, read: async () => readZipMember(bytes, m, archive) },
  );
}

/** Whether a zip is an NPZ: it holds .npy members and nothing else (folders aside). Names only; nothing is inflated. */
export function zipHoldsOnlyNpy(bytes: Uint8Array, archive: string, caps: ArchiveCaps): boolean {
  const files = zipDirectory(bytes, archive, { ...caps, maxFiles: Number.MAX_SAFE_INTEGER, maxMemberBytes: caps.maxBytes }).filter((m) => !m.name.endsWith('/'));
  return files.length > 0 && files.every((m) => m.name.endsWith('.npy'));
}

// ---------------------------------------------------------------- tar.gz

/** tar-stream's entry types that carry no file; anything else but `file` and `directory` is refused. */
const TAR_METADATA = new Set(['pax-header', 'pax-global-header', 'gnu-long-path', 'gnu-long-link-path']);

/**
 * The files of a gzipped tar held in memory, gunzipped and untarred as one
 * stream: the running unpacked size is held to maxBytes and to the ratio over
 * the compressed size, so a bomb stops at the cap. Only regular files and
 * folders are accepted.
 */
export async function tarGzEntries(bytes: Uint8Array, archive: string, caps: ArchiveCaps): Promise<FolderEntry[]> {
  const allowance = Math.min(caps.maxBytes, ratioAllowance(bytes.length, caps.maxRatio));
  const overCap =
    allowance < caps.maxBytes
      ? fail(archive, `expands more than ${caps.maxRatio}-fold, the limit for compressed dataset files (TICKETSMITH_MAX_DATASET_RATIO)`)
      : fail(archive, `unpacks to more than the ${caps.maxBytes}-byte limit for a dataset file (TICKETSMITH_MAX_DATASET_BYTES)`);
  // The caps' refusal wins over whatever the torn-down streams report after it.
  let refusal: DatasetError | undefined;
  let streamError: unknown;
  let unpacked = 0;
  const counted = async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      unpacked += chunk.length;
      if (unpacked > allowance) throw (refusal = overCap);
      yield chunk;
    }
  };
  const extract = tarExtract();
  const chunks = (async function* () {
    for (let i = 0; i < bytes.length; i += 64 * 1024) yield bytes.subarray(i, i + 64 * 1024);
  })();
  const feeding = pipeline(Readable.from(chunks), createGunzip(), counted, extract).catch((err: unknown) => {
    streamError ??= err;
  });
  const broken = (err: unknown) => fail(archive, `not a valid .tar.gz archive (${describeError(err)})`);
  const entries: FolderEntry[] = [];
  let files = 0;
  try {
    for await (const entry of extract) {
      const { type, size } = entry.header;
      const name = memberPath(entry.header.name, archive);
      if (type === 'directory') {
        entries.push({ path: name.endsWith('/') ? name : `${name}/` });
        entry.resume();
        continue;
      }
      if (type !== 'file' && type !== 'contiguous-file') {
        if (type !== null && TAR_METADATA.has(type)) {
          entry.resume();
          continue;
        }
        throw fail(archive, `member '${name}' is a ${String(type)}; only regular files and folders are accepted`);
      }
      files += 1;
      if (files > caps.maxFiles) throw fail(archive, `too many files: '${name}' is past the cap of ${caps.maxFiles} (TICKETSMITH_MAX_IMAGE_FILES)`);
      const cap = memberCap(caps);
      if ((size ?? 0) > cap) throw fail(archive, `member '${name}' is ${size} bytes, over the ${cap}-byte limit for one file`);
      const parts: Buffer[] = [];
      for await (const piece of entry as AsyncIterable<Buffer>) parts.push(piece);
      const data = Buffer.concat(parts);
      entries.push({ path: name, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    }
  } catch (err) {
    extract.destroy();
    await feeding;
    if (refusal) throw refusal;
    if (err instanceof DatasetError) throw err;
    throw broken(streamError ?? err);
  }
  await feeding;
  if (refusal) throw refusal;
  if (streamError !== undefined) throw broken(streamError);
  return entries;
}

// ---------------------------------------------------------------- directory

/**
 * The files under a directory on the server's disk, read when asked. Every
 * folder and file is confined by `policy` (its real path inside a root), so
 * a symlink that leads out of the roots is refused; a file's size is judged
 * before it is read. Messages name paths relative to the folder, as `shown`.
 */
export async function directoryEntries(dir: string, shown: string, policy: FilePolicy | undefined, caps: ArchiveCaps): Promise<FolderEntry[]> {
  const entries: FolderEntry[] = [];
  let files = 0;
  let total = 0;
  const cap = memberCap(caps);
  const walk = async (real: string, rel: string, depth: number): Promise<void> => {
    let listed: Dirent[];
    try {
      listed = await readdir(real, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'directory not found' : code === 'ENOTDIR' ? 'not a directory' : `cannot list (${code ?? 'error'})`;
      throw fail(rel === '' ? shown : `${shown}/${rel}`, why);
    }
    listed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of listed) {
      const path = rel === '' ? d.name : `${rel}/${d.name}`;
      const named = `${shown}/${path}`;
      // A link is followed only to a real path inside a root; the refusal names the link, never its target.
      const target = d.isSymbolicLink() ? await confineFile(join(real, d.name), policy, 'reference').catch((err: unknown) => {
        if (err instanceof DatasetError) throw fail(named, err.message);
        throw err;
      }) : join(real, d.name);
      const info = await stat(target).catch(() => null);
      if (info === null) throw fail(named, 'cannot read (a broken link or a file that went away)');
      if (info.isDirectory()) {
        if (depth >= MAX_DEPTH) throw fail(named, `nested more than ${MAX_DEPTH} folders deep`);
        entries.push({ path: `${path}/` });
        await walk(target, path, depth + 1);
        continue;
      }
      if (!info.isFile()) throw fail(named, 'not a regular file');
      files += 1;
      if (files > caps.maxFiles) throw fail(named, `too many files: more than the cap of ${caps.maxFiles} (TICKETSMITH_MAX_IMAGE_FILES)`);
      if (info.size > cap) throw fail(named, `${info.size} bytes, over the ${cap}-byte limit for one file`);
      total += info.size;
      if (total > caps.maxBytes) throw fail(named, `the folder holds more than the ${caps.maxBytes}-byte limit for a dataset (TICKETSMITH_MAX_DATASET_BYTES)`);
      entries.push({
        path,
        read: async () => {
          try {
            // Confined again at read time: a file swapped for a link after the walk still cannot lead out.
            const buf = await readFile(await confineFile(target, policy, 'reference'));
            if (buf.byteLength > cap) throw fail(named, `${buf.byteLength} bytes, over the ${cap}-byte limit for one file`);
            return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
          } catch (err) {
            if (err instanceof DatasetError) throw err.message.startsWith(named) ? err : fail(named, err.message);
            throw fail(named, `cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
          }
        },
      });
    }
  };
  await walk(await confineFile(dir, policy, 'reference'), '', 0);
  return entries;
}
