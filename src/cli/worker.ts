// `ticketsmith worker`: a worker process and nothing else. Any number of them,
// on any number of machines, share one PostgreSQL (DATABASE_URL) with the API
// (`serve --no-worker`); each job goes to one worker at a time. SIGINT/SIGTERM
// hands running jobs back to the queue before exiting.
import { parseArgs } from 'node:util';
import { UsageError } from './argv.js';
import { installCrashGuard } from '../runtime/crash-guard.js';
import { childLogger } from '../runtime/logger.js';
import type { MetricsServer } from '../runtime/metrics-server.js';
import { jobGauges, openService, stopOnSignals } from '../service/index.js';

export const workerUsage = () => `usage: ticketsmith worker [flags]

Runs queued compression jobs from the database in DATABASE_URL (or the embedded one under .data/).
Serves its own /metrics and /healthz on TICKETSMITH_WORKER_METRICS_HOST:TICKETSMITH_WORKER_METRICS_PORT
(default 127.0.0.1:9464; port 0: off).
  --concurrency <n>    jobs run at once (default TICKETSMITH_WORKER_CONCURRENCY or 1)
  --id <name>          worker id in logs and job records (default host-pid-random)
`;

export async function workerCommand(argv: string[]): Promise<number> {
  let values: { concurrency?: string; id?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: { concurrency: { type: 'string' }, id: { type: 'string' } }, strict: true }));
  } catch (e) {
    // main.ts prints it with the usage line (not the whole help), exit 2.
    throw new UsageError((e as Error).message);
  }
  let concurrency: number | undefined;
  if (values.concurrency !== undefined) {
    concurrency = Number(values.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
      process.stderr.write('error: --concurrency: an integer from 1 to 64\n');
      return 2;
    }
  }
  installCrashGuard(childLogger({ module: 'worker' }));
  const rt = await openService({ worker: { ...(concurrency ? { concurrency } : {}), ...(values.id ? { id: values.id } : {}) } });
  process.stdout.write(`worker ${rt.worker?.id ?? '?'} running on ${rt.db.embedded ? 'the embedded PostgreSQL' : 'DATABASE_URL'}; Ctrl-C stops it.\n`);
  const { host, port } = rt.ctx.config.workerMetrics;
  let metrics: MetricsServer | null = null;
  if (port !== 0) {
    // Loaded here, not at the top: the CLI's other verbs should not pay for prom-client.
    const [{ registerJobSource }, { startMetricsServer }] = await Promise.all([import('../runtime/metrics.js'), import('../runtime/metrics-server.js')]);
    registerJobSource(() => jobGauges(rt.ctx));
    try {
      metrics = await startMetricsServer({ host, port, healthy: () => rt.db.health?.().state !== 'failed' });
      process.stdout.write(`worker metrics on ${metrics.url}/metrics (health: ${metrics.url}/healthz)\n`);
    } catch (e) {
      // A taken port must not stop the jobs: the worker runs on, unobserved, and says so.
      childLogger({ module: 'worker' }).error({ err: e, host, port }, 'worker metrics server could not start; set TICKETSMITH_WORKER_METRICS_PORT (0: off)');
    }
  }
  stopOnSignals(rt, async () => {
    await metrics?.stop();
  });
  return new Promise<number>(() => {});
}
