// Artifact listing and download. Downloads expose what HTTP needs for ETag
// (the sha256), Range (byte ranges over the blob) and integrity headers; the
// doors stream `open()` and never load whole blobs unless asked.
import type { Readable } from 'node:stream';
import type { ByteRange } from '../store/blobs.js';
import { findArtifact, listArtifactRows } from '../store/artifacts.js';

export { ARTIFACT_MEDIA_TYPES } from '../store/artifacts.js';
import type { ServiceContext } from './context.js';
import { artifactDto, type ArtifactDto, type Page } from './dto.js';
import { invalid, notFound, ServiceError } from './errors.js';
import { decodeKeys, encodeKeys, isUuid, pageLimit, toPage, type PageQuery } from './ids.js';
import { assertJob, getJob } from './jobs.js';
import { TICKET_ZIP } from '../engine/report/bundle.js';

export interface ListArtifactsQuery {
  jobId?: string;
  modelId?: string;
  kind?: string;
}

/** Artifact kinds (the `kind` column; see prisma/schema.prisma). */
export const ARTIFACT_KINDS = Object.freeze(['round', 'ticket', 'result', 'plot', 'state', 'model-file', 'dataset-file'] as const);

async function checkArtifactFilter(ctx: ServiceContext, tenant: string, query: ListArtifactsQuery): Promise<void> {
  // A filter that can match nothing is a client mistake, not an empty list.
  if (query.kind !== undefined && !(ARTIFACT_KINDS as readonly string[]).includes(query.kind)) {
    throw invalid('kind', `kind: one of ${ARTIFACT_KINDS.join(', ')}`);
  }
  if (query.jobId !== undefined) await assertJob(ctx, tenant, query.jobId);
  if (query.modelId !== undefined && !isUuid(query.modelId)) throw notFound('model', query.modelId);
}

/** Artifacts of the tenant (engine-internal `state` blobs only when asked for by kind). */
export async function listArtifacts(ctx: ServiceContext, tenant: string, query: ListArtifactsQuery = {}): Promise<ArtifactDto[]> {
  await checkArtifactFilter(ctx, tenant, query);
  const rows = await listArtifactRows(ctx.prisma, tenant, query);
  return rows.map(artifactDto);
}

/** One page of listArtifacts, oldest first (keyset on creation time, name, id). */
export async function listArtifactsPage(ctx: ServiceContext, tenant: string, query: ListArtifactsQuery & PageQuery = {}): Promise<Page<ArtifactDto>> {
  const limit = pageLimit(query.limit);
  await checkArtifactFilter(ctx, tenant, query);
  const after = query.cursor
    ? decodeKeys(query.cursor, ([t, name, id]) => {
        const createdAt = new Date(String(t));
        return typeof t === 'string' && typeof name === 'string' && isUuid(id) && !Number.isNaN(createdAt.getTime()) ? { createdAt, name, id } : null;
      })
    : null;
  const rows = await listArtifactRows(ctx.prisma, tenant, { jobId: query.jobId, modelId: query.modelId, kind: query.kind }, { after, take: limit + 1 });
  return toPage(rows, limit, artifactDto, (r) => encodeKeys([r.createdAt.toISOString(), r.name, r.id]));
}

export interface ArtifactDownload {
  artifact: ArtifactDto;
  sha256: string;
  size: number;
  mediaType: string;
  /** Strong ETag: the content hash, quoted. */
  etag: string;
  /** The bytes, whole or an inclusive range (validate with checkRange first). */
  open(range?: ByteRange): Readable;
  bytes(): Promise<Uint8Array>;
}

export async function getArtifact(ctx: ServiceContext, tenant: string, id: string): Promise<ArtifactDownload> {
  if (!isUuid(id)) throw notFound('artifact', id);
  const row = await findArtifact(ctx.prisma, tenant, id);
  if (!row) throw notFound('artifact', id);
  const dto = artifactDto(row);
  const key = row.storageKey;
  return {
    artifact: dto,
    sha256: row.sha256,
    size: dto.size,
    mediaType: row.mediaType,
    etag: `"${row.sha256}"`,
    open: (range) => {
      if (range) checkRange(range, dto.size);
      return ctx.blobs.open(key, range);
    },
    bytes: () => ctx.blobs.get(key),
  };
}

/**
 * A job's ticket.zip (engine/report/bundle.ts), stored with its result: the
 * same download as any artifact. FAILED_PRECONDITION until the job has
 * succeeded; NOT_FOUND for a job that finished before archives were made.
 */
export async function getTicketBundle(ctx: ServiceContext, tenant: string, jobId: string): Promise<ArtifactDownload> {
  const job = await getJob(ctx, tenant, jobId);
  if (job.status !== 'succeeded') {
    throw new ServiceError('FAILED_PRECONDITION', `job ${jobId} is ${job.status}; its ${TICKET_ZIP} exists once it has succeeded`);
  }
  const row = (await listArtifactRows(ctx.prisma, tenant, { jobId, kind: 'result' })).find((a) => a.name === TICKET_ZIP);
  if (!row) throw new ServiceError('NOT_FOUND', `job ${jobId} has no ${TICKET_ZIP} (its result was stored without one); download its artifacts one by one`);
  return getArtifact(ctx, tenant, row.id);
}

/** RANGE_NOT_SATISFIABLE unless 0 ≤ start ≤ end < size. */
export function checkRange(range: ByteRange, size: number): void {
  if (!(Number.isInteger(range.start) && Number.isInteger(range.end) && range.start >= 0 && range.start <= range.end && range.end < size)) {
    throw new ServiceError('RANGE_NOT_SATISFIABLE', `range ${range.start}-${range.end} is outside 0-${size - 1}`, 'range');
  }
}
