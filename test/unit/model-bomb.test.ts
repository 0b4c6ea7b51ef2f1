// Compressed model uploads expand at most TICKETSMITH_MAX_MODEL_RATIO-fold
// (here 20, under a 1 MiB upload cap, so the 16 KiB floor of the ratio rule
// leaves 320 KiB): a .tar.gz refused from its gzip trailer before anything
// is inflated, one whose trailer lies stopped by the capped inflate, a zip's
// member by its declared size, and a .keras archive's entries likewise; a
// trailer past the byte cap is a 413 at once. Normal archives still unpack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { DEFAULT_MODEL_LIMITS } from '../../src/engine/models/budget.js';
import { checkModelUpload } from '../../src/service/models.js';
import { unpackArchive } from '../../src/service/archive.js';
import { ServiceError } from '../../src/service/errors.js';
import { tarOf } from '../corpus/files.js';

const MAX = 1024 * 1024;
const limits = { ...DEFAULT_MODEL_LIMITS, maxBytes: MAX, maxRatio: 20 };
const zeros = (n: number) => new Uint8Array(n);
const modelJson = new TextEncoder().encode('{"modelTopology":{}}');

const refused = (code: string, pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof ServiceError, String(e));
  assert.equal(e.code, code);
  assert.match(e.message, pattern);
  return true;
};

test('a .tar.gz past the ratio is refused from its trailer, and when the trailer lies, by the capped inflate', async () => {
  const bomb = gzipSync(tarOf([{ name: 'model.json', bytes: modelJson }, { name: 'weights.bin', bytes: zeros(600 * 1024) }]));
  assert.ok(bomb.byteLength < 16 * 1024);
  await assert.rejects(checkModelUpload({ archive: bomb }, MAX, limits), refused('INVALID_ARGUMENT', /^archive: 'archive' expands more than 20-fold.*\(its gzip trailer declares \d+ bytes; or the file is cut off\)$/));
  const lying = new Uint8Array(bomb);
  new DataView(lying.buffer).setUint32(lying.byteLength - 4, 1000, true);
  await assert.rejects(checkModelUpload({ archive: lying }, MAX, limits), refused('INVALID_ARGUMENT', /expands more than 20-fold/));
});

test('a gzip trailer past the upload cap is a 413', () => {
  const big = gzipSync(zeros(3 * MAX));
  assert.throws(() => unpackArchive(big, MAX), refused('PAYLOAD_TOO_LARGE', /exceeds 1048576 bytes \(its gzip trailer declares 3145728 bytes; or the file is cut off\)$/));
});

test("a zip member past the ratio is refused from its declared size", async () => {
  const bomb = zipSync({ 'model.json': modelJson, 'weights.bin': zeros(600 * 1024) });
  await assert.rejects(checkModelUpload({ archive: bomb }, MAX, limits), refused('INVALID_ARGUMENT', /'weights.bin' expands more than 20-fold/));
});

test('a .keras archive whose entries expand past the ratio is refused before they are inflated', async () => {
  const bomb = zipSync({ 'config.json': new TextEncoder().encode('{}'), 'model.weights.h5': zeros(600 * 1024) });
  await assert.rejects(checkModelUpload({ files: [{ name: 'net.keras', bytes: bomb }] }, MAX, limits), (e: unknown) => {
    assert.match((e as Error).message, /'model.weights.h5' expands more than 20-fold, the limit for compressed model uploads \(TICKETSMITH_MAX_MODEL_RATIO/);
    return true;
  });
});

test('archives within the ratio unpack as before', () => {
  const weights = new Uint8Array(64 * 1024).map((_, i) => (i * 2654435761) >>> 24);
  const tgz = gzipSync(tarOf([{ name: 'model.json', bytes: modelJson }, { name: 'weights.bin', bytes: weights }]));
  assert.deepEqual(unpackArchive(tgz, MAX, { maxRatio: 20 }).map((f) => [f.name, f.bytes.byteLength]), [['model.json', modelJson.byteLength], ['weights.bin', weights.byteLength]]);
});
