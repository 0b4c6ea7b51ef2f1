// Client verbs for scripts and CI, over the REST API with the typed client:
//   ticketsmith submit [run-spec flags]   queue a job, print its id (--watch: follow it)
// watch and download are job-verbs.ts (re-exported here); they and the
// resource verbs start without the run-spec schema this module loads.
// The server is --url (or TICKETSMITH_URL, default http://127.0.0.1:8080), the
// key --key (or TICKETSMITH_API_KEY). Exit codes: 0 done/succeeded, 1 the job
// or the call failed, 2 bad usage. The resource verbs (models, datasets, jobs,
// artifacts) are resources.ts; `keys create --tenant NAME` is keys.ts.
import { RunSpecSchema } from '../engine/spec.js';
import { flagHelp, flagsOf, parseFlags, UsageError } from './flags.js';
import { client, CONNECTION, connectionHelp, runVerb, stdio, type VerbIo } from './client-common.js';
import { follow } from './job-verbs.js';

export { roundRows } from './rounds-table.js';
export { describeEvent, downloadCommand, downloadUsage, watchCommand, watchUsage } from './job-verbs.js';
export type { VerbIo } from './client-common.js';

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

export async function submitCommand(argv: string[], io: VerbIo = stdio): Promise<number> {
  return runVerb(io, submitUsage, 'submit', async () => {
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

