// What only the S3 blob store does (the shared contract is in blobs.test.ts):
// whole reads check the sha256 as bytes flow, so a corrupted or truncated
// object fails the read before its end is delivered; an endpoint that goes
// away, throttles, fails or refuses the credentials is BlobStoreUnavailableError
// naming the cause and never the endpoint, and works again when it is back;
// the storage pass removes temp objects of dead streamed writes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { BlobIntegrityError, BlobStoreUnavailableError, guardBlobs, sha256Hex } from '../../src/store/blobs.js';
import { S3BlobStore } from '../../src/store/s3-blobs.js';
import { S3_CREDENTIALS, startS3, type TestS3 } from './fixtures/s3.js';

let s3: TestS3;

before(async () => {
  s3 = await startS3();
});
after(async () => {
  await s3?.dispose();
});

/** Reads a stream to its end; what it delivered, and the error it ended with (or null). */
async function drain(stream: NodeJS.ReadableStream): Promise<{ bytes: number; error: unknown }> {
  let bytes = 0;
  try {
    for await (const chunk of stream) bytes += (chunk as Buffer).byteLength;
    return { bytes, error: null };
  } catch (error) {
    return { bytes, error };
  }
}

describe('reads check the sha256', () => {
  test('an object overwritten with other bytes fails get and open, before the last bytes are delivered; ranges still read', async () => {
    const store = s3.store('integrity/');
    const bytes = randomBytes(300_000);
    const ref = await store.put(bytes);
    const other = Buffer.from(bytes);
    other[other.length - 1] ^= 0xff;
    await store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: store.objectKey(ref.key), Body: other, ContentLength: other.length }));

    await assert.rejects(store.get(ref.key), (e: unknown) => e instanceof BlobIntegrityError && /does not match its sha256/.test(e.message));
    const read = await drain(store.open(ref.key));
    assert.ok(read.error instanceof BlobIntegrityError, String(read.error));
    assert.ok(read.bytes < bytes.length, `${read.bytes} of ${bytes.length} bytes passed on`);
    // A range cannot be hashed against the key: it reads (its length is checked).
    const range = await drain(store.open(ref.key, { start: 10, end: 19 }));
    assert.deepEqual(range, { bytes: 10, error: null });

    // Putting the right bytes again repairs it only when the size differs (HEAD is by size): delete and put.
    await store.delete(ref.key);
    await store.put(bytes);
    assert.equal(sha256Hex(await store.get(ref.key)), ref.key);
  });

  test('a truncated object fails the read too', async () => {
    const store = s3.store('integrity/');
    const bytes = new TextEncoder().encode('a blob that will lose its tail');
    const ref = await store.put(bytes);
    await store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: store.objectKey(ref.key), Body: bytes.subarray(0, 5), ContentLength: 5 }));
    const read = await drain(store.open(ref.key));
    assert.ok(read.error instanceof BlobIntegrityError);
    assert.equal(read.bytes, 0, 'a one-chunk blob delivers nothing');
  });

  test('put sends the sha256 for the server to check, with the length, as octet-stream', async () => {
    // A server that has nothing (HEAD 404) and takes every PUT, recording what it was sent.
    const puts: Array<Record<string, string | string[] | undefined>> = [];
    const server = createServer((req, res) => {
      req.resume();
      if (req.method === 'PUT') puts.push(req.headers);
      res.writeHead(req.method === 'HEAD' ? 404 : 200, { etag: '"e"' });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const store = new S3BlobStore({ bucket: 'ticketsmith-test', prefix: 'p/', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true }, { credentials: S3_CREDENTIALS });
    try {
      const bytes = new TextEncoder().encode('checked on arrival');
      const ref = await store.put(bytes);
      assert.equal(puts.length, 1);
      assert.equal(puts[0]!['x-amz-checksum-sha256'], Buffer.from(ref.sha256, 'hex').toString('base64'));
      assert.equal(puts[0]!['content-length'], '18');
      assert.equal(puts[0]!['content-type'], 'application/octet-stream');
    } finally {
      store.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('listing', () => {
  test('list pages through ListObjectsV2 and yields only blob keys under the prefix', async () => {
    const store = s3.store('paged/', { listPageSize: 2 });
    const other = s3.store('paged-not/');
    const keys = new Set<string>();
    for (let i = 0; i < 5; i++) keys.add((await store.put(new TextEncoder().encode(`blob ${i}`))).key);
    await other.put(new TextEncoder().encode('under another prefix'));
    await store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: `${store.prefix}.tmp/x~1~ab`, Body: 'temp' }));
    await store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: `${store.prefix}not-a-blob`, Body: 'stray' }));
    const listed: string[] = [];
    for await (const b of store.list()) listed.push(b.key);
    assert.deepEqual(listed.sort(), [...keys].sort());
  });
});

describe('the fake S3 itself', () => {
  // S3 has no folders; s3rver keeps keys in folders and used to remove one
  // a delete emptied, under a write or a listing in it (500s, then the
  // server died: see fixtures/s3rver-child.mjs). Two keys a folder, each
  // written, listed and deleted over and over beside its neighbour.
  test('writes, listings and deletes of neighbouring keys racing in one folder all succeed', { timeout: 120_000 }, async () => {
    const client = s3.store('race/').client;
    const failures: string[] = [];
    let done = 0;
    await Promise.all(Array.from({ length: 16 }, async (_, j) => {
      const folder = `race/f${j >> 1}/`;
      for (let i = 0; i < 25; i++) {
        try {
          await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${folder}k${j & 1}`, Body: `write ${i}` }));
          await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: folder }));
          await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: `${folder}k${j & 1}` }));
          done++;
        } catch (e) {
          failures.push(String(e));
        }
      }
    }));
    assert.deepEqual(failures.slice(0, 3), []);
    assert.equal(done, 16 * 25);
    const left = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'race/' }));
    assert.equal(left.KeyCount, 0);
  });
});

describe('faults', () => {
  test('the endpoint gone: every call is BlobStoreUnavailableError without the endpoint; back again, it works', async () => {
    const store = s3.store('faults/', { maxAttempts: 1 });
    const ref = await store.put(new TextEncoder().encode('there before the outage'));
    await s3.stop();
    try {
      const guarded = guardBlobs(store);
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['put', () => guarded.put(new TextEncoder().encode('during the outage'))],
        ['putStream', () => guarded.putStream((async function* () {
          yield new Uint8Array(10);
        })())],
        ['get', () => guarded.get(ref.key)],
        ['open', () => drain(guarded.open(ref.key)).then((r) => { if (r.error) throw r.error; })],
        ['size', () => guarded.size(ref.key)],
        ['delete', () => guarded.delete('0'.repeat(64))],
        ['list', async () => { for await (const _ of guarded.list()) void _; }],
        ['removeStaleTemp', () => guarded.removeStaleTemp(0)],
      ];
      for (const [name, call] of calls) {
        await assert.rejects(call(), (e: unknown) => {
          assert.ok(e instanceof BlobStoreUnavailableError, `${name}: ${String(e)}`);
          // Refused, or reset when the call had a kept-alive connection to the server that went away.
          assert.match(e.message, /^blob store unavailable: the storage endpoint is unreachable \((ECONNREFUSED|ECONNRESET)\)$/, name);
          assert.ok(!e.message.includes(String(s3.port)), `${name}: the endpoint shows`);
          return true;
        });
      }
    } finally {
      await s3.start();
    }
    assert.equal(new TextDecoder().decode(await store.get(ref.key)), 'there before the outage');
  });

  describe('an endpoint that answers with errors', () => {
    let server: Server;
    let answer = { status: 503, code: 'SlowDown' };
    let requests = 0;
    let store: S3BlobStore;
    before(async () => {
      server = createServer((req, res) => {
        requests++;
        req.resume();
        req.on('error', () => {});
        res.writeHead(answer.status, { 'content-type': 'application/xml' });
        res.end(req.method === 'HEAD' ? undefined : `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${answer.code}</Code><Message>no</Message><RequestId>1</RequestId></Error>`);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      store = new S3BlobStore({ bucket: 'ticketsmith-test', prefix: '', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true }, { credentials: S3_CREDENTIALS, maxAttempts: 2 });
    });
    after(async () => {
      store?.destroy();
      server?.closeAllConnections();
      await new Promise((r) => server?.close(r));
    });

    // GET answers carry the S3 error code; HEAD answers (put asks HEAD first) have no body, only the status.
    const cases: Array<[{ status: number; code: string }, string, string]> = [
      [{ status: 503, code: 'SlowDown' }, 'the storage is throttling requests (SlowDown)', 'the storage answered with a server error (503) (HTTP503)'],
      [{ status: 500, code: 'InternalError' }, 'the storage answered with a server error (500) (InternalError)', 'the storage answered with a server error (500) (HTTP500)'],
      [{ status: 403, code: 'AccessDenied' }, 'the storage refused the credentials (AccessDenied)', 'the storage refused the credentials (HTTP403)'],
      [{ status: 404, code: 'NoSuchBucket' }, 'the bucket does not exist (NoSuchBucket)', 'the bucket does not exist (NoSuchBucket)'],
    ];
    for (const [a, onGet, onPut] of cases) {
      test(`${a.status} ${a.code} is unavailable: ${onGet}`, async () => {
        answer = a;
        const unavailable = (reason: string) => (e: unknown) => {
          assert.ok(e instanceof BlobStoreUnavailableError, String(e));
          assert.equal(e.message, `blob store unavailable: ${reason}`);
          return true;
        };
        await assert.rejects(store.get('a'.repeat(64)), unavailable(onGet));
        await assert.rejects(store.put(new TextEncoder().encode(`x ${a.code}`)), unavailable(onPut));
        await assert.rejects((async () => { for await (const _ of store.list()) void _; })(), unavailable(onGet));
      });
    }
    test('retryable answers (throttling, 5xx) are retried by the SDK before they surface', async () => {
      answer = { status: 503, code: 'SlowDown' };
      const before = requests;
      await assert.rejects(store.get('b'.repeat(64)), BlobStoreUnavailableError);
      assert.equal(requests - before, 2, 'maxAttempts requests');
    });
  });
});

describe('the storage pass', () => {
  test('temp objects of streamed writes that died are removed once old enough; young ones stay', async () => {
    const store = s3.store('sweep/');
    const temp = `${store.prefix}.tmp/deadhost~123~abcd`;
    await store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: temp, Body: 'partial' }));
    const blob = await store.put(new TextEncoder().encode('kept by the sweep'));
    assert.equal(await store.removeStaleTemp(3600_000), 0);
    assert.equal(await store.removeStaleTemp(0), 1);
    await assert.rejects(store.client.send(new HeadObjectCommand({ Bucket: store.bucket, Key: temp })), (e: unknown) => (e as Error).name === 'NotFound');
    assert.equal(await store.size(blob.key), 17, 'blobs are not temp objects');
  });
});
