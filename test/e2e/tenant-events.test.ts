// GET /v1/events, the tenant-wide stream behind the dashboard's live jobs
// list: a job submitted after the stream opened arrives as `event: job` frames
// up to its final state, and another tenant's job, run to the end meanwhile,
// never appears. Real REST server on 127.0.0.1, the test engine.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { createApiKey, getJob, submitJob, type JobDto, type ServiceRuntime } from '../../src/service/index.js';
import { makeTestEngine } from '../integration/fixtures/test-engine.js';
import { startTestDb, until, type TestDb } from '../integration/fixtures/harness.js';

let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let key: string;

before(async () => {
  t = await startTestDb();
  rt = await t.open({ worker: { heartbeatSeconds: 0.5, pollSeconds: 0.2, progressIntervalMs: 100 }, runner: makeTestEngine({ stepMs: 5 }) });
  rest = await startRestServer(rt, { host: '127.0.0.1', port: 0, sseHeartbeatMs: 200 });
  key = (await createApiKey(rt.ctx, 'acme')).key;
});

after(async () => {
  await rest?.stop(200);
  await t?.stop();
});

const spec = (seed: number) => ({ model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 10, seed });

test("GET /v1/events streams the tenant's jobs as they change, and no other tenant's", { timeout: 120_000 }, async () => {
  const ac = new AbortController();
  const res = await fetch(`${rest.url}/v1/events`, { headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' }, signal: ac.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const frames: Array<{ event: string; data: string }> = [];
  const reading = (async () => {
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        for (let cut = buf.indexOf('\n\n'); cut >= 0; cut = buf.indexOf('\n\n')) {
          const lines = buf.slice(0, cut).split('\n');
          buf = buf.slice(cut + 2);
          const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
          const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (event) frames.push({ event, data });
        }
      }
    } catch (e) {
      if (!ac.signal.aborted) throw e;
    }
  })();

  // Another tenant's job runs to the end while the stream is open.
  const theirs = (await submitJob(rt.ctx, 'globex', spec(1))).job.id;
  await until(async () => (await getJob(rt.ctx, 'globex', theirs)).status === 'succeeded', 60_000, "globex's job");
  // Then ours.
  const ours = (await submitJob(rt.ctx, 'acme', spec(2))).job.id;
  await until(async () => frames.some((f) => {
    const job = f.event === 'job' ? (JSON.parse(f.data) as JobDto) : null;
    return job?.id === ours && job.status === 'succeeded';
  }), 60_000, 'our job to arrive as succeeded');
  ac.abort();
  await reading;

  const jobs = frames.filter((f) => f.event === 'job').map((f) => JSON.parse(f.data) as JobDto);
  assert.ok(jobs.length > 0);
  assert.deepEqual([...new Set(jobs.map((j) => j.id))], [ours], 'only our job appears');
  assert.equal(jobs.at(-1)!.status, 'succeeded');
  assert.equal(jobs.at(-1)!.progress?.roundsCompleted, 2);
  assert.deepEqual(frames.filter((f) => f.event === 'error'), []);
});
