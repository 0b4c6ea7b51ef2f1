// Client verbs for scripts and CI, over the REST API with the typed client:
//   ticketsmith submit [run-spec flags]   queue a job, print its id
//   ticketsmith watch JOB_ID              follow it (Server-Sent Events) to the end
//   ticketsmith download JOB_ID           fetch the ticket, checking every sha256 (--zip: one archive)
//   ticketsmith datasets upload PATH...   upload a dataset (folder, files or one archive), print its id
// The server is --url (or TICKETSMITH_URL, default http://127.0.0.1:8080), the
// key --key (or TICKETSMITH_API_KEY). Exit codes: 0 done/succeeded, 1 the job
// or the call failed, 2 bad usage. `keys create --tenant NAME` is src/cli/keys.ts.
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { RunSpecSchema } from '../engine/spec.js';
import { ApiError, TicketsmithClient, type EventDto, type JobDto } from '../client/index.js';
import { flagHelp, flagsOf, parseFlags, UsageError } from './flags.js';
import { pct } from '../engine/report/format.js';
import { roundRows, roundsTable } from './rounds-table.js';

export { roundRows } from './rounds-table.js';

export interface VerbIo {
  out(text: string): void;
  err(text: string): void;
}

const stdio: VerbIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

const DEFAULT_URL = 'http://127.0.0.1:8080';
const CONNECTION = { url: 'string', key: 'string' } as const;

const connectionHelp = `Connection:
  --url <url>          the server (default TICKETSMITH_URL or ${DEFAULT_URL})
  --key <key>          API key (default TICKETSMITH_API_KEY)`;

export const submitUsage = () => `usage: ticketsmith submit [run-spec flags] [--watch] [--json] [--idempotency-key K]

Queues a job on the server and prints its id. --model takes a zoo name or an uploaded model's id;
--dataset a reference or a registered dataset's id.
Run-spec flags (lists are comma-separated):
${flagHelp(flagsOf(RunSpecSchema))}
Other flags:
  --idempotency-key <k>  retries with the same key return the same job
  --watch                then follow it to the end (exit code 1 unless it succeeds)
  --json                 print the job (and events with --watch) as JSON lines
${connectionHelp}
`;

export const watchUsage = () => `usage: ticketsmith watch JOB_ID [--json]

Follows a job's events until it finishes; exit code 0 when it succeeded, 1 otherwise.
  --json               print each event as a JSON line on stdout
${connectionHelp}
`;

export const downloadUsage = () => `usage: ticketsmith download JOB_ID [--out DIR] [--kind KIND] | JOB_ID --zip [--out FILE] | --artifact ID [--out DIR]

Downloads a job's artifacts of one kind (default: ticket, i.e. model.json, weights.bin, model.onnx,
mask.json, compressed.bin) into DIR (default ./<job id>), checking each file's sha256; or one artifact by id.
  --out <dir>          target directory (with --zip: the file, default ./<job id>.ticket.zip)
  --kind <kind>        ticket | round | result (default ticket)
  --zip                the job's ticket.zip instead: one archive with the model, model.onnx, the mask
                       (.json and .npz), result.json, plots and MANIFEST.json; its sha256 is verified
  --artifact <id>      one artifact instead
${connectionHelp}
`;

export const datasetsUsage = () => `usage: ticketsmith datasets upload PATH... [--json]

Uploads a dataset and prints its id; jobs then name it dataset:<id> (e.g. submit --dataset dataset:<id>).
PATH is a folder (its files are sent, sub-folders kept: an IDX set, x_train.npy..., CIFAR-10 batches,
an .npz, or an image folder of class folders), some files, or one .zip / .tar.gz / .tar archive.
The server checks it (headers, counts, label range, size caps) before storing it; the same files
again give the same id.
  --json               print the dataset as JSON
${connectionHelp}
`;

const ARCHIVE = /\.(zip|tar\.gz|tgz|tar)$/i;

/** Every regular file under `dir` (hidden ones skipped), named relative to it with '/'. */
async function folderFiles(dir: string): Promise<{ name: string; bytes: Uint8Array }[]> {
  const out: { name: string; bytes: Uint8Array }[] = [];
  const walk = async (at: string): Promise<void> => {
    const entries = await readdir(at, { withFileTypes: true });
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const path = join(at, e.name);
      if (e.isDirectory()) await walk(path);
      else if (e.isFile()) out.push({ name: relative(dir, path).split(sep).join('/'), bytes: await readFile(path) });
    }
  };
  await walk(dir);
  return out;
}

function client(options: Record<string, string | boolean>): TicketsmithClient {
  const url = String(options.url ?? process.env.TICKETSMITH_URL ?? DEFAULT_URL);
  const key = options.key !== undefined ? String(options.key) : process.env.TICKETSMITH_API_KEY;
  if (!key) throw new UsageError('an API key is needed: --key or TICKETSMITH_API_KEY (create one with `ticketsmith keys create --tenant NAME`)');
  return new TicketsmithClient({ baseUrl: url, apiKey: key });
}

/** Runs a verb body, turning usage and API errors into exit codes and one clear line. */
async function run(io: VerbIo, usage: () => string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}\n\n${usage()}`);
      return 2;
    }
    if (e instanceof ApiError) {
      io.err(`error: ${e.code}${e.field ? ` (${e.field})` : ''}: ${e.message}\n`);
      return 1;
    }
    // fetch's network failures: a TypeError whose cause says what happened.
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    if (e instanceof TypeError && cause) {
      io.err(`error: cannot reach the server (${cause.code ?? cause.message ?? 'network error'}); is \`ticketsmith serve\` running?\n`);
      return 1;
    }
    throw e;
  }
}

type Payload = Record<string, unknown>;

/** One human line per event (progress is throttled by the caller). */
export function describeEvent(e: EventDto): string | null {
  const p = (e.payload ?? {}) as Payload;
  switch (e.kind) {
    case 'queued':
      return `queued as ${String(p.runName ?? '')}`;
    case 'started':
      return `started (attempt ${String(p.attempt)}, worker ${String(p.workerId)})`;
    case 'run-start':
      return `running on ${String(p.backend)}: rounds 0-${String(p.rounds)}${Number(p.resumedFrom) > 0 ? `, resuming at round ${String(p.resumedFrom)}` : ''}`;
    case 'round-start':
      return `round ${String(p.round)}: ${pct(p.density)} of weights remain`;
    case 'progress': {
      const eta = typeof p.etaSeconds === 'number' && Number.isFinite(p.etaSeconds) ? ` eta ${Math.ceil(p.etaSeconds)}s` : '';
      return `round ${String(p.round)} ${String(p.trial).padEnd(7)} ${String(p.step)}/${String(p.totalSteps)} ${Number(p.examplesPerSecond ?? 0).toFixed(0)} ex/s${eta}`;
    }
    case 'trial-end': {
      const m = (p.metrics ?? {}) as Payload;
      return `round ${String(p.round)} ${String(p.trial)}: test accuracy ${pct(m.finalTestAccuracy)}, early stop at ${String(m.earlyStopIteration)}`;
    }
    case 'round':
      return `round ${String(p.round)} committed: ${pct(p.density)} weights, test accuracy ${pct(p.testAccuracy)}`;
    case 'result':
      return `result: ${String((p.verdict as Payload | undefined)?.summary ?? '')}`;
    case 'cancel-requested':
      return 'cancel requested';
    case 'requeued':
      return `requeued: ${String(p.reason ?? '')}`;
    case 'finished': {
      const err = p.error as Payload | undefined;
      return `finished: ${String(p.status)}${err ? ` (${String(err.code)}: ${String(err.message)})` : ''}`;
    }
    default:
      return null;
  }
}

/** Follows a job to its end; 0 when it succeeded. */
async function follow(c: TicketsmithClient, jobId: string, json: boolean, io: VerbIo): Promise<number> {
  let lastProgress = 0;
  const job: JobDto = await c.waitForJob(jobId, {
    onEvent: (e) => {
      if (json) {
        io.out(`${JSON.stringify(e)}\n`);
        return;
      }
      if (e.kind === 'progress') {
        const now = Date.now();
        if (now - lastProgress < 2000) return;
        lastProgress = now;
      }
      const line = describeEvent(e);
      if (line) io.err(`${line}\n`);
    },
  });
  if (!json) {
    const rounds = await c.listRounds(jobId);
    if (rounds.length > 0) io.err(`\n${roundsTable(roundRows(rounds))}\n\n`);
    io.err(`job ${jobId} ${job.status}${job.error ? `: ${job.error.code}: ${job.error.message}` : ''}\n`);
  }
  return job.status === 'succeeded' ? 0 : 1;
}

export async function submitCommand(argv: string[], io: VerbIo = stdio): Promise<number> {
  return run(io, submitUsage, async () => {
    const { spec, options, positional } = parseFlags(argv, flagsOf(RunSpecSchema), { ...CONNECTION, 'idempotency-key': 'string', watch: 'boolean', json: 'boolean' });
    if (positional.length > 0) throw new UsageError(`unexpected argument '${positional[0]}'`);
    const c = client(options);
    const idempotencyKey = options['idempotency-key'] === undefined ? undefined : String(options['idempotency-key']);
    const { job, created } = await c.submitJob(spec, { idempotencyKey });
    if (options.json === true) io.out(`${JSON.stringify(job)}\n`);
    else {
      io.out(`${job.id}\n`);
      io.err(`${created ? 'queued' : 'already submitted with this idempotency key'}: job ${job.id} (${job.runName}); follow it with \`ticketsmith watch ${job.id}\`\n`);
    }
    if (options.watch === true) return follow(c, job.id, options.json === true, io);
    return 0;
  });
}

export async function watchCommand(argv: string[], io: VerbIo = stdio): Promise<number> {
  return run(io, watchUsage, async () => {
    const { options, positional } = parseFlags(argv, [], { ...CONNECTION, json: 'boolean' });
    if (positional.length !== 1) throw new UsageError('give exactly one JOB_ID');
    return follow(client(options), positional[0]!, options.json === true, io);
  });
}

/** Writes under `dir` without letting an artifact name climb out of it. */
async function save(dir: string, name: string, bytes: Uint8Array): Promise<string> {
  const target = resolve(dir, name);
  if (!target.startsWith(resolve(dir) + sep)) throw new Error(`artifact name '${name}' would leave ${dir}`);
  await mkdir(dirname(target), { recursive: true });
  await writeFile(`${target}.part`, bytes);
  await rename(`${target}.part`, target);
  return target;
}

export async function downloadCommand(argv: string[], io: VerbIo = stdio): Promise<number> {
  return run(io, downloadUsage, async () => {
    const { options, positional } = parseFlags(argv, [], { ...CONNECTION, out: 'string', kind: 'string', artifact: 'string', zip: 'boolean' });
    const c = client(options);
    if (options.zip === true) {
      if (positional.length !== 1 || options.artifact !== undefined || options.kind !== undefined) throw new UsageError('--zip takes exactly one JOB_ID (no --artifact or --kind)');
      const jobId = positional[0]!;
      const { bytes, sha256 } = await c.downloadTicketZipVerified(jobId);
      const out = resolve(String(options.out ?? `${jobId}.ticket.zip`));
      const path = await save(dirname(out), basename(out), bytes);
      io.out(`${path}\n`);
      io.err(`${bytes.length} bytes, sha256 ${sha256} verified\n`);
      return 0;
    }
    if (options.artifact !== undefined) {
      if (positional.length > 0) throw new UsageError('give either JOB_ID or --artifact');
      const id = String(options.artifact);
      const { bytes, sha256, filename } = await c.downloadVerified(id);
      const path = await save(String(options.out ?? '.'), basename(filename ?? id), bytes);
      io.out(`${path}\n`);
      io.err(`${bytes.length} bytes, sha256 ${sha256} verified\n`);
      return 0;
    }
    if (positional.length !== 1) throw new UsageError('give exactly one JOB_ID (or --artifact ID)');
    const jobId = positional[0]!;
    const kind = String(options.kind ?? 'ticket');
    const artifacts = await c.listArtifacts(jobId, { kind });
    if (artifacts.length === 0) {
      const job = await c.getJob(jobId);
      io.err(`error: job ${jobId} is ${job.status} and has no '${kind}' artifacts${job.status === 'succeeded' ? '' : ' (yet)'}\n`);
      return 1;
    }
    const dir = String(options.out ?? jobId);
    for (const a of artifacts) {
      const { bytes } = await c.downloadVerified(a.id, a.sha256);
      // `ticket/model.json` lands as DIR/model.json: the folder is the ticket.
      const name = kind === 'ticket' ? a.name.replace(/^ticket\//, '') : a.name;
      io.out(`${await save(dir, name, bytes)}\n`);
    }
    io.err(`${artifacts.length} file(s) in ${dir}, every sha256 verified\n`);
    return 0;
  });
}


export async function datasetsCommand(argv: string[], io: VerbIo = stdio): Promise<number> {
  return run(io, datasetsUsage, async () => {
    const [verb, ...rest] = argv;
    if (verb !== 'upload') throw new UsageError(verb === undefined ? 'give a subcommand: upload' : `unknown subcommand '${verb}' (known: upload)`);
    const { options, positional } = parseFlags(rest, [], { ...CONNECTION, json: 'boolean' });
    if (positional.length === 0) throw new UsageError('give a folder, the dataset files, or one archive');
    const c = client(options);
    const kinds = await Promise.all(positional.map(async (p) => (await stat(p).catch(() => null))?.isDirectory() ?? null));
    const missing = positional.find((_p, i) => kinds[i] === null);
    if (missing !== undefined) throw new UsageError(`no such file or folder: ${missing}`);
    let input: { files: { name: string; bytes: Uint8Array }[] } | { archive: Uint8Array; filename: string };
    if (positional.length === 1 && kinds[0] === true) input = { files: await folderFiles(positional[0]!) };
    else if (positional.length === 1 && ARCHIVE.test(positional[0]!)) input = { archive: await readFile(positional[0]!), filename: basename(positional[0]!) };
    else if (kinds.some((k) => k === true)) throw new UsageError('give one folder, or files (not folders and files together)');
    else input = { files: await Promise.all(positional.map(async (p) => ({ name: basename(p), bytes: await readFile(p) }))) };
    if ('files' in input && input.files.length === 0) throw new UsageError(`${positional[0]}: the folder has no files`);
    const dataset = await c.uploadDataset(input);
    if (options.json === true) io.out(`${JSON.stringify(dataset)}\n`);
    else {
      io.out(`${dataset.id}\n`);
      const shapes = dataset.shapes as { inputShape?: number[]; numClasses?: number; counts?: { train?: number; test?: number } };
      io.err(
        `dataset ${dataset.id} (${dataset.format}): inputs [${(shapes.inputShape ?? []).join(', ')}], ${shapes.numClasses ?? '?'} classes, ` +
          `${shapes.counts?.train ?? '?'} train / ${shapes.counts?.test ?? '?'} test examples; submit with --dataset dataset:${dataset.id}\n`,
      );
    }
    return 0;
  });
}
