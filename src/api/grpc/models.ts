// gRPC handlers for models and datasets: UploadModel and UploadDataset (a
// client stream of a metadata message and then archive or file chunks,
// gathered under the upload limit and handed to the service whole),
// GetModel, RegisterDataset, DeleteModel and DeleteDataset.
import type * as grpc from '@grpc/grpc-js';
import { deleteDataset, deleteModel, getModel, receiveTimer, registerDataset, ServiceError, uploadDataset, uploadModel, withUploadSlot, type ModelUpload, type ReceiveTimes, type ServiceContext } from '../../service/index.js';
import { clientStream, invalidArgument, required, requiredId, unary } from './call.js';
import { datasetToProto, enumFromWire, modelToProto } from './mapping.js';
import type { DatasetMessage, DeleteDatasetRequest, DeleteModelRequest, DeleteResponse, GetModelRequest, ModelMessage, RegisterDatasetRequest, UploadDatasetRequest, UploadModelRequest } from './messages.js';

type UploadFormat = 'files' | 'archive';

/**
 * The messages of `stream`, or UPLOAD_TIMEOUT once the client has sent nothing
 * for the idle time or the stream has run past the receive deadline: a stream
 * with no deadline of its own would otherwise hold its upload slot for as long
 * as the client likes.
 */
async function* received<T>(stream: AsyncIterable<T>, times: ReceiveTimes): AsyncGenerator<T> {
  let expired: ServiceError | null = null;
  let onExpiry: ((e: ServiceError) => void) | null = null;
  const timer = receiveTimer(times, (e) => {
    expired = e;
    onExpiry?.(e);
  });
  const it = stream[Symbol.asyncIterator]();
  try {
    for (;;) {
      if (expired) throw expired;
      const next = await new Promise<IteratorResult<T>>((resolve, reject) => {
        onExpiry = reject;
        it.next().then(resolve, reject);
      });
      onExpiry = null;
      if (next.done) return;
      timer.touch();
      yield next.value;
    }
  } finally {
    timer.stop();
  }
}

/** The upload a stream carries; the byte limit is enforced as chunks arrive, not after, and the receive times (idle, whole) as they do not. */
export async function collectUpload(stream: AsyncIterable<UploadModelRequest>, maxBytes: number, times: ReceiveTimes): Promise<{ name: string; upload: ModelUpload }> {
  const messages = received(stream, times);
  let name: string | null = null;
  let format: UploadFormat | null = null;
  const archive: Uint8Array[] = [];
  const files = new Map<string, Uint8Array[]>();
  let total = 0;
  for await (const msg of messages) {
    if (name === null) {
      if (msg.part !== 'metadata' || !msg.metadata) throw invalidArgument('metadata', 'metadata: the first message must be the upload metadata');
      name = msg.metadata.name;
      format = enumFromWire('UploadFormat', msg.metadata.format, ['files', 'archive'], 'metadata.format') as UploadFormat | null;
      continue;
    }
    if (msg.part === 'metadata') throw invalidArgument('metadata', 'metadata: sent more than once');
    const kind: UploadFormat | null = msg.part === 'archiveChunk' ? 'archive' : msg.part === 'fileChunk' ? 'files' : null;
    if (kind === null) throw invalidArgument('part', 'part: a message after the metadata must carry archiveChunk or fileChunk');
    const field = kind === 'archive' ? 'archiveChunk' : 'fileChunk';
    if (format === null) format = kind;
    if (format !== kind) throw invalidArgument(field, `${field}: this upload sends ${format === 'archive' ? 'archiveChunk' : 'fileChunk'} messages`);
    const data = kind === 'archive' ? msg.archiveChunk : msg.fileChunk?.data;
    const bytes = data ?? new Uint8Array(0);
    const file = kind === 'files' ? required(msg.fileChunk?.name ?? '', 'fileChunk.name') : '';
    // A file's name is held as long as its bytes: it counts too, or empty files with long names would gather without bound.
    total += bytes.byteLength + (kind === 'files' && !files.has(file) ? Buffer.byteLength(file) : 0);
    if (total > maxBytes) throw new ServiceError('PAYLOAD_TOO_LARGE', `upload exceeds ${maxBytes} bytes`, kind === 'archive' ? 'archive' : 'files');
    const parts = kind === 'archive' ? archive : (files.get(file) ?? []);
    // Empty chunks add nothing but a slot each: a stream of them must not grow the lists.
    if (bytes.byteLength > 0) parts.push(bytes);
    if (kind === 'files') files.set(file, parts);
  }
  if (name === null) throw invalidArgument('metadata', 'metadata: the upload stream was empty');
  const upload: ModelUpload =
    format === 'archive'
      ? { archive: Buffer.concat(archive) }
      : { files: [...files].map(([file, parts]) => ({ name: file, bytes: Buffer.concat(parts) })) };
  return { name, upload };
}

export function modelHandlers(ctx: ServiceContext): grpc.UntypedServiceImplementation {
  return {
    UploadModel: clientStream<UploadModelRequest, ModelMessage>(ctx, 'UploadModel', async (messages, tenant) => {
      return withUploadSlot(ctx, tenant, async () => {
        const { name, upload } = await collectUpload(messages, ctx.config.maxUploadBytes, ctx.config);
        return modelToProto(await uploadModel(ctx, tenant, upload, { name }));
      });
    }),
    GetModel: unary<GetModelRequest, ModelMessage>(ctx, 'GetModel', async (req, tenant) => modelToProto(await getModel(ctx, tenant, requiredId(req.modelId, 'modelId')))),
    RegisterDataset: unary<RegisterDatasetRequest, DatasetMessage>(ctx, 'RegisterDataset', async (req, tenant) =>
      datasetToProto(await registerDataset(ctx, tenant, req.reference)),
    ),
    DeleteModel: unary<DeleteModelRequest, DeleteResponse>(ctx, 'DeleteModel', async (req, tenant) => {
      await deleteModel(ctx, tenant, requiredId(req.modelId, 'modelId'));
      return {};
    }),
    DeleteDataset: unary<DeleteDatasetRequest, DeleteResponse>(ctx, 'DeleteDataset', async (req, tenant) => {
      await deleteDataset(ctx, tenant, requiredId(req.datasetId, 'datasetId'));
      return {};
    }),
    UploadDataset: clientStream<UploadDatasetRequest, DatasetMessage>(ctx, 'UploadDataset', async (messages, tenant) => {
      return withUploadSlot(ctx, tenant, async () => {
        const { upload } = await collectUpload(messages, ctx.config.maxUploadBytes, ctx.config);
        return datasetToProto(await uploadDataset(ctx, tenant, upload));
      });
    }),
  };
}
