// The engine's CheckpointSink backed by PostgreSQL and the blob store: each
// round is committed whole (blobs first, then the round row, its artifact
// rows, an event and the job's progress in one transaction), and a resumed
// run reads the committed rounds back.
//
// Every write is fenced by the job's attempt counter: a worker that was
// presumed dead (stale heartbeat) and replaced finds its lease gone and stops,
// instead of writing next to its replacement. The unique (job, index) key is
// the last line of defence against a duplicated round.
import type { CheckpointSink, RoundMetrics, RoundRecord, RunResultRecord } from '../engine/sink.js';
import { NO_FAULTS, type Faults } from '../runtime/faults.js';
import { observeRound } from '../runtime/metrics.js';
import { recordArtifacts, storeBlobs } from './artifacts.js';
import type { BlobStore } from './blobs.js';
import { Prisma, TX_OPTIONS, toJson, type PrismaClient } from './db.js';
import { appendEvent } from './events.js';
import type { ProgressTracker } from './progress.js';
import { whileUnavailable, type RetryOptions } from './unavailable.js';

/** Which job this sink writes for, and under which claim. */
export interface Lease {
  jobId: string;
  tenant: string;
  /** job.attempts value at claim time. */
  attempt: number;
}

export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
  constructor(readonly jobId: string) {
    super(`job ${jobId} is no longer held by this worker (requeued or finished elsewhere)`);
  }
}

const ROUND_PREFIX = (index: number) => `round_${index}/`;
const STATE_PREFIX = 'state/';

function bigint(x: number): bigint {
  return BigInt(Math.round(Number.isFinite(x) ? x : 0));
}

/**
 * Checks the lease and stamps heartbeat (+ progress) in the caller's
 * transaction. The database clock stamps the heartbeat, so the reaper on
 * another machine compares like with like.
 */
export async function touchLease(tx: Prisma.TransactionClient, lease: Lease, progress?: unknown): Promise<void> {
  const json = progress === undefined ? null : JSON.stringify(progress);
  const count = await tx.$executeRaw`
    UPDATE job SET heartbeat_at = now(), progress = COALESCE(${json}::jsonb, progress)
    WHERE id = ${lease.jobId}::uuid AND attempts = ${lease.attempt} AND status = 'running'`;
  if (count !== 1) throw new LeaseLostError(lease.jobId);
}

export class PostgresSink implements CheckpointSink {
  /** Whether commitResult succeeded (the worker commits the returned result when the engine did not). */
  resultCommitted = false;
  /** When this worker's previous round committed (or the sink was made: the job's start here), for the round-duration metric. */
  private lastCommit = process.hrtime.bigint();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly blobs: BlobStore,
    private readonly lease: Lease,
    private readonly progress?: ProgressTracker,
    /**
     * While the database is away (restarting), reads and commits wait for it
     * and retry instead of failing the run; these options bound the wait.
     */
    private readonly retry: RetryOptions = {},
    private readonly faults: Faults = NO_FAULTS,
  ) {}

  private again<T>(fn: () => Promise<T>): Promise<T> {
    return whileUnavailable(fn, this.retry);
  }

  async finishedRounds(): Promise<RoundRecord[]> {
    const rows = await this.again(() => this.prisma.round.findMany({
      where: { jobId: this.lease.jobId },
      orderBy: { index: 'asc' },
      include: { artifacts: { select: { name: true, storageKey: true } } },
    }));
    const out: RoundRecord[] = [];
    for (const row of rows) {
      const prefix = ROUND_PREFIX(row.index);
      const artifacts: Record<string, Uint8Array> = {};
      for (const a of row.artifacts) {
        artifacts[a.name.startsWith(prefix) ? a.name.slice(prefix.length) : a.name] = await this.blobs.get(a.storageKey);
      }
      out.push({ index: row.index, metrics: row.metrics as unknown as RoundMetrics, artifacts });
    }
    return out;
  }

  async getState(key: string): Promise<Uint8Array | null> {
    const row = await this.again(() => this.prisma.artifact.findFirst({
      where: { jobId: this.lease.jobId, name: STATE_PREFIX + key },
      select: { storageKey: true },
    }));
    return row ? this.blobs.get(row.storageKey) : null;
  }

  async putState(key: string, bytes: Uint8Array): Promise<void> {
    const pending = await storeBlobs(this.blobs, { [key]: bytes }, 'state', STATE_PREFIX);
    await this.again(() => this.prisma.$transaction(async (tx) => {
      await touchLease(tx, this.lease);
      await recordArtifacts(tx, { tenant: this.lease.tenant, jobId: this.lease.jobId }, pending);
    }, TX_OPTIONS));
  }

  async commitRound(round: RoundRecord): Promise<void> {
    const pending = await storeBlobs(this.blobs, round.artifacts, 'round', ROUND_PREFIX(round.index));
    this.faults.hit('round.blobs-stored');
    const m = round.metrics;
    const progress = this.progress?.snapshot();
    if (progress) progress.roundsCompleted = Math.max(progress.roundsCompleted, round.index + 1);
    // Retried whole while the database is away: a try whose commit landed but whose answer was lost ends in P2002 below.
    await this.again(async () => {
      try {
        await this.prisma.$transaction(async (tx) => {
          await touchLease(tx, this.lease, progress);
          const row = await tx.round.create({
            data: {
              jobId: this.lease.jobId,
              index: round.index,
              density: m.density,
              sparsity: 1 - m.density,
              layerDensity: toJson(m.layerDensity),
              testAccuracy: m.finalTestAccuracy,
              testLoss: m.finalTestLoss,
              earlyStopIteration: Math.round(m.earlyStopIteration),
              earlyStopTestAccuracy: m.earlyStopTestAccuracy,
              earlyStopValidationLoss: m.earlyStopValidationLoss,
              paramsRemaining: bigint(m.paramsRemaining),
              paramsTotal: bigint(m.paramsTotal),
              flops: typeof m.flops === 'number' ? bigint(m.flops) : null,
              denseBytes: bigint(m.denseBytes),
              compressedBytes: bigint(m.compressedBytes),
              durationSeconds: m.trainSeconds,
              examplesPerSecond: m.examplesPerSecond,
              backend: m.backend,
              controls: toJson(m.controls),
              validationCurve: toJson(m.curve),
              metrics: toJson(m),
            },
            select: { id: true },
          });
          this.faults.hit('round.in-tx');
          await recordArtifacts(tx, { tenant: this.lease.tenant, jobId: this.lease.jobId, roundId: row.id }, pending);
          await appendEvent(tx, this.lease.jobId, 'round', {
            round: round.index,
            density: m.density,
            testAccuracy: m.finalTestAccuracy,
            earlyStopIteration: m.earlyStopIteration,
            controls: Object.fromEntries(Object.entries(m.controls).map(([k, v]) => [k, v?.finalTestAccuracy ?? null])),
          });
          await tx.job.update({ where: { id: this.lease.jobId }, data: { backend: m.backend } });
          this.faults.hit('round.before-commit');
        }, TX_OPTIONS);
        this.progress?.roundCommitted(round.index);
        const now = process.hrtime.bigint();
        observeRound(Number(now - this.lastCommit) / 1e9, m.examplesPerSecond);
        this.lastCommit = now;
        this.faults.hit('round.after-commit');
      } catch (e) {
        // Committed already (a retried commit whose first try did land): the round exists whole.
        if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002') {
          const exists = await this.prisma.round.count({ where: { jobId: this.lease.jobId, index: round.index } });
          if (exists === 1) {
            this.progress?.roundCommitted(round.index);
            return;
          }
        }
        throw e;
      }
    });
  }

  async commitResult(result: RunResultRecord): Promise<void> {
    const ticket: Record<string, Uint8Array> = {};
    const plots: Record<string, Uint8Array> = {};
    const other: Record<string, Uint8Array> = {};
    for (const [name, bytes] of Object.entries(result.artifacts)) (name.startsWith('ticket/') ? ticket : name.startsWith('plots/') ? plots : other)[name] = bytes;
    const pending = [
      ...(await storeBlobs(this.blobs, ticket, 'ticket')),
      ...(await storeBlobs(this.blobs, plots, 'plot')),
      ...(await storeBlobs(this.blobs, other, 'result')),
    ];
    this.faults.hit('result.blobs-stored');
    await this.again(() => this.prisma.$transaction(async (tx) => {
      await touchLease(tx, this.lease, this.progress?.snapshot());
      await recordArtifacts(tx, { tenant: this.lease.tenant, jobId: this.lease.jobId }, pending);
      await tx.job.update({
        where: { id: this.lease.jobId },
        data: { result: toJson({ name: result.name, verdict: result.verdict, summary: result.summary }) },
      });
      await appendEvent(tx, this.lease.jobId, 'result', { name: result.name, verdict: result.verdict, artifacts: pending.map((p) => p.name) });
      this.faults.hit('result.in-tx');
    }, TX_OPTIONS));
    this.faults.hit('result.after-commit');
    this.resultCommitted = true;
  }
}
