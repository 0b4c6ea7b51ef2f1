// TypeScript shapes of the ticketsmith.v1 messages as proto-loader hands them
// over with LOADER_OPTIONS (proto.ts): lowerCamelCase keys, int64 as number,
// enums as their names (or the bare number when a peer sent a value this
// contract does not know), bytes as Buffer, unset `optional` fields absent,
// unset message fields null. Written by hand next to the .proto files; the e2e
// test exercises every one of them.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** An enum field: its value name, or a number this contract does not define. */
export type EnumWire = string | number;

export interface ValueMessage {
  nullValue?: EnumWire;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: StructMessage | null;
  listValue?: { values: ValueMessage[] } | null;
  /** Which member is set (oneof `kind`). */
  kind?: string;
}

export interface StructMessage {
  fields: Record<string, ValueMessage>;
}

/** One value of a RunSpec field: scalars, enum names, lists of them, or a string -> number map. */
export type SpecWireValue = string | number | boolean | EnumWire[] | string[] | Record<string, number>;

/** RunSpec: one optional field per RunSpecSchema key (see mapping.ts SPEC_FIELDS). */
export type RunSpecMessage = Partial<Record<string, SpecWireValue>>;

export interface JobProgressMessage {
  round: number;
  rounds?: number;
  roundsCompleted: number;
  trial?: string;
  step: number;
  totalSteps: number;
  examplesPerSecond: number;
  etaSeconds?: number;
  updatedAt: string;
}

export interface JobErrorMessage {
  code: string;
  message: string;
}

export interface JobMessage {
  id: string;
  status: EnumWire;
  runName: string;
  specHash: string;
  spec: RunSpecMessage | null;
  modelId?: string;
  datasetId?: string;
  progress: JobProgressMessage | null;
  backend?: string;
  error: JobErrorMessage | null;
  result: StructMessage | null;
  attempts: number;
  idempotencyKey?: string;
  cancelRequested: boolean;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
}

export interface CurvePointMessage {
  iteration: number;
  validationLoss: number;
  validationAccuracy: number;
}

export interface RoundMessage {
  index: number;
  density: number;
  sparsity: number;
  layerDensity: Record<string, number>;
  testAccuracy: number;
  testLoss: number;
  earlyStopIteration: number;
  earlyStopTestAccuracy: number;
  earlyStopValidationLoss: number;
  paramsRemaining: number;
  paramsTotal: number;
  flops?: number;
  denseBytes: number;
  compressedBytes: number;
  durationSeconds: number;
  examplesPerSecond: number;
  backend: string;
  controls: StructMessage | null;
  validationCurve: CurvePointMessage[];
  filter?: StructMessage | null;
  trainingLoop?: string;
  createdAt: string;
}

export interface JobEventMessage {
  id: number;
  jobId: string;
  time: string;
  kind: string;
  payload: ValueMessage | null;
}

export interface ArtifactMessage {
  id: string;
  jobId?: string;
  roundIndex?: number;
  modelId?: string;
  kind: string;
  name: string;
  sha256: string;
  size: number;
  mediaType: string;
  createdAt: string;
}

export interface ModelFileMessage {
  name: string;
  sha256: string;
  size: number;
}

export interface ModelMessage {
  id: string;
  name: string;
  format: string;
  sha256: string;
  size: number;
  architecture: StructMessage | null;
  files: ModelFileMessage[];
  createdAt: string;
}

export interface DatasetMessage {
  id: string;
  reference: string;
  format: string;
  shapes: StructMessage | null;
  sha256?: string;
  createdAt: string;
}

// Requests and responses.

export interface UploadMetadataMessage {
  name: string;
  format: EnumWire;
}

export interface FileChunkMessage {
  name: string;
  data: Uint8Array;
}

export interface UploadModelRequest {
  metadata?: UploadMetadataMessage | null;
  archiveChunk?: Uint8Array;
  fileChunk?: FileChunkMessage | null;
  part?: 'metadata' | 'archiveChunk' | 'fileChunk';
}

/** UploadDataset's stream: the same parts as UploadModelRequest. */
export type UploadDatasetRequest = UploadModelRequest;

export interface GetModelRequest {
  modelId: string;
}

export interface RegisterDatasetRequest {
  reference: string;
}

export interface SubmitJobRequest {
  model: string;
  dataset: string;
  spec: RunSpecMessage | null;
  idempotencyKey: string;
  callbackUrl: string;
}

export interface SubmitJobResponse {
  job: JobMessage;
  created: boolean;
}

export interface GetJobRequest {
  jobId: string;
}

export interface ListJobsRequest {
  status: EnumWire;
  pageSize: number;
  pageToken: string;
}

export interface ListJobsResponse {
  jobs: JobMessage[];
  nextPageToken: string;
}

export interface ListRoundsRequest {
  jobId: string;
}

export interface ListRoundsResponse {
  rounds: RoundMessage[];
}

export interface CancelJobRequest {
  jobId: string;
}

export interface WatchJobRequest {
  jobId: string;
  afterId: number;
}

export interface ListArtifactsRequest {
  jobId: string;
  modelId: string;
  kind: string;
}

export interface ListArtifactsResponse {
  artifacts: ArtifactMessage[];
}

export interface DownloadArtifactRequest {
  artifactId: string;
  offset: number;
}

export interface DownloadTicketRequest {
  jobId: string;
  offset: number;
}

export interface DownloadHeaderMessage {
  artifact: ArtifactMessage | null;
  size: number;
  sha256: string;
  mediaType: string;
  offset: number;
}

export interface DownloadArtifactResponse {
  header?: DownloadHeaderMessage | null;
  chunk?: Uint8Array;
  part?: 'header' | 'chunk';
}

export interface DeleteModelRequest {
  modelId: string;
}

export interface DeleteDatasetRequest {
  datasetId: string;
}

export interface DeleteJobRequest {
  jobId: string;
}

/** DeleteModelResponse, DeleteDatasetResponse, DeleteJobResponse: no fields (yet). */
export type DeleteResponse = Record<string, never>;
