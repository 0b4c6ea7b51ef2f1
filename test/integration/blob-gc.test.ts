// Blob collection against writers of the same bytes (store/blob-gc.ts): the
// two orders of the race taken one at a time (the collector removes a blob a
// writer has put but not recorded yet; the collector checks while a writer's
// rows are not committed yet), then many concurrent uploads of one model's
// bytes interleaved with deletes and GC passes. Whatever the interleaving,
// every artifact row's blob exists with its sha256, a final GC leaves no
// unreferenced blob, and no temp file is left behind. A blob store that waits
// after each write widens the window between a blob's write and its row.
// Everything runs on both stores: the folder store and the S3 store (s3rver).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { deleteModel, ServiceError, uploadModel, type ServiceContext, type ServiceRuntime } from '../../src/service/index.js';
import { recordArtifacts, storeBlobs } from '../../src/store/artifacts.js';
import { BLOB_LOCK_CLASS, collectBlobs, sweepBlobs } from '../../src/store/blob-gc.js';
import { LocalBlobStore, type BlobRef, type BlobStore, type ByteRange, type StoredBlob } from '../../src/store/blobs.js';
import type { S3BlobStore } from '../../src/store/s3-blobs.js';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { startS3, type TestS3 } from './fixtures/s3.js';
import { TX_OPTIONS } from '../../src/store/db.js';
import { sleep, startTestDb, until, uploadFiles, type TestDb } from './fixtures/harness.js';

/** A store whose writes return a little later: a slow disk or network between `put` and the row. */
class SlowWrites implements BlobStore {
  readonly location: string;
  constructor(readonly inner: BlobStore) {
    this.location = inner.location;
  }
  async put(bytes: Uint8Array): Promise<BlobRef> {
    const ref = await this.inner.put(bytes);
    await sleep(Math.random() * 15);
    return ref;
  }
  putStream(source: AsyncIterable<Uint8Array>, opts?: { maxBytes?: number }): Promise<BlobRef> {
    return this.inner.putStream(source, opts);
  }
  get(key: string): Promise<Uint8Array> {
    return this.inner.get(key);
  }
  open(key: string, range?: ByteRange) {
    return this.inner.open(key, range);
  }
  size(key: string): Promise<number | null> {
    return this.inner.size(key);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  list(): AsyncIterable<StoredBlob> {
    return this.inner.list();
  }
  removeStaleTemp(olderThanMs: number): Promise<number> {
    return this.inner.removeStaleTemp(olderThanMs);
  }
}

let t: TestDb;
let s3: TestS3;
let rt: ServiceRuntime;
let ctx: ServiceContext;
/** The store under test (behind SlowWrites in the service) and its temp files or temp objects. */
let local: BlobStore;
let tempFiles: () => Promise<string[]>;
let modelFiles: { name: string; bytes: Uint8Array }[];

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

before(async () => {
  t = await startTestDb();
  s3 = await startS3();
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 4, activation: 'relu', inputShape: [3], name: 'fc1' }), tf.layers.dense({ units: 2, name: 'out' })] });
  modelFiles = await uploadFiles(model);
  model.dispose();
});

after(async () => {
  await t?.stop();
  await s3?.dispose();
});

async function s3Temps(store: S3BlobStore): Promise<string[]> {
  const out = await store.client.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: `${store.prefix}.tmp/` }));
  return (out.Contents ?? []).map((o) => o.Key!.slice(`${store.prefix}.tmp/`.length));
}

const STORES: Array<[string, () => { store: BlobStore; temps(): Promise<string[]> }]> = [
  ['folder', () => {
    const store = new LocalBlobStore(join(t.dir, 'gc-blobs'));
    return { store, temps: () => readdir(join(store.root, '.tmp')).catch(() => []) };
  }],
  ['s3', () => {
    const store = s3.store('gc/', { partBytes: 1024 });
    return { store, temps: () => s3Temps(store) };
  }],
];

/** Every artifact row's blob is there and hashes to the row's sha256. */
async function assertEveryRowHasItsBlob(): Promise<number> {
  const rows = await ctx.prisma.artifact.findMany({ select: { storageKey: true, sha256: true, sizeBytes: true } });
  for (const r of rows) {
    const bytes = await local.get(r.storageKey).catch(() => null);
    assert.ok(bytes, `blob ${r.storageKey} of a recorded artifact is missing`);
    assert.equal(sha256(bytes), r.sha256);
    assert.equal(bytes.byteLength, Number(r.sizeBytes));
  }
  return rows.length;
}

async function storedKeys(): Promise<string[]> {
  const keys: string[] = [];
  for await (const b of local.list()) keys.push(b.key);
  return keys.sort();
}

async function referencedKeys(): Promise<string[]> {
  const rows = await ctx.prisma.artifact.findMany({ select: { storageKey: true }, distinct: ['storageKey'] });
  return rows.map((r) => r.storageKey).sort();
}


/** A model row and its file rows, recorded the way uploadModel does, with a hook before the commit. */
async function recordModel(bytes: Uint8Array, beforeCommit: () => Promise<void> = async () => {}) {
  const pending = await storeBlobs(ctx.blobs, { 'weights.bin': bytes }, 'model-file');
  return { pending, commit: () => ctx.prisma.$transaction(async (tx) => {
    const model = await tx.model.create({ data: { tenant: 'acme', name: 'm', format: 'tfjs-layers', sha256: pending[0]!.blob.sha256, architecture: {}, sizeBytes: BigInt(bytes.byteLength), files: [] } });
    await recordArtifacts(tx, { tenant: 'acme', modelId: model.id }, pending);
    await beforeCommit();
    return model.id;
  }, TX_OPTIONS) };
}

for (const [kind, make] of STORES) {
  describe(`on the ${kind} store`, () => {
    before(async () => {
      const subject = make();
      local = subject.store;
      tempFiles = subject.temps;
      rt = await t.open({ blobs: new SlowWrites(local) });
      ctx = rt.ctx;
    });
    after(async () => {
      await rt?.stop();
    });

    describe('the race, one order at a time', () => {
      test('a blob collected between its write and its row is written again before the row commits', async () => {
        const bytes = new TextEncoder().encode(`collected-before-recorded ${Math.random()}`);
        const { pending, commit } = await recordModel(bytes);
        const key = pending[0]!.blob.key;
        // Nothing references it yet: the collector may take it.
        assert.deepEqual((await collectBlobs(ctx.prisma, ctx.blobs, [key])).removed, [key]);
        assert.equal(await local.size(key), null);
        const id = await commit();
        assert.equal(sha256(await local.get(key)), key, 'the writer put it back under its lock');
        await deleteModel(ctx, 'acme', id);
        assert.equal(await local.size(key), null, 'collected once the row is gone');
      });

      test('a collector that checks while the rows are uncommitted waits for the commit, then keeps the blob', async () => {
        const bytes = new TextEncoder().encode(`recorded-while-collecting ${Math.random()}`);
        let collecting: Promise<{ removed: string[]; kept: string[] }> | null = null;
        const { pending, commit } = await recordModel(bytes, async () => {
          // The rows are written but not committed: a collector now must wait on the key's lock.
          collecting = collectBlobs(ctx.prisma, ctx.blobs, [pending[0]!.blob.key]);
          await until(async () => {
            const [row] = await ctx.prisma.$queryRaw<{ waiting: number }[]>`
              SELECT count(*)::int AS waiting FROM pg_locks
              WHERE locktype = 'advisory' AND classid = ${BLOB_LOCK_CLASS}::oid AND objsubid = 2 AND NOT granted`;
            return (row?.waiting ?? 0) > 0;
          }, 10_000, 'the collector to wait on the blob lock');
        });
        const key = pending[0]!.blob.key;
        const id = await commit();
        assert.ok(collecting);
        assert.deepEqual(await collecting, { removed: [], kept: [key] });
        assert.equal(sha256(await local.get(key)), key);
        await deleteModel(ctx, 'acme', id);
        assert.equal(await local.size(key), null);
      });
    });

    describe('concurrent uploads of the same bytes, deletes and GC passes', () => {
      test('every remaining artifact has its blob with its sha256; a final GC leaves no unreferenced blob and no temp file', { timeout: 240_000 }, async () => {
        const ROUNDS = 6;
        const UPLOADS = 6;
        const live: string[] = [];
        let uploads = 0;
        let deletes = 0;
        let stop = false;
        // GC passes run the whole time, between and inside the rounds.
        const gc = (async () => {
          let passes = 0;
          while (!stop && passes < 5_000) {
            await sweepBlobs(ctx.prisma, ctx.blobs, { minAgeSeconds: 0 });
            passes++;
            await sleep(Math.random() * 5);
          }
          return passes;
        })();

        for (let round = 0; round < ROUNDS; round++) {
          const victims = live.splice(0, Math.min(live.length, 4));
          await Promise.all([
            ...Array.from({ length: UPLOADS }, async () => {
              await sleep(Math.random() * 20);
              const m = await uploadModel(ctx, 'acme', { files: modelFiles }, { name: `copy-${round}` });
              live.push(m.id);
              uploads++;
            }),
            ...victims.map(async (id) => {
              await sleep(Math.random() * 20);
              await deleteModel(ctx, 'acme', id);
              deletes++;
            }),
          ]);
          await assertEveryRowHasItsBlob();
        }
        // Delete the rest but two, racing the last GC passes.
        await Promise.all(live.splice(2).map(async (id) => {
          await sleep(Math.random() * 20);
          await deleteModel(ctx, 'acme', id);
          deletes++;
        }));
        stop = true;
        const passes = await gc;
        assert.ok(passes > 0);
        assert.equal(uploads, ROUNDS * UPLOADS);
        assert.equal(deletes, ROUNDS * UPLOADS - 2);

        assert.equal(await assertEveryRowHasItsBlob(), 2 * modelFiles.length);
        await sweepBlobs(ctx.prisma, ctx.blobs, { minAgeSeconds: 0 });
        assert.deepEqual(await storedKeys(), await referencedKeys(), 'after a final GC every stored blob is referenced');
        assert.equal((await storedKeys()).length, modelFiles.length, 'the two copies share one blob per file');
        assert.deepEqual(await tempFiles(), []);

        for (const id of live) await deleteModel(ctx, 'acme', id);
        await assert.rejects(deleteModel(ctx, 'acme', live[0]!), (e: unknown) => e instanceof ServiceError && e.code === 'NOT_FOUND');
        await sweepBlobs(ctx.prisma, ctx.blobs, { minAgeSeconds: 0 });
        assert.deepEqual(await storedKeys(), []);
        assert.deepEqual(await tempFiles(), []);
      });

      test('the sweep removes temp files of dead writes once they are old, and leaves young ones', async () => {
        if (kind === 'folder') {
          const { writeFile, utimes, mkdir } = await import('node:fs/promises');
          const tmp = join((local as LocalBlobStore).root, '.tmp');
          await mkdir(tmp, { recursive: true });
          await writeFile(join(tmp, 'dead-writer'), 'partial');
          const old = new Date(Date.now() - 2 * 3600_000);
          await utimes(join(tmp, 'dead-writer'), old, old);
          await writeFile(join(tmp, 'live-writer'), 'partial');
          const r = await sweepBlobs(ctx.prisma, ctx.blobs, { minAgeSeconds: 0, tempMaxAgeSeconds: 3600 });
          assert.equal(r.tempRemoved, 1);
          assert.deepEqual(await tempFiles(), ['live-writer']);
        } else {
          // An object's date is the server's: a temp object just written is young.
          const store = local as S3BlobStore;
          await store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: `${store.prefix}.tmp/live-writer`, Body: 'partial' }));
          const r = await sweepBlobs(ctx.prisma, ctx.blobs, { minAgeSeconds: 0, tempMaxAgeSeconds: 3600 });
          assert.equal(r.tempRemoved, 0);
          assert.deepEqual(await tempFiles(), ['live-writer']);
        }
        await local.removeStaleTemp(0);
        assert.deepEqual(await tempFiles(), []);
      });
    });
  });
}
