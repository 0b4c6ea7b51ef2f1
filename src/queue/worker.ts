// The worker: takes job deliveries from pg-boss, claims the job row, runs the
// engine with a Postgres sink, turns engine events into event rows and
// throttled progress, aborts on cancel, and records how the run ended.
//
// Liveness does not rest on pg-boss expiry (see boss.ts): a running job's row
// gets a heartbeat every `heartbeatSeconds`; every worker also runs a reaper
// that requeues running jobs whose heartbeat is older than `staleSeconds`, so
// a killed worker's job resumes on another worker from its last committed
// round. The attempt counter fences the old holder out if it was only slow.
//
// Every worker also runs the storage pass (store/retention.ts) on its own
// timer: finished jobs past the retention are deleted and unreferenced blobs
// collected; several workers doing it at once is safe.
//
// A database that goes away mid-run (restarted under us) does not fail the
// job: the sink's reads and round commits wait for it and retry, event writes
// retry, and a run that still fails on an unreachable database is handed back
// to the queue once the database answers, to resume from its last committed
// round. The job's outcome is written with the same patience.
//
// The engine runner may be injected (tests pass a small engine of their own
// through the service's `runner` option); without one, which is how the
// service runs, the worker imports the real engine (src/engine/run.ts) on its
// first job.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type PgBoss from 'pg-boss';
import { FILES_DISABLED, withEngineConfig, type DataAccess } from '../engine/data/access.js';
import type { CheckpointSink, EngineEvent, RunResultRecord } from '../engine/sink.js';
import type { ModelSource } from '../engine/models/source.js';
import type { RunSpec } from '../engine/spec.js';
import { NO_FAULTS, type Faults } from '../runtime/faults.js';
import { loadEngineConfig } from '../runtime/config.js';
import type { EngineConfig } from '../runtime/engine-config.js';
import { childLogger, type Logger } from '../runtime/logger.js';
import { BlobStoreUnavailableError, type BlobStore } from '../store/blobs.js';
import type { PrismaClient } from '../store/db.js';
import { jobFailure, type JobErrorCode } from '../store/errors.js';
import { JobGoneError } from '../store/events.js';
import { countRounds } from '../store/jobs.js';
import { CHANNELS, type Notifier } from '../store/notify.js';
import { ProgressTracker } from '../store/progress.js';
import { storagePass } from '../store/retention.js';
import { LeaseLostError, PostgresSink, type Lease } from '../store/sink.js';
import { isDatabaseUnavailable, whileUnavailable } from '../store/unavailable.js';
import { JOB_QUEUE, type QueuedJobData } from './boss.js';
import { QueuePoll } from './poll.js';
import { DEFAULT_MODEL_LIMITS, type ModelLimits } from '../engine/models/budget.js';
import { prepareRun, redactPaths, type PreparedRun } from './inputs.js';
import { claimJob, finishJob, heartbeat, reapJobs, recordRunEvent, releaseJob, type Outcome } from '../store/lifecycle.js';

export interface EngineContext {
  sink: CheckpointSink;
  signal?: AbortSignal;
  onEvent?: (e: EngineEvent) => void;
  /** What the run's dataset load may fetch and read: the tenant policy. */
  data: DataAccess;
  /** Caps on an uploaded model, checked again as the engine loads it (the upload's settings). */
  modelLimits?: ModelLimits;
  /** An uploaded model's unpacked files, named by the spec's `model:<id>` (the spec is not rewritten). */
  model?: ModelSource;
  /** What the spec's registered `dataset:<id>` refers to. */
  datasetReference?: string;
  /** The engine's settings (parallel trainings, training loop; the dataset ones are also in `data`). */
  engine?: EngineConfig;
}

/** One compression run: the engine's `runCompression`, or a test engine. */
export type EngineRunner = (spec: RunSpec, ctx: EngineContext) => Promise<RunResultRecord>;

/** The real engine, loaded on first use (it pulls in TF.js). */
export async function loadEngineRunner(): Promise<EngineRunner> {
  const mod = (await import(new URL('../engine/run.js', import.meta.url).href)) as { runCompression?: unknown };
  if (typeof mod.runCompression !== 'function') throw new Error('src/engine/run.ts does not export runCompression');
  return mod.runCompression as EngineRunner;
}

export interface WorkerDeps {
  prisma: PrismaClient;
  blobs: BlobStore;
  boss: PgBoss;
  /** Without it, cancels are seen at the next heartbeat and idle workers poll. */
  notifier?: Notifier;
  /** Default: the real engine (loadEngineRunner). */
  runner?: EngineRunner;
  /**
   * The operator's policy for tenant datasets (outbound guard with the allow
   * list, file roots), built from the config by the service wiring. Default:
   * the guard without an allow list, and no server files.
   */
  data?: DataAccess;
  /** Crash-test fault points (runtime/faults.ts); default none. */
  faults?: Faults;
  /** The engine's settings, from the service's config; default: read from the environment when a job runs. */
  engine?: EngineConfig;
}

const NO_FILES: DataAccess = { files: { kind: 'none', reason: FILES_DISABLED } };

export interface WorkerOptions {
  id?: string;
  /** Jobs run at once by this worker (default 1). */
  concurrency?: number;
  heartbeatSeconds?: number;
  staleSeconds?: number;
  /** Reaper period; 0 disables this worker's reaper. */
  reapSeconds?: number;
  maxAttempts?: number;
  /** Idle fetch period when no NOTIFY wakes the worker. */
  pollSeconds?: number;
  /** Least time between two progress writes of one job (default 500 ms: at most 2 per second). */
  progressIntervalMs?: number;
  /** Finished jobs older than this are deleted by the storage pass; 0 keeps them forever. */
  retentionSeconds?: number;
  /** Storage pass period; 0 disables this worker's pass. */
  storageSweepSeconds?: number;
  /** The pass leaves blobs younger than this to a later one (spares writes in flight a second write). */
  orphanMinAgeSeconds?: number;
  /** Model caps the engine loads uploaded models under (default: engine/models/budget.ts's). */
  modelLimits?: ModelLimits;
  /** Jobs of one tenant running at once, over all workers (default: no cap). */
  tenantMaxRunning?: number;
  /** Wall-clock limit of a job from its first start (default 24 h); past it the run fails as DEADLINE_EXCEEDED. */
  jobTimeoutSeconds?: number;
  /** A queued job whose dispatch ended, vanished or was fetched by a worker that died before claiming it, this long ago, is re-dispatched (default 60). */
  lostDispatchSeconds?: number;
  /** When the blob store fails (disk full, read-only), the job goes back to the queue for this long (default 30). */
  blobRetrySeconds?: number;
}

type Settings = Required<Omit<WorkerOptions, 'id' | 'tenantMaxRunning'>> & Pick<WorkerOptions, 'tenantMaxRunning'>;

const DEFAULTS: Settings = {
  concurrency: 1,
  heartbeatSeconds: 10,
  staleSeconds: 120,
  reapSeconds: 15,
  maxAttempts: 5,
  pollSeconds: 2,
  progressIntervalMs: 500,
  retentionSeconds: 0,
  storageSweepSeconds: 3600,
  orphanMinAgeSeconds: 600,
  modelLimits: DEFAULT_MODEL_LIMITS,
  jobTimeoutSeconds: 24 * 60 * 60,
  lostDispatchSeconds: 60,
  blobRetrySeconds: 30,
};

type AbortReason = 'cancel' | 'shutdown' | 'lease-lost' | 'timeout';

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** A failure's message without server paths: the run's own, or any job temp folder. */
function redactError(e: { code: JobErrorCode; message: string }, prepared: PreparedRun | null): { code: JobErrorCode; message: string } {
  return { code: e.code, message: prepared ? prepared.redact(e.message) : redactPaths(e.message, []) };
}

/** One job being run by this worker: its abort switch, progress and ordered event writes. */
class ActiveRun {
  readonly ac = new AbortController();
  readonly tracker = new ProgressTracker();
  private chain: Promise<void> = Promise.resolve();
  private lastProgressAt = 0;
  private pendingProgress: Extract<EngineEvent, { kind: 'progress' }> | null = null;
  private progressTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly lease: Lease,
    private readonly prisma: PrismaClient,
    private readonly log: Logger,
    private readonly progressIntervalMs: number,
    private readonly faults: Faults,
  ) {}

  abort(reason: AbortReason): void {
    if (!this.ac.signal.aborted) {
      this.log.info({ reason }, 'aborting run');
      this.ac.abort(reason);
    }
  }

  get reason(): AbortReason | null {
    return this.ac.signal.aborted ? (this.ac.signal.reason as AbortReason) : null;
  }

  readonly onEvent = (e: EngineEvent): void => {
    this.tracker.apply(e);
    if (e.kind === 'progress') {
      this.pendingProgress = e;
      const due = this.lastProgressAt + this.progressIntervalMs - Date.now();
      if (due <= 0) this.flushProgress();
      else this.progressTimer ??= setTimeout(() => this.flushProgress(), due);
      return;
    }
    this.flushProgress();
    const { kind, ...rest } = e;
    // run-start keeps `rounds` (the last round's index), the name it had on the wire before lastRound.
    const payload = e.kind === 'trial-end' || e.kind === 'round-end' ? { ...rest, metrics: { ...e.metrics, curve: undefined } }
      : e.kind === 'run-start' ? { ...rest, rounds: e.lastRound } : rest;
    this.write(kind, payload, e.kind === 'run-start' ? e.backend : undefined);
  };

  private flushProgress(): void {
    if (this.progressTimer) clearTimeout(this.progressTimer);
    this.progressTimer = null;
    const e = this.pendingProgress;
    if (!e) return;
    this.pendingProgress = null;
    this.lastProgressAt = Date.now();
    const { kind, ...payload } = e;
    this.write(kind, payload);
  }

  /** Queues one event row (+ job progress) behind the previous ones, so they land in order. */
  private write(kind: string, payload: unknown, backend?: string): void {
    const progress = this.tracker.snapshot();
    this.chain = this.chain.then(async () => {
      if (this.reason === 'lease-lost') return;
      const tx = () => recordRunEvent(this.prisma, this.lease, { kind, payload, progress, backend }, this.faults);
      try {
        // A lost progress line is superseded by the next one; other events wait for the database.
        await (kind === 'progress' ? tx() : whileUnavailable(tx, { signal: this.ac.signal }));
      } catch (err) {
        if (err instanceof LeaseLostError || err instanceof JobGoneError) this.abort('lease-lost');
        // Ten progress lines a second while the database restarts would bury the one line that says so.
        else if (kind === 'progress' && isDatabaseUnavailable(err)) this.log.debug({ code: (err as { code?: unknown }).code }, 'progress not recorded: database unavailable');
        else this.log.warn({ err, kind }, 'could not record engine event');
      }
    });
  }

  /** Waits for every queued event write (call before recording the outcome). */
  async drain(): Promise<void> {
    this.flushProgress();
    await this.chain;
  }

  dispose(): void {
    if (this.progressTimer) clearTimeout(this.progressTimer);
  }
}

export class JobWorker {
  readonly id: string;
  private readonly settings: Settings;
  private readonly log: Logger;
  private readonly runs = new Map<string, ActiveRun>();
  private readonly poll: QueuePoll<QueuedJobData>;
  private stopping = false;
  private reapTimer: NodeJS.Timeout | null = null;
  private storageTimer: NodeJS.Timeout | null = null;
  private unlisten: Array<() => void> = [];
  /** Heartbeats and reaps in flight: stop() waits for them so none outlives the connections. */
  private readonly background = new Set<Promise<void>>();
  private runner: EngineRunner | undefined;
  private readonly faults: Faults;

  constructor(
    private readonly deps: WorkerDeps,
    opts: WorkerOptions = {},
  ) {
    this.id = opts.id ?? `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
    this.settings = { ...DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as Settings;
    this.log = childLogger({ module: 'worker', workerId: this.id });
    this.runner = deps.runner;
    this.faults = deps.faults ?? NO_FAULTS;
    this.poll = new QueuePoll<QueuedJobData>({
      boss: deps.boss,
      queue: JOB_QUEUE,
      concurrency: this.settings.concurrency,
      pollSeconds: this.settings.pollSeconds,
      handle: (delivery) => this.handle(delivery),
      onFetchError: (err) => this.log.warn({ err }, 'queue fetch failed'),
    });
  }

  /** Job ids this worker is running now. */
  activeJobs(): string[] {
    return [...this.runs.keys()];
  }

  start(): void {
    if (this.poll.started) return;
    const { notifier } = this.deps;
    if (notifier) {
      this.unlisten.push(notifier.on(CHANNELS.jobs, () => this.poll.wake()));
      this.unlisten.push(
        notifier.on(CHANNELS.cancel, (jobId) => {
          const run = jobId === '' ? [...this.runs.values()] : [this.runs.get(jobId)].filter((r): r is ActiveRun => r !== undefined);
          for (const r of run) this.inBackground(() => this.beat(r));
        }),
      );
    }
    if (this.settings.reapSeconds > 0) {
      let reaping = false;
      const reap = () => {
        if (reaping) return;
        reaping = true;
        this.inBackground(() => this.reap().finally(() => (reaping = false)));
      };
      this.reapTimer = setInterval(reap, this.settings.reapSeconds * 1000);
      reap();
    }
    if (this.settings.storageSweepSeconds > 0) {
      let sweeping = false;
      const sweep = () => {
        if (sweeping) return;
        sweeping = true;
        this.inBackground(() => this.storagePass().finally(() => (sweeping = false)));
      };
      this.storageTimer = setInterval(sweep, this.settings.storageSweepSeconds * 1000);
    }
    this.poll.start();
    this.log.info({ concurrency: this.settings.concurrency }, 'worker started');
  }

  /**
   * Stops fetching and ends running jobs: by default they are handed back to
   * the queue (another worker resumes them from their last committed round).
   */
  async stop(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.reapTimer) clearInterval(this.reapTimer);
    if (this.storageTimer) clearInterval(this.storageTimer);
    for (const off of this.unlisten) off();
    for (const run of this.runs.values()) run.abort('shutdown');
    const all = this.poll.stop().then(() => Promise.allSettled([...this.background]));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), opts.timeoutMs ?? 30_000)));
    const res = await Promise.race([all, timeout]);
    clearTimeout(timer);
    if (res === 'timeout') this.log.warn({ jobs: this.activeJobs() }, 'worker stop timed out; the reaper will requeue what is left');
    this.log.info('worker stopped');
  }

  private async handle(delivery: PgBoss.Job<QueuedJobData>): Promise<void> {
    const { boss, prisma } = this.deps;
    const jobId = delivery.data?.jobId;
    const log = this.log.child({ jobId, queueJobId: delivery.id });
    try {
      if (typeof jobId !== 'string') throw new Error('queue entry without a jobId');
      if (this.stopping) {
        // Fetched while stopping: give the entry back; pg-boss redelivers it after retryDelay.
        await boss.fail(JOB_QUEUE, delivery.id, { message: 'worker stopping' });
        return;
      }
      const claim = await claimJob(prisma, jobId, {
        workerId: this.id,
        queueJobId: delivery.id,
        staleSeconds: this.settings.staleSeconds,
        maxAttempts: this.settings.maxAttempts,
        tenantMaxRunning: this.settings.tenantMaxRunning,
        // Each deferral writes a new dispatch: not every poll, or a tenant's backlog would churn the queue table.
        deferSeconds: 5 * this.settings.pollSeconds,
        boss,
        faults: this.faults,
      });
      this.faults.hit('claim.after-commit');
      if (claim.kind === 'skip') {
        log.info({ reason: claim.reason }, 'delivery dropped');
      } else {
        await this.run(claim.lease, claim.spec, claim.startedAt, log);
      }
      // The job row is final already; a database blip must not leave its delivery active until expiry.
      await whileUnavailable(() => boss.complete(JOB_QUEUE, delivery.id), { deadlineMs: 60_000 });
    } catch (err) {
      // pg-boss redelivers (retryLimit); the job row is left to the next claim or the reaper.
      log.error({ err }, 'job handling failed');
      await boss.fail(JOB_QUEUE, delivery.id, { message: message(err) }).catch(() => {});
    }
  }

  private async run(lease: Lease, storedSpec: RunSpec, startedAt: Date, log: Logger): Promise<void> {
    const { prisma, blobs } = this.deps;
    const run = new ActiveRun(lease, prisma, log, this.settings.progressIntervalMs, this.faults);
    this.runs.set(lease.jobId, run);
    if (this.stopping) run.abort('shutdown');
    const beatTimer = setInterval(() => this.inBackground(() => this.beat(run)), this.settings.heartbeatSeconds * 1000);
    // The deadline counts from the job's first start, so a resumed job does not get a fresh day.
    const timeoutSeconds = this.settings.jobTimeoutSeconds;
    const deadlineTimer = setTimeout(() => run.abort('timeout'), Math.max(0, startedAt.getTime() + timeoutSeconds * 1000 - Date.now()));
    let outcome: Outcome | null = null;
    let prepared: Awaited<ReturnType<typeof prepareRun>> | null = null;
    const sink = new PostgresSink(
      prisma,
      blobs,
      lease,
      run.tracker,
      {
        signal: run.ac.signal,
        onRetry: (err, attempt, delayMs) => log.warn({ event: 'db-retry', attempt, delayMs, code: (err as { code?: unknown }).code }, 'database unavailable; the run waits for it'),
      },
      this.faults,
    );
    try {
      log.info({ attempt: lease.attempt }, 'job started');
      const engine = this.deps.engine ?? loadEngineConfig();
      prepared = await prepareRun(prisma, blobs, lease.jobId, storedSpec, [[engine.fashionMnistDir, 'builtin:fashion-mnist']]);
      const { redact } = prepared;
      this.runner ??= await loadEngineRunner();
      // The spec keeps its references (the run name is the job's); redact is the last guard against a server path.
      const engineSink: CheckpointSink = {
        finishedRounds: () => sink.finishedRounds(),
        getState: (key) => sink.getState(key),
        putState: (key, bytes) => sink.putState(key, bytes),
        commitRound: (round) => sink.commitRound(round),
        commitResult: (r) => sink.commitResult(redact(r)),
      };
      const onEvent = (e: EngineEvent) => run.onEvent(redact(e));
      const access = this.deps.data ?? NO_FILES;
      // An uploaded dataset is read from the run's own temp folder, and from nowhere else on the disk.
      const data = withEngineConfig(prepared.datasetFiles ? { ...access, files: prepared.datasetFiles } : access, engine);
      const result = await this.runner(prepared.spec, { sink: engineSink, signal: run.ac.signal, onEvent, data, modelLimits: this.settings.modelLimits, engine, model: prepared.model, datasetReference: prepared.datasetReference });
      await run.drain();
      if (!sink.resultCommitted) await sink.commitResult(redact(result));
      outcome = { status: 'succeeded' };
    } catch (err) {
      await run.drain();
      const reason = run.reason ?? (err instanceof LeaseLostError ? 'lease-lost' : null);
      if (reason === 'cancel') outcome = { status: 'cancelled' };
      else if (reason === 'timeout') {
        const rounds = await countRounds(prisma, lease.jobId).catch(() => null);
        outcome = {
          status: 'failed',
          code: 'DEADLINE_EXCEEDED',
          message: `job stopped: it ran longer than the job timeout of ${timeoutSeconds} s; ${rounds === null ? 'its' : `its ${rounds}`} finished rounds are kept`,
        };
      }
      else if (reason === 'shutdown') {
        const released = await this.patiently(() => releaseJob(prisma, this.deps.boss, lease, 'worker shutting down'), log, 30_000);
        log.info({ released }, 'job handed back to the queue');
      } else if (reason === 'lease-lost') {
        log.warn('lease lost: another worker holds this job now; stopping without writes');
      } else if (isDatabaseUnavailable(err)) {
        // Not the job's fault: give it back to resume from its last committed round.
        const released = await this.patiently(() => releaseJob(prisma, this.deps.boss, lease, 'database unavailable'), log).catch(() => false);
        log.warn({ err, released }, 'database unavailable during the run; job handed back to the queue');
      } else if (err instanceof BlobStoreUnavailableError && lease.attempt < this.settings.maxAttempts) {
        // Nothing of the failed round was recorded (blobs come before rows); the next attempt resumes after the last committed round.
        const released = await releaseJob(prisma, this.deps.boss, lease, `${err.message}; retrying`, this.settings.blobRetrySeconds);
        log.warn({ err, released, retryInSeconds: this.settings.blobRetrySeconds }, 'blob store unavailable: job handed back to the queue');
      } else {
        outcome = { status: 'failed', ...redactError(jobFailure(err), prepared) };
        log.warn({ err }, 'engine failed');
      }
    } finally {
      clearInterval(beatTimer);
      clearTimeout(deadlineTimer);
      run.dispose();
      this.runs.delete(lease.jobId);
      await prepared?.cleanup().catch(() => {});
    }
    if (outcome) {
      const progress = run.tracker.snapshot();
      const written = await this.patiently(() => finishJob(prisma, lease, outcome, progress, this.faults), log);
      log.info({ status: outcome.status, written }, 'job finished');
    }
  }

  /**
   * A state change that must land: retried while the database is away. If
   * it never comes back in time the job row stays running without a
   * heartbeat, and a reaper requeues it later.
   */
  private patiently<T>(fn: () => Promise<T>, log: Logger, deadlineMs?: number): Promise<T> {
    return whileUnavailable(fn, {
      deadlineMs,
      onRetry: (err, attempt, delayMs) => log.warn({ event: 'db-retry', attempt, delayMs, code: (err as { code?: unknown }).code }, 'database unavailable; retrying the job state change'),
    });
  }

  private inBackground(fn: () => Promise<void>): void {
    const p = fn();
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  /** Heartbeat one run; learns about cancels and lost leases on the way. */
  private async beat(run: ActiveRun): Promise<void> {
    try {
      this.faults.hit('heartbeat.before');
      const hb = await heartbeat(this.deps.prisma, run.lease);
      this.faults.hit('heartbeat.after');
      if (!hb.held) run.abort('lease-lost');
      else if (hb.cancelRequested) run.abort('cancel');
    } catch (err) {
      this.log.warn({ err, jobId: run.lease.jobId }, 'heartbeat failed');
    }
  }

  private async reap(): Promise<void> {
    if (this.stopping) return;
    try {
      const r = await reapJobs(this.deps.prisma, this.deps.boss, {
        staleSeconds: this.settings.staleSeconds,
        maxAttempts: this.settings.maxAttempts,
        lostDispatchSeconds: this.settings.lostDispatchSeconds,
      });
      if (r.requeued.length + r.failed.length + r.cancelled.length + r.redispatched.length > 0) this.log.warn(r, 'reaped orphaned jobs');
    } catch (err) {
      this.log.warn({ err }, 'reaper failed');
    }
  }

  private async storagePass(): Promise<void> {
    if (this.stopping) return;
    try {
      const r = await storagePass(this.deps.prisma, this.deps.blobs, {
        retentionSeconds: this.settings.retentionSeconds,
        sweep: { minAgeSeconds: this.settings.orphanMinAgeSeconds },
      });
      if (r.expiredJobs.length + r.blobsRemoved + r.tempRemoved > 0) {
        this.log.info({ expiredJobs: r.expiredJobs.length, blobsRemoved: r.blobsRemoved, tempRemoved: r.tempRemoved }, 'storage pass');
      }
    } catch (err) {
      this.log.warn({ err }, 'storage pass failed');
    }
  }
}
