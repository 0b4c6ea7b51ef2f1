// Entry point of the `ticketsmith` command: dispatches to one verb.
// Each verb's module is imported only when that verb runs (or shows its
// help): `--help`, `--version` and the client verbs never load TF.js,
// Prisma, pg or the servers, which is what lets them start in a fraction of
// a second (scripts/bench-cli.ts measures it; test/e2e/client-verbs.test.ts
// checks the client verbs' module graph).
import { readFileSync } from 'node:fs';
import { UsageError } from './argv.js';

type Io = { out(text: string): void; err(text: string): void };
interface VerbModule {
  run(argv: string[]): Promise<number>;
  help(): string;
}
type Verb = { load: () => Promise<VerbModule>; summary: string };

const verbs: Record<string, Verb> = {
  prune: { load: () => import('./prune.js').then((m) => ({ run: m.pruneCommand, help: m.pruneUsage })), summary: 'run a compression job locally (no server)' },
  serve: { load: () => import('./serve.js').then((m) => ({ run: m.serveCommand, help: m.serveUsage })), summary: 'start the REST + gRPC service (embedded Postgres unless DATABASE_URL) with a worker' },
  worker: { load: () => import('./worker.js').then((m) => ({ run: m.workerCommand, help: m.workerUsage })), summary: 'run job workers against the service database' },
  keys: { load: () => import('./keys.js').then((m) => ({ run: (argv) => m.keysCommand(argv), help: m.keysUsage })), summary: 'create, list or revoke API keys (on the service database)' },
  submit: { load: () => import('./client-verbs.js').then((m) => ({ run: (argv) => m.submitCommand(argv), help: m.submitUsage })), summary: 'submit a job to a running service' },
  watch: { load: () => import('./job-verbs.js').then((m) => ({ run: (argv) => m.watchCommand(argv), help: m.watchUsage })), summary: "stream a job's progress" },
  download: { load: () => import('./job-verbs.js').then((m) => ({ run: (argv) => m.downloadCommand(argv), help: m.downloadUsage })), summary: "download a job's ticket or an artifact" },
  jobs: { load: () => import('./resources.js').then((m) => ({ run: (argv) => m.jobsCommand(argv), help: m.jobsUsage })), summary: 'submit, list, get, cancel, rounds, watch or delete jobs' },
  models: { load: () => import('./resources.js').then((m) => ({ run: (argv) => m.modelsCommand(argv), help: m.modelsUsage })), summary: 'upload, list, get or delete your models' },
  datasets: { load: () => import('./resources.js').then((m) => ({ run: (argv) => m.datasetsCommand(argv), help: m.datasetsUsage })), summary: 'add (a reference), upload, list, get or delete datasets' },
  artifacts: { load: () => import('./resources.js').then((m) => ({ run: (argv) => m.artifactsCommand(argv), help: m.artifactsUsage })), summary: "list a job's artifacts" },
  bench: { load: () => import('./bench.js').then((m) => ({ run: m.benchCommand, help: m.benchUsage })), summary: 'measure training speed per backend (next to PyTorch when installed)' },
};

/** package.json sits two folders up from src/cli/ and from dist/cli/ alike. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return String(pkg.version ?? '0.0.0');
}

function usage(): string {
  const lines = Object.entries(verbs).map(([name, v]) => `  ${name.padEnd(10)} ${v.summary}`);
  return (
    `usage: ticketsmith <command> [flags]\n\ncommands:\n${lines.join('\n')}\n\n` +
    `Client commands (submit, watch, download, jobs, models, datasets, artifacts) talk to a running\n` +
    `service over REST: --url (TICKETSMITH_URL), --key (TICKETSMITH_API_KEY), --json for scripts.\n\n` +
    `'ticketsmith <command> --help' for its flags; 'ticketsmith --version' for the version.\n`
  );
}

const SHORT_USAGE = "usage: ticketsmith <command> [flags]\nsee 'ticketsmith --help'\n";

async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    io.out(`ticketsmith ${version()}\n`);
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    if (name) io.out(usage());
    else io.err(usage());
    return name ? 0 : 2;
  }
  const verb = verbs[name];
  if (!verb) {
    io.err(`error: unknown command '${name}' (known: ${Object.keys(verbs).join(', ')})\n${SHORT_USAGE}`);
    return 2;
  }
  const mod = await verb.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(mod.help());
    return 0;
  }
  try {
    return await mod.run(rest);
  } catch (err) {
    // Verbs outside the client wrapper (prune, serve, worker, bench) throw their usage errors here.
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}\n${mod.help().split('\n\n')[0]!.trimEnd()}\nsee 'ticketsmith ${name} --help'\n`);
      return 2;
    }
    throw err;
  }
}

main(process.argv.slice(2), { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as Error & { field?: string; file?: string };
    process.stderr.write(`error: ${e.message ?? String(err)}\n`);
    if (process.env.TICKETSMITH_DEBUG) process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  },
);
