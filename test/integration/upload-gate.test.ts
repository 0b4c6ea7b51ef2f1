// The bound on uploads taken in at once (TICKETSMITH_MAX_CONCURRENT_UPLOADS,
// here 1), on real servers over loopback: while one upload's body is still
// arriving, another over REST or gRPC is refused at once with RATE_LIMITED
// (its body never read); once the first ends (here: the client gives up
// mid-body) the slot is free and the next upload is stored.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import type { RestServer } from '../../src/api/rest/index.js';
import { GrpcError, TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { uploadsInProgress, type ServiceRuntime } from '../../src/service/index.js';
import { startDoors, until, type Doors } from './fixtures/harness.js';

const onnxBytes = new Uint8Array(readFileSync(new URL('../fixtures/models/mlp-gemm.onnx', import.meta.url)));

let rt: ServiceRuntime;
let rest: RestServer;
let key: string;
let client: TicketsmithGrpcClient;

let doors: Doors;

before(async () => {
  doors = await startDoors({ TICKETSMITH_MAX_CONCURRENT_UPLOADS: '1' });
  ({ rt, rest, key, client } = doors);
});

after(async () => {
  await doors?.stop();
});

const post = (body: Uint8Array) =>
  fetch(`${rest.url}/v1/models`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' }, body: body as BodyInit, signal: AbortSignal.timeout(60_000) });

test('one upload at a time: the next is RATE_LIMITED over REST and gRPC until the first ends', async () => {
  // The first upload announces 512 KiB and sends 1 KiB, then waits: it holds the only slot.
  const url = new URL(`${rest.url}/v1/models`);
  const slow = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream', 'content-length': String(512 * 1024) } });
  slow.on('error', () => undefined);
  slow.write(new Uint8Array(1024));
  await until(async () => (uploadsInProgress(rt.ctx) === 1 ? true : null), 10_000, 'the slow upload to take its slot');

  const rejected = await post(onnxBytes);
  assert.equal(rejected.status, 429);
  const body = (await rejected.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'RATE_LIMITED');
  assert.match(body.error.message, /1 uploads are being received already; retry shortly/);

  await assert.rejects(client.uploadModel({ files: [{ name: 'net.onnx', bytes: onnxBytes }] }), (e: unknown) => e instanceof GrpcError && e.code === 'RATE_LIMITED' && /uploads are being received already/.test(e.message));

  slow.destroy();
  await until(async () => (uploadsInProgress(rt.ctx) === 0 ? true : null), 10_000, 'the slot to be released');
  const stored = await post(onnxBytes);
  assert.equal(stored.status, 201, await stored.clone().text());
});

/** Sends a request head and the start of a body Node's parser refuses (a chunk-size line cut by junk), and returns what the server answered. */
function malformedChunked(path: string, contentType: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const s = connect(rest.port, '127.0.0.1', () => {
      s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: ${contentType}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
      setTimeout(() => s.end(), 300);
    });
    s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => resolve(answer));
  });
}

test('a body the HTTP parser refuses midway frees its slot (raw and multipart, models and datasets)', async () => {
  const cases: Array<[string, string, string]> = [
    ['/v1/models', 'application/zip', '10\r\n--XB\r\nContent-Disp'],
    ['/v1/models', 'multipart/form-data; boundary=XB', '10\r\n--XB\r\nContent-Disp'],
    ['/v1/datasets', 'application/gzip', '10\r\n--XB\r\nContent-Disp'],
    ['/v1/datasets', 'multipart/form-data; boundary=XB', '10\r\n--XB\r\nContent-Disp'],
  ];
  for (const [path, type, body] of cases) {
    // One slot only: a leak from any case would make the next one's check below fail.
    const answer = await malformedChunked(path, type, body);
    assert.match(answer, /^HTTP\/1\.1 400/, `${path} ${type}`);
    await until(async () => (uploadsInProgress(rt.ctx) === 0 ? true : null), 10_000, `the slot of ${path} ${type} to be released`);
  }
  const stored = await post(onnxBytes);
  assert.equal(stored.status, 201, await stored.clone().text());
});
