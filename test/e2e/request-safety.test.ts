// No request can take the service down: malformed, cut-off and aborted
// multipart uploads, a raw archive cut off, giant part headers, clients that
// leave in the middle of a download, an SSE stream or a gRPC stream, gRPC
// uploads cancelled or undecodable. Each is answered (4xx / a gRPC status) or
// dropped quietly, and the same server keeps answering afterwards. An
// uncaught error here fails this file: the test process has no crash guard.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { rm } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { streamsInFlight } from '../../src/api/grpc/call.js';
import { TicketsmithGrpcClient } from '../../src/client/grpc.js';
import { LocalBlobStore } from '../../src/store/blobs.js';
import { createApiKey, submitJob, type ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, until, uploadFiles, type TestDb } from '../integration/fixtures/harness.js';

let t: TestDb;
let rt: ServiceRuntime;
let rest: RestServer;
let grpcServer: GrpcServerHandle;
let key: string;
let grpcAddress: string;
let modelFiles: { name: string; bytes: Uint8Array<ArrayBuffer> }[];

before(async () => {
  t = await startTestDb();
  rt = await t.open();
  rest = await startRestServer(rt, { port: 0, sseHeartbeatMs: 200 });
  grpcServer = await startGrpcServer(rt, { port: 0 });
  grpcAddress = `127.0.0.1:${grpcServer.port}`;
  key = (await createApiKey(rt.ctx, 'acme')).key;
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 4, inputShape: [8], activation: 'relu' }), tf.layers.dense({ units: 2, activation: 'softmax' })] });
  modelFiles = await uploadFiles(model);
  model.dispose();
});
after(async () => {
  await grpcServer?.stop();
  await rest?.stop(200);
  await t?.stop();
});

interface RawAnswer {
  status: number | null;
  text: string;
}

/**
 * Sends `head` and `body` as they are on a plain socket (fetch would fix them
 * up) and reads the answer until the server closes or `waitMs` passes.
 * `abortAfterBody` destroys the socket right after the body instead.
 */
function raw(head: string, body: Uint8Array | string, opts: { abortAfterBody?: boolean; waitMs?: number } = {}): Promise<RawAnswer> {
  const { port } = new URL(rest.url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : null, text });
    };
    const timer = setTimeout(finish, opts.waitMs ?? 5_000);
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      // One answer is all we wait for.
      if (/\r\n\r\n/.test(text) && /content-length: (\d+)/i.test(text)) {
        const len = Number(/content-length: (\d+)/i.exec(text)![1]);
        if (text.length - text.indexOf('\r\n\r\n') - 4 >= len) finish();
      }
    });
    socket.on('error', () => {});
    socket.on('close', finish);
    socket.write(head);
    socket.write(body);
    if (opts.abortAfterBody) setTimeout(() => socket.destroy(), 50);
  });
}

function multipartHead(length: number, extra = ''): string {
  return (
    `POST /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n` +
    `Content-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: ${length}\r\n${extra}\r\n`
  );
}

async function stillServing(): Promise<void> {
  const res = await fetch(`${rest.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200);
  const ready = await fetch(`${rest.url}/readyz`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(ready.status, 200);
}

const part = (name: string, filename: string, body: string) => `--XYZ\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\n\r\n${body}`;

describe('malformed REST uploads are answered 4xx and the server keeps serving', () => {
  const cases: Array<[string, string]> = [
    ['a file part cut off (the reported crash)', part('files', 'a.bin', 'xx')],
    ['cut off between parts', `${part('files', 'a.bin', 'xx')}\r\n--XYZ\r\n`],
    ['cut off inside a part header', '--XYZ\r\nContent-Disposition: form-data; name="files"; filen'],
    ['garbage after the boundary', `--XYZ\r\n\u0000\u0001garbage without headers\r\n\r\n\r\n--XYZ--garbage`],
    ['no closing boundary after a whole part', `${part('files', 'model.json', '{}')}\r\n`],
    ['a giant part header', `--XYZ\r\nContent-Disposition: form-data; name="files"; filename="${'a'.repeat(100_000)}"\r\n\r\nxx\r\n--XYZ--\r\n`],
  ];
  for (const [what, body] of cases) {
    test(what, async () => {
      const answer = await raw(multipartHead(Buffer.byteLength(body)), body);
      assert.ok(answer.status !== null && answer.status >= 400 && answer.status < 500, `status ${answer.status}: ${answer.text.slice(0, 300)}`);
      await stillServing();
    });
  }

  test('the connection aborted in the middle of the body', async () => {
    const body = part('files', 'a.bin', 'x'.repeat(10_000));
    // Promise 100 kB, send 10 kB, hang up.
    const answer = await raw(multipartHead(100_000), body, { abortAfterBody: true, waitMs: 1_000 });
    assert.equal(answer.status, null, 'nobody is left to answer');
    await stillServing();
  });

  test('a raw archive body aborted midway, and one over the limit', async () => {
    const head = (n: number) => `POST /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/zip\r\nContent-Length: ${n}\r\n\r\n`;
    const cut = await raw(head(50_000), Buffer.alloc(5_000, 1), { abortAfterBody: true, waitMs: 1_000 });
    assert.equal(cut.status, null);
    // The limit is 1 MiB in the test config; the declared length is within the envelope, the body is not.
    const big = await raw(head(1024 * 1024 + 10), Buffer.alloc(1024 * 1024 + 10, 1));
    assert.equal(big.status, 413, big.text.slice(0, 300));
    await stillServing();
  });

  test('a giant request header is refused by the HTTP parser', async () => {
    const answer = await raw(`GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'b'.repeat(64 * 1024)}\r\n\r\n`, '');
    assert.equal(answer.status, 431);
    await stillServing();
  });

  test('a good upload after all that still works', async () => {
    const form = new FormData();
    for (const f of modelFiles) form.append('files', new Blob([f.bytes]), f.name);
    const res = await fetch(`${rest.url}/v1/models`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
    assert.equal(res.status, 201, await res.clone().text());
  });
});

describe('clients that leave midway', () => {
  test('SSE watchers that disconnect are let go; the server keeps serving', async () => {
    const { job } = await submitJob(rt.ctx, 'acme', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 10 });
    const head = `GET /v1/jobs/${job.id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\nAccept: text/event-stream\r\n\r\n`;
    const answers = await Promise.all(Array.from({ length: 20 }, () => raw(head, '', { waitMs: 3_000 })));
    for (const a of answers) assert.equal(a.status, 200);
    await stillServing();
  });

  test('a REST download whose blob vanished is an error, and one cut off by the client is let go', async () => {
    const client = new TicketsmithGrpcClient({ address: grpcAddress, apiKey: key });
    try {
      const model = await client.uploadModel({ files: modelFiles });
      const list = (await (await fetch(`${rest.url}/v1/artifacts?modelId=${model.id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as { items: Array<{ id: string; name: string; sha256: string }> };
      const weights = list.items.find((a) => a.name.endsWith('weights.bin'))!;
      // Cut off by the client right after the headers.
      const cut = await raw(`GET /v1/artifacts/${weights.id} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n\r\n`, '', { abortAfterBody: true, waitMs: 200 });
      assert.ok(cut.status === null || cut.status === 200);
      // The service wraps its store (guardBlobs); the file lives where a plain store on the same folder says.
      await rm(new LocalBlobStore(rt.ctx.config.blobDir).pathOf(weights.sha256));
      const gone = await fetch(`${rest.url}/v1/artifacts/${weights.id}`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(gone.status, 503);
      // The gRPC download of the same missing blob ends with a status, not a crash.
      await assert.rejects(async () => client.download(weights.id), (e: Error & { status?: number }) => e.status === grpc.status.UNAVAILABLE);
      await stillServing();
    } finally {
      client.close();
    }
  });
});

describe('gRPC streams cancelled or broken midway', () => {
  const md = () => {
    const m = new grpc.Metadata();
    m.set('authorization', `Bearer ${key}`);
    return m;
  };
  const rawClient = () => new grpc.Client(grpcAddress, grpc.credentials.createInsecure());

  test('WatchJob cancelled by the client: the handler ends', async () => {
    const { job } = await submitJob(rt.ctx, 'acme', { model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 1, iterations: 10 });
    const client = new TicketsmithGrpcClient({ address: grpcAddress, apiKey: key });
    try {
      const ac = new AbortController();
      const watches = Array.from({ length: 10 }, async () => {
        const seen: unknown[] = [];
        for await (const e of client.watchJob(job.id, { signal: ac.signal })) seen.push(e);
        return seen;
      });
      await until(async () => streamsInFlight() >= 10, 10_000, 'ten watches running');
      ac.abort();
      await Promise.all(watches);
      await until(async () => streamsInFlight() === 0, 10_000, 'watch handlers to end');
    } finally {
      client.close();
    }
  });

  test('UploadModel cancelled midway, and one with undecodable messages', async () => {
    const c = rawClient();
    try {
      const cancelled = await new Promise<grpc.ServiceError | null>((resolve) => {
        const call = c.makeClientStreamRequest<Buffer, Buffer>(
          '/ticketsmith.v1.Compression/UploadModel',
          (b) => b,
          (b) => b,
          md(),
          {},
          (err) => resolve(err),
        );
        // A metadata message (field 1, empty) and then nothing: cancel while the server waits for more.
        call.write(Buffer.from([0x0a, 0x00]));
        setTimeout(() => call.cancel(), 200);
      });
      assert.equal(cancelled?.code, grpc.status.CANCELLED);
      const garbage = await new Promise<grpc.ServiceError | null>((resolve) => {
        const call = c.makeClientStreamRequest<Buffer, Buffer>('/ticketsmith.v1.Compression/UploadModel', (b) => b, (b) => b, md(), {}, (err) => resolve(err));
        call.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
        call.end();
      });
      assert.ok(garbage !== null && garbage.code !== grpc.status.OK, 'an undecodable message fails the call');
      await until(async () => streamsInFlight() === 0, 10_000, 'upload handlers to end');
    } finally {
      c.close();
    }
    // And the server still answers.
    const client = new TicketsmithGrpcClient({ address: grpcAddress, apiKey: key });
    try {
      const model = await client.uploadModel({ files: modelFiles });
      assert.ok(model.id);
    } finally {
      client.close();
    }
  });

  test('DownloadArtifact cancelled after its first message', async () => {
    const client = new TicketsmithGrpcClient({ address: grpcAddress, apiKey: key });
    try {
      const model = await client.uploadModel({ files: modelFiles });
      const list = (await (await fetch(`${rest.url}/v1/artifacts?modelId=${model.id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as { items: Array<{ id: string }> };
      const c = rawClient();
      try {
        await new Promise<void>((resolve) => {
          const call = c.makeServerStreamRequest<Buffer, Buffer>('/ticketsmith.v1.Compression/DownloadArtifact', (b) => b, (b) => b, Buffer.concat([Buffer.from([0x0a, 36]), Buffer.from(list.items[0]!.id)]), md(), {});
          call.on('data', () => call.cancel());
          call.on('error', () => resolve());
          call.on('end', () => resolve());
        });
      } finally {
        c.close();
      }
      await until(async () => streamsInFlight() === 0, 10_000, 'download handlers to end');
    } finally {
      client.close();
    }
  });
});
