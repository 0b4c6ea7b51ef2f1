// pg-boss setup: the queue compression jobs travel through, the one webhook
// deliveries travel through (queue/webhooks.ts), and their settings. Its SQL (a dispatch written inside the caller's Prisma
// transaction, so a job row and its queue entry appear together or not at
// all) is store/dispatch.ts's; the queue name and enqueueInTx are re-exported here
// for the worker and the tests.
//
// pg-boss is pinned to the 10.x line: it supports Node 20 (11.x declares
// Node >= 22). pg-boss expires an active job after `expireInSeconds` (default
// 15 minutes; 10.x caps it below 24 hours). A pruning run can take longer, so
// expiry is NOT what detects a dead worker here: workers stamp a heartbeat on
// the job row, and a reaper requeues jobs whose heartbeat went stale (see
// store/lifecycle.ts). Expiry is set to the cap as a backstop only; an expired entry
// for a job still running is recognised as a duplicate and dropped.
import PgBoss from 'pg-boss';
import { childLogger } from '../runtime/logger.js';
import { BOSS_SCHEMA, JOB_QUEUE } from '../store/dispatch.js';
import { WEBHOOK_QUEUE } from '../store/webhooks.js';
import { isDatabaseUnavailable } from '../store/unavailable.js';

const log = childLogger({ module: 'queue' });

export { JOB_QUEUE, enqueueInTx, type QueuedJobData } from '../store/dispatch.js';

export interface QueueSettings {
  /** Backstop only (see above); must stay below 24 h in pg-boss 10. */
  expireInSeconds: number;
  /** Re-deliveries after a handler error (a database hiccup), not after engine failures. */
  retryLimit: number;
  retryDelay: number;
  retryBackoff: boolean;
}

export const DEFAULT_QUEUE_SETTINGS: QueueSettings = Object.freeze({
  expireInSeconds: 23 * 60 * 60,
  retryLimit: 3,
  retryDelay: 5,
  retryBackoff: true,
});

export interface BossOptions {
  queue?: Partial<QueueSettings>;
  /** pg-boss housekeeping (expiry, archive) interval; default 120 s. */
  maintenanceIntervalSeconds?: number;
}

/**
 * The webhook queue's settings. A delivery's own retries are ours (a new
 * delayed dispatch per attempt, queue/webhooks.ts); pg-boss retries only a
 * handler that threw (the database away), and expiry frees a dispatch whose
 * dispatcher died mid-attempt.
 */
export const WEBHOOK_QUEUE_SETTINGS: QueueSettings = Object.freeze({
  expireInSeconds: 5 * 60,
  retryLimit: 10,
  retryDelay: 5,
  retryBackoff: true,
});

/** Starts pg-boss (creating or upgrading its `pgboss` schema), the job queue and the webhook queue. */
export async function startBoss(url: string, opts: BossOptions = {}): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString: url,
    schema: BOSS_SCHEMA,
    application_name: 'ticketsmith-queue',
    max: 4,
    // No cron jobs here; the timekeeper would only poll for nothing.
    schedule: false,
    maintenanceIntervalSeconds: opts.maintenanceIntervalSeconds ?? 120,
  });
  boss.on('error', (err: Error & { code?: string }) => {
    // 57P01: the server ended the session (database shutdown). pg's pool.end()
    // returns before its sockets close, so a stop right after ours lands here.
    if (err.code === '57P01') log.info({ code: err.code }, 'pg-boss connection closed by the server');
    // The database restarting: pg-boss's pool reconnects by itself once it answers.
    else if (isDatabaseUnavailable(err)) log.warn({ code: err.code, message: err.message }, 'pg-boss: database unavailable');
    else log.error({ err }, 'pg-boss error');
  });
  await boss.start();
  const settings = { ...DEFAULT_QUEUE_SETTINGS, ...opts.queue };
  await boss.createQueue(JOB_QUEUE, { name: JOB_QUEUE, ...settings });
  // createQueue keeps an existing queue's settings; apply the current ones.
  await boss.updateQueue(JOB_QUEUE, { name: JOB_QUEUE, ...settings });
  await boss.createQueue(WEBHOOK_QUEUE, { name: WEBHOOK_QUEUE, ...WEBHOOK_QUEUE_SETTINGS });
  await boss.updateQueue(WEBHOOK_QUEUE, { name: WEBHOOK_QUEUE, ...WEBHOOK_QUEUE_SETTINGS });
  return boss;
}

