// Wiring: everything a service call needs (database client, blob store,
// queue, notifications, limits) in one ServiceContext, and openService() that
// starts it all in order (database, migrations, pg-boss, LISTEN, optional
// in-process worker) and stops it in reverse. `ticketsmith serve` opens it with
// a worker and puts the REST/gRPC doors on top; `ticketsmith worker` opens it
// with a worker only.
import type PgBoss from 'pg-boss';
import { loadConfig, type Config } from '../runtime/config.js';
import { childLogger } from '../runtime/logger.js';
import { startDatabase, type DatabaseHandle, type StartDatabaseOptions } from '../runtime/postgres.js';
import { startBoss, type BossOptions } from '../queue/boss.js';
import { JobWorker, type EngineRunner, type WorkerOptions } from '../queue/worker.js';
import { WebhookDispatcher, type WebhookOptions } from '../queue/webhooks.js';
import { faultsFor } from '../runtime/faults.js';
import { outboundGuard, tenantDataAccess } from './data-access.js';
import { guardBlobs, LocalBlobStore, type BlobStore } from '../store/blobs.js';
import { closePrisma, createPrisma, type PrismaClient } from '../store/db.js';
import { migrate } from '../store/migrate.js';
import { Notifier } from '../store/notify.js';

const log = childLogger({ module: 'service' });

export interface ServiceContext {
  prisma: PrismaClient;
  blobs: BlobStore;
  boss: PgBoss;
  notifier: Notifier;
  config: Config;
}

export interface OpenServiceOptions {
  /** Default: loadConfig() (environment). */
  config?: Config;
  database?: StartDatabaseOptions;
  /** Run an in-process worker: true for the defaults from config, or its options. */
  worker?: boolean | WorkerOptions;
  /** Engine for the in-process worker (default: the real engine). */
  runner?: EngineRunner;
  boss?: BossOptions;
  /** Blob store other than the one config chooses (tests: a store that fails on purpose). */
  blobs?: BlobStore;
  /**
   * The webhook dispatcher beside the in-process worker (on whenever a worker
   * runs; settings from config, these on top), or false for none.
   */
  webhooks?: WebhookOptions | false;
}

export interface ServiceRuntime {
  ctx: ServiceContext;
  db: DatabaseHandle;
  worker: JobWorker | null;
  /** Sends webhook deliveries; runs with the worker. */
  webhooks: WebhookDispatcher | null;
  /** Stops worker (its jobs go back to the queue), queue, connections, then an embedded database. */
  stop(): Promise<void>;
}

function workerOptions(config: Config, opts: WorkerOptions | true): WorkerOptions {
  const w = config.worker;
  return {
    concurrency: w.concurrency,
    heartbeatSeconds: w.heartbeatSeconds,
    staleSeconds: w.staleSeconds,
    reapSeconds: w.reapSeconds,
    maxAttempts: w.maxAttempts,
    pollSeconds: w.pollSeconds,
    retentionSeconds: config.storage.retentionDays * 86_400,
    storageSweepSeconds: config.storage.sweepSeconds,
    modelLimits: config.modelLimits,
    tenantMaxRunning: config.limits.tenantMaxRunning,
    jobTimeoutSeconds: config.limits.jobTimeoutSeconds,
    ...(opts === true ? {} : opts),
  };
}

export async function openService(opts: OpenServiceOptions = {}): Promise<ServiceRuntime> {
  const config = opts.config ?? loadConfig();
  const db = await startDatabase({ url: config.databaseUrl, dataDir: config.postgresDir, port: config.postgresPort, ...opts.database });
  const cleanups: Array<() => Promise<unknown>> = [() => db.stop()];
  const unwind = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => log.warn({ err }, 'shutdown step failed'));
  };
  try {
    await migrate(db.url);
    const prisma = createPrisma(db.url);
    cleanups.push(() => closePrisma(prisma));
    const boss = await startBoss(db.url, opts.boss);
    cleanups.push(() => boss.stop({ graceful: false, close: true }));
    const notifier = new Notifier(db.url);
    await notifier.start();
    cleanups.push(() => notifier.stop());
    const faults = faultsFor(config.faultPoint);
    let store = opts.blobs;
    if (!store && config.blobStore.kind === 's3') {
      // Loaded only here: the AWS SDK costs every other process its start-up time.
      const { S3BlobStore } = await import('../store/s3-blobs.js');
      const s3 = new S3BlobStore(config.blobStore);
      cleanups.push(async () => s3.destroy());
      store = s3;
    }
    if (!store) {
      const local = new LocalBlobStore(config.blobDir, { faults });
      // Temp files of writers killed between write and rename; nothing references them.
      const swept = await local.sweepTemp();
      if (swept > 0) log.info({ swept }, 'removed stale blob temp files');
      store = local;
    }
    const blobs = guardBlobs(store);
    const ctx: ServiceContext = { prisma, blobs, boss, notifier, config };

    let worker: JobWorker | null = null;
    if (opts.worker) {
      worker = new JobWorker(
        { prisma, blobs, boss, notifier, runner: opts.runner, data: tenantDataAccess(config), faults, engine: config.engine },
        workerOptions(config, opts.worker),
      );
      worker.start();
      const w = worker;
      cleanups.push(() => w.stop());
    }
    let webhooks: WebhookDispatcher | null = null;
    if (opts.worker && opts.webhooks !== false) {
      webhooks = new WebhookDispatcher(
        { prisma, boss, notifier, guard: outboundGuard(config) },
        { ...config.webhooks, pollSeconds: config.worker.pollSeconds, ...opts.webhooks },
      );
      webhooks.start();
      const d = webhooks;
      cleanups.push(() => d.stop());
    }
    log.info({ embedded: db.embedded, blobs: blobs.location, worker: worker?.id ?? null }, 'service ready');
    let stopping: Promise<void> | null = null;
    return { ctx, db, worker, webhooks, stop: () => (stopping ??= unwind()) };
  } catch (e) {
    await unwind();
    throw e;
  }
}

/**
 * Keeps a runtime up until SIGINT/SIGTERM, then shuts down in order: run
 * `beforeStop` (close the doors: stop accepting, let requests and calls in
 * flight finish within the grace period, end open streams), stop the runtime
 * (running jobs go back to the queue, then connections and an embedded
 * database) and exit 0. Exits 1 if a step failed or the whole shutdown took
 * longer than `hardLimitMs`, so a stuck step cannot keep the process up.
 * For `ticketsmith serve` and `worker`.
 */
export function stopOnSignals(rt: ServiceRuntime, beforeStop?: () => Promise<void>, opts: { hardLimitMs?: number } = {}): void {
  let done = false;
  const hardLimitMs = opts.hardLimitMs ?? rt.ctx.config.shutdownGraceSeconds * 1000 + 45_000;
  const onSignal = (signal: NodeJS.Signals) => {
    if (done) {
      log.warn({ signal }, 'already shutting down');
      return;
    }
    done = true;
    const started = Date.now();
    log.info({ signal }, 'shutting down');
    const hard = setTimeout(() => {
      log.error({ signal, ms: Date.now() - started }, 'shutdown took too long; exiting');
      process.exit(1);
    }, hardLimitMs);
    hard.unref();
    void (async () => {
      let code = 0;
      try {
        await beforeStop?.();
      } catch (err) {
        log.error({ err }, 'closing the doors failed');
        code = 1;
      }
      try {
        await rt.stop();
      } catch (err) {
        log.error({ err }, 'stopping the runtime failed');
        code = 1;
      }
      log.info({ signal, code, ms: Date.now() - started }, 'stopped');
      process.exit(code);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
