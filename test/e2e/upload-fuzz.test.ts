// Property-based fuzzing of the two things an upload goes through: the
// archive reader (arbitrary bytes and mutations of valid zip, tar and tar.gz
// archives: it returns files within the cap or throws the service's own
// INVALID_ARGUMENT / PAYLOAD_TOO_LARGE, nothing else), and the multipart door
// of POST /v1/models on a real server on loopback (generated bodies, cut at
// any point: every answer is a 201 or a 4xx JSON error naming a field, never a
// 5xx, and the server keeps answering). Runs are bounded.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { zipSync } from 'fflate';
import { startRestServer, type RestServer } from '../../src/api/rest/index.js';
import { unpackArchive } from '../../src/service/archive.js';
import { createApiKey, ServiceError, type ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, type TestDb } from '../integration/fixtures/harness.js';
import { goodModel, tarOf } from '../corpus/files.js';

const CAP = 256 * 1024;
const enc = new TextEncoder();

/** A valid archive of the small model in each format the reader takes. */
const SEEDS: Uint8Array[] = [zipSync({ 'model.json': goodModel()[0]!.bytes, 'weights.bin': goodModel()[1]!.bytes }), tarOf(goodModel()), new Uint8Array(gzipSync(tarOf(goodModel())))];

/** A seed with a few bytes overwritten, a slice cut off, or bytes inserted. */
const mutated = fc
  .record({
    seed: fc.integer({ min: 0, max: SEEDS.length - 1 }),
    edits: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 8 }),
    cut: fc.option(fc.nat(), { nil: undefined }),
    insert: fc.option(fc.record({ at: fc.nat(), bytes: fc.uint8Array({ maxLength: 64 }) }), { nil: undefined }),
  })
  .map(({ seed, edits, cut, insert }) => {
    let b = SEEDS[seed]!.slice();
    for (const e of edits) b[e.at % b.length] = e.value;
    if (insert) {
      const at = insert.at % (b.length + 1);
      b = new Uint8Array([...b.subarray(0, at), ...insert.bytes, ...b.subarray(at)]);
    }
    if (cut !== undefined) b = b.subarray(0, cut % (b.length + 1));
    return b;
  });

describe('archive reader', () => {
  test('arbitrary bytes and mutated archives: files within the cap, or the service\'s own 400 / 413', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 2048 }), mutated), (bytes) => {
        let files;
        try {
          files = unpackArchive(bytes, CAP);
        } catch (e) {
          assert.ok(e instanceof ServiceError, `only ServiceError may escape, got ${String(e)}`);
          assert.ok(e.code === 'INVALID_ARGUMENT' || e.code === 'PAYLOAD_TOO_LARGE', e.code);
          assert.ok(e.field, 'the error names a field');
          return;
        }
        let total = 0;
        for (const f of files) {
          total += f.bytes.byteLength;
          assert.ok(!f.name.startsWith('/') && !f.name.split('/').includes('..'), `unsafe name passed: ${f.name}`);
        }
        assert.ok(total <= CAP, `${total} bytes unpacked past the ${CAP}-byte cap`);
      }),
      { numRuns: 400, seed: 20261130 },
    );
  });
});

describe('multipart door', () => {
  let t: TestDb;
  let rt: ServiceRuntime;
  let rest: RestServer;
  let key: string;
  before(async () => {
    t = await startTestDb();
    rt = await t.open();
    rest = await startRestServer(rt, { port: 0 });
    key = (await createApiKey(rt.ctx, 'fuzz')).key;
  });
  after(async () => {
    await rest?.stop();
    await t?.stop();
  });

  const part = fc.record({
    field: fc.constantFrom('files', 'archive', 'name', 'other', ''),
    filename: fc.option(fc.constantFrom('model.json', 'weights.bin', '../x', 'a/b/model.json', 'a.zip', '', '\u0000'), { nil: undefined }),
    extraHeader: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
    body: fc.oneof(fc.uint8Array({ maxLength: 512 }), fc.constant(goodModel()[0]!.bytes), fc.constant(goodModel()[1]!.bytes)),
  });

  const bodies = fc.record({ parts: fc.array(part, { maxLength: 4 }), close: fc.boolean(), cut: fc.option(fc.nat(), { nil: undefined }) }).map(({ parts, close, cut }) => {
    const chunks: Uint8Array[] = [];
    for (const p of parts) {
      const disposition = `form-data; name="${p.field}"${p.filename === undefined ? '' : `; filename="${p.filename}"`}`;
      chunks.push(enc.encode(`--XyZ\r\nContent-Disposition: ${disposition}\r\n${p.extraHeader === undefined ? '' : `X-Extra: ${p.extraHeader.replace(/[\r\n]/g, ' ')}\r\n`}\r\n`), p.body, enc.encode('\r\n'));
    }
    if (close) chunks.push(enc.encode('--XyZ--\r\n'));
    const whole = Buffer.concat(chunks);
    return cut === undefined ? whole : whole.subarray(0, cut % (whole.length + 1));
  });

  test('generated and cut multipart bodies: a 201 or a 4xx naming a field, never a 5xx', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        const res = await fetch(`${rest.url}/v1/models`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'multipart/form-data; boundary=XyZ' },
          body,
          signal: AbortSignal.timeout(30_000),
        });
        const text = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        assert.ok(res.status === 201 || (res.status >= 400 && res.status < 500), `status ${res.status}: ${text.slice(0, 200)}`);
        if (res.status !== 201) {
          const error = (JSON.parse(text) as { error?: { code?: string; field?: string } }).error;
          assert.ok(error?.code && error.field, `a JSON error naming a field: ${text.slice(0, 200)}`);
        }
      }),
      { numRuns: 150, seed: 20261130 },
    );
    assert.ok((statuses.get(400) ?? 0) > 0, `the bodies reach the checks: ${JSON.stringify([...statuses])}`);
    const health = await fetch(`${rest.url}/readyz`);
    assert.equal(health.status, 200);
  });
});
