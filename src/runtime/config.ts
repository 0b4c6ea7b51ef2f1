// Process configuration from the environment, validated once at start so a
// typo fails loudly instead of as a strange default. Everything has a default
// that works on a laptop with no setup (embedded Postgres, blobs under .data/).
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseAllowList } from './outbound.js';
import { parseFaultPoint, type FaultPoint } from './faults.js';
import { ENGINE_ENV, EngineEnvSchema, engineConfigOf, type EngineConfig } from './engine-config.js';

const seconds = (def: number) => z.coerce.number().positive().default(def);
const bool = (def: boolean) =>
  z
    .enum(['1', '0', 'true', 'false', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === '1' || v === 'true' || v === 'yes');

const EnvSchema = z.object({
  /** The engine's settings (engine-config.ts): workers, training loop, dataset caps, Fashion-MNIST folder. */
  ...ENGINE_ENV,
  /** An external Postgres; unset means: start the embedded one. */
  DATABASE_URL: z.string().url().optional(),
  TICKETSMITH_DATA_DIR: z.string().default('.data'),
  /** Embedded Postgres data directory (default `<data dir>/postgres`). */
  TICKETSMITH_PG_DIR: z.string().optional(),
  /** Embedded Postgres port; 0 picks a free loopback port. */
  TICKETSMITH_PG_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /** Restarts of a lost embedded Postgres tried in a row (0.5 s doubling to 30 s apart) before /healthz fails. */
  TICKETSMITH_PG_RESTART_ATTEMPTS: z.coerce.number().int().min(0).default(10),
  /** Blob directory (default `<data dir>/blobs`); the folder store only. */
  TICKETSMITH_BLOB_DIR: z.string().optional(),
  /** Where artifact bytes live: `folder` (TICKETSMITH_BLOB_DIR) or `s3` (the TICKETSMITH_S3_* settings). */
  TICKETSMITH_BLOB_STORE: z.enum(['folder', 's3']).default('folder'),
  /** The bucket (S3 naming rules: 3-63 lowercase letters, digits, dots, hyphens). */
  TICKETSMITH_S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'a bucket name: 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit')
    .optional(),
  /** Key prefix inside the bucket (several installs can share a bucket); a trailing `/` is added. */
  TICKETSMITH_S3_PREFIX: z
    .string()
    .max(512)
    .regex(/^[A-Za-z0-9!_.*'()\/-]*$/, "letters, digits and !_.*'()- separated by /")
    .refine((p) => !p.startsWith('/') && !p.split('/').some((s) => s === '.' || s === '..'), 'no leading /, no . or .. segment')
    .default(''),
  /** An S3-compatible endpoint (MinIO, Ceph, R2...); unset means AWS S3 for the region. */
  TICKETSMITH_S3_ENDPOINT: z
    .string()
    .url()
    .refine((u) => /^https?:$/.test(new URL(u).protocol), 'an http:// or https:// URL')
    .optional(),
  TICKETSMITH_S3_REGION: z.string().regex(/^[a-z0-9-]{1,64}$/, 'a region name such as us-east-1').optional(),
  /** Path-style URLs (`<endpoint>/<bucket>/<key>`), which most S3-compatible servers need. */
  TICKETSMITH_S3_FORCE_PATH_STYLE: bool(false),
  /** Jobs one worker process runs at once (training is CPU/GPU bound: 1 is right for most machines). */
  TICKETSMITH_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  /** Port of a `ticketsmith worker` process's own /metrics and /healthz; 0 turns them off. */
  TICKETSMITH_WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /** Address that server binds (loopback unless a scraper on another machine needs it). */
  TICKETSMITH_WORKER_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  /** How often a worker touches its running jobs' heartbeat. */
  TICKETSMITH_HEARTBEAT_SECONDS: seconds(10),
  /** A running job whose heartbeat is older than this is taken to be orphaned and requeued. */
  TICKETSMITH_STALE_SECONDS: seconds(120),
  /** How often each worker looks for orphaned jobs. */
  TICKETSMITH_REAP_SECONDS: seconds(15),
  /** Claims per job before it is failed as WORKER_LOST (a job that kills its worker every time). */
  TICKETSMITH_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(5),
  /** Fallback queue poll interval (workers are also woken by NOTIFY). */
  TICKETSMITH_POLL_SECONDS: z.coerce.number().min(0.5).default(2),
  /** Upload limit for a model (all files together). */
  TICKETSMITH_MAX_UPLOAD_BYTES: z.coerce.number().int().positive().default(512 * 1024 * 1024),
  /** Let tenants name file:// datasets on the server's disk (single-user installs). */
  TICKETSMITH_ALLOW_FILE_DATASETS: bool(false),
  /** On SIGTERM/SIGINT: how long requests, gRPC calls and downloads in flight may take to finish before they are cut. */
  TICKETSMITH_SHUTDOWN_GRACE_SECONDS: seconds(10),
  /** Most files one dataset upload may hold (an archive's members, or multipart files): an image folder is many small files. */
  TICKETSMITH_MAX_UPLOAD_FILES: z.coerce.number().int().min(1).default(10_000),
  /** Worker threads that unpack and check model uploads (off the event loop); further uploads wait their turn. */
  TICKETSMITH_UPLOAD_THREADS: z.coerce.number().int().min(1).max(16).default(2),
  TICKETSMITH_MAX_CONCURRENT_UPLOADS: z.coerce.number().int().min(1).max(1024).default(4),
  /** Upload slots one tenant may hold at once; unset: half of TICKETSMITH_MAX_CONCURRENT_UPLOADS (at least 1), so another tenant can always upload. */
  TICKETSMITH_TENANT_MAX_CONCURRENT_UPLOADS: z.coerce.number().int().min(1).max(1024).optional(),
  /** An upload that sends no bytes for this long is refused (408) and frees its slot (fractions allowed: tests use short ones). */
  TICKETSMITH_UPLOAD_IDLE_SECONDS: z.coerce.number().positive().max(3600).default(30),
  /** The longest one upload's body may take to arrive, however steadily it trickles in. */
  TICKETSMITH_UPLOAD_RECEIVE_SECONDS: z.coerce.number().positive().max(86_400).default(300),
  /** Folders file:// datasets must resolve inside (comma-separated); required when file datasets are on. */
  TICKETSMITH_FILE_ROOTS: z.string().default(''),
  /** Internal hosts and CIDR ranges the outbound guard lets tenant URLs reach (comma-separated). */
  TICKETSMITH_OUTBOUND_ALLOW: z.string().default(''),
  /** Webhook attempts per delivery before it is marked failed. */
  TICKETSMITH_WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
  /** Wait before the first webhook retry; doubled each time (fractions allowed: tests use milliseconds). */
  TICKETSMITH_WEBHOOK_RETRY_SECONDS: z.coerce.number().min(0.001).default(1),
  /** The longest wait between two webhook attempts. */
  TICKETSMITH_WEBHOOK_RETRY_MAX_SECONDS: z.coerce.number().min(0.001).default(300),
  /** A webhook receiver that has not answered in this long counts as a failed attempt. */
  TICKETSMITH_WEBHOOK_TIMEOUT_SECONDS: z.coerce.number().positive().max(300).default(10),
  /** Finished jobs older than this many days are deleted (fractions allowed); 0 keeps them forever. */
  TICKETSMITH_RETENTION_DAYS: z.coerce.number().min(0).default(0),
  /** How often each worker runs the storage pass (retention, then unreferenced blobs). */
  TICKETSMITH_STORAGE_SWEEP_SECONDS: seconds(3600),
  /** Model size caps, checked on model.json before TF.js builds anything (engine/models/budget.ts). */
  TICKETSMITH_MAX_MODEL_PARAMS: z.coerce.number().int().positive().default(50_000_000),
  TICKETSMITH_MAX_LAYER_PARAMS: z.coerce.number().int().positive().default(25_000_000),
  TICKETSMITH_MAX_MODEL_LAYERS: z.coerce.number().int().positive().default(1000),
  TICKETSMITH_MAX_LAYER_OUTPUT: z.coerce.number().int().positive().default(16_777_216),
  /** Most a compressed model upload may expand (a 99.9%-sparse ticket saved dense gzips about 370-fold). */
  TICKETSMITH_MAX_MODEL_RATIO: z.coerce.number().min(1).default(500),
  /** Time budget for reading a dataset's files at registration or submit. */
  TICKETSMITH_DATASET_PROBE_SECONDS: seconds(120),
  /** Most training examples one job may ask for (see engine/cost.ts); the paper's LeNet run is ~1e8. */
  TICKETSMITH_MAX_JOB_EXAMPLES: z.coerce.number().positive().default(5e8),
  /** Jobs of one tenant running at once; more wait in the queue. */
  TICKETSMITH_TENANT_MAX_RUNNING: z.coerce.number().int().min(1).default(4),
  /** Jobs of one tenant waiting in the queue; submits beyond are QUOTA_EXCEEDED. */
  TICKETSMITH_TENANT_MAX_QUEUED: z.coerce.number().int().min(1).default(100),
  /** Bytes of models and artifacts one tenant may hold; uploads beyond are QUOTA_EXCEEDED. */
  TICKETSMITH_TENANT_MAX_STORAGE_BYTES: z.coerce.number().int().positive().default(20 * 1024 ** 3),
  /** Wall-clock limit of one running job; past it the worker stops it as DEADLINE_EXCEEDED. */
  TICKETSMITH_JOB_TIMEOUT_SECONDS: seconds(24 * 60 * 60).refine((s) => s <= 20 * 86_400, 'at most 20 days (1728000 s)'),
  /** Requests per API key per window (0: no rate limit). */
  TICKETSMITH_RATE_LIMIT: z.coerce.number().int().min(0).default(600),
  TICKETSMITH_RATE_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  /** Crash tests only: `<point>:<n>` makes the process SIGKILL itself at the n-th hit of that point (runtime/faults.ts). */
  TICKETSMITH_FAULT_POINT: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return null;
      try {
        return parseFaultPoint(v);
      } catch (e) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message });
        return z.NEVER;
      }
    }),
});

const list = (raw: string) => raw.split(',').map((s) => s.trim()).filter((s) => s !== '');

/** What one tenant and one job may use (issue 9: bounded cost per request and job). */
export interface Limits {
  maxJobExamples: number;
  tenantMaxRunning: number;
  tenantMaxQueued: number;
  tenantMaxStorageBytes: number;
  jobTimeoutSeconds: number;
  /** Requests per key per window; 0 turns rate limiting off. */
  rateLimit: number;
  rateWindowSeconds: number;
}

/** An S3-compatible bucket for the blob store (store/s3-blobs.ts); credentials come from the AWS SDK's default chain. */
export interface S3Settings {
  bucket: string;
  /** '' or ending in '/'. */
  prefix: string;
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
}

/** Which blob store holds artifact bytes (TICKETSMITH_BLOB_STORE). */
export type BlobStoreConfig = { kind: 'folder'; dir: string } | ({ kind: 's3' } & S3Settings);

export interface Config {
  databaseUrl?: string;
  dataDir: string;
  postgresDir: string;
  postgresPort: number;
  postgresRestartAttempts: number;
  /** The folder store's directory (also set, and unused, when the store is S3). */
  blobDir: string;
  blobStore: BlobStoreConfig;
  worker: {
    concurrency: number;
    heartbeatSeconds: number;
    staleSeconds: number;
    reapSeconds: number;
    maxAttempts: number;
    pollSeconds: number;
  };
  /** A worker process's /metrics and /healthz server (port 0: none). */
  workerMetrics: { host: string; port: number };
  maxUploadBytes: number;
  /**
   * Uploads (models and datasets, both doors) received and checked at once
   * (TICKETSMITH_MAX_CONCURRENT_UPLOADS); one more is refused with
   * RATE_LIMITED before its body is read, so the memory uploads hold stays
   * under this many times maxUploadBytes (about three copies each).
   */
  maxConcurrentUploads: number;
  /** Upload slots one tenant may hold (TICKETSMITH_TENANT_MAX_CONCURRENT_UPLOADS), at most maxConcurrentUploads. */
  tenantMaxConcurrentUploads: number;
  /** Seconds an upload may send nothing, and seconds its whole body may take (TICKETSMITH_UPLOAD_IDLE_SECONDS, _RECEIVE_SECONDS). */
  uploadIdleSeconds: number;
  uploadReceiveSeconds: number;
  /** Most files in one dataset upload (TICKETSMITH_MAX_UPLOAD_FILES). */
  maxUploadFiles: number;
  allowFileDatasets: boolean;
  shutdownGraceSeconds: number;
  uploadThreads: number;
  /** Absolute folders tenants' file:// datasets must lie in (realpath); non-empty when allowFileDatasets. */
  fileRoots: string[];
  /** TICKETSMITH_OUTBOUND_ALLOW entries (host names, CIDRs), checked at load. */
  outboundAllow: string[];
  /** Webhook delivery: attempts, the doubling retry wait and its cap, the receiver's time to answer. */
  webhooks: WebhookSettings;
  storage: {
    /** 0: keep finished jobs forever. */
    retentionDays: number;
    sweepSeconds: number;
  };
  /** Caps on an uploaded model, by its model.json (the weight bytes cap is maxUploadBytes). */
  modelLimits: { maxParams: number; maxLayerParams: number; maxLayers: number; maxLayerOutput: number; maxBytes: number; maxRatio: number };
  /** Caps on reading a tenant's dataset at the door (the probe); the worker's loaders get the same caps in `engine`. */
  datasets: { maxBytes: number; maxRatio: number; probeSeconds: number };
  /** What the worker hands the engine (workers, training loop, dataset caps, Fashion-MNIST folder). */
  engine: EngineConfig;
  limits: Limits;
  /** Where this process kills itself (crash tests); null in normal operation. */
  faultPoint: FaultPoint | null;
}

export interface WebhookSettings {
  maxAttempts: number;
  retrySeconds: number;
  retryMaxSeconds: number;
  timeoutSeconds: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

/** `env` parsed by `schema` (unset and empty variables alike take their defaults); the first problem as a ConfigError. */
function parseEnv<T extends z.ZodType>(schema: T, env: Env): z.infer<T> {
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== '')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`environment variable ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * Only the engine's settings, for processes that run the engine without the
 * service (the CLI's prune and bench, scripts/): the service's variables are
 * neither read nor checked.
 */
export function loadEngineConfig(env: Env = process.env): EngineConfig {
  return engineConfigOf(parseEnv(EngineEnvSchema, env));
}

/**
 * The blob store TICKETSMITH_BLOB_STORE chooses. Settings of the store not
 * chosen are a mistake (an operator who set a bucket and forgot the switch
 * would otherwise write artifacts to a local folder no other machine sees).
 */
function blobStoreOf(e: z.infer<typeof EnvSchema>, dir: string, env: Env): BlobStoreConfig {
  const s3Set = (['TICKETSMITH_S3_BUCKET', 'TICKETSMITH_S3_PREFIX', 'TICKETSMITH_S3_ENDPOINT', 'TICKETSMITH_S3_REGION', 'TICKETSMITH_S3_FORCE_PATH_STYLE'] as const).filter(
    (k) => env[k] !== undefined && env[k] !== '',
  );
  if (e.TICKETSMITH_BLOB_STORE === 'folder') {
    if (s3Set.length > 0) {
      throw new ConfigError(`environment variable ${s3Set[0]} is set but TICKETSMITH_BLOB_STORE is folder: set TICKETSMITH_BLOB_STORE=s3 to store artifacts on S3`);
    }
    return { kind: 'folder', dir };
  }
  if (env.TICKETSMITH_BLOB_DIR) {
    throw new ConfigError('environment variable TICKETSMITH_BLOB_DIR is set but TICKETSMITH_BLOB_STORE is s3: artifacts go to the bucket, unset it');
  }
  if (!e.TICKETSMITH_S3_BUCKET) throw new ConfigError('environment variable TICKETSMITH_S3_BUCKET: required when TICKETSMITH_BLOB_STORE is s3');
  const region = e.TICKETSMITH_S3_REGION ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const prefix = e.TICKETSMITH_S3_PREFIX === '' || e.TICKETSMITH_S3_PREFIX.endsWith('/') ? e.TICKETSMITH_S3_PREFIX : `${e.TICKETSMITH_S3_PREFIX}/`;
  return {
    kind: 's3',
    bucket: e.TICKETSMITH_S3_BUCKET,
    prefix,
    ...(e.TICKETSMITH_S3_ENDPOINT ? { endpoint: e.TICKETSMITH_S3_ENDPOINT } : {}),
    region,
    forcePathStyle: e.TICKETSMITH_S3_FORCE_PATH_STYLE,
  };
}

/** Reads the configuration from `env`; relative paths resolve against the working directory. */
export function loadConfig(env: Env = process.env): Config {
  const e = parseEnv(EnvSchema, env);
  const dataDir = resolve(e.TICKETSMITH_DATA_DIR);
  const outboundAllow = list(e.TICKETSMITH_OUTBOUND_ALLOW);
  try {
    parseAllowList(outboundAllow);
  } catch (err) {
    throw new ConfigError(`environment variable TICKETSMITH_OUTBOUND_ALLOW: ${(err as Error).message}`);
  }
  const fileRoots = list(e.TICKETSMITH_FILE_ROOTS).map((r) => resolve(r));
  if (e.TICKETSMITH_TENANT_MAX_CONCURRENT_UPLOADS !== undefined && e.TICKETSMITH_TENANT_MAX_CONCURRENT_UPLOADS > e.TICKETSMITH_MAX_CONCURRENT_UPLOADS) {
    throw new ConfigError(
      `environment variable TICKETSMITH_TENANT_MAX_CONCURRENT_UPLOADS: ${e.TICKETSMITH_TENANT_MAX_CONCURRENT_UPLOADS} is more than TICKETSMITH_MAX_CONCURRENT_UPLOADS (${e.TICKETSMITH_MAX_CONCURRENT_UPLOADS})`,
    );
  }
  if (e.TICKETSMITH_UPLOAD_IDLE_SECONDS > e.TICKETSMITH_UPLOAD_RECEIVE_SECONDS) {
    throw new ConfigError('environment variable TICKETSMITH_UPLOAD_IDLE_SECONDS: longer than TICKETSMITH_UPLOAD_RECEIVE_SECONDS, the whole upload\'s time');
  }
  // Failing here, not per request: "on, but no folder" is a setup mistake the operator must see at start.
  if (e.TICKETSMITH_ALLOW_FILE_DATASETS && fileRoots.length === 0) {
    throw new ConfigError(
      'environment variable TICKETSMITH_ALLOW_FILE_DATASETS is on but TICKETSMITH_FILE_ROOTS is empty: set it to the folders tenants may read (comma-separated)',
    );
  }
  const blobDir = resolve(e.TICKETSMITH_BLOB_DIR ?? `${dataDir}/blobs`);
  return {
    databaseUrl: e.DATABASE_URL,
    dataDir,
    postgresDir: resolve(e.TICKETSMITH_PG_DIR ?? `${dataDir}/postgres`),
    postgresPort: e.TICKETSMITH_PG_PORT,
    postgresRestartAttempts: e.TICKETSMITH_PG_RESTART_ATTEMPTS,
    blobDir,
    blobStore: blobStoreOf(e, blobDir, env),
    worker: {
      concurrency: e.TICKETSMITH_WORKER_CONCURRENCY,
      heartbeatSeconds: e.TICKETSMITH_HEARTBEAT_SECONDS,
      staleSeconds: e.TICKETSMITH_STALE_SECONDS,
      reapSeconds: e.TICKETSMITH_REAP_SECONDS,
      maxAttempts: e.TICKETSMITH_MAX_ATTEMPTS,
      pollSeconds: e.TICKETSMITH_POLL_SECONDS,
    },
    workerMetrics: { host: e.TICKETSMITH_WORKER_METRICS_HOST, port: e.TICKETSMITH_WORKER_METRICS_PORT },
    maxUploadBytes: e.TICKETSMITH_MAX_UPLOAD_BYTES,
    maxUploadFiles: e.TICKETSMITH_MAX_UPLOAD_FILES,
    maxConcurrentUploads: e.TICKETSMITH_MAX_CONCURRENT_UPLOADS,
    tenantMaxConcurrentUploads: e.TICKETSMITH_TENANT_MAX_CONCURRENT_UPLOADS ?? Math.max(1, Math.floor(e.TICKETSMITH_MAX_CONCURRENT_UPLOADS / 2)),
    uploadIdleSeconds: e.TICKETSMITH_UPLOAD_IDLE_SECONDS,
    uploadReceiveSeconds: e.TICKETSMITH_UPLOAD_RECEIVE_SECONDS,
    allowFileDatasets: e.TICKETSMITH_ALLOW_FILE_DATASETS,
    shutdownGraceSeconds: e.TICKETSMITH_SHUTDOWN_GRACE_SECONDS,
    uploadThreads: e.TICKETSMITH_UPLOAD_THREADS,
    fileRoots,
    outboundAllow,
    webhooks: {
      maxAttempts: e.TICKETSMITH_WEBHOOK_MAX_ATTEMPTS,
      retrySeconds: e.TICKETSMITH_WEBHOOK_RETRY_SECONDS,
      retryMaxSeconds: e.TICKETSMITH_WEBHOOK_RETRY_MAX_SECONDS,
      timeoutSeconds: e.TICKETSMITH_WEBHOOK_TIMEOUT_SECONDS,
    },
    storage: { retentionDays: e.TICKETSMITH_RETENTION_DAYS, sweepSeconds: e.TICKETSMITH_STORAGE_SWEEP_SECONDS },
    modelLimits: {
      maxParams: e.TICKETSMITH_MAX_MODEL_PARAMS,
      maxLayerParams: e.TICKETSMITH_MAX_LAYER_PARAMS,
      maxLayers: e.TICKETSMITH_MAX_MODEL_LAYERS,
      maxLayerOutput: e.TICKETSMITH_MAX_LAYER_OUTPUT,
      maxBytes: e.TICKETSMITH_MAX_UPLOAD_BYTES,
      maxRatio: e.TICKETSMITH_MAX_MODEL_RATIO,
    },
    datasets: { maxBytes: e.TICKETSMITH_MAX_DATASET_BYTES, maxRatio: e.TICKETSMITH_MAX_DATASET_RATIO, probeSeconds: e.TICKETSMITH_DATASET_PROBE_SECONDS },
    engine: engineConfigOf(e),
    limits: {
      maxJobExamples: e.TICKETSMITH_MAX_JOB_EXAMPLES,
      tenantMaxRunning: e.TICKETSMITH_TENANT_MAX_RUNNING,
      tenantMaxQueued: e.TICKETSMITH_TENANT_MAX_QUEUED,
      tenantMaxStorageBytes: e.TICKETSMITH_TENANT_MAX_STORAGE_BYTES,
      jobTimeoutSeconds: e.TICKETSMITH_JOB_TIMEOUT_SECONDS,
      rateLimit: e.TICKETSMITH_RATE_LIMIT,
      rateWindowSeconds: e.TICKETSMITH_RATE_WINDOW_SECONDS,
    },
    faultPoint: e.TICKETSMITH_FAULT_POINT,
  };
}
