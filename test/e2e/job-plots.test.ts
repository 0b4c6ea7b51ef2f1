// A job's plots through the service, end to end: a tiny real IMP job with its
// controls (LeNet-300-100 on builtin MNIST, a few iterations) on a real worker;
// GET /v1/jobs/{id}/plots/{name} answers SVG with one point per round per
// series holding the rounds' numbers, and the job's artifacts hold the same
// plots as plots/*.svg (kind plot) whose download has the same structure.
// Unknown names are 400 naming `name`; a plot the method lacks is 404.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { TicketsmithClient, type JobDto, type RoundDto } from '../../src/client/index.js';
import { createApiKey, type ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, type TestDb } from '../integration/fixtures/harness.js';
import { seriesPoints } from '../fixtures/svg-points.js';

let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let client: TicketsmithClient;
let apiKey: string;
let job: JobDto;
let rounds: RoundDto[];

const get = (path: string) => fetch(`${rest.url}${path}`, { headers: { authorization: `Bearer ${apiKey}` } });
/** Numbers as the renderer writes them into data-x / data-y. */
const attr = (x: number) => String(Number(x.toPrecision(6)));

before(async () => {
  t = await startTestDb();
  rt = await t.open({ worker: { heartbeatSeconds: 1, pollSeconds: 0.3, progressIntervalMs: 200 } });
  rest = await startRestServer(rt, { host: '127.0.0.1', port: 0, sseHeartbeatMs: 300 });
  apiKey = (await createApiKey(rt.ctx, 'acme')).key;
  client = new TicketsmithClient({ baseUrl: rest.url, apiKey });
  const submitted = await client.submitJob({
    model: 'lenet-300-100', dataset: 'builtin:mnist', method: 'imp', rounds: 2, iterations: 6, evalEvery: 3, batchSize: 30, maxTrainExamples: 300, seed: 3, controls: 'all',
  });
  job = await client.waitForJob(submitted.job.id, { signal: AbortSignal.timeout(240_000) });
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  rounds = await client.listRounds(job.id);
  assert.equal(rounds.length, 3, 'rounds 0, 1, 2');
});

after(async () => {
  await rest?.stop(300);
  await t?.stop();
});

/** The accuracy plot's expected series from the rounds: ticket every round, controls from round 1. */
function expectedAccuracy(): Record<string, Array<[string, string]>> {
  const control = (r: RoundDto, kind: string) => (r.controls[kind] as { finalTestAccuracy: number } | undefined)?.finalTestAccuracy;
  const points = (value: (r: RoundDto) => number | undefined) =>
    rounds.flatMap((r) => {
      const v = value(r);
      return v === undefined ? [] : [[attr(r.density * 100), attr(v * 100)] as [string, string]];
    });
  return {
    ticket: points((r) => r.testAccuracy),
    'random-reinit': points((r) => control(r, 'reinit')),
    'random-structure': points((r) => control(r, 'shuffle')),
  };
}

test('GET /v1/jobs/{id}/plots/accuracy: SVG with one point per round per series, the rounds\' numbers', async () => {
  const res = await get(`/v1/jobs/${job.id}/plots/accuracy`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^image\/svg\+xml/);
  const svg = await res.text();
  assert.match(svg, /^<svg [^>]*data-plot="accuracy"/);
  const series = seriesPoints(svg);
  const want = expectedAccuracy();
  assert.equal(want.ticket!.length, 3);
  assert.equal(want['random-reinit']!.length, 2, 'controls in rounds 1 and 2');
  for (const [slug, points] of Object.entries(want)) assert.deepEqual(series.get(slug), points, slug);
  assert.match(svg, new RegExp(`<g class="baseline" data-series="dense" data-y="${attr(rounds[0]!.testAccuracy * 100)}">`));
});

test('early-stop and density plots carry the rounds\' iterations and the last round\'s layer densities', async () => {
  const es = seriesPoints(await (await get(`/v1/jobs/${job.id}/plots/early-stop`)).text());
  assert.deepEqual(es.get('ticket'), rounds.map((r) => [attr(r.density * 100), attr(r.earlyStopIteration)]));
  const density = seriesPoints(await (await get(`/v1/jobs/${job.id}/plots/density`)).text());
  assert.deepEqual(density.get('density'), Object.entries(rounds.at(-1)!.layerDensity).map(([k, v]) => [k, attr(v * 100)]));
});

test('plot names: unknown is 400 naming `name`; sensitivity of an IMP job is 404', async () => {
  const bad = await get(`/v1/jobs/${job.id}/plots/loss`);
  assert.equal(bad.status, 400);
  const body = (await bad.json()) as { error: { code: string; field?: string } };
  assert.equal(body.error.code, 'INVALID_ARGUMENT');
  assert.equal(body.error.field, 'name');
  const missing = await get(`/v1/jobs/${job.id}/plots/sensitivity`);
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
});

test('the finished job stores its plots as artifacts of kind plot; a download has the same structure', async () => {
  const plots = await client.listArtifacts(job.id, { kind: 'plot' });
  assert.deepEqual(plots.map((a) => a.name).sort(), ['plots/accuracy.svg', 'plots/density.svg', 'plots/early-stop.svg']);
  for (const a of plots) assert.equal(a.mediaType, 'image/svg+xml', a.name);
  const accuracy = plots.find((a) => a.name === 'plots/accuracy.svg')!;
  const { bytes } = await client.downloadVerified(accuracy.id, accuracy.sha256);
  const stored = new TextDecoder().decode(bytes);
  assert.match(stored, /data-plot="accuracy"/);
  const live = await (await get(`/v1/jobs/${job.id}/plots/accuracy`)).text();
  assert.deepEqual(seriesPoints(stored), seriesPoints(live));
  for (const [slug, points] of Object.entries(expectedAccuracy())) assert.deepEqual(seriesPoints(stored).get(slug), points, slug);
});
