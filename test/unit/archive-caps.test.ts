// The optional caps service/archive.ts applies to dataset uploads: the
// member count, and the expansion ratio checked from a zip's declared sizes
// and, for a .tar.gz, while inflating (the stream stops where the ratio is
// crossed). Without caps an archive unpacks as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { zipSync } from 'fflate';
import { ServiceError } from '../../src/service/errors.js';
import { unpackArchive } from '../../src/service/archive.js';
import { tarOf, tgzOf } from '../corpus/files.js';

const files = (n: number, size = 10) => Array.from({ length: n }, (_, i) => ({ name: `f${i}.bin`, bytes: new Uint8Array(size).fill(i) }));

function refusedWith(code: string, message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ServiceError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  };
}

test('member count: at the cap unpacks, one more is refused (zip, tar, tar.gz)', () => {
  const five = files(5);
  for (const pack of [(f: typeof five) => zipSync(Object.fromEntries(f.map((x) => [x.name, x.bytes]))), tarOf, tgzOf]) {
    assert.equal(unpackArchive(pack(five), 1 << 20, { maxMembers: 5 }).length, 5);
    assert.throws(() => unpackArchive(pack(files(6)), 1 << 20, { maxMembers: 5 }), refusedWith('INVALID_ARGUMENT', /^archive: more than 5 files/));
  }
});

test('ratio: a zip member declaring a huge expansion is refused by name before inflating', () => {
  const bomb = zipSync({ 'big.bin': new Uint8Array(8 << 20) }, { level: 9 });
  assert.throws(() => unpackArchive(bomb, 64 << 20, { maxRatio: 100 }), refusedWith('INVALID_ARGUMENT', /'big\.bin' expands more than 100-fold/));
  // The same archive without a ratio cap is only bounded by bytes.
  assert.equal(unpackArchive(bomb, 64 << 20).length, 1);
});

test('ratio: a .tar.gz bomb stops inflating where the ratio is crossed', () => {
  const bomb = tgzOf([{ name: 'zeros.bin', bytes: new Uint8Array(16 << 20) }]);
  assert.ok(bomb.length < 64 * 1024);
  assert.throws(() => unpackArchive(bomb, 64 << 20, { maxRatio: 100 }), refusedWith('INVALID_ARGUMENT', /'archive' expands more than 100-fold/));
  // Over the byte cap first: 413 as before.
  assert.throws(() => unpackArchive(bomb, 1 << 20), refusedWith('PAYLOAD_TOO_LARGE', /exceeds 1048576 bytes/));
});

test('small files under the ratio floor are not bombs', () => {
  const labels = tgzOf([{ name: 'labels', bytes: new Uint8Array(9000) }]);
  assert.equal(unpackArchive(labels, 1 << 20, { maxRatio: 2 }).length, 1);
});
