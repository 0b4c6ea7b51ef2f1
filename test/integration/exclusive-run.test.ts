// Two worker processes on one database and many short jobs: no job is ever
// run by two workers at once, and every job runs to completion exactly once,
// also when one worker is SIGKILLed in the middle and the other requeues its
// jobs. The test engine appends `start`/`end` marks (job, worker, pid) to one
// file with O_APPEND, so the file's line order is the order things happened;
// the test appends `killed <worker>` once the killed process is gone.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getJob, listEvents, submitJob, type ServiceContext } from '../../src/service/index.js';
import { startChildWorker, type ChildWorker } from './fixtures/child-worker.js';
import { startTestDb, until, type TestDb } from './fixtures/harness.js';

const JOBS = 16;
let t: TestDb;
let ctx: ServiceContext;
const workers: ChildWorker[] = [];

before(async () => {
  t = await startTestDb();
  ctx = (await t.open()).ctx;
});
after(async () => {
  for (const w of workers) w.kill();
  await t?.stop();
});

interface Mark {
  kind: 'start' | 'end' | 'killed';
  job: string;
  worker: string;
}

function readMarks(file: string): Mark[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [kind, a, b] = line.split(' ');
      return kind === 'killed' ? { kind, job: '', worker: a! } : { kind: kind as 'start' | 'end', job: a!, worker: b! };
    });
}

test(`two worker processes, ${JOBS} jobs, one worker killed: never two runs of a job at once, each job completed once`, async () => {
  const marks = join(t.dir, 'marks.log');
  writeFileSync(marks, '');
  const env = (tag: string) => ({ MARKS_FILE: marks, WORKER_TAG: tag, STEP_MS: '20', WORKER_CONCURRENCY: '2', REAP_SECONDS: '0.5', LOST_DISPATCH_SECONDS: '3' });
  const a = startChildWorker(t, env('A'));
  const b = startChildWorker(t, env('B'));
  workers.push(a, b);
  await Promise.all([a.waitFor('ready'), b.waitFor('ready')]);

  const ids = new Map<string, string>();
  for (let i = 0; i < JOBS; i++) {
    const { job } = await submitJob(ctx, 'acme', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 2, iterations: 3, seed: 1000 + i });
    ids.set(`seed=${1000 + i}`, job.id);
  }

  // Kill A while it is inside a run (a start mark of A without its end).
  const running = await until(async () => {
    const open = new Map<string, string>();
    for (const m of readMarks(marks)) {
      if (m.kind === 'start') open.set(m.job, m.worker);
      else if (m.kind === 'end') open.delete(m.job);
    }
    return [...open.values()].filter((w) => w.startsWith('A/')).length > 0 ? open : null;
  }, 60_000, 'worker A inside a run');
  const aName = [...running.values()].find((w) => w.startsWith('A/'))!;
  a.kill();
  const gone = await a.exited;
  assert.equal(gone.signal, 'SIGKILL');
  appendFileSync(marks, `killed ${aName}\n`);

  for (const id of ids.values()) {
    const j = await until(async () => {
      const x = await getJob(ctx, 'acme', id);
      return x.status === 'succeeded' || x.status === 'failed' ? x : null;
    }, 60_000, `job ${id} to end`);
    assert.equal(j.status, 'succeeded', JSON.stringify(j.error));
  }

  // Replay the marks in order: at most one live run per job, one completed run per job.
  const live = new Map<string, Set<string>>();
  const ends = new Map<string, string[]>();
  const runsBy = new Map<string, number>();
  let maxAtOnce = 0;
  for (const m of readMarks(marks)) {
    if (m.kind === 'killed') {
      for (const s of live.values()) s.delete(m.worker);
      continue;
    }
    const s = live.get(m.job) ?? new Set<string>();
    live.set(m.job, s);
    if (m.kind === 'start') {
      assert.ok(!s.has(m.worker), `${m.worker} started ${m.job} twice`);
      s.add(m.worker);
      assert.equal(s.size, 1, `${m.job} run by ${[...s].join(' and ')} at once`);
      runsBy.set(m.worker.split('/')[0]!, (runsBy.get(m.worker.split('/')[0]!) ?? 0) + 1);
    } else {
      assert.ok(s.delete(m.worker), `${m.worker} ended ${m.job} without starting it`);
      ends.set(m.job, [...(ends.get(m.job) ?? []), m.worker]);
    }
    maxAtOnce = Math.max(maxAtOnce, s.size);
  }
  assert.ok((runsBy.get('A') ?? 0) > 0 && (runsBy.get('B') ?? 0) > 0, `both workers ran jobs: ${JSON.stringify([...runsBy])}`);

  // The database agrees: each round once; the jobs A held were requeued once and resumed on B.
  let rounds = 0;
  let requeued = 0;
  let redispatched = 0;
  for (const [tag, id] of ids) {
    const perIndex = await ctx.prisma.$queryRaw<{ index: number; n: bigint }[]>`
      SELECT index, count(*) AS n FROM round WHERE job_id = ${id}::uuid GROUP BY index ORDER BY index`;
    assert.deepEqual(perIndex.map((r) => [r.index, Number(r.n)]), [[0, 1], [1, 1], [2, 1]]);
    rounds += perIndex.length;
    const events = await listEvents(ctx, 'acme', id);
    const started = events.filter((e) => e.kind === 'started').length;
    const reasons = events.filter((e) => e.kind === 'requeued').map((e) => (e.payload as { reason: string }).reason);
    // A job A had claimed comes back as stale; one A had fetched but not yet claimed, as a lost dispatch (no second start).
    const stale = reasons.filter((r) => r === 'worker heartbeat stale').length;
    assert.equal(reasons.length, stale + reasons.filter((r) => r === 'queue entry lost').length, reasons.join('; '));
    assert.equal(started, 1 + stale, 'one start per claim');
    requeued += stale;
    // Each job's engine run ended once, plus once more where A finished the run but died before recording the outcome
    // (the job was then requeued and B re-ran its result step).
    const endedBy = ends.get(tag) ?? [];
    const aEnded = endedBy.filter((w) => w === aName).length;
    assert.equal(endedBy.length - (stale > 0 ? aEnded : 0), 1, `${tag} ran to completion once (ended by ${endedBy.join(', ')})`);
    redispatched += reasons.length - stale;
  }
  assert.ok(requeued >= 1, 'the killed worker had a job to give up');
  console.log(
    `exclusive run: ${JOBS} jobs, ${rounds} rounds checked, ${requeued} requeued and ${redispatched} re-dispatched after the kill, max runs of one job at once: ${maxAtOnce}`,
  );
});
