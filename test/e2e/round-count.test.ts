// A finished N-round job trained N + 1 rounds (round 0, the dense one, is
// one), and every door says so: REST (GET /v1/jobs/:id progress and
// /v1/jobs/:id/rounds), gRPC (GetJob, ListRounds) and the dashboard, whose
// served script's round helper runs here on the REST list and shows "N+1/N+1"
// (it used to add 1 to a count that already held round 0: "2/3" for one
// round); test/e2e/dashboard.test.ts checks the page itself in Chromium.
// Real engine, real servers on 127.0.0.1, tiny specs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { TicketsmithClient } from '../../src/client/index.js';
import { TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { roundCount } from '../../src/engine/events.js';
import { createApiKey, listEvents, type ServiceRuntime } from '../../src/service/index.js';
import { roundsShown } from '../../src/web/dashboard.js';
import { APP_MARK } from '../../src/web/script.js';
import { startTestDb, until, type TestDb } from '../integration/fixtures/harness.js';

let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let grpcServer: GrpcServerHandle;
let key: string;
let client: TicketsmithClient;
let grpcClient: TicketsmithGrpcClient;

const LIMIT_MS = 240_000;

const tiny = (rounds: number) => ({
  model: 'lenet-20-10', dataset: 'builtin:mnist', rounds, iterations: 10, evalEvery: 5, batchSize: 30, maxTrainExamples: 150, controls: 'none' as const, seed: rounds,
});

before(async () => {
  t = await startTestDb();
  rt = await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.5, progressIntervalMs: 200 } });
  rest = await startRestServer(rt, { port: 0 });
  grpcServer = await startGrpcServer(rt, { host: '127.0.0.1', port: 0 });
  key = (await createApiKey(rt.ctx, 'acme')).key;
  client = new TicketsmithClient({ baseUrl: rest.url, apiKey: key });
  grpcClient = new TicketsmithGrpcClient({ address: `127.0.0.1:${grpcServer.port}`, apiKey: key });
}, { timeout: LIMIT_MS });

after(async () => {
  grpcClient?.close();
  await grpcServer?.stop();
  await rest?.stop();
  await t?.stop();
});

/** The round column of the served dashboard.js for each job REST lists: the script's own roundsShown, run in a fresh context. */
async function dashboardRounds(): Promise<Map<string, string>> {
  const js = await (await fetch(`${rest.url}/dashboard.js`)).text();
  const cut = js.indexOf(APP_MARK);
  assert.ok(cut > 0, 'the served script marks where its app starts');
  const list = (await (await fetch(`${rest.url}/v1/jobs?limit=100`, { headers: { authorization: `Bearer ${key}` } })).json()) as { items: Array<{ id: string; progress: unknown }> };
  const context = vm.createContext({ items: list.items });
  vm.runInContext(js.slice(0, cut) + '\nglobalThis.shown = items.map((j) => [j.id, roundsShown(j.progress)]);', context);
  return new Map((context as { shown: Array<[string, string]> }).shown);
}

test('a finished N-round job reports N+1 trained rounds over REST, gRPC and the dashboard', { timeout: LIMIT_MS }, async () => {
  const ids = new Map<number, string>();
  for (const n of [1, 2]) ids.set(n, (await client.submitJob(tiny(n))).job.id);
  for (const [n, id] of ids) {
    const job = await until(async () => {
      const j = await client.getJob(id);
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
    }, LIMIT_MS - 30_000, `job ${id} to finish`);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    // REST
    assert.equal(job.progress?.rounds, n + 1, 'progress.rounds counts round 0');
    assert.equal(job.progress?.roundsCompleted, n + 1);
    assert.deepEqual((await client.listRounds(id)).map((r) => r.index), [...Array(n + 1).keys()]);
    // gRPC
    const viaGrpc = await grpcClient.getJob(id);
    assert.equal(viaGrpc.progress?.rounds, n + 1);
    assert.equal(viaGrpc.progress?.roundsCompleted, n + 1);
    assert.equal((await grpcClient.listRounds(id)).length, n + 1);
    // The engine's run-start: the last round's index, stored under its old wire name too.
    const start = (await listEvents(rt.ctx, 'acme', id)).find((e) => e.kind === 'run-start')!.payload as { lastRound: number; rounds: number };
    assert.equal(start.lastRound, n);
    assert.equal(start.rounds, n, 'the stored event keeps `rounds` as it was on the wire');
    assert.equal(roundCount(start), n + 1);
    // The dashboard's function, on what REST returned.
    assert.equal(roundsShown(job.progress), `${n + 1}/${n + 1}`);
  }
  // The page as served: its round column for each job.
  const shown = await dashboardRounds();
  for (const [n, id] of ids) assert.equal(shown.get(id), `${n + 1}/${n + 1}`, `the dashboard's round column for job ${id}`);
});
