// The resource verbs over REST, one small table of subcommands each:
//   ticketsmith models   upload|list|get|delete
//   ticketsmith datasets add|upload|list|get|delete
//   ticketsmith jobs     submit|list|get|cancel|rounds|watch|delete
//   ticketsmith artifacts list
// Human output is a table or indented JSON on stdout (ids alone where a
// script captures one); --json prints one JSON value per line instead.
// Lists take --limit/--cursor and say on stderr how to get the next page.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import type { JobState, Page, TicketsmithClient } from '../client/index.js';
import { parseFlags, UsageError } from './argv.js';
import { bytes, client, CONNECTION, connectionHelp, runVerb, stdio, textTable, type VerbIo } from './client-common.js';
import { watchCommand } from './job-verbs.js';
import { roundRows, roundsTable } from './rounds-table.js';

type Options = Record<string, string | boolean>;

interface Sub {
  /** The usage line, after `ticketsmith <resource> `. */
  usage: string;
  summary: string;
  run(argv: string[], io: VerbIo): Promise<number>;
}

const JOB_STATES: readonly JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const PAGE = { limit: 'string', cursor: 'string' } as const;
const ARCHIVE = /\.(zip|tar\.gz|tgz|tar)$/i;

function resourceUsage(resource: string, subs: Record<string, Sub>, more = ''): string {
  const lines = Object.values(subs).map((s) => `  ticketsmith ${resource} ${s.usage}`);
  const summaries = Object.entries(subs).map(([name, s]) => `  ${name.padEnd(8)} ${s.summary}`);
  return `usage:\n${lines.join('\n')}\n\n${summaries.join('\n')}\n${more}Output:\n  --json               one JSON value per line (lists: {"items","nextCursor"})\n${connectionHelp}\n`;
}

/** Dispatches `<resource> <sub> ...`; a mistake prints the one usage line that applies. */
async function dispatch(resource: string, subs: Record<string, Sub>, usage: () => string, argv: string[], io: VerbIo): Promise<number> {
  const [name, ...rest] = argv;
  const sub = name === undefined ? undefined : subs[name];
  if (!sub) {
    const known = Object.keys(subs).join('|');
    return runVerb(io, usage, resource, async () => {
      throw new UsageError(name === undefined ? `give a subcommand: ${known}` : `unknown subcommand '${name}' (known: ${known})`);
    });
  }
  return sub.run(rest, io);
}

/** Parses a subcommand's flags and positionals, checking how many ids it takes. */
function parseSub(argv: string[], extra: Record<string, 'boolean' | 'string'>, positionals: { min: number; max: number; what: string }) {
  const { options, positional } = parseFlags(argv, [], { ...CONNECTION, json: 'boolean', ...extra });
  if (positional.length < positionals.min || positional.length > positionals.max) {
    throw new UsageError(positionals.min === positionals.max && positionals.min === 1 ? `give exactly one ${positionals.what}` : positionals.max === 0 ? `unexpected argument '${positional[0]}'` : `give ${positionals.what}`);
  }
  return { options, positional };
}

function pageQuery(options: Options): { limit?: number; cursor?: string } {
  const q: { limit?: number; cursor?: string } = {};
  if (options.limit !== undefined) {
    const n = Number(options.limit);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--limit: '${String(options.limit)}' is not a positive whole number`);
    q.limit = n;
  }
  if (options.cursor !== undefined) q.cursor = String(options.cursor);
  return q;
}

/** A list page: a table (and where the next page starts) or one JSON line. */
function printPage<T>(io: VerbIo, options: Options, page: Page<T>, head: string[], row: (item: T) => string[], command: string): number {
  if (options.json === true) {
    io.out(`${JSON.stringify(page)}\n`);
    return 0;
  }
  if (page.items.length > 0) io.out(`${textTable(head, page.items.map(row))}\n`);
  else io.err('none\n');
  if (page.nextCursor) io.err(`more: ticketsmith ${command} --cursor ${page.nextCursor}\n`);
  return 0;
}

/** One object: indented JSON for people, one line with --json. */
function printOne(io: VerbIo, options: Options, value: unknown): number {
  io.out(options.json === true ? `${JSON.stringify(value)}\n` : `${JSON.stringify(value, null, 2)}\n`);
  return 0;
}

function printDeleted(io: VerbIo, options: Options, what: string, id: string): number {
  if (options.json === true) io.out(`${JSON.stringify({ id, deleted: true })}\n`);
  else io.err(`deleted ${what} ${id}\n`);
  return 0;
}

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

/** PATH... as an upload: one folder's files, some files, or one archive. */
async function uploadInput(paths: string[]): Promise<{ files: { name: string; bytes: Uint8Array }[] } | { archive: Uint8Array; filename: string }> {
  const kinds = await Promise.all(paths.map(async (p) => (await stat(p).catch(() => null))?.isDirectory() ?? null));
  const missing = paths.find((_p, i) => kinds[i] === null);
  if (missing !== undefined) throw new UsageError(`no such file or folder: ${missing}`);
  if (paths.length === 1 && kinds[0] === true) {
    const files = await folderFiles(paths[0]!);
    if (files.length === 0) throw new UsageError(`${paths[0]}: the folder has no files`);
    return { files };
  }
  if (paths.length === 1 && ARCHIVE.test(paths[0]!)) return { archive: await readFile(paths[0]!), filename: basename(paths[0]!) };
  if (kinds.some((k) => k === true)) throw new UsageError('give one folder, or files (not folders and files together)');
  return { files: await Promise.all(paths.map(async (p) => ({ name: basename(p), bytes: await readFile(p) }))) };
}

function withClient(argv: string[], extra: Record<string, 'boolean' | 'string'>, positionals: { min: number; max: number; what: string }) {
  const { options, positional } = parseSub(argv, extra, positionals);
  return { options, positional, c: client(options) as TicketsmithClient };
}

const ONE_ID = (what: string) => ({ min: 1, max: 1, what });
const NONE = { min: 0, max: 0, what: '' };

// ---- models ------------------------------------------------------------

export const modelsUsage = (): string => resourceUsage('models', MODELS);

const MODELS: Record<string, Sub> = {
  upload: {
    usage: 'upload PATH... [--name NAME]',
    summary: 'upload a TF.js or Keras model (its folder, model.json and weight files, or one .zip/.tar.gz); prints its id',
    run: (argv, io) =>
      runVerb(io, modelsUsage, 'models', async () => {
        const { options, positional, c } = withClient(argv, { name: 'string' }, { min: 1, max: Infinity, what: 'the model folder, its files or one archive' });
        const model = await c.uploadModel(await uploadInput(positional), { name: options.name === undefined ? undefined : String(options.name) });
        if (options.json === true) io.out(`${JSON.stringify(model)}\n`);
        else {
          io.out(`${model.id}\n`);
          io.err(`model ${model.id} '${model.name}' (${model.format}, ${model.files.length} file(s), ${bytes(model.size)}); submit with --model ${model.id}\n`);
        }
        return 0;
      }),
  },
  list: {
    usage: 'list [--limit N] [--cursor C]',
    summary: 'your uploaded models',
    run: (argv, io) =>
      runVerb(io, modelsUsage, 'models', async () => {
        const { options, c } = withClient(argv, PAGE, NONE);
        const page = await c.listModels(pageQuery(options));
        return printPage(io, options, page, ['ID', 'NAME', 'FORMAT', 'SIZE', 'CREATED'], (m) => [m.id, m.name, m.format, bytes(m.size), m.createdAt], 'models list');
      }),
  },
  get: {
    usage: 'get MODEL_ID',
    summary: 'one model: its files, their sha256 and the architecture found',
    run: (argv, io) =>
      runVerb(io, modelsUsage, 'models', async () => {
        const { options, positional, c } = withClient(argv, {}, ONE_ID('MODEL_ID'));
        return printOne(io, options, await c.getModel(positional[0]!));
      }),
  },
  delete: {
    usage: 'delete MODEL_ID',
    summary: 'delete a model and its files (refused while a queued or running job uses it)',
    run: (argv, io) =>
      runVerb(io, modelsUsage, 'models', async () => {
        const { options, positional, c } = withClient(argv, {}, ONE_ID('MODEL_ID'));
        await c.deleteModel(positional[0]!);
        return printDeleted(io, options, 'model', positional[0]!);
      }),
  },
};

export function modelsCommand(argv: string[], io: VerbIo = stdio): Promise<number> {
  return dispatch('models', MODELS, modelsUsage, argv, io);
}

// ---- datasets ----------------------------------------------------------

export const datasetsUsage = (): string =>
  resourceUsage(
    'datasets',
    DATASETS,
    `
An upload's PATH is a folder (its files are sent, sub-folders kept: an IDX set, x_train.npy...,
CIFAR-10 batches, an .npz, or an image folder of class folders), some files, or one
.zip / .tar.gz / .tar archive. The server checks it (headers, counts, label range, size caps)
before storing it; the same files again give the same id. Jobs name it dataset:<id>.
`,
  );

function describeDataset(d: { id: string; format: string; shapes: Record<string, unknown> }): string {
  const shapes = d.shapes as { inputShape?: number[]; numClasses?: number; counts?: { train?: number; test?: number } };
  return (
    `dataset ${d.id} (${d.format}): inputs [${(shapes.inputShape ?? []).join(', ')}], ${shapes.numClasses ?? '?'} classes, ` +
    `${shapes.counts?.train ?? '?'} train / ${shapes.counts?.test ?? '?'} test examples; submit with --dataset dataset:${d.id}`
  );
}

const DATASETS: Record<string, Sub> = {
  add: {
    usage: 'add REFERENCE',
    summary: 'register a dataset reference (builtin:mnist, https://..., an IDX/npy/npz reference); prints its id',
    run: (argv, io) =>
      runVerb(io, datasetsUsage, 'datasets', async () => {
        const { options, positional, c } = withClient(argv, {}, ONE_ID('REFERENCE'));
        const dataset = await c.registerDataset(positional[0]!);
        if (options.json === true) io.out(`${JSON.stringify(dataset)}\n`);
        else {
          io.out(`${dataset.id}\n`);
          io.err(`${describeDataset(dataset)}\n`);
        }
        return 0;
      }),
  },
  upload: {
    usage: 'upload PATH...',
    summary: 'upload a dataset (a folder, its files or one archive); prints its id',
    run: (argv, io) =>
      runVerb(io, datasetsUsage, 'datasets', async () => {
        const { options, positional, c } = withClient(argv, {}, { min: 1, max: Infinity, what: 'a folder, the dataset files, or one archive' });
        const dataset = await c.uploadDataset(await uploadInput(positional));
        if (options.json === true) io.out(`${JSON.stringify(dataset)}\n`);
        else {
          io.out(`${dataset.id}\n`);
          io.err(`${describeDataset(dataset)}\n`);
        }
        return 0;
      }),
  },
  list: {
    usage: 'list [--limit N] [--cursor C]',
    summary: 'your registered datasets',
    run: (argv, io) =>
      runVerb(io, datasetsUsage, 'datasets', async () => {
        const { options, c } = withClient(argv, PAGE, NONE);
        const page = await c.listDatasets(pageQuery(options));
        return printPage(io, options, page, ['ID', 'FORMAT', 'REFERENCE', 'CREATED'], (d) => [d.id, d.format, d.reference, d.createdAt], 'datasets list');
      }),
  },
  get: {
    usage: 'get DATASET_ID',
    summary: 'one dataset: its reference, format and shapes',
    run: (argv, io) =>
      runVerb(io, datasetsUsage, 'datasets', async () => {
        const { options, positional, c } = withClient(argv, {}, ONE_ID('DATASET_ID'));
        return printOne(io, options, await c.getDataset(positional[0]!));
      }),
  },
  delete: {
    usage: 'delete DATASET_ID',
    summary: 'delete a dataset (refused while a queued or running job uses it)',
    run: (argv, io) =>
      runVerb(io, datasetsUsage, 'datasets', async () => {
        const { options, positional, c } = withClient(argv, {}, ONE_ID('DATASET_ID'));
        await c.deleteDataset(positional[0]!);
        return printDeleted(io, options, 'dataset', positional[0]!);
      }),
  },
};

export function datasetsCommand(argv: string[], io: VerbIo = stdio): Promise<number> {
  return dispatch('datasets', DATASETS, datasetsUsage, argv, io);
}

// ---- jobs --------------------------------------------------------------

export const jobsUsage = (): string => resourceUsage('jobs', JOBS, "\n'ticketsmith submit --help' lists the run-spec flags of jobs submit.\n");

function progressOf(j: { status: string; progress: { roundsCompleted: number; rounds: number | null } | null }): string {
  if (!j.progress) return '';
  return `${j.progress.roundsCompleted}/${j.progress.rounds ?? '?'} rounds`;
}

const JOBS: Record<string, Sub> = {
  submit: {
    usage: 'submit [run-spec flags] [--watch] [--idempotency-key K]',
    summary: 'queue a job (the same as `ticketsmith submit`); prints its id',
    // The run-spec flags need the schema (zod): loaded only for this subcommand.
    run: async (argv, io) => (await import('./client-verbs.js')).submitCommand(argv, io),
  },
  list: {
    usage: 'list [--status STATE] [--limit N] [--cursor C]',
    summary: `your jobs, newest first (STATE: ${JOB_STATES.join('|')})`,
    run: (argv, io) =>
      runVerb(io, jobsUsage, 'jobs', async () => {
        const { options, c } = withClient(argv, { ...PAGE, status: 'string' }, NONE);
        const status = options.status === undefined ? undefined : String(options.status);
        if (status !== undefined && !JOB_STATES.includes(status as JobState)) throw new UsageError(`--status: '${status}' is not one of ${JOB_STATES.join('|')}`);
        const page = await c.listJobs({ ...pageQuery(options), status: status as JobState | undefined });
        return printPage(io, options, page, ['ID', 'STATUS', 'PROGRESS', 'RUN', 'CREATED'], (j) => [j.id, j.status, progressOf(j), j.runName, j.createdAt], 'jobs list');
      }),
  },
  get: {
    usage: 'get JOB_ID',
    summary: 'one job: its resolved spec, status, progress, error or result',
    run: (argv, io) =>
      runVerb(io, jobsUsage, 'jobs', async () => {
        const { options, positional, c } = withClient(argv, {}, ONE_ID('JOB_ID'));
        return printOne(io, options, await c.getJob(positional[0]!));
      }),
  },
  cancel: {
    usage: 'cancel JOB_ID',
    summary: 'ask a queued or running job to stop (it ends cancelled; a finished one is unchanged)',
    run: (argv, io) =>
      runVerb(io, jobsUsage, 'jobs', async () => {
        const { options, positional, c } = withClient(argv, {}, ONE_ID('JOB_ID'));
        const job = await c.cancelJob(positional[0]!);
        if (options.json === true) io.out(`${JSON.stringify(job)}\n`);
        else io.err(`job ${job.id} ${job.status}${job.cancelRequested && job.status === 'running' ? ' (cancel requested; it stops at the next step)' : ''}\n`);
        return 0;
      }),
  },
  rounds: {
    usage: 'rounds JOB_ID',
    summary: "a job's committed rounds as a table (weights left, accuracy, early-stop iteration, controls)",
    run: (argv, io) =>
      runVerb(io, jobsUsage, 'jobs', async () => {
        const { options, positional, c } = withClient(argv, {}, ONE_ID('JOB_ID'));
        const rounds = await c.listRounds(positional[0]!);
        if (options.json === true) io.out(`${JSON.stringify({ items: rounds })}\n`);
        else if (rounds.length === 0) io.err('no rounds committed yet\n');
        else io.out(`${roundsTable(roundRows(rounds))}\n`);
        return 0;
      }),
  },
  watch: {
    usage: 'watch JOB_ID',
    summary: "follow a job's events to its end (the same as `ticketsmith watch`)",
    run: (argv, io) => watchCommand(argv, io),
  },
  delete: {
    usage: 'delete JOB_ID',
    summary: 'delete a finished job with its rounds, events and artifacts',
    run: (argv, io) =>
      runVerb(io, jobsUsage, 'jobs', async () => {
        const { options, positional, c } = withClient(argv, {}, ONE_ID('JOB_ID'));
        await c.deleteJob(positional[0]!);
        return printDeleted(io, options, 'job', positional[0]!);
      }),
  },
};

export function jobsCommand(argv: string[], io: VerbIo = stdio): Promise<number> {
  return dispatch('jobs', JOBS, jobsUsage, argv, io);
}

// ---- artifacts ---------------------------------------------------------

export const artifactsUsage = (): string => resourceUsage('artifacts', ARTIFACTS, "\n'ticketsmith download' fetches them (sha256-checked).\n");

const ARTIFACTS: Record<string, Sub> = {
  list: {
    usage: 'list JOB_ID [--kind KIND]',
    summary: "a job's artifacts (KIND: ticket, round, result, plot...)",
    run: (argv, io) =>
      runVerb(io, artifactsUsage, 'artifacts', async () => {
        const { options, positional, c } = withClient(argv, { kind: 'string' }, ONE_ID('JOB_ID'));
        const items = await c.listArtifacts(positional[0]!, { kind: options.kind === undefined ? undefined : String(options.kind) });
        return printPage(io, options, { items, nextCursor: null }, ['ID', 'KIND', 'NAME', 'SIZE', 'SHA256'], (a) => [a.id, a.kind, a.name, bytes(a.size), a.sha256], 'artifacts list');
      }),
  },
};

export function artifactsCommand(argv: string[], io: VerbIo = stdio): Promise<number> {
  return dispatch('artifacts', ARTIFACTS, artifactsUsage, argv, io);
}
