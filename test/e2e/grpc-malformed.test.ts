// Malformed protobuf through the gRPC door: raw bytes (a serializer that
// returns them as they are) sent to every method of ticketsmith.v1.Compression
// on a real server on 127.0.0.1 over the embedded Postgres. Overlong varints,
// unknown field numbers, lengths past the end, wrong wire types, bad UTF-8 and
// oversized strings are each INVALID_ARGUMENT (never INTERNAL) with the
// ticketsmith-error-field trailer naming the field where one is at fault, and
// UNAUTHENTICATED when no key is sent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { compressionService, ERROR_CODE_KEY, ERROR_FIELD_KEY, messageFields } from '../../src/api/grpc/proto.js';
import { MAX_STRING_BYTES } from '../../src/api/grpc/wire.js';
import { createApiKey, type ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, type TestDb } from '../integration/fixtures/harness.js';

let t: TestDb;
let rt: ServiceRuntime;
let server: GrpcServerHandle;
let client: grpc.Client;
let key: string;

const raw = (b: Buffer): Buffer => b;
const keep = (b: Buffer): Buffer => b;

/** Protobuf varint of a non-negative integer. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}
const tag = (field: number, wireType: number) => varint(field * 8 + wireType);
const lengthDelimited = (field: number, body: number[] | Buffer) => [...tag(field, 2), ...varint(body.length), ...body];

interface Outcome {
  code: grpc.status;
  errorCode?: string;
  field?: string;
}

function outcome(err: grpc.ServiceError | { code: grpc.status; metadata?: grpc.Metadata } | null, trailers?: grpc.Metadata): Outcome {
  if (!err) return { code: grpc.status.OK };
  const md = trailers ?? err.metadata;
  const get = (k: string) => {
    const v = md?.get(k)[0];
    return typeof v === 'string' ? v : undefined;
  };
  return { code: err.code, errorCode: get(ERROR_CODE_KEY), field: get(ERROR_FIELD_KEY) };
}

/** Sends `bytes` as the (first) request message of `method`, whatever its kind, and reports the final status. */
function send(method: string, bytes: Buffer, withKey = true): Promise<Outcome> {
  const def = compressionService[method]!;
  const md = new grpc.Metadata();
  if (withKey) md.set('authorization', `Bearer ${key}`);
  const options = { deadline: Date.now() + 15_000 };
  return new Promise((resolve) => {
    if (!def.requestStream && !def.responseStream) {
      client.makeUnaryRequest(def.path, raw, keep, bytes, md, options, (err) => resolve(outcome(err)));
    } else if (def.responseStream) {
      const call = client.makeServerStreamRequest(def.path, raw, keep, bytes, md, options);
      call.on('data', () => undefined);
      call.on('status', (s: grpc.StatusObject) => resolve(outcome(s.code === grpc.status.OK ? null : s, s.metadata)));
      call.on('error', () => undefined);
    } else {
      const call = client.makeClientStreamRequest(def.path, raw, keep, md, options, (err) => resolve(outcome(err)));
      call.write(bytes);
      call.end();
    }
  });
}

const METHODS = Object.keys(compressionService);
const firstField = (method: string) => {
  const type = compressionService[method]!.requestType.type as unknown as { field: { number: number; name: string; type: string }[] };
  return type.field.find((f) => f.number === 1)!;
};

before(async () => {
  t = await startTestDb();
  rt = await t.open();
  server = await startGrpcServer(rt, { port: 0 });
  client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  key = (await createApiKey(rt.ctx, 'acme')).key;
});

after(async () => {
  client?.close();
  await server?.stop();
  await t?.stop();
});

describe('garbage bytes to every method are INVALID_ARGUMENT, never INTERNAL', () => {
  test('the contract has the methods this test sends to', () => {
    assert.ok(METHODS.length >= 11, METHODS.join(', '));
  });

  for (const method of METHODS) {
    test(method, async () => {
      const first = firstField(method);
      const cases: Array<[string, Buffer, string | undefined]> = [
        ['an overlong varint', Buffer.alloc(11, 0xff), undefined],
        ['an unknown field number', Buffer.from([...tag(99, 0), 1]), '#99'],
        ['a length past the end', Buffer.from([...tag(1, 2), 100, 0x41, 0x41]), first.name],
        ['field 1 with a wire type it cannot have', Buffer.from([...tag(1, 5), 1, 2, 3, 4]), first.name],
        ['field number 0', Buffer.from([0, 0]), undefined],
      ];
      if (first.type === 'TYPE_STRING') {
        cases.push(['invalid UTF-8 in a string', Buffer.from(lengthDelimited(1, [0xc3, 0x28])), first.name]);
        cases.push(['an oversized string', Buffer.from(lengthDelimited(1, Buffer.alloc(MAX_STRING_BYTES + 1, 0x61))), first.name]);
      }
      for (const [what, bytes, field] of cases) {
        const o = await send(method, bytes);
        assert.equal(o.code, grpc.status.INVALID_ARGUMENT, `${method}, ${what}: ${JSON.stringify(o)}`);
        assert.equal(o.errorCode, 'INVALID_ARGUMENT', `${method}, ${what}`);
        assert.equal(o.field, field, `${method}, ${what}`);
        const anonymous = await send(method, bytes, false);
        assert.equal(anonymous.code, grpc.status.UNAUTHENTICATED, `${method}, ${what}, no key: ${JSON.stringify(anonymous)}`);
      }
    });
  }
});

describe('wrong-typed fields inside nested messages name their path', () => {
  test('SubmitJob spec.rounds sent as a string', async () => {
    const rounds = messageFields('RunSpec').find((f) => f.name === 'rounds')!;
    const spec = lengthDelimited(rounds.number, Buffer.from('ten'));
    const o = await send('SubmitJob', Buffer.from(lengthDelimited(3, spec)));
    assert.deepEqual(o, { code: grpc.status.INVALID_ARGUMENT, errorCode: 'INVALID_ARGUMENT', field: 'spec.rounds' });
    assert.equal(await rt.ctx.prisma.job.count(), 0);
  });

  test('SubmitJob with an unknown field inside spec', async () => {
    const o = await send('SubmitJob', Buffer.from(lengthDelimited(3, [...tag(500, 0), 7])));
    assert.deepEqual(o, { code: grpc.status.INVALID_ARGUMENT, errorCode: 'INVALID_ARGUMENT', field: 'spec.#500' });
  });

  test('a well-formed request still works (an empty ListJobs)', async () => {
    const o = await send('ListJobs', Buffer.alloc(0));
    assert.equal(o.code, grpc.status.OK);
  });
});
