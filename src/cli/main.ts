// Entry point of the `ticketsmith` command: dispatches to one verb.
import { pruneCommand, pruneUsage } from './prune.js';
import { serveCommand, serveUsage } from './serve.js';
import { workerCommand, workerUsage } from './worker.js';
import { submitCommand, submitUsage, watchCommand, watchUsage, downloadCommand, downloadUsage, datasetsCommand, datasetsUsage } from './client-verbs.js';
import { keysCommand, keysUsage } from './keys.js';
import { benchCommand, benchUsage } from './bench.js';
import { UsageError } from './flags.js';

type Verb = { run: (argv: string[]) => Promise<number>; help: () => string; summary: string };

const verbs: Record<string, Verb> = {
  prune: { run: pruneCommand, help: pruneUsage, summary: 'run a compression job locally (no server)' },
  serve: { run: serveCommand, help: serveUsage, summary: 'start the REST + gRPC service (embedded Postgres unless DATABASE_URL) with a worker' },
  worker: { run: workerCommand, help: workerUsage, summary: 'run job workers against the service database' },
  keys: { run: (argv) => keysCommand(argv), help: keysUsage, summary: 'create, list or revoke API keys' },
  submit: { run: (argv) => submitCommand(argv), help: submitUsage, summary: 'submit a job to a running service' },
  watch: { run: (argv) => watchCommand(argv), help: watchUsage, summary: "stream a job's progress" },
  download: { run: (argv) => downloadCommand(argv), help: downloadUsage, summary: "download a job's ticket or an artifact" },
  datasets: { run: (argv) => datasetsCommand(argv), help: datasetsUsage, summary: 'upload a dataset (a folder, its files or one archive)' },
  bench: { run: benchCommand, help: benchUsage, summary: 'measure training speed per backend (next to PyTorch when installed)' },
};

function usage(): string {
  const lines = Object.entries(verbs).map(([name, v]) => `  ${name.padEnd(10)} ${v.summary}`);
  return `usage: ticketsmith <command> [flags]\n\ncommands:\n${lines.join('\n')}\n\n'ticketsmith <command> --help' for its flags.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const verb = verbs[name];
  if (!verb) {
    process.stderr.write(`unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(verb.help());
    return 0;
  }
  return verb.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exit(2);
    }
    const e = err as Error & { field?: string; file?: string };
    process.stderr.write(`error: ${e.message ?? String(err)}\n`);
    if (process.env.TICKETSMITH_DEBUG) process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  },
);
