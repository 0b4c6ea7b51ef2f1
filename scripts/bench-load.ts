// Many watchers at once on loopback: a child process runs the service
// (embedded Postgres in a temp dir, REST + gRPC, an in-process worker with the
// tests' fast engine, so running jobs emit progress events many times a
// second); this process holds --sse Server-Sent Events watchers and --grpc
// WatchJob streams on those running jobs for --seconds while new jobs keep
// being submitted and GET /v1/jobs/:id is timed. Then the jobs are cancelled,
// each watcher's stream runs to its end, and every watcher's events are
// compared with the job's event log: lost and out-of-order counts must be 0.
// Prints the service's memory (RSS, heap) over time and a final JSON line.
//
//   npm run bench:load -- [--seconds 60] [--sse 1000] [--grpc 200] [--jobs 20] [--step-ms 20] [--submit-rate 5]
import { spawn } from 'node:child_process';
import { execSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface ChildInfo {
  restUrl: string;
  grpcAddress: string;
  key: string;
  pid: number;
}
interface MemSample {
  t: number;
  rss: number;
  heapUsed: number;
}

// ---------------------------------------------------------------- child: the service
async function child(stepMs: number, jobs: number): Promise<void> {
  const { chmod, mkdtemp, rm } = await import('node:fs/promises');
  const { loadConfig } = await import('../src/runtime/config.js');
  const { startDatabase } = await import('../src/runtime/postgres.js');
  const { openService, createApiKey } = await import('../src/service/index.js');
  const { startRestServer } = await import('../src/api/rest/index.js');
  const { startGrpcServer } = await import('../src/api/grpc/server.js');
  const { makeTestEngine } = await import('../test/integration/fixtures/test-engine.js');

  const dir = await mkdtemp(join(tmpdir(), 'ticketsmith-load-'));
  await chmod(dir, 0o755);
  const db = await startDatabase({ dataDir: join(dir, 'pg'), ephemeral: true });
  // One key drives all the load: its rate limit would measure the limiter, not the service.
  // (and its tenant caps would hold the long jobs in the queue).
  const config = loadConfig({ TICKETSMITH_DATA_DIR: dir, DATABASE_URL: db.url, TICKETSMITH_RATE_LIMIT: '0', TICKETSMITH_TENANT_MAX_RUNNING: '1000', TICKETSMITH_TENANT_MAX_QUEUED: '100000' });
  const rt = await openService({
    config,
    database: { url: db.url },
    worker: { concurrency: jobs, progressIntervalMs: 100, pollSeconds: 0.5, heartbeatSeconds: 5 },
    runner: makeTestEngine({ stepMs }),
  });
  const rest = await startRestServer(rt, { port: 0, sseHeartbeatMs: 5_000 });
  const grpc = await startGrpcServer(rt, { port: 0 });
  const { key } = await createApiKey(rt.ctx, 'load');
  const info: ChildInfo = { restUrl: rest.url, grpcAddress: `127.0.0.1:${grpc.port}`, key, pid: process.pid };
  process.stdout.write(`${JSON.stringify(info)}\n`);
  const t0 = Date.now();
  const mem = setInterval(() => {
    const m = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ t: (Date.now() - t0) / 1000, rss: m.rss, heapUsed: m.heapUsed } satisfies MemSample)}\n`);
  }, 1_000);
  // The parent may be gone (Ctrl-C): a closed pipe must not end the service mid-stop.
  process.stdout.on('error', () => clearInterval(mem));
  const stop = async () => {
    clearInterval(mem);
    await Promise.all([rest.stop(500), grpc.stop()]);
    await rt.stop();
    await db.stop();
    await rm(dir, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

// ---------------------------------------------------------------- parent: the load
interface Watcher {
  jobId: string;
  ids: number[];
  ended: boolean;
  error: string | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function parent(opts: { seconds: number; sse: number; grpc: number; jobs: number; stepMs: number; submitRate: number }): Promise<void> {
  const { parseSse } = await import('../src/client/sse.js');
  const { TicketsmithGrpcClient } = await import('../src/client/grpc.js');
  const fdLimit = Number(execSync('ulimit -n', { shell: '/bin/bash' }).toString().trim());
  // Each SSE watcher is a socket here and one in the child; keep well inside the limit.
  const sse = Math.min(opts.sse, Math.max(0, Math.floor((fdLimit - 200) / 1.1)));
  if (sse < opts.sse) process.stdout.write(`note: ulimit -n is ${fdLimit}; holding ${sse} SSE watchers instead of ${opts.sse}\n`);

  const self = fileURLToPath(import.meta.url);
  const proc = spawn(process.execPath, ['--import', 'tsx', self, '--child', '--step-ms', String(opts.stepMs), '--jobs', String(opts.jobs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
  });
  // Whatever ends this process (an error included) takes the service with it: SIGTERM runs its stop.
  process.on('exit', () => {
    if (proc.exitCode === null) proc.kill('SIGTERM');
  });
  const lines = createInterface({ input: proc.stdout! });
  const mem: MemSample[] = [];
  const info = await new Promise<ChildInfo>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`service exited (${code}) before it was ready`)));
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as ChildInfo | MemSample;
      if ('restUrl' in msg) resolve(msg);
      else mem.push(msg);
    });
  });
  const auth = { authorization: `Bearer ${info.key}` };
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(info.restUrl + path, { method, headers: { ...auth, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<Record<string, unknown>>;
  };

  // Long jobs that run for the whole measurement (cancelled at the end).
  const long = { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 100, iterations: 500, controls: 'none' };
  const jobIds: string[] = [];
  for (let i = 0; i < opts.jobs; i++) jobIds.push(((await api('POST', '/v1/jobs', { ...long, seed: i })) as { id: string }).id);
  for (const id of jobIds) {
    for (let i = 0; i < 200 && ((await api('GET', `/v1/jobs/${id}`)) as { status: string }).status !== 'running'; i++) await sleep(100);
  }
  process.stdout.write(`${opts.jobs} jobs running; opening ${sse} SSE and ${opts.grpc} gRPC watchers\n`);

  const watchers: Watcher[] = [];
  const sseWatch = async (w: Watcher) => {
    try {
      const res = await fetch(`${info.restUrl}/v1/jobs/${w.jobId}/events`, { headers: { ...auth, accept: 'text/event-stream' } });
      if (res.status !== 200 || !res.body) throw new Error(`status ${res.status}`);
      for await (const m of parseSse(res.body)) {
        if (m.event === 'end') {
          w.ended = true;
          break;
        }
        if (m.event === 'error') throw new Error(m.data);
        if (m.id !== null) w.ids.push(Number(m.id));
      }
    } catch (e) {
      w.error = (e as Error).message;
    }
  };
  const grpcClients = Array.from({ length: Math.max(1, Math.ceil(opts.grpc / 50)) }, () => new TicketsmithGrpcClient({ address: info.grpcAddress, apiKey: info.key }));
  const grpcWatch = async (w: Watcher, client: InstanceType<typeof TicketsmithGrpcClient>) => {
    try {
      for await (const e of client.watchJob(w.jobId)) w.ids.push(Number(e.id));
      w.ended = true;
    } catch (e) {
      w.error = (e as Error).message;
    }
  };
  const running: Promise<void>[] = [];
  for (let i = 0; i < sse; i++) {
    const w: Watcher = { jobId: jobIds[i % jobIds.length]!, ids: [], ended: false, error: null };
    watchers.push(w);
    running.push(sseWatch(w));
    if (i % 100 === 99) await sleep(50);
  }
  for (let i = 0; i < opts.grpc; i++) {
    const w: Watcher = { jobId: jobIds[i % jobIds.length]!, ids: [], ended: false, error: null };
    watchers.push(w);
    running.push(grpcWatch(w, grpcClients[i % grpcClients.length]!));
  }

  // Load: submissions and timed reads, until the time is up.
  const start = Date.now();
  const until = start + opts.seconds * 1000;
  const latencies: number[] = [];
  let submitted = 0;
  const submitter = (async () => {
    while (Date.now() < until) {
      await api('POST', '/v1/jobs', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 5, seed: 10_000 + submitted });
      submitted++;
      await sleep(1000 / opts.submitRate);
    }
  })();
  // Reads at a fixed pace (10/s), each timed on its own: a slow answer does not thin out the sample.
  const reader = (async () => {
    const pending: Promise<void>[] = [];
    for (let i = 0; Date.now() < until; i++) {
      const t = performance.now();
      pending.push(api('GET', `/v1/jobs/${jobIds[i % jobIds.length]}`).then(() => void latencies.push(performance.now() - t)));
      await sleep(100);
    }
    await Promise.all(pending);
  })();
  let lastPrint = 0;
  while (Date.now() < until) {
    await sleep(500);
    if (Date.now() - lastPrint >= 5_000 && mem.length > 0) {
      lastPrint = Date.now();
      const m = mem.at(-1)!;
      const received = watchers.reduce((n, w) => n + w.ids.length, 0);
      process.stdout.write(`t=${((Date.now() - start) / 1000).toFixed(0)}s service rss=${(m.rss / 2 ** 20).toFixed(0)} MiB heap=${(m.heapUsed / 2 ** 20).toFixed(0)} MiB events delivered=${received} errors=${watchers.filter((w) => w.error).length}\n`);
    }
  }
  await Promise.all([submitter, reader]);

  // Finish: cancel the long jobs; every watcher then gets the rest of its job's events and an end.
  for (const id of jobIds) await api('POST', `/v1/jobs/${id}/cancel`);
  const drainDeadline = Date.now() + 120_000;
  while (watchers.some((w) => !w.ended && !w.error) && Date.now() < drainDeadline) await sleep(250);

  const logs = new Map<string, number[]>();
  for (const id of jobIds) {
    const ids: number[] = [];
    for (let after = 0; ; ) {
      const page = (await (await fetch(`${info.restUrl}/v1/jobs/${id}/events?after=${after}&limit=1000`, { headers: { ...auth, accept: 'application/json' } })).json()) as { items: Array<{ id: number | string }> };
      if (page.items.length === 0) break;
      for (const e of page.items) ids.push(Number(e.id));
      after = ids.at(-1)!;
    }
    logs.set(id, ids);
  }
  let lost = 0;
  let outOfOrder = 0;
  let delivered = 0;
  for (const w of watchers) {
    delivered += w.ids.length;
    for (let i = 1; i < w.ids.length; i++) if (w.ids[i]! <= w.ids[i - 1]!) outOfOrder++;
    const got = new Set(w.ids);
    for (const id of logs.get(w.jobId)!) if (!got.has(id)) lost++;
  }
  latencies.sort((a, b) => a - b);
  const peak = mem.reduce((p, m) => (m.rss > p.rss ? m : p), mem[0] ?? { t: 0, rss: 0, heapUsed: 0 });
  const result = {
    seconds: opts.seconds,
    sseWatchers: sse,
    grpcWatchers: opts.grpc,
    runningJobs: opts.jobs,
    submitted,
    eventsInLogs: [...logs.values()].reduce((n, l) => n + l.length, 0),
    eventsDelivered: delivered,
    lost,
    outOfOrder,
    watcherErrors: watchers.filter((w) => w.error).length,
    watchersNotEnded: watchers.filter((w) => !w.ended).length,
    getJobRequests: latencies.length,
    getJobP50Ms: Number(percentile(latencies, 50).toFixed(1)),
    getJobP99Ms: Number(percentile(latencies, 99).toFixed(1)),
    serviceRssMiB: { first: Number(((mem[0]?.rss ?? 0) / 2 ** 20).toFixed(0)), peak: Number((peak.rss / 2 ** 20).toFixed(0)), last: Number(((mem.at(-1)?.rss ?? 0) / 2 ** 20).toFixed(0)) },
    serviceHeapMiB: { first: Number(((mem[0]?.heapUsed ?? 0) / 2 ** 20).toFixed(0)), last: Number(((mem.at(-1)?.heapUsed ?? 0) / 2 ** 20).toFixed(0)) },
    fdLimit,
  };
  const firstError = watchers.find((w) => w.error)?.error;
  if (firstError) process.stdout.write(`first watcher error: ${firstError}\n`);
  process.stdout.write(`memory over time (s: RSS MiB / heap MiB): ${mem.filter((_, i) => i % 5 === 0).map((m) => `${m.t.toFixed(0)}: ${(m.rss / 2 ** 20).toFixed(0)}/${(m.heapUsed / 2 ** 20).toFixed(0)}`).join(', ')}\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  for (const c of grpcClients) c.close();
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  process.exit(result.lost === 0 && result.outOfOrder === 0 ? 0 : 1);
}

const { values } = parseArgs({
  options: {
    child: { type: 'boolean' },
    seconds: { type: 'string', default: '60' },
    sse: { type: 'string', default: '1000' },
    grpc: { type: 'string', default: '200' },
    jobs: { type: 'string', default: '20' },
    'step-ms': { type: 'string', default: '20' },
    'submit-rate': { type: 'string', default: '5' },
  },
});
if (values.child) await child(Number(values['step-ms']), Number(values.jobs));
else
  await parent({
    seconds: Number(values.seconds),
    sse: Number(values.sse),
    grpc: Number(values.grpc),
    jobs: Number(values.jobs),
    stepMs: Number(values['step-ms']),
    submitRate: Number(values['submit-rate']),
  });
