// The README's first command: the whole service on the embedded defaults.
// Starts `serve` in this process (embedded PostgreSQL under .data/, REST,
// gRPC, an in-process worker), creates an API key, submits a short IMP job
// (LeNet-300-100 on builtin MNIST, with the random-reinit and random-structure
// controls), streams its progress over Server-Sent Events, downloads the
// ticket (sha256 checked, loaded in TF.js), prints the rounds, and leaves the
// service running with its URL and the key printed. Ctrl-C stops it.
//
//   npx tsx scripts/demo.ts [--port 8080] [--grpc-port 50051] [--rounds 2] [--iterations 500]
import { createServer } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TicketsmithClient } from '../src/client/index.js';
import { describeEvent } from '../src/cli/client-verbs.js';
import { roundRows, roundsTable } from '../src/cli/rounds-table.js';
import { pct } from '../src/engine/report/format.js';
import { startService } from '../src/cli/serve.js';
import { loadConfig } from '../src/runtime/config.js';
import { embeddedBinariesDir, openTraversal } from '../src/runtime/postgres.js';
import { loadModelFrom } from '../src/engine/models/load.js';
import { getWeightMap, prunableWeights } from '../src/engine/models/inspect.js';
import { createApiKey, stopOnSignals } from '../src/service/index.js';

const say = (s = '') => process.stdout.write(`${s}\n`);

/** The port if it is free, else 0 (any free one): a demo should not fail on a busy 8080. */
async function freeOr0(host: string, port: number): Promise<number> {
  return new Promise((resolvePort) => {
    const probe = createServer();
    probe.once('error', () => resolvePort(0));
    probe.listen(port, host, () => probe.close(() => resolvePort(port)));
  });
}

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8080' },
    'grpc-port': { type: 'string', default: '50051' },
    rounds: { type: 'string', default: '2' },
    iterations: { type: 'string', default: '500' },
    tenant: { type: 'string', default: 'demo' },
  },
  strict: true,
});

const host = values.host!;
// Run as root from a fresh checkout in a private folder (mktemp -d is mode 700), user postgres
// could not reach the embedded cluster or its binaries: open those folders for traversal, and say so.
if (!loadConfig().databaseUrl) {
  for (const dir of await openTraversal([loadConfig().postgresDir, embeddedBinariesDir()])) say(`note: added o+x to ${dir} so that user postgres can reach the embedded Postgres`);
}
const svc = await startService({
  host,
  port: await freeOr0(host, Number(values.port)),
  grpcPort: await freeOr0(host, Number(values['grpc-port'])),
  worker: true,
});
stopOnSignals(svc.rt, () => svc.stop());
say(`service up: REST ${svc.restUrl}, gRPC ${svc.grpcAddress}, ${svc.rt.db.embedded ? 'embedded PostgreSQL' : 'DATABASE_URL'}, in-process worker`);

const { key } = await createApiKey(svc.rt.ctx, values.tenant!);
const client = new TicketsmithClient({ baseUrl: svc.restUrl, apiKey: key });

const spec = {
  model: 'lenet-300-100',
  dataset: 'builtin:mnist',
  method: 'imp',
  rounds: Number(values.rounds),
  iterations: Number(values.iterations),
  evalEvery: 50,
  controls: 'all',
  seed: 1,
} as const;
const { job } = await client.submitJob(spec);
say(`submitted job ${job.id} (${job.runName}): IMP on LeNet-300-100 / MNIST, ${spec.rounds} pruning rounds of ${spec.iterations} iterations, controls on`);
say('progress (Server-Sent Events):');

let lastProgress = 0;
const done = await client.waitForJob(job.id, {
  onEvent: (e) => {
    if (e.kind === 'progress') {
      if (Date.now() - lastProgress < 3000) return;
      lastProgress = Date.now();
    }
    const line = describeEvent(e);
    if (line) say(`  ${line}`);
  },
});
if (done.status !== 'succeeded') {
  say(`job ${done.status}${done.error ? `: ${done.error.code}: ${done.error.message}` : ''}`);
} else {
  const dir = join(svc.rt.ctx.config.dataDir, 'demo', job.id, 'ticket');
  await mkdir(dir, { recursive: true });
  const ticket = await client.listArtifacts(job.id, { kind: 'ticket' });
  for (const a of ticket) {
    const { bytes, sha256 } = await client.downloadVerified(a.id, a.sha256);
    await writeFile(join(dir, a.name.replace(/^ticket\//, '')), bytes);
    say(`downloaded ${a.name} (${bytes.length} bytes, sha256 ${sha256.slice(0, 16)}… verified)`);
  }
  // The ticket is a plain TF.js Layers model whose zeros are the pruned weights.
  const model = await loadModelFrom(dir);
  const weights = getWeightMap(model);
  let alive = 0;
  let total = 0;
  for (const w of prunableWeights(model)) {
    for (const v of weights[w.name]!.values) alive += v !== 0 ? 1 : 0;
    total += weights[w.name]!.values.length;
  }
  model.dispose();
  const summary = (done.result ?? {}) as { summary?: { density?: number }; verdict?: { summary?: string } };
  say();
  say(roundsTable(roundRows(await client.listRounds(job.id))));
  say();
  say(`verdict: ${summary.verdict?.summary ?? '-'}`);
  say(`ticket in ${dir}: loads in TF.js, ${pct(alive / total)} of prunable weights non-zero (reported density ${pct(summary.summary?.density ?? NaN)})`);
}

say();
say('The service keeps running:');
say(`  REST       ${svc.restUrl}   dashboard ${svc.restUrl}/   OpenAPI ${svc.restUrl}/openapi.json`);
say(`  gRPC       ${svc.grpcAddress}`);
say(`  API key    ${key}   (tenant '${values.tenant}')`);
say(`  try        curl -H 'Authorization: Bearer ${key}' ${svc.restUrl}/v1/jobs/${job.id}/rounds`);
say(`             TICKETSMITH_URL=${svc.restUrl} TICKETSMITH_API_KEY=${key} npx tsx src/cli/main.ts submit --model lenet-300-100 --dataset builtin:mnist --rounds 1 --iterations 300 --watch`);
say('Ctrl-C stops it.');
