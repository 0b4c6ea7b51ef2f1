// Uploads cannot hold the upload slots for as long as a client likes: with
// two slots, a one-slot share per tenant, a 2 s idle timeout and a 4 s receive
// deadline (fake short limits), on real servers over loopback: a tenant's
// second upload is refused (Retry-After on both doors) while another tenant's
// goes through; a REST body that stalls or trickles gets 408 UPLOAD_TIMEOUT;
// a gRPC UploadModel or UploadDataset stream that stops sending gets
// DEADLINE_EXCEEDED with the same code; each frees its slot.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { GrpcError } from '../../src/client/grpc.js';
import { createApiKey, uploadsInProgress } from '../../src/service/index.js';
import { startDoors, until, type Doors } from './fixtures/harness.js';

const onnxBytes = new Uint8Array(readFileSync(new URL('../fixtures/models/mlp-gemm.onnx', import.meta.url)));

let doors: Doors;
let otherKey: string;

before(async () => {
  doors = await startDoors({ TICKETSMITH_MAX_CONCURRENT_UPLOADS: '2', TICKETSMITH_UPLOAD_IDLE_SECONDS: '2', TICKETSMITH_UPLOAD_RECEIVE_SECONDS: '4' });
  otherKey = (await createApiKey(doors.rt.ctx, 'globex')).key;
});

after(async () => {
  await doors?.stop();
});

const slotsFree = (what: string) => until(async () => (uploadsInProgress(doors.rt.ctx) === 0 ? true : null), 10_000, what);

/** A raw-body POST that announces `length` bytes and sends `first`; the caller decides what comes after. */
function slowPost(path: string, key: string, length: number, first: Uint8Array) {
  const url = new URL(`${doors.rest.url}${path}`);
  const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/zip', 'content-length': String(length) } });
  req.on('error', () => undefined);
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res: IncomingMessage) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
  });
  req.write(first);
  return { req, answer };
}

const postOnnx = (key: string) =>
  fetch(`${doors.rest.url}/v1/models`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' }, body: onnxBytes as BodyInit, signal: AbortSignal.timeout(60_000) });

test("one tenant holds at most its share of the slots; another tenant's upload still goes through", async () => {
  const slow = slowPost('/v1/models', doors.key, 512 * 1024, new Uint8Array(1024));
  await until(async () => (uploadsInProgress(doors.rt.ctx) === 1 ? true : null), 10_000, 'the slow upload to take its slot');

  const refused = await postOnnx(doors.key);
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get('retry-after'), '5');
  const body = (await refused.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'RATE_LIMITED');
  assert.match(body.error.message, /the most one tenant may have at once/);
  await assert.rejects(
    doors.client.uploadModel({ files: [{ name: 'net.onnx', bytes: onnxBytes }] }),
    (e: unknown) => e instanceof GrpcError && e.code === 'RATE_LIMITED' && e.retryAfterSeconds === 5 && /one tenant/.test(e.message),
  );

  const stored = await postOnnx(otherKey);
  assert.equal(stored.status, 201, await stored.clone().text());

  // The slow one stalls: past the idle timeout it is answered and its slot freed.
  const answer = await slow.answer;
  assert.equal(answer.status, 408, answer.body);
  const timedOut = JSON.parse(answer.body) as { error: { code: string; message: string; field?: string } };
  assert.equal(timedOut.error.code, 'UPLOAD_TIMEOUT');
  assert.match(timedOut.error.message, /^body: the upload sent nothing for 2 s/);
  await slotsFree('the stalled upload to free its slot');
});

test('the slot-full 429 carries Retry-After too', async () => {
  const a = slowPost('/v1/models', doors.key, 512 * 1024, new Uint8Array(1024));
  const b = slowPost('/v1/datasets', otherKey, 512 * 1024, new Uint8Array(1024));
  await until(async () => (uploadsInProgress(doors.rt.ctx) === 2 ? true : null), 10_000, 'both slots taken');
  const third = (await createApiKey(doors.rt.ctx, 'initech')).key;
  const refused = await postOnnx(third);
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get('retry-after'), '5');
  assert.match(((await refused.json()) as { error: { message: string } }).error.message, /2 uploads are being received already/);
  assert.equal((await a.answer).status, 408);
  assert.equal((await b.answer).status, 408);
  await slotsFree('both stalled uploads to free their slots');
});

test('a REST body that trickles in is cut off at the receive deadline', async () => {
  const slow = slowPost('/v1/datasets', doors.key, 1_000_000, new Uint8Array(1));
  // A byte every 200 ms never trips the idle timeout; the 4 s deadline ends it. Bounded: at most 40 bytes.
  let sent = 0;
  const drip = setInterval(() => {
    if (++sent > 40) return clearInterval(drip);
    slow.req.write(new Uint8Array(1));
  }, 200);
  try {
    const answer = await slow.answer;
    assert.equal(answer.status, 408, answer.body);
    assert.match(answer.body, /took longer than 4 s to arrive/);
  } finally {
    clearInterval(drip);
    slow.req.destroy();
  }
  await slotsFree('the trickling upload to free its slot');
});

test('gRPC UploadModel and UploadDataset streams that stop sending end with DEADLINE_EXCEEDED and free their slot', async () => {
  const c = new grpc.Client(`127.0.0.1:${doors.grpcServer.port}`, grpc.credentials.createInsecure());
  try {
    for (const rpc of ['UploadModel', 'UploadDataset']) {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${doors.key}`);
      const err = await new Promise<grpc.ServiceError | null>((resolve) => {
        const call = c.makeClientStreamRequest<Buffer, Buffer>(`/ticketsmith.v1.Compression/${rpc}`, (b) => b, (b) => b, md, {}, (e) => resolve(e));
        // The metadata (field 1, empty) and one archive chunk (field 2, 4 bytes), then nothing: no client deadline either.
        call.write(Buffer.from([0x0a, 0x00]));
        call.write(Buffer.from([0x12, 0x04, 0x50, 0x4b, 0x03, 0x04]));
      });
      assert.equal(err?.code, grpc.status.DEADLINE_EXCEEDED, rpc);
      assert.match(err?.details ?? '', /the upload sent nothing for 2 s/, rpc);
      assert.equal(err?.metadata.get('ticketsmith-error-code')[0], 'UPLOAD_TIMEOUT', rpc);
      await slotsFree(`the ${rpc} stream to free its slot`);
    }
  } finally {
    c.close();
  }
});
