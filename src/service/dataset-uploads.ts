// Dataset uploads: a tenant's data sent with the request (the files of an IDX
// set, NPY/NPZ, CIFAR-10 batches, or an image-folder archive) instead of a
// reference the server fetches. Checked before anything is stored, in an
// upload thread (upload-pool.ts): the archive unpacks under the byte, member
// and ratio caps (archive.ts), names are safe, and then the data layer reads
// it exactly as it reads a `file://` reference (engine/data/probe.ts: magic,
// dims, counts, label range, under the dataset caps), from a private temp
// folder it alone may read; an image folder too (engine/data/images/: layout,
// classes, counts and sizes from the headers). Then the files go to
// the blob store and one transaction records the Dataset row (reference
// `upload:<sha256 of the listing>`: the same upload twice is the same
// dataset) and its 'dataset-file' artifacts. Jobs name it as `dataset:<id>`;
// the worker writes the files back to a temp folder (queue/inputs.ts).
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DatasetError } from '../engine/data/errors.js';
import { recordArtifacts, storeBlobs } from '../store/artifacts.js';
import { collectBlobs } from '../store/blob-gc.js';
import { findDatasetByReference, insertDataset, type DatasetRow } from '../store/datasets.js';
import { inTransaction } from '../store/db.js';
import { lockTenant } from '../store/limits.js';
import { safeName, unpackArchive, type NamedFile } from './archive.js';
import type { ServiceContext } from './context.js';
import { datasetDto, type DatasetDto } from './dto.js';
import { invalid, ServiceError } from './errors.js';
import { checkStorageQuota } from './limits.js';
import { uploadPool, type CheckedDataset, type DatasetUploadCaps } from './upload-pool.js';
import { UPLOAD_REF } from '../queue/inputs.js';

export type DatasetUpload = { files: NamedFile[] } | { archive: Uint8Array };


export { UPLOAD_REF };
export type { CheckedDataset, DatasetUploadCaps };

const IMAGE = /\.(png|jpe?g)$/i;
/** Files a desktop adds to an archive: never data. */
const JUNK = (name: string) => name.split('/').some((p) => p.startsWith('.') || p === '__MACOSX');

export function datasetUploadCaps(ctx: ServiceContext): DatasetUploadCaps {
  const { maxBytes, maxRatio, probeSeconds } = ctx.config.datasets;
  return { maxBytes: ctx.config.maxUploadBytes, maxFiles: ctx.config.maxUploadFiles, maxFileBytes: maxBytes, maxRatio, probeSeconds };
}

const tooLarge = (max: number, field: string) => new ServiceError('PAYLOAD_TOO_LARGE', `upload exceeds ${max} bytes`, field);

/** The upload's files, unpacked and named safely, junk dropped and one wrapping folder removed. */
function uploadedFiles(upload: DatasetUpload, caps: DatasetUploadCaps): NamedFile[] {
  let raw: NamedFile[];
  if ('archive' in upload) {
    if (upload.archive.byteLength > caps.maxBytes) throw tooLarge(caps.maxBytes, 'archive');
    raw = unpackArchive(upload.archive, caps.maxBytes, { maxMembers: caps.maxFiles, maxRatio: caps.maxRatio });
  } else {
    if (!Array.isArray(upload.files) || upload.files.length === 0) throw invalid('files', 'files: the upload has no files');
    if (upload.files.length > caps.maxFiles) throw invalid('files', `files: more than ${caps.maxFiles} files (the limit for one upload)`);
    let total = 0;
    raw = upload.files.map((f, i) => {
      total += f.bytes.byteLength;
      if (total > caps.maxBytes) throw tooLarge(caps.maxBytes, 'files');
      return { name: safeName(f.name, `files[${i}]`), bytes: f.bytes };
    });
  }
  const files = raw.filter((f) => !JUNK(f.name));
  if (files.length === 0) throw invalid('files', 'files: the upload has no files');
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.name)) throw invalid('files', `files: '${f.name}' is in the upload twice`);
    seen.add(f.name);
  }
  writableTree(files);
  // `mnist/train-images-idx3-ubyte` from `tar czf mnist.tgz mnist`: the folder is a wrapper, not a class.
  const tops = new Set(files.map((f) => (f.name.includes('/') ? f.name.split('/')[0] : '')));
  if (tops.size === 1 && !tops.has('') && !files.every((f) => IMAGE.test(f.name) && f.name.split('/').length === 2)) {
    const top = [...tops][0]!;
    return files.map((f) => ({ name: f.name.slice(top.length + 1), bytes: f.bytes }));
  }
  return files;
}

/** Longest name of one file or folder on the file systems the upload is written to. */
const MAX_NAME_BYTES = 255;
/** Longest path inside the upload: far below PATH_MAX (4096) with the temp folder in front, and deeper than any dataset. */
const MAX_PATH_BYTES = 1024;

/**
 * Refuses names the upload's temp folder cannot hold, as the tenant's
 * mistake: a name that is also another file's folder (`cat` beside
 * `cat/1.png`), a part longer than a file name may be, or a path too long
 * to open. Written as they
 * are, they failed as system errors, which the doors answer as INTERNAL.
 */
function writableTree(files: NamedFile[]): void {
  const folders = new Set<string>();
  for (const f of files) {
    const parts = f.name.split('/');
    if (Buffer.byteLength(f.name) > MAX_PATH_BYTES) {
      throw invalid('files', `files: '${f.name.slice(0, 64)}...' is a path longer than ${MAX_PATH_BYTES} bytes`);
    }
    if (parts.some((p) => Buffer.byteLength(p) > MAX_NAME_BYTES)) {
      throw invalid('files', `files: '${f.name}' has a path part longer than ${MAX_NAME_BYTES} bytes`);
    }
    for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join('/'));
  }
  const both = files.find((f) => folders.has(f.name));
  if (both) throw invalid('files', `files: '${both.name}' is both a file and a folder in the upload`);
}

/**
 * IDX, NPY, NPZ or CIFAR-10 files, or an image folder: probed as a `file://`
 * folder only they are in, exactly as a reference would be (an image folder
 * from its headers: classes, counts and sizes, under the image caps).
 */
async function checkDataFiles(files: NamedFile[], caps: DatasetUploadCaps): Promise<Omit<CheckedDataset, 'files'>> {
  const base = await mkdtemp(join(tmpdir(), 'ticketsmith-dsupload-'));
  // Messages name the folder by its last part: the tenant reads "upload: ...", not a temp name.
  const dir = join(base, 'upload');
  try {
    for (const f of files) {
      const target = join(dir, f.name);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, f.bytes);
    }
    const { probeDataset } = await import('../engine/data/probe.js');
    const probe = await probeDataset(
      pathToFileURL(dir).href,
      { maxBytes: caps.maxFileBytes, maxRatio: caps.maxRatio, timeoutMs: caps.probeSeconds * 1000 },
      { files: { kind: 'roots', roots: [dir] } },
    );
    if (probe.numClasses < 2) throw invalid('files', `files: the dataset has a single class (every label is ${probe.labels.max}); training needs at least 2`);
    const { sha256, ...shapes } = probe;
    return { format: probe.format, shapes: shapes as unknown as Record<string, unknown>, sha256: sha256 ?? null };
  } catch (e) {
    // The readers name files as the tenant did; a system error deep inside could still carry the temp path.
    if (e instanceof Error) e.message = e.message.replaceAll(`${dir}/`, '').replaceAll(dir, 'upload').replaceAll(base, 'upload');
    throw e;
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/**
 * Everything checked about a dataset upload before anything is stored. No
 * database, no blob store: this runs in an upload thread.
 */
export async function checkDatasetUpload(upload: DatasetUpload, caps: DatasetUploadCaps): Promise<CheckedDataset> {
  const files = uploadedFiles(upload, caps);
  try {
    const checked = await checkDataFiles(files, caps);
    return { files, ...checked };
  } catch (e) {
    if (e instanceof DatasetError) throw invalid('files', `files: ${e.message}`);
    throw e;
  }
}

/** sha256 over the sorted (name, sha256) listing: the upload's identity. */
function listingDigest(listing: { name: string; sha256: string }[]): string {
  return createHash('sha256').update(listing.map((f) => `${f.name}\0${f.sha256}\n`).join('')).digest('hex');
}

/** Checks, stores and registers an upload for `tenant` (the same files again return the same dataset). */
export async function uploadDataset(ctx: ServiceContext, tenant: string, upload: DatasetUpload): Promise<DatasetDto> {
  const caps = datasetUploadCaps(ctx);
  const sent = 'archive' in upload ? upload.archive.byteLength : upload.files.reduce((n, f) => n + f.bytes.byteLength, 0);
  if (sent > caps.maxBytes) throw tooLarge(caps.maxBytes, 'archive' in upload ? 'archive' : 'files');
  // Before the costly part: a tenant at its storage cap is refused at once.
  await checkStorageQuota(ctx.prisma, ctx, tenant, sent);
  const checked = await uploadPool(ctx.config.uploadThreads).checkDataset(upload, caps);
  // Judged again by what the files take unpacked, before they are stored: an archive small on the wire
  // must not write what the quota refuses (orphans would hold the disk until the storage pass).
  await checkStorageQuota(ctx.prisma, ctx, tenant, checked.files.reduce((n, f) => n + f.bytes.byteLength, 0));

  const pending = await storeBlobs(ctx.blobs, Object.fromEntries(checked.files.map((f) => [f.name, f.bytes])), 'dataset-file');
  const listing = pending.map((p) => ({ name: p.name, sha256: p.blob.sha256, size: p.blob.size })).sort((a, b) => a.name.localeCompare(b.name));
  const reference = `${UPLOAD_REF}${listingDigest(listing)}`;
  const size = listing.reduce((n, f) => n + f.size, 0);

  let row: DatasetRow;
  try {
    row = await inTransaction(ctx.prisma, async (tx) => {
      await lockTenant(tx, tenant, 'storage');
      const existing = await findDatasetByReference(tx, tenant, reference);
      if (existing) return existing;
      await checkStorageQuota(tx, ctx, tenant, size);
      const dataset = await insertDataset(tx, { tenant, reference, format: checked.format, shapes: checked.shapes, sha256: checked.sha256 });
      await recordArtifacts(tx, { tenant, datasetId: dataset.id }, pending);
      return dataset;
    });
  } catch (e) {
    // Refused in the race (another upload took the quota) or failed: its blobs go now, those another row holds stay.
    await collectBlobs(ctx.prisma, ctx.blobs, pending.map((p) => p.blob.key)).catch(() => undefined);
    throw e;
  }
  return datasetDto(row);
}
