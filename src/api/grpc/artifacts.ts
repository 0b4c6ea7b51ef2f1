// gRPC handlers for artifacts: ListArtifacts, and DownloadArtifact, a server
// stream of one header (size, sha256, media type of the whole artifact) and
// then the bytes from `offset` on, read from the blob store as a stream and
// re-cut into chunks well under gRPC's default 4 MiB message limit; and
// DownloadTicket, the same stream of a job's ticket.zip.
import type * as grpc from '@grpc/grpc-js';
import { checkRange, getArtifact, getTicketBundle, listArtifacts, type ArtifactDownload, type ServiceContext } from '../../service/index.js';
import { invalidArgument, optionalId, renameField, requiredId, serverStream, unary, type StreamWriter } from './call.js';
import { artifactToProto } from './mapping.js';
import type { DownloadArtifactRequest, DownloadArtifactResponse, DownloadTicketRequest, ListArtifactsRequest, ListArtifactsResponse } from './messages.js';

export const CHUNK_BYTES = 256 * 1024;

/** One header (size, sha256, media type of the whole artifact), then the bytes from `offset` on. */
async function sendDownload(dl: ArtifactDownload, offset: number, out: StreamWriter<DownloadArtifactResponse>, signal: AbortSignal): Promise<void> {
  if (!Number.isSafeInteger(offset) || offset < 0) throw invalidArgument('offset', 'offset: a non-negative byte offset');
  const range = offset > 0 ? { start: offset, end: dl.size - 1 } : undefined;
  if (range) {
    try {
      checkRange(range, dl.size);
    } catch (e) {
      throw renameField(e, 'range', 'offset');
    }
  }
  await out.write({ header: { artifact: artifactToProto(dl.artifact), size: dl.size, sha256: dl.sha256, mediaType: dl.mediaType, offset } });
  const stream = dl.open(range);
  const stop = () => stream.destroy();
  signal.addEventListener('abort', stop, { once: true });
  try {
    for await (const piece of stream as AsyncIterable<Uint8Array>) {
      for (let at = 0; at < piece.byteLength; at += CHUNK_BYTES) await out.write({ chunk: piece.subarray(at, at + CHUNK_BYTES) });
    }
  } finally {
    signal.removeEventListener('abort', stop);
    stream.destroy();
  }
}

export function artifactHandlers(ctx: ServiceContext): grpc.UntypedServiceImplementation {
  return {
    ListArtifacts: unary<ListArtifactsRequest, ListArtifactsResponse>(ctx, 'ListArtifacts', async (req, tenant) => {
      const artifacts = await listArtifacts(ctx, tenant, {
        jobId: optionalId(req.jobId, 'jobId'),
        modelId: optionalId(req.modelId, 'modelId'),
        kind: req.kind === '' ? undefined : req.kind,
      });
      return { artifacts: artifacts.map(artifactToProto) };
    }),
    DownloadArtifact: serverStream<DownloadArtifactRequest, DownloadArtifactResponse>(ctx, 'DownloadArtifact', async (req, tenant, out, signal) => {
      await sendDownload(await getArtifact(ctx, tenant, requiredId(req.artifactId, 'artifactId')), req.offset, out, signal);
    }),
    DownloadTicket: serverStream<DownloadTicketRequest, DownloadArtifactResponse>(ctx, 'DownloadTicket', async (req, tenant, out, signal) => {
      await sendDownload(await getTicketBundle(ctx, tenant, requiredId(req.jobId, 'jobId')), req.offset, out, signal);
    }),
  };
}
