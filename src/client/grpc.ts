// A small typed client for the gRPC door, for pipelines and tests: the same
// calls and the same result shapes (the service's DTOs) as the REST client in
// ./index.ts, so a script can switch doors. It loads the contract from
// proto/ and needs no service code at run time. Failures come back as
// GrpcError with the status code, the error table's code name and the field.
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import type { RunSpecInput } from '../engine/spec.js';
import type { ArtifactDto, DatasetDto, EventDto, JobDto, JobState, ModelDto, RoundDto } from '../service/index.js';
import {
  artifactFromProto,
  datasetFromProto,
  eventFromProto,
  jobFromProto,
  jobStateToProto,
  modelFromProto,
  roundFromProto,
  specToProto,
  WireError,
} from '../api/grpc/mapping.js';
import type {
  ArtifactMessage,
  DatasetMessage,
  DownloadArtifactRequest,
  DownloadArtifactResponse,
  DownloadTicketRequest,
  DownloadHeaderMessage,
  JobEventMessage,
  JobMessage,
  ListArtifactsResponse,
  ListJobsResponse,
  ListRoundsResponse,
  ModelMessage,
  SubmitJobResponse,
  UploadModelRequest,
} from '../api/grpc/messages.js';
import { compressionService, ERROR_CODE_KEY, ERROR_FIELD_KEY } from '../api/grpc/proto.js';

export interface GrpcClientOptions {
  /** host:port, e.g. 127.0.0.1:50051 */
  address: string;
  apiKey?: string;
  /** Default: plaintext. */
  credentials?: grpc.ChannelCredentials;
  /** Deadline for plain calls (default 60 s); streams are not limited. */
  timeoutMs?: number;
  /** Upload chunk size (default 256 KiB). */
  chunkBytes?: number;
}

export class GrpcError extends Error {
  override name = 'GrpcError';

  constructor(
    /** gRPC status code. */
    readonly status: grpc.status,
    /** The service's error code name (INVALID_ARGUMENT, IDEMPOTENCY_KEY_REUSED...), or the status name when the server sent none. */
    readonly code: string,
    message: string,
    readonly field?: string,
    /** From a rate-limited call's `retry-after` trailer: seconds to wait before retrying. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

function toGrpcError(e: unknown): Error {
  if (e instanceof GrpcError) return e;
  if (e instanceof WireError) return new GrpcError(grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', e.message, e.field);
  const s = e as Partial<grpc.ServiceError> | null;
  if (s && typeof s.code === 'number') {
    const first = (key: string) => {
      const v = s.metadata?.get(key)[0];
      return typeof v === 'string' ? v : undefined;
    };
    const retryAfter = first('retry-after');
    return new GrpcError(
      s.code,
      first(ERROR_CODE_KEY) ?? grpc.status[s.code] ?? 'UNKNOWN',
      s.details ?? s.message ?? '',
      first(ERROR_FIELD_KEY),
      retryAfter === undefined ? undefined : Number(retryAfter),
    );
  }
  return e instanceof Error ? e : new Error(String(e));
}

type Method<Req, Res> = { path: string; serialize: (req: Req) => Buffer; deserialize: (bytes: Buffer) => Res };

function method<Req, Res>(name: string): Method<Req, Res> {
  const def = compressionService[name] as MethodDefinition<object, object> | undefined;
  if (!def) throw new Error(`Compression.${name} is not in the contract`);
  return {
    path: def.path,
    serialize: def.requestSerialize as (req: Req) => Buffer,
    deserialize: def.responseDeserialize as (bytes: Buffer) => Res,
  };
}

export interface ArtifactDownload {
  artifact: ArtifactDto;
  /** Size and sha256 of the whole artifact, as the server reports them. */
  size: number;
  sha256: string;
  mediaType: string;
  offset: number;
  bytes: Uint8Array;
}

export class TicketsmithGrpcClient {
  private readonly client: grpc.Client;
  private readonly apiKey?: string;
  private readonly timeoutMs: number;
  private readonly chunkBytes: number;

  constructor(opts: GrpcClientOptions) {
    this.client = new grpc.Client(opts.address, opts.credentials ?? grpc.credentials.createInsecure());
    this.apiKey = opts.apiKey;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.chunkBytes = opts.chunkBytes ?? 256 * 1024;
  }

  close(): void {
    this.client.close();
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.apiKey) md.set('authorization', `Bearer ${this.apiKey}`);
    return md;
  }

  private unary<Req, Res>(name: string, req: Req): Promise<Res> {
    const m = method<Req, Res>(name);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(m.path, m.serialize, m.deserialize, req, this.metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) =>
        err || res === undefined ? reject(toGrpcError(err)) : resolve(res),
      );
    });
  }

  /** Messages of a server stream; leaving the loop early cancels the call. */
  private async *stream<Req, Res>(name: string, req: Req, signal?: AbortSignal): AsyncGenerator<Res> {
    const m = method<Req, Res>(name);
    const call = this.client.makeServerStreamRequest(m.path, m.serialize, m.deserialize, req, this.metadata(), {});
    const cancel = () => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      for await (const msg of call as AsyncIterable<Res>) {
        // Messages already buffered when the caller aborted are not theirs any more.
        if (signal?.aborted) return;
        yield msg;
      }
    } catch (e) {
      if (signal?.aborted) return;
      throw toGrpcError(e);
    } finally {
      signal?.removeEventListener('abort', cancel);
      call.cancel();
    }
  }

  /** Uploads model.json and its weight files, or one .zip/.tar.gz archive, as a client stream of chunks. */
  async uploadModel(input: { files: { name: string; bytes: Uint8Array }[] } | { archive: Uint8Array }, opts: { name?: string } = {}): Promise<ModelDto> {
    return modelFromProto(await this.uploadStream<ModelMessage>('UploadModel', input, opts.name ?? ''));
  }

  /** Uploads a dataset's files (IDX, NPY/NPZ, CIFAR-10 batches), or one .zip/.tar.gz archive of them or of an image folder. */
  async uploadDataset(input: { files: { name: string; bytes: Uint8Array }[] } | { archive: Uint8Array }): Promise<DatasetDto> {
    return datasetFromProto(await this.uploadStream<DatasetMessage>('UploadDataset', input, ''));
  }

  /** A client stream of a metadata message and then the chunks. */
  private async uploadStream<Res>(rpc: 'UploadModel' | 'UploadDataset', input: { files: { name: string; bytes: Uint8Array }[] } | { archive: Uint8Array }, name: string): Promise<Res> {
    const m = method<UploadModelRequest, Res>(rpc);
    let settled = false;
    let call!: grpc.ClientWritableStream<UploadModelRequest>;
    const done = new Promise<Res>((resolve, reject) => {
      call = this.client.makeClientStreamRequest(m.path, m.serialize, m.deserialize, this.metadata(), {}, (err, res) => {
        settled = true;
        if (err || res === undefined) reject(toGrpcError(err));
        else resolve(res);
      });
    });
    // The server may answer (an error) before it has read everything: stop writing then.
    const answered = done.then(
      () => undefined,
      () => undefined,
    );
    const send = async (msg: UploadModelRequest) => {
      if (!settled && !call.write(msg)) await Promise.race([once(call, 'drain'), answered]);
    };
    const chunks = (bytes: Uint8Array) => {
      const out: Uint8Array[] = [];
      for (let at = 0; at < bytes.byteLength; at += this.chunkBytes) out.push(bytes.subarray(at, at + this.chunkBytes));
      return out.length ? out : [bytes];
    };
    const isArchive = 'archive' in input;
    await send({ metadata: { name, format: isArchive ? 'UPLOAD_FORMAT_ARCHIVE' : 'UPLOAD_FORMAT_FILES' } });
    if (isArchive) {
      for (const c of chunks(input.archive)) await send({ archiveChunk: c });
    } else {
      for (const f of input.files) for (const c of chunks(f.bytes)) await send({ fileChunk: { name: f.name, data: c } });
    }
    call.end();
    return done;
  }

  async getModel(id: string): Promise<ModelDto> {
    return modelFromProto(await this.unary<{ modelId: string }, ModelMessage>('GetModel', { modelId: id }));
  }

  async registerDataset(reference: string): Promise<DatasetDto> {
    return datasetFromProto(await this.unary<{ reference: string }, DatasetMessage>('RegisterDataset', { reference }));
  }

  /** Deletes an uploaded model (FAILED_PRECONDITION while a queued or running job uses it). */
  async deleteModel(id: string): Promise<void> {
    await this.unary<{ modelId: string }, object>('DeleteModel', { modelId: id });
  }

  /** Deletes a registered dataset (FAILED_PRECONDITION while a queued or running job uses it). */
  async deleteDataset(id: string): Promise<void> {
    await this.unary<{ datasetId: string }, object>('DeleteDataset', { datasetId: id });
  }

  /** Submits a run spec (the same JSON the REST API takes: enum fields as the schema's strings). */
  async submitJob(spec: RunSpecInput, opts: { idempotencyKey?: string } = {}): Promise<{ job: JobDto; created: boolean }> {
    let wireSpec;
    try {
      wireSpec = specToProto(spec as Record<string, unknown>);
    } catch (e) {
      throw toGrpcError(e);
    }
    const res = await this.unary<object, SubmitJobResponse>('SubmitJob', { spec: wireSpec, idempotencyKey: opts.idempotencyKey ?? '' });
    return { job: jobFromProto(res.job), created: res.created };
  }

  async getJob(id: string): Promise<JobDto> {
    return jobFromProto(await this.unary<{ jobId: string }, JobMessage>('GetJob', { jobId: id }));
  }

  async listJobs(q: { status?: JobState; cursor?: string; limit?: number } = {}): Promise<{ items: JobDto[]; nextCursor: string | null }> {
    const res = await this.unary<object, ListJobsResponse>('ListJobs', {
      status: q.status ? jobStateToProto(q.status) : 'JOB_STATE_UNSPECIFIED',
      pageSize: q.limit ?? 0,
      pageToken: q.cursor ?? '',
    });
    return { items: res.jobs.map(jobFromProto), nextCursor: res.nextPageToken === '' ? null : res.nextPageToken };
  }

  async listRounds(jobId: string): Promise<RoundDto[]> {
    return (await this.unary<{ jobId: string }, ListRoundsResponse>('ListRounds', { jobId })).rounds.map(roundFromProto);
  }

  async cancelJob(jobId: string): Promise<JobDto> {
    return jobFromProto(await this.unary<{ jobId: string }, JobMessage>('CancelJob', { jobId }));
  }

  /** Deletes a finished job with its rounds, events and artifacts (FAILED_PRECONDITION while queued or running). */
  async deleteJob(jobId: string): Promise<void> {
    await this.unary<{ jobId: string }, object>('DeleteJob', { jobId });
  }

  async listArtifacts(q: { jobId?: string; modelId?: string; kind?: string } = {}): Promise<ArtifactDto[]> {
    const res = await this.unary<object, ListArtifactsResponse>('ListArtifacts', { jobId: q.jobId ?? '', modelId: q.modelId ?? '', kind: q.kind ?? '' });
    return res.artifacts.map((a: ArtifactMessage) => artifactFromProto(a));
  }

  /** A job's events as they are committed, from after `afterId`; ends once the job has finished. */
  async *watchJob(jobId: string, opts: { afterId?: number; signal?: AbortSignal } = {}): AsyncGenerator<EventDto> {
    for await (const msg of this.stream<object, JobEventMessage>('WatchJob', { jobId, afterId: opts.afterId ?? 0 }, opts.signal)) yield eventFromProto(msg);
  }

  /** An artifact's bytes from `offset` (default 0) to its end, with the header the server sent first. */
  async download(artifactId: string, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<ArtifactDownload> {
    const req: DownloadArtifactRequest = { artifactId, offset: opts.offset ?? 0 };
    return this.collectDownload('DownloadArtifact', req, `artifact ${artifactId}`, opts.signal);
  }

  /** A succeeded job's ticket.zip (FAILED_PRECONDITION before), from `offset` (default 0), as `download` sends an artifact. */
  async downloadTicket(jobId: string, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<ArtifactDownload> {
    const req: DownloadTicketRequest = { jobId, offset: opts.offset ?? 0 };
    return this.collectDownload('DownloadTicket', req, `job ${jobId}: ticket.zip`, opts.signal);
  }

  private async collectDownload<Req>(method: string, req: Req, what: string, signal?: AbortSignal): Promise<ArtifactDownload> {
    let header: DownloadHeaderMessage | null = null;
    const parts: Uint8Array[] = [];
    for await (const msg of this.stream<Req, DownloadArtifactResponse>(method, req, signal)) {
      if (msg.part === 'header' && msg.header) header = msg.header;
      else if (msg.part === 'chunk' && msg.chunk) parts.push(msg.chunk);
    }
    signal?.throwIfAborted();
    if (!header?.artifact) throw new GrpcError(grpc.status.DATA_LOSS, 'DATA_LOSS', `${what}: the stream had no header`);
    return {
      artifact: artifactFromProto(header.artifact),
      size: header.size,
      sha256: header.sha256,
      mediaType: header.mediaType,
      offset: header.offset,
      bytes: Buffer.concat(parts),
    };
  }
}
