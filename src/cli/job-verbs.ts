// The job-following client verbs, for scripts and CI over the REST API:
//   ticketsmith watch JOB_ID              follow a job (Server-Sent Events) to the end
//   ticketsmith download JOB_ID           fetch the ticket, checking every sha256 (--zip: one archive)
// Nothing here loads the run-spec schema: see main.ts on start time.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, resolve, sep } from 'node:path';
import type { EventDto, JobDto, TicketsmithClient } from '../client/index.js';
import { parseFlags, UsageError } from './argv.js';
import { client, CONNECTION, connectionHelp, runVerb, stdio, type VerbIo } from './client-common.js';
import { pct } from '../engine/report/format.js';
import { roundRows, roundsTable } from './rounds-table.js';

export const watchUsage = () => `usage: ticketsmith watch JOB_ID [--json]

Follows a job's events until it finishes; exit code 0 when it succeeded, 1 otherwise.
  --json               print each event as a JSON line on stdout
${connectionHelp}
`;

export const downloadUsage = () => `usage: ticketsmith download JOB_ID [--out DIR] [--kind KIND] | JOB_ID --zip [--out FILE] | --artifact ID [--out DIR] [--json]

Downloads a job's artifacts of one kind (default: ticket, i.e. model.json, weights.bin, model.onnx,
mask.json, compressed.bin) into DIR (default ./<job id>), checking each file's sha256; or one artifact by id.
  --out <dir>          target directory (with --zip: the file, default ./<job id>.ticket.zip)
  --kind <kind>        ticket | round | result (default ticket)
  --zip                the job's ticket.zip instead: one archive with the model, model.onnx, the mask
                       (.json and .npz), result.json, plots and MANIFEST.json; its sha256 is verified
  --artifact <id>      one artifact instead
  --json               one line per saved file: {"path","sha256","size"} (default: its path)
${connectionHelp}
`;

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
export async function follow(c: TicketsmithClient, jobId: string, json: boolean, io: VerbIo): Promise<number> {
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

export async function watchCommand(argv: string[], io: VerbIo = stdio): Promise<number> {
  return runVerb(io, watchUsage, 'watch', async () => {
    const { options, positional } = parseFlags(argv, [], { ...CONNECTION, json: 'boolean' });
    if (positional.length !== 1) throw new UsageError('give exactly one JOB_ID');
    return follow(client(options), positional[0]!, options.json === true, io);
  });
}

/** Writes under `dir` without letting an artifact name climb out of it. */
export async function save(dir: string, name: string, bytes: Uint8Array): Promise<string> {
  const target = resolve(dir, name);
  if (!target.startsWith(resolve(dir) + sep)) throw new Error(`artifact name '${name}' would leave ${dir}`);
  await mkdir(dirname(target), { recursive: true });
  await writeFile(`${target}.part`, bytes);
  await rename(`${target}.part`, target);
  return target;
}

export async function downloadCommand(argv: string[], io: VerbIo = stdio): Promise<number> {
  return runVerb(io, downloadUsage, 'download', async () => {
    const { options, positional } = parseFlags(argv, [], { ...CONNECTION, out: 'string', kind: 'string', artifact: 'string', zip: 'boolean', json: 'boolean' });
    const c = client(options);
    const saved = (path: string, sha256: string, size: number): void => io.out(options.json === true ? `${JSON.stringify({ path, sha256, size })}\n` : `${path}\n`);
    if (options.zip === true) {
      if (positional.length !== 1 || options.artifact !== undefined || options.kind !== undefined) throw new UsageError('--zip takes exactly one JOB_ID (no --artifact or --kind)');
      const jobId = positional[0]!;
      const { bytes, sha256 } = await c.downloadTicketZipVerified(jobId);
      const out = resolve(String(options.out ?? `${jobId}.ticket.zip`));
      saved(await save(dirname(out), basename(out), bytes), sha256, bytes.length);
      io.err(`${bytes.length} bytes, sha256 ${sha256} verified\n`);
      return 0;
    }
    if (options.artifact !== undefined) {
      if (positional.length > 0) throw new UsageError('give either JOB_ID or --artifact');
      const id = String(options.artifact);
      const { bytes, sha256, filename } = await c.downloadVerified(id);
      saved(await save(String(options.out ?? '.'), basename(filename ?? id), bytes), sha256, bytes.length);
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
      const { bytes, sha256 } = await c.downloadVerified(a.id, a.sha256);
      // `ticket/model.json` lands as DIR/model.json: the folder is the ticket.
      const name = kind === 'ticket' ? a.name.replace(/^ticket\//, '') : a.name;
      saved(await save(dir, name, bytes), sha256, bytes.length);
    }
    io.err(`${artifacts.length} file(s) in ${dir}, every sha256 verified\n`);
    return 0;
  });
}

