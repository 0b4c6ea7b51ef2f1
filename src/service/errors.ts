// The error table and the one classifier live in store/errors.ts (the worker
// uses them too and must not import the service); re-exported here so the
// service and the doors keep importing them from the service.
export {
  ERRORS,
  ERROR_CODES,
  GRPC,
  RETRY_AFTER_SECONDS,
  ServiceError,
  classifyError,
  invalid,
  isErrorCode,
  notFound,
  toServiceError,
  type Classified,
  type ErrorCode,
  type FieldIssue,
} from '../store/errors.js';
