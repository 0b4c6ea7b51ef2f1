// What the operations routes read (readiness, Prometheus gauges): the
// database's answer and counts over all tenants, through the store.
import { databaseAnswers } from '../store/db.js';
import { queueSize } from '../store/dispatch.js';
import { countJobsByStatus } from '../store/jobs.js';
import { JOB_STATES, type JobState } from '../store/states.js';
import type { ServiceContext } from './context.js';

/** Whether the database answers a query now. */
export function databaseReady(ctx: Pick<ServiceContext, 'prisma'>): Promise<boolean> {
  return databaseAnswers(ctx.prisma);
}

export interface JobGauges {
  /** Jobs in each state, all tenants. */
  jobs: Record<JobState, number>;
  /** Dispatches waiting in the job queue. */
  queueDepth: number;
}

/** The jobs-per-state and queue-depth gauges; rejects when the database does not answer. */
export async function jobGauges(ctx: Pick<ServiceContext, 'prisma' | 'boss'>): Promise<JobGauges> {
  const counts = await countJobsByStatus(ctx.prisma);
  const jobs = Object.fromEntries(JOB_STATES.map((s) => [s, counts.get(s) ?? 0])) as Record<JobState, number>;
  return { jobs, queueDepth: await queueSize(ctx.boss) };
}
