// The service's public surface: the use cases both doors (REST, gRPC) and the
// CLI call, their result shapes, the error table, and the runtime wiring.
export { openService, stopOnSignals, type OpenServiceOptions, type ServiceContext, type ServiceRuntime } from './context.js';
export { ERRORS, ERROR_CODES, GRPC, RETRY_AFTER_SECONDS, ServiceError, classifyError, invalid, notFound, isErrorCode, toServiceError, type Classified, type ErrorCode, type FieldIssue } from './errors.js';
export * from './dto.js';
export { authenticate, createApiKey, listApiKeys, revokeApiKey, type Principal } from './keys.js';
export { uploadModel, getModel, listModels, listModelsPage, MODEL_REF, type ModelUpload } from './models.js';
export { withUploadSlot, uploadsInProgress, receiveTimer, UPLOAD_RETRY_AFTER_SECONDS, type ReceiveTimer, type ReceiveTimes } from './upload-gate.js';
export { registerDataset, getDataset, listDatasets, listDatasetsPage, DATASET_REF } from './datasets.js';
export { uploadDataset, UPLOAD_REF, type DatasetUpload } from './dataset-uploads.js';
export { submitJob, getJob, listJobs, listRounds, listRoundsPage, IDEMPOTENCY_KEY_PATTERN, cancelJob, type ListJobsQuery, type SubmitOptions, type SubmitResult } from './jobs.js';
export {
  createWebhook,
  listWebhooks,
  deleteWebhook,
  listDeliveries,
  rotateCallbackSecret,
  WEBHOOK_EVENTS,
  DELIVERY_STATES,
  WebhookEndpointSchema,
  WebhookDeliverySchema,
  CallbackSecretSchema,
  type WebhookEndpointDto,
  type WebhookDeliveryDto,
} from './webhooks.js';
export { getJobPlot, PLOT_NAMES, type PlotName } from './plots.js';
export { deleteModel, deleteDataset, deleteJob } from './deletion.js';
export { checkRateLimit, RateLimitedError } from './limits.js';
export { listEvents, waitForEvents, watchJob, watchTenantJobs } from './events.js';
export { databaseReady, jobGauges, type JobGauges } from './operations.js';
export { ARTIFACT_MEDIA_TYPES, listArtifacts, listArtifactsPage, getArtifact, getTicketBundle, checkRange, ARTIFACT_KINDS, type ArtifactDownload, type ListArtifactsQuery } from './artifacts.js';
export { JOB_STATES, TERMINAL_STATES, isJobState, isTerminal, type JobState } from '../store/states.js';
export type { NamedFile } from './archive.js';
export type { ByteRange } from '../store/blobs.js';
export { isUuid, PAGE_DEFAULT, PAGE_MAX, type PageQuery } from './ids.js';
