// Kill points: a worker process SIGKILLs itself (TICKETSMITH_FAULT_POINT) at
// each named point of a multi-round job's write path: while a blob is being
// written, between blob and rows, inside and just after the round
// transaction, during the result (ticket export), claim, heartbeat, event and
// finish. After each kill a fresh worker (a new service runtime, which sweeps
// dead writers' temp files at start) finishes the job. Then: every job
// succeeded, every round index exists exactly once with one `round` event,
// every artifact row's sha256 matches its bytes, and no temp file is left.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FaultPointName } from '../../src/runtime/faults.js';
import { getJob, listEvents, submitJob, type ServiceContext } from '../../src/service/index.js';
import { sha256Hex } from '../../src/store/blobs.js';
import { startChildWorker } from './fixtures/child-worker.js';
import { makeTestEngine } from './fixtures/test-engine.js';
import { startTestDb, until, type TestDb } from './fixtures/harness.js';

const ROUNDS = 3;
const ARTIFACT_BYTES = 64 * 1024;

// [point, n]: the n-th hit in the dying process. Per job: 1 state blob, 2 blobs per round (4 rounds), 3 ticket blobs.
const KILLS: Array<[FaultPointName, number]> = [
  ['claim.in-tx', 1],
  ['claim.after-commit', 1],
  ['heartbeat.before', 2],
  ['heartbeat.after', 1],
  ['event.in-tx', 1],
  ['event.in-tx', 6],
  ['blob.temp-written', 1],
  ['blob.temp-written', 3],
  ['blob.temp-written', 8],
  ['blob.after-rename', 1],
  ['blob.after-rename', 4],
  ['round.blobs-stored', 1],
  ['round.blobs-stored', 3],
  ['round.in-tx', 1],
  ['round.in-tx', 4],
  ['round.before-commit', 2],
  ['round.after-commit', 1],
  ['round.after-commit', 4],
  ['result.blobs-stored', 1],
  ['result.in-tx', 1],
  ['result.after-commit', 1],
  ['finish.in-tx', 1],
];

let t: TestDb;
let ctx: ServiceContext;
const children: Array<() => void> = [];

before(async () => {
  t = await startTestDb();
  ctx = (await t.open()).ctx;
});
after(async () => {
  for (const kill of children) kill();
  await t?.stop();
});

const tmpFiles = async () => readdir(join(t.config.blobDir, '.tmp')).catch(() => [] as string[]);

test(`a worker SIGKILLed at ${KILLS.length} kill points: a fresh worker finishes every job, nothing half-recorded`, async () => {
  const jobs: string[] = [];
  const survived: string[] = [];
  // The next case's worker loads its code while the current case runs (process start is most of a case's time).
  const spawnFor = ([point, n]: [FaultPointName, number]) => {
    const w = startChildWorker(
      t,
      { TICKETSMITH_FAULT_POINT: `${point}:${n}`, STEP_MS: '25', ARTIFACT_BYTES: String(ARTIFACT_BYTES), HEARTBEAT_SECONDS: '0.15' },
      { gated: true },
    );
    children.push(w.kill);
    return w;
  };
  let next = spawnFor(KILLS[0]!);
  for (const [i, [point, n]] of KILLS.entries()) {
    const label = `${point}:${n}`;
    // A distinct seed per job: distinct blob contents, so every job really writes (and renames) its blobs.
    const { job } = await submitJob(ctx, 'acme', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: ROUNDS, iterations: 4, seed: i + 1 });
    jobs.push(job.id);
    const w = next;
    await w.waitFor('loaded');
    w.go();
    if (i + 1 < KILLS.length) next = spawnFor(KILLS[i + 1]!);
    // Either the worker kills itself, or the job ends without the point firing (a test bug: fail, do not skip).
    const ended = await Promise.race([
      w.exited.then((x) => ({ kind: 'exit' as const, ...x })),
      until(async () => {
        const j = await getJob(ctx, 'acme', job.id);
        return j.status === 'succeeded' || j.status === 'failed' ? j : null;
      }, 30_000, `${label} to fire`).then((j) => ({ kind: 'job' as const, status: j.status })),
    ]);
    if (ended.kind === 'job') {
      w.kill();
      assert.fail(`kill point ${label} was never reached: job ${ended.status} with the worker alive`);
    }
    assert.equal(ended.signal, 'SIGKILL', `${label}: the worker died by its own SIGKILL (exit ${ended.code})`);
    if (point === 'blob.temp-written') assert.ok((await tmpFiles()).length > 0, `${label}: the dead writer left its temp file`);

    // A fresh worker: a new runtime (sweep at start) whose reaper sees the dead worker's heartbeat go stale.
    const rt = await t.open({
      worker: { heartbeatSeconds: 0.15, staleSeconds: 0.6, reapSeconds: 0.2, pollSeconds: 0.2, progressIntervalMs: 100, lostDispatchSeconds: 0.6 },
      runner: makeTestEngine({ stepMs: 1, artifactBytes: ARTIFACT_BYTES }),
    });
    const done = await until(async () => {
      const j = await getJob(ctx, 'acme', job.id);
      return j.status === 'succeeded' || j.status === 'failed' ? j : null;
    }, 30_000, `job after ${label} to finish on a fresh worker`);
    await rt.stop();
    assert.equal(done.status, 'succeeded', `${label}: ${JSON.stringify(done.error)}`);
    assert.deepEqual(await tmpFiles(), [], `${label}: no temp files left in the blob folder`);
    survived.push(label);
  }

  // Every job, every round, every artifact.
  let rounds = 0;
  let artifacts = 0;
  for (const [i, id] of jobs.entries()) {
    const label = `${KILLS[i]![0]}:${KILLS[i]![1]}`;
    const perIndex = await ctx.prisma.$queryRaw<{ index: number; n: bigint }[]>`
      SELECT index, count(*) AS n FROM round WHERE job_id = ${id}::uuid GROUP BY index ORDER BY index`;
    assert.deepEqual(perIndex.map((r) => [r.index, Number(r.n)]), [[0, 1], [1, 1], [2, 1], [3, 1]], `${label}: each round once`);
    rounds += perIndex.length;
    const rows = await ctx.prisma.artifact.findMany({ where: { jobId: id }, include: { round: { select: { index: true } } } });
    const roundRows = rows.filter((a) => a.kind === 'round');
    assert.equal(roundRows.length, 2 * (ROUNDS + 1), `${label}: two files per round`);
    for (const a of roundRows) assert.ok(a.name.startsWith(`round_${a.round!.index}/`), `${label}: ${a.name} hangs on its round`);
    assert.deepEqual(rows.filter((a) => a.kind === 'ticket').map((a) => a.name).sort(), ['ticket/mask.json', 'ticket/model.json', 'ticket/weights.bin']);
    for (const a of rows) {
      const bytes = await ctx.blobs.get(a.storageKey);
      assert.equal(sha256Hex(bytes), a.sha256, `${label}: ${a.name} bytes match their sha256`);
      assert.equal(BigInt(bytes.byteLength), a.sizeBytes, `${label}: ${a.name} size`);
      artifacts += 1;
    }
    const events = await listEvents(ctx, 'acme', id);
    const roundEvents = events.filter((e) => e.kind === 'round').map((e) => (e.payload as { round: number }).round);
    assert.deepEqual(roundEvents, [0, 1, 2, 3], `${label}: one round-committed event per round, in order`);
    assert.equal(events.filter((e) => e.kind === 'finished').length, 1, `${label}: finished once`);
    assert.equal(events.at(-1)!.kind, 'finished');
  }
  assert.deepEqual(await tmpFiles(), []);
  console.log(`kill points survived: ${survived.length}/${KILLS.length}; jobs: ${jobs.length}; rounds checked: ${rounds}; artifacts checked: ${artifacts}`);
  assert.equal(survived.length, KILLS.length);
});
