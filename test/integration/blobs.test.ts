// The local content-addressed blob store on a real temp directory: layout by
// sha256, dedupe, atomic writes (no partial file under its final name),
// ranges and the size limit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobTooLargeError, LocalBlobStore, BlobNotFoundError } from '../../src/store/blobs.js';

let root: string;
let store: LocalBlobStore;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ticketsmith-blobs-'));
  store = new LocalBlobStore(join(root, 'blobs'));
});
after(() => rm(root, { recursive: true, force: true }));

async function collect(stream: NodeJS.ReadableStream): Promise<string> {
  let s = '';
  for await (const chunk of stream) s += chunk.toString();
  return s;
}

test('put stores bytes at <root>/ab/cdef… named by their sha256', async () => {
  const bytes = new TextEncoder().encode('hello blobs');
  const ref = await store.put(bytes);
  const sha = createHash('sha256').update('hello blobs').digest('hex');
  assert.deepEqual(ref, { sha256: sha, size: 11, key: sha });
  assert.equal(await readFile(join(root, 'blobs', sha.slice(0, 2), sha.slice(2)), 'utf8'), 'hello blobs');
  assert.deepEqual(await store.get(sha), bytes);
  assert.equal(await store.size(sha), 11);
});

test('the same bytes twice are stored once; temp files do not linger', async () => {
  const a = await store.put(new TextEncoder().encode('same'));
  const b = await store.put(new TextEncoder().encode('same'));
  assert.deepEqual(a, b);
  const dir = join(root, 'blobs', a.sha256.slice(0, 2));
  assert.deepEqual(await readdir(dir), [a.sha256.slice(2)]);
  assert.deepEqual(await readdir(join(root, 'blobs', '.tmp')), []);
});

test('a stream over the limit fails and leaves neither a blob nor a temp file', async () => {
  async function* chunks() {
    yield new Uint8Array(600);
    yield new Uint8Array(600);
  }
  await assert.rejects(store.putStream(chunks(), { maxBytes: 1000 }), BlobTooLargeError);
  assert.deepEqual(await readdir(join(root, 'blobs', '.tmp')), []);
  const sha = createHash('sha256').update(new Uint8Array(1200)).digest('hex');
  assert.equal(await store.size(sha), null);
});

test('a failing source never leaves a partial blob under its final name', async () => {
  async function* broken() {
    yield new TextEncoder().encode('partial');
    throw new Error('connection reset');
  }
  await assert.rejects(store.putStream(broken()), /connection reset/);
  assert.equal(await store.size(createHash('sha256').update('partial').digest('hex')), null);
  assert.deepEqual(await readdir(join(root, 'blobs', '.tmp')), []);
});

test('open streams the whole blob or an inclusive byte range', async () => {
  const ref = await store.put(new TextEncoder().encode('0123456789'));
  assert.equal(await collect(store.open(ref.key)), '0123456789');
  assert.equal(await collect(store.open(ref.key, { start: 2, end: 5 })), '2345');
  assert.equal((await stat(store.pathOf(ref.key))).size, 10);
});

test('missing and malformed keys are BlobNotFoundError', async () => {
  await assert.rejects(store.get('0'.repeat(64)), BlobNotFoundError);
  assert.throws(() => store.pathOf('../etc/passwd'), BlobNotFoundError);
});
