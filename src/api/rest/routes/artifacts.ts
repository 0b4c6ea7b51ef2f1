// /v1/artifacts: list (by job, model, kind) and download with a strong ETag
// (the sha256), If-None-Match → 304, one byte Range → 206 / 416, and
// X-Content-SHA256 so a client can check what it saved; /v1/jobs/:id/ticket.zip
// is the same download of the job's archive (engine/report/bundle.ts). Bytes are streamed
// from the blob store; the first chunk is read before the status line goes
// out, so a missing blob is still an error response and not a cut-off body.
import { posix } from 'node:path';
import type { Request, Response } from 'express';
import { ARTIFACT_KINDS, ARTIFACT_MEDIA_TYPES, checkRange, getArtifact, getTicketBundle, listArtifactsPage, ServiceError, type ArtifactDownload } from '../../../service/index.js';
import { drained } from '../backpressure.js';
import { ifRangeHolds, noneMatch, parseRange } from '../conditional.js';
import { COMMON_ERRORS, PAGE_PARAMS, pageQuery, pathParam, queryString, ref, tagJob, type JsonSchema, type RouteDef } from '../route.js';

function contentDisposition(name: string): string {
  const base = posix.basename(name) || 'artifact';
  const ascii = base.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(base)}`;
}

/**
 * Sends a download: ETag / X-Content-SHA256 / Accept-Ranges, 304 on a
 * matching If-None-Match, one Range (206 / 416), the bytes streamed.
 */
async function sendDownload(req: Request, res: Response, dl: ArtifactDownload): Promise<void> {
  if (dl.artifact.jobId) tagJob(res, dl.artifact.jobId);
  res.setHeader('ETag', dl.etag);
  res.setHeader('X-Content-SHA256', dl.sha256);
  res.setHeader('Accept-Ranges', 'bytes');
  // Content-addressed: the bytes behind an id never change.
  const cache = 'private, max-age=31536000, immutable';
  if (noneMatch(req.get('if-none-match'), dl.etag)) {
    res.setHeader('Cache-Control', cache);
    res.status(304).end();
    return;
  }
  const asked = ifRangeHolds(req.get('if-range'), dl.etag) ? parseRange(req.get('range'), dl.size) : { kind: 'none' as const };
  if (asked.kind === 'unsatisfiable') {
    res.setHeader('Content-Range', `bytes */${dl.size}`);
    throw new ServiceError('RANGE_NOT_SATISFIABLE', `range '${req.get('range')}' selects no bytes of a ${dl.size}-byte artifact`, 'range');
  }
  if (asked.kind === 'range') {
    try {
      checkRange(asked.range, dl.size);
    } catch (e) {
      res.setHeader('Content-Range', `bytes */${dl.size}`);
      throw e;
    }
  }
  const range = asked.kind === 'range' ? asked.range : undefined;
  const length = range ? range.end - range.start + 1 : dl.size;
  res.setHeader('Content-Type', dl.mediaType || 'application/octet-stream');
  res.setHeader('Content-Disposition', contentDisposition(dl.artifact.name));
  res.setHeader('Content-Length', String(length));
  if (range) res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${dl.size}`);
  res.setHeader('Cache-Control', cache);
  res.status(range ? 206 : 200);
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return;
  }
  const stream = dl.open(range);
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let first: IteratorResult<Buffer>;
  try {
    first = await chunks.next();
  } catch (e) {
    stream.destroy();
    // Nothing was sent yet: answer with the error instead of a truncated body.
    for (const h of ['Content-Type', 'Content-Disposition', 'Content-Length', 'Content-Range', 'ETag', 'X-Content-SHA256', 'Cache-Control']) res.removeHeader(h);
    throw e;
  }
  // A client that leaves mid-download ends the read (and frees the file) at once.
  const stop = () => stream.destroy();
  res.once('close', stop);
  try {
    for (let r = first; !r.done; r = await chunks.next()) {
      if (!res.write(r.value) && !(await drained(res))) return;
    }
    res.end();
  } catch {
    // Headers are out: all that is left is to cut the connection so the client sees a short body.
    res.destroy();
  } finally {
    // Also when the client left before the first chunk came: 'close' had fired already.
    res.off('close', stop);
    stream.destroy();
  }
}

/**
 * The media types a download answers with (the artifact's `mediaType`, set from
 * its name by the store): bytes for each; a JSON artifact's body is any JSON
 * value, which a range of it need not be, so it is documented as bytes too.
 */
function artifactContent(whole: boolean): Record<string, JsonSchema> {
  const bytes = { type: 'string', format: 'binary' };
  const json = { description: 'A JSON artifact (result.json, a mask or model.json): any JSON value' };
  return Object.fromEntries(ARTIFACT_MEDIA_TYPES.map((t) => [t, whole && t === 'application/json' ? json : bytes]));
}

export const artifactRoutes: RouteDef[] = [
  {
    method: 'get',
    path: '/v1/artifacts',
    operationId: 'listArtifacts',
    tag: 'artifacts',
    summary: "The tenant's artifacts, filtered by job, model or kind",
    query: [
      { name: 'jobId', description: 'Only this job', schema: { type: 'string', format: 'uuid' } },
      { name: 'modelId', description: "Only this uploaded model's files", schema: { type: 'string', format: 'uuid' } },
      { name: 'kind', description: 'Only this kind (`state`: the engine\'s resume state, not listed otherwise)', schema: { type: 'string', enum: [...ARTIFACT_KINDS] } },
      ...PAGE_PARAMS,
    ],
    responses: { 200: { description: 'Artifacts', content: { 'application/json': ref('ArtifactList') } } },
    errors: ['NOT_FOUND', 'INVALID_ARGUMENT', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      res.json(await listArtifactsPage(ctx, tenant, { jobId: queryString(req, 'jobId'), modelId: queryString(req, 'modelId'), kind: queryString(req, 'kind'), ...pageQuery(req) }));
    },
  },
  {
    method: 'get',
    path: '/v1/artifacts/:id',
    operationId: 'downloadArtifact',
    tag: 'artifacts',
    summary: "An artifact's bytes (ETag = sha256; Range and If-None-Match honoured)",
    params: [{ name: 'id', description: 'Artifact id', schema: { type: 'string', format: 'uuid' } }],
    headers: [
      { name: 'Range', description: 'One byte range, e.g. `bytes=0-1023` or `bytes=-512`' },
      { name: 'If-None-Match', description: 'The ETag you hold: 304 while it is current' },
      { name: 'If-Range', description: 'Serve the Range only if this ETag is still current' },
    ],
    responses: {
      200: {
        description: "The whole artifact, its Content-Type the artifact's own (the artifact's `mediaType`, from its file name: `.json` answers application/json)",
        content: artifactContent(true),
        headers: { ETag: '"<sha256>"', 'X-Content-SHA256': 'sha256 of the whole artifact, hex', 'Accept-Ranges': 'bytes' },
      },
      206: { description: 'The requested range, in the artifact\'s own Content-Type', content: artifactContent(false), headers: { 'Content-Range': 'bytes start-end/size' } },
      304: { description: 'Not modified (If-None-Match matched)' },
    },
    errors: ['NOT_FOUND', 'RANGE_NOT_SATISFIABLE', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      await sendDownload(req, res, await getArtifact(ctx, tenant, pathParam(req, 'id')));
    },
  },
  {
    method: 'get',
    path: '/v1/jobs/:id/ticket.zip',
    operationId: 'downloadTicket',
    tag: 'artifacts',
    summary: "The job's ticket as one archive: TF.js model, model.onnx, mask (.json and .npz), compressed export, result.json, plots, MANIFEST.json with each file's sha256",
    params: [{ name: 'id', description: 'Job id', schema: { type: 'string', format: 'uuid' } }],
    headers: [
      { name: 'Range', description: 'One byte range, e.g. `bytes=0-1023` or `bytes=-512`' },
      { name: 'If-None-Match', description: 'The ETag you hold: 304 while it is current' },
      { name: 'If-Range', description: 'Serve the Range only if this ETag is still current' },
    ],
    responses: {
      200: { description: 'The archive', content: { 'application/zip': { type: 'string', format: 'binary' } }, headers: { ETag: '"<sha256>"', 'X-Content-SHA256': 'sha256 of the whole archive, hex', 'Accept-Ranges': 'bytes' } },
      206: { description: 'The requested range', content: { 'application/zip': { type: 'string', format: 'binary' } }, headers: { 'Content-Range': 'bytes start-end/size' } },
      304: { description: 'Not modified (If-None-Match matched)' },
    },
    errors: ['NOT_FOUND', 'FAILED_PRECONDITION', 'RANGE_NOT_SATISFIABLE', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      await sendDownload(req, res, await getTicketBundle(ctx, tenant, pathParam(req, 'id')));
    },
  },
];
