// Start time of the `ticketsmith` command: the compiled build (node
// dist/cli/main.js, what bin/ticketsmith runs after `npm run build`) against
// the sources through tsx (what it runs without a build), for `--help`,
// `--version` and a client verb (`jobs list --json`) against a server on
// loopback. Wall time of the whole process, median of --runs, both in one
// run so they share the machine's load; prints times and ratios, asserts
// nothing (the machine decides the absolute numbers).
//   npm run bench:cli [-- --runs 7] [-- --url http://127.0.0.1:8080 --key KEY]
// Without --url, the server is a stand-in on 127.0.0.1 that answers the one
// route the verb calls (GET /v1/jobs) with an empty page: what is measured is
// the command's start, not the service.
import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = fileURLToPath(new URL('../', import.meta.url));

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, url: { type: 'string' }, key: { type: 'string' } } });
const runs = Math.max(1, Math.min(50, Number(values.runs) || 5));

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number | null }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { cwd: REPO, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim().split('\n').at(-1)}`));
      else resolve({ ms: performance.now() - start, code });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function standIn(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.startsWith('/v1/jobs')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: [], nextCursor: null }));
    } else res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'not here' } }));
  });
  server.on('error', (e) => {
    process.stderr.write(`stand-in server: ${e.message}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function main(): Promise<void> {
  process.stderr.write('building dist/ if stale (npm run build)...\n');
  execFileSync('bash', ['scripts/build.sh', '--if-stale'], { cwd: REPO, stdio: 'inherit' });
  const stand = values.url ? null : await standIn();
  const env = { ...process.env, TICKETSMITH_URL: values.url ?? stand!.url, TICKETSMITH_API_KEY: values.key ?? process.env.TICKETSMITH_API_KEY ?? 'tsk_bench' };
  const targets = [
    { name: 'compiled', cmd: process.execPath, pre: [`${REPO}dist/cli/main.js`] },
    { name: 'tsx', cmd: `${REPO}node_modules/.bin/tsx`, pre: [`${REPO}src/cli/main.ts`] },
  ];
  const commands = [['--help'], ['--version'], ['jobs', 'list', '--json']];
  const baseline: number[] = [];
  for (let i = 0; i < runs; i++) baseline.push((await run(process.execPath, ['-e', '0'], env)).ms);
  const rows: string[][] = [];
  try {
    for (const args of commands) {
      const ms: Record<string, number[]> = { compiled: [], tsx: [] };
      // Interleaved, so both see the same load.
      for (let i = 0; i < runs; i++) for (const t of targets) ms[t.name]!.push((await run(t.cmd, [...t.pre, ...args], env)).ms);
      const c = median(ms.compiled!);
      const x = median(ms.tsx!);
      rows.push([`ticketsmith ${args.join(' ')}`, `${c.toFixed(0)} ms`, `${x.toFixed(0)} ms`, `${(x / c).toFixed(1)}x`]);
    }
  } finally {
    stand?.server.close();
  }
  const head = ['command', 'compiled', 'tsx', 'tsx / compiled'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  process.stdout.write(`${[line(head), ...rows.map(line)].join('\n')}\n`);
  process.stdout.write(`median of ${runs} runs each; a bare \`node -e 0\` took ${median(baseline).toFixed(0)} ms on this machine now\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
