// Process configuration from the environment, validated once at start so a
// typo fails loudly instead of as a strange default. Everything has a default
// that works on a laptop with no setup (embedded Postgres, blobs under .data/).
import { resolve } from 'node:path';
import { z } from 'zod';

const seconds = (def: number) => z.coerce.number().positive().default(def);
const bool = (def: boolean) =>
  z
    .enum(['1', '0', 'true', 'false', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === '1' || v === 'true' || v === 'yes');

const EnvSchema = z.object({
  /** An external Postgres; unset means: start the embedded one. */
  DATABASE_URL: z.string().url().optional(),
  TICKETSMITH_DATA_DIR: z.string().default('.data'),
  /** Embedded Postgres data directory (default `<data dir>/postgres`). */
  TICKETSMITH_PG_DIR: z.string().optional(),
  /** Embedded Postgres port; 0 picks a free loopback port. */
  TICKETSMITH_PG_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /** Blob directory (default `<data dir>/blobs`). */
  TICKETSMITH_BLOB_DIR: z.string().optional(),
  /** Jobs one worker process runs at once (training is CPU/GPU bound: 1 is right for most machines). */
  TICKETSMITH_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
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
  /** Worker threads that unpack and check model uploads (off the event loop); further uploads wait their turn. */
  TICKETSMITH_UPLOAD_THREADS: z.coerce.number().int().min(1).max(16).default(2),
});

export interface Config {
  databaseUrl?: string;
  dataDir: string;
  postgresDir: string;
  postgresPort: number;
  blobDir: string;
  worker: {
    concurrency: number;
    heartbeatSeconds: number;
    staleSeconds: number;
    reapSeconds: number;
    maxAttempts: number;
    pollSeconds: number;
  };
  maxUploadBytes: number;
  allowFileDatasets: boolean;
  shutdownGraceSeconds: number;
  uploadThreads: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the configuration from `env`; relative paths resolve against the working directory. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = EnvSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== '')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`environment variable ${issue.path.join('.')}: ${issue.message}`);
  }
  const e = parsed.data;
  const dataDir = resolve(e.TICKETSMITH_DATA_DIR);
  return {
    databaseUrl: e.DATABASE_URL,
    dataDir,
    postgresDir: resolve(e.TICKETSMITH_PG_DIR ?? `${dataDir}/postgres`),
    postgresPort: e.TICKETSMITH_PG_PORT,
    blobDir: resolve(e.TICKETSMITH_BLOB_DIR ?? `${dataDir}/blobs`),
    worker: {
      concurrency: e.TICKETSMITH_WORKER_CONCURRENCY,
      heartbeatSeconds: e.TICKETSMITH_HEARTBEAT_SECONDS,
      staleSeconds: e.TICKETSMITH_STALE_SECONDS,
      reapSeconds: e.TICKETSMITH_REAP_SECONDS,
      maxAttempts: e.TICKETSMITH_MAX_ATTEMPTS,
      pollSeconds: e.TICKETSMITH_POLL_SECONDS,
    },
    maxUploadBytes: e.TICKETSMITH_MAX_UPLOAD_BYTES,
    allowFileDatasets: e.TICKETSMITH_ALLOW_FILE_DATASETS,
    shutdownGraceSeconds: e.TICKETSMITH_SHUTDOWN_GRACE_SECONDS,
    uploadThreads: e.TICKETSMITH_UPLOAD_THREADS,
  };
}
