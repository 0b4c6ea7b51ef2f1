// The blob store contract, run on both stores: the folder store on a real
// temp directory and the S3 store on a local S3-compatible server (s3rver).
// Dedupe by sha256, no partial blob under its key when a write fails or goes
// over the limit (and no temp left), streamed writes of many parts, ranges,
// missing and malformed keys, listing and deleting. Then what only the folder
// store has: its layout on disk.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { BlobNotFoundError, BlobTooLargeError, LocalBlobStore, type BlobStore } from '../../src/store/blobs.js';
import type { S3BlobStore } from '../../src/store/s3-blobs.js';
import { startS3, type TestS3 } from './fixtures/s3.js';

let root: string;
let s3: TestS3;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ticketsmith-blobs-'));
  s3 = await startS3();
});
after(async () => {
  await s3?.dispose();
  await rm(root, { recursive: true, force: true });
});

async function collect(stream: NodeJS.ReadableStream): Promise<string> {
  let s = '';
  for await (const chunk of stream) s += chunk.toString();
  return s;
}

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** A store under test and what is left of unfinished writes in it (temp files, temp objects). */
interface Subject {
  store: BlobStore;
  leftovers(): Promise<string[]>;
}

/** S3 objects under the store's temp prefix. */
async function s3Temps(store: S3BlobStore): Promise<string[]> {
  const out = await store.client.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: `${store.prefix}.tmp/` }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

const subjects: Array<[string, () => Subject]> = [
  ['folder', () => {
    const store = new LocalBlobStore(join(root, 'contract'));
    return { store, leftovers: () => readdir(join(store.root, '.tmp')).catch(() => []) };
  }],
  ['s3', () => {
    // Parts of 1 KiB: small blobs take the multipart and temp-copy paths that big ones take in production.
    const store = s3.store('contract/', { partBytes: 1024 });
    return { store, leftovers: () => s3Temps(store) };
  }],
];

for (const [kind, make] of subjects) {
  describe(`the ${kind} blob store`, () => {
    let subject: Subject;
    let store: BlobStore;
    before(() => {
      subject = make();
      store = subject.store;
    });

    test('put returns the sha256 as key; get, size and open give the bytes back', async () => {
      const bytes = new TextEncoder().encode(`hello blobs ${kind}`);
      const ref = await store.put(bytes);
      assert.deepEqual(ref, { sha256: sha(bytes), size: bytes.byteLength, key: sha(bytes) });
      assert.deepEqual(await store.get(ref.key), bytes);
      assert.equal(await store.size(ref.key), bytes.byteLength);
      assert.equal(await collect(store.open(ref.key)), `hello blobs ${kind}`);
    });

    test('the same bytes twice are stored once, by put and by putStream; nothing temporary lingers', async () => {
      const bytes = new TextEncoder().encode(`same ${kind}`);
      const a = await store.put(bytes);
      const b = await store.put(bytes);
      const c = await store.putStream((async function* () {
        yield bytes.subarray(0, 3);
        yield bytes.subarray(3);
      })());
      assert.deepEqual(a, b);
      assert.deepEqual(a, c);
      const listed: string[] = [];
      for await (const x of store.list()) if (x.key === a.key) listed.push(x.key);
      assert.deepEqual(listed, [a.key]);
      assert.deepEqual(await subject.leftovers(), []);
    });

    test('a stream of many chunks and parts is hashed as it flows and stored whole', async () => {
      const chunks = Array.from({ length: 7 }, (_, i) => randomBytes(700 + i * 13));
      const whole = Buffer.concat(chunks);
      const ref = await store.putStream((async function* () {
        yield* chunks;
      })());
      assert.deepEqual(ref, { sha256: sha(whole), size: whole.byteLength, key: sha(whole) });
      assert.ok(Buffer.from(await store.get(ref.key)).equals(whole));
      // The same bytes again (several parts): found by their digest, not stored twice.
      assert.deepEqual(await store.putStream((async function* () {
        yield whole;
      })()), ref);
      // And bytes larger than a part through put.
      const big = randomBytes(3000);
      const bigRef = await store.put(big);
      assert.ok(Buffer.from(await store.get(bigRef.key)).equals(big));
      assert.deepEqual(await subject.leftovers(), []);
    });

    test('a stream over the limit fails and leaves neither a blob nor anything temporary', async () => {
      // Past the limit only after two parts went out: the S3 store's multipart upload is aborted.
      async function* chunks() {
        for (let i = 0; i < 5; i++) yield new Uint8Array(600).fill(1);
      }
      await assert.rejects(store.putStream(chunks(), { maxBytes: 2500 }), BlobTooLargeError);
      assert.equal(await store.size(sha(new Uint8Array(3000).fill(1))), null);
      assert.deepEqual(await subject.leftovers(), []);
    });

    test('a failing source never leaves a partial blob under its final name', async () => {
      const partial = new Uint8Array(2500).fill(7);
      async function* broken() {
        yield partial;
        throw new Error('connection reset');
      }
      await assert.rejects(store.putStream(broken()), /connection reset/);
      assert.equal(await store.size(sha(partial)), null);
      assert.deepEqual(await subject.leftovers(), []);
    });

    test('open streams the whole blob or an inclusive byte range', async () => {
      const ref = await store.put(new TextEncoder().encode(`0123456789${kind}`));
      assert.equal(await collect(store.open(ref.key)), `0123456789${kind}`);
      assert.equal(await collect(store.open(ref.key, { start: 2, end: 5 })), '2345');
    });

    test('missing and malformed keys are BlobNotFoundError (get, open) or no size', async () => {
      await assert.rejects(store.get('0'.repeat(64)), BlobNotFoundError);
      await assert.rejects(collect(store.open('0'.repeat(64))), BlobNotFoundError);
      await assert.rejects(store.get('../etc/passwd'), BlobNotFoundError);
      assert.equal(await store.size('0'.repeat(64)), null);
    });

    test('list gives every stored blob with its size; delete removes one, and deleting it again is fine', async () => {
      const bytes = new TextEncoder().encode(`to delete ${kind}`);
      const ref = await store.put(bytes);
      const listed = new Map<string, number>();
      for await (const b of store.list()) {
        assert.ok(b.modifiedAt instanceof Date && b.modifiedAt.getTime() > 0);
        listed.set(b.key, b.size);
      }
      assert.equal(listed.get(ref.key), bytes.byteLength);
      assert.ok([...listed.keys()].every((k) => /^[0-9a-f]{64}$/.test(k)), 'only blob keys are listed');
      await store.delete(ref.key);
      await store.delete(ref.key);
      assert.equal(await store.size(ref.key), null);
      for await (const b of store.list()) assert.notEqual(b.key, ref.key);
    });
  });
}

describe('the folder store on disk', () => {
  let store: LocalBlobStore;
  before(() => {
    store = new LocalBlobStore(join(root, 'blobs'));
  });

  test('put stores bytes at <root>/ab/cdef… named by their sha256', async () => {
    const ref = await store.put(new TextEncoder().encode('hello blobs'));
    const key = sha('hello blobs');
    assert.equal(ref.key, key);
    assert.equal(await readFile(join(root, 'blobs', key.slice(0, 2), key.slice(2)), 'utf8'), 'hello blobs');
    assert.equal((await stat(store.pathOf(key))).size, 11);
  });

  test('the same bytes twice are one file; malformed keys have no path', async () => {
    const a = await store.put(new TextEncoder().encode('same'));
    await store.put(new TextEncoder().encode('same'));
    assert.deepEqual(await readdir(join(root, 'blobs', a.sha256.slice(0, 2))), [a.sha256.slice(2)]);
    assert.deepEqual(await readdir(join(root, 'blobs', '.tmp')), []);
    assert.throws(() => store.pathOf('../etc/passwd'), BlobNotFoundError);
  });
});
