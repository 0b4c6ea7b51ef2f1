// A blob folder that stops taking bytes (disk full, read-only, replaced by a
// file): the job is handed back to the queue with a retryable UNAVAILABLE
// reason that names the blob store and never the path, nothing half-recorded
// is left (no Round row without its artifacts, no Artifact row without its
// blob), and once the folder works again the retry finishes the job. When the
// store stays down past the attempts, the job fails as UNAVAILABLE.
//
// Tests run as root, where chmod does not stop writes: a wrapper store throws
// what the fs would (errno code, path in the message), and one test replaces
// the real blob folder with a file. The S3 store's endpoint going away in the
// middle of a job (s3rver stopped, then started again) is handled the same way.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { getJob, listEvents, submitJob, toServiceError, uploadModel, type ServiceContext } from '../../src/service/index.js';
import { LocalBlobStore, sha256Hex, type BlobRef, type BlobStore, type ByteRange } from '../../src/store/blobs.js';
import { makeTestEngine } from './fixtures/test-engine.js';
import { startS3 } from './fixtures/s3.js';
import { startTestDb, until, uploadFiles, type TestDb } from './fixtures/harness.js';

let t: TestDb;

before(async () => {
  t = await startTestDb();
});
after(async () => {
  await t?.stop();
});

/** A store whose writes fail like the fs does (errno code, syscall, the path in the message) while `failing` is set. */
class FailingBlobStore implements BlobStore {
  failing: 'ENOSPC' | 'EROFS' | 'EACCES' | null = null;
  readonly location: string;
  constructor(private readonly inner: LocalBlobStore) {
    this.location = inner.location;
  }
  private check(): void {
    if (!this.failing) return;
    const words = { ENOSPC: 'no space left on device', EROFS: 'read-only file system', EACCES: 'permission denied' }[this.failing];
    throw Object.assign(new Error(`${this.failing}: ${words}, open '${this.inner.root}/.tmp/x'`), { code: this.failing, errno: -28, syscall: 'open', path: `${this.inner.root}/.tmp/x` });
  }
  async put(bytes: Uint8Array): Promise<BlobRef> {
    this.check();
    return this.inner.put(bytes);
  }
  async putStream(source: AsyncIterable<Uint8Array>, opts?: { maxBytes?: number }): Promise<BlobRef> {
    this.check();
    return this.inner.putStream(source, opts);
  }
  get(key: string) {
    return this.inner.get(key);
  }
  open(key: string, range?: ByteRange) {
    return this.inner.open(key, range);
  }
  size(key: string) {
    return this.inner.size(key);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  list() {
    return this.inner.list();
  }
  removeStaleTemp(olderThanMs: number) {
    return this.inner.removeStaleTemp(olderThanMs);
  }
}

const WORKER = { heartbeatSeconds: 0.2, staleSeconds: 5, reapSeconds: 0.5, pollSeconds: 0.2, progressIntervalMs: 100, blobRetrySeconds: 1 };

/** No Round row without its two artifacts, no Artifact row whose blob is missing or differs. */
async function assertNothingHalfRecorded(ctx: ServiceContext, store: BlobStore, jobId: string): Promise<number[]> {
  const rounds = await ctx.prisma.round.findMany({ where: { jobId }, include: { artifacts: true }, orderBy: { index: 'asc' } });
  for (const r of rounds) assert.deepEqual(r.artifacts.map((a) => a.name).sort(), [`round_${r.index}/mask.json`, `round_${r.index}/weights.bin`]);
  for (const a of await ctx.prisma.artifact.findMany({ where: { jobId } })) {
    assert.equal(sha256Hex(await store.get(a.storageKey)), a.sha256, `${a.name} has its blob`);
  }
  return rounds.map((r) => r.index);
}

const terminal = (ctx: ServiceContext, id: string) =>
  until(async () => {
    const j = await getJob(ctx, 'acme', id);
    return j.status === 'succeeded' || j.status === 'failed' || j.status === 'cancelled' ? j : null;
  }, 30_000, 'job to end');

test('disk full in the middle of a job: requeued as blob store unavailable, nothing half-recorded, finishes once the disk has room', async () => {
  const store = new FailingBlobStore(new LocalBlobStore(t.config.blobDir));
  const rt = await t.open({
    blobs: store,
    worker: WORKER,
    runner: makeTestEngine({ stepMs: 5, artifactBytes: 4096, onRoundCommitted: (i) => (i === 0 ? (store.failing = 'ENOSPC') : undefined) }),
  });
  const { ctx } = rt;
  const { job } = await submitJob(ctx, 'acme', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 3, iterations: 3, seed: 101 });
  const requeued = await until(async () => {
    const e = (await listEvents(ctx, 'acme', job.id)).find((x) => x.kind === 'requeued');
    return e ? (e.payload as { reason: string; retryInSeconds?: number }) : null;
  }, 20_000, 'the job to be handed back');
  assert.match(requeued.reason, /blob store unavailable: no space left on the device \(ENOSPC\)/);
  assert.ok(!requeued.reason.includes(t.dir) && !requeued.reason.includes('/'), `no path in '${requeued.reason}'`);
  assert.equal(requeued.retryInSeconds, 1);
  assert.notEqual((await getJob(ctx, 'acme', job.id)).status, 'failed', 'retryable: not failed');
  assert.deepEqual(await assertNothingHalfRecorded(ctx, store, job.id), [0], 'round 0 whole, round 1 not at all');

  store.failing = null;
  const done = await terminal(ctx, job.id);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assert.ok(done.attempts >= 2);
  assert.deepEqual(await assertNothingHalfRecorded(ctx, store, job.id), [0, 1, 2, 3]);
  await rt.stop();
});

test('a read-only blob store that stays down: the job fails as UNAVAILABLE naming the blob store, and uploads answer UNAVAILABLE', async () => {
  const store = new FailingBlobStore(new LocalBlobStore(t.config.blobDir));
  store.failing = 'EROFS';
  const rt = await t.open({ blobs: store, worker: { ...WORKER, maxAttempts: 2 }, runner: makeTestEngine({ stepMs: 5, artifactBytes: 4096 }) });
  const { ctx } = rt;
  const { job } = await submitJob(ctx, 'acme', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 2, iterations: 2, seed: 102 });
  const done = await terminal(ctx, job.id);
  assert.equal(done.status, 'failed');
  assert.equal(done.error?.code, 'UNAVAILABLE');
  assert.equal(done.error?.message, 'blob store unavailable: read-only file system (EROFS)');
  assert.equal(done.attempts, 2, 'retried once before giving up');
  assert.deepEqual(await assertNothingHalfRecorded(ctx, store, job.id), []);

  // The upload door maps the same fault to 503 / UNAVAILABLE, without the path.
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
  const files = await uploadFiles(model);
  model.dispose();
  const err = await uploadModel(ctx, 'acme', { files }).then(
    () => assert.fail('upload to a read-only store succeeded'),
    (e: unknown) => toServiceError(e),
  );
  assert.equal(err.code, 'UNAVAILABLE');
  assert.match(err.message, /^blob store unavailable: read-only file system \(EROFS\)$/);
  assert.equal(await ctx.prisma.model.count(), 0, 'no model row without its files');
  await rt.stop();
});

test('the blob folder replaced by a file: the job waits in the queue, and finishes once the folder is back', async () => {
  const dir = t.config.blobDir;
  const rt = await t.open({
    worker: WORKER,
    runner: makeTestEngine({ stepMs: 5, artifactBytes: 4096 }),
  });
  const { ctx } = rt;
  await mkdir(dir, { recursive: true });
  await rename(dir, `${dir}.aside`);
  await writeFile(dir, 'not a folder');
  const { job } = await submitJob(ctx, 'acme', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 2, iterations: 2, seed: 103 });
  const requeued = await until(async () => {
    const e = (await listEvents(ctx, 'acme', job.id)).find((x) => x.kind === 'requeued');
    return e ? (e.payload as { reason: string }).reason : null;
  }, 20_000, 'the job to be handed back');
  assert.match(requeued, /^blob store unavailable: the blob folder is not a directory \(ENOTDIR\); retrying$/);
  assert.equal(await ctx.prisma.round.count({ where: { jobId: job.id } }), 0);
  assert.equal(await ctx.prisma.artifact.count({ where: { jobId: job.id } }), 0, 'no artifact row without its blob');

  await rm(dir);
  await rename(`${dir}.aside`, dir);
  const done = await terminal(ctx, job.id);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assert.deepEqual(await assertNothingHalfRecorded(ctx, ctx.blobs, job.id), [0, 1, 2]);
  await rt.stop();
});

test('the S3 endpoint gone in the middle of a job: requeued as blob store unavailable, nothing half-recorded, finishes once it is back', async () => {
  const s3 = await startS3();
  try {
    const store = s3.store('faults/', { maxAttempts: 1 });
    const rt = await t.open({
      blobs: store,
      worker: WORKER,
      // The server stops listening at once (close() only waits for the connections it has just cut).
      runner: makeTestEngine({ stepMs: 5, artifactBytes: 4096, onRoundCommitted: (i) => (i === 0 ? void s3.stop() : undefined) }),
    });
    const { ctx } = rt;
    const { job } = await submitJob(ctx, 'acme', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 2, iterations: 2, seed: 104 });
    const requeued = await until(async () => {
      const e = (await listEvents(ctx, 'acme', job.id)).find((x) => x.kind === 'requeued');
      return e ? (e.payload as { reason: string }).reason : null;
    }, 20_000, 'the job to be handed back');
    assert.match(requeued, /^blob store unavailable: the storage endpoint is unreachable \((ECONNREFUSED|ECONNRESET)\); retrying$/);
    assert.ok(!requeued.includes(String(s3.port)), 'no endpoint in the reason');
    assert.notEqual((await getJob(ctx, 'acme', job.id)).status, 'failed');

    await s3.start();
    const done = await terminal(ctx, job.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.deepEqual(await assertNothingHalfRecorded(ctx, store, job.id), [0, 1, 2]);
    await rt.stop();
  } finally {
    await s3.dispose();
  }
});
