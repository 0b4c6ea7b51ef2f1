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

/** `zip` with the central directory's sizes of its first member replaced (what a hostile client can send). */
function lyingZip(zip: Uint8Array, sizes: { compressed?: number; size?: number }): Uint8Array {
  const out = zip.slice();
  const view = new DataView(out.buffer);
  let dir = -1;
  for (let i = out.length - 22; i >= 0; i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      dir = view.getUint32(i + 16, true);
      break;
    }
  }
  assert.ok(dir >= 0);
  if (sizes.compressed !== undefined) view.setUint32(dir + 20, sizes.compressed, true);
  if (sizes.size !== undefined) view.setUint32(dir + 24, sizes.size, true);
  return out;
}

test('ratio: a zip member whose declared compressed size runs past the archive cannot buy a larger allowance', () => {
  // 1 MiB of zeros deflates to about 1 KiB; declaring 3 MiB compressed would let it claim 600 MiB at 200-fold.
  const zip = lyingZip(zipSync({ 'cat/1.png': new Uint8Array(1 << 20) }, { level: 9 }), { compressed: 3 << 20, size: 500 << 20 });
  assert.ok(zip.length < 4096);
  const before = process.memoryUsage().arrayBuffers;
  assert.throws(() => unpackArchive(zip, 512 << 20, { maxRatio: 200 }), refusedWith('INVALID_ARGUMENT', /'cat\/1\.png' is corrupt \(its compressed size runs past the end of the archive\)/));
  // Refused before the declared size was allocated.
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 << 20);
});

test('a zip member that inflates to fewer bytes than its header declares is refused as corrupt', () => {
  const zip = lyingZip(zipSync({ 'a.bin': new Uint8Array(1000).fill(7) }), { size: 4000 });
  assert.throws(() => unpackArchive(zip, 1 << 20), refusedWith('INVALID_ARGUMENT', /'a\.bin' is corrupt \(header says 4000 bytes, holds 1000\)/));
});

test('ratio: many zip members each under the per-member floor cannot add up past the ratio of the whole archive', () => {
  // 64 members of 1 MiB zeros: each deflates to about 1 KiB, under the 16 KiB floor's 200-fold allowance (3.2 MiB)
  // alone, but together 64 MiB from an archive of about 70 KiB: about 950-fold.
  const members = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`c${i % 2}/f${i}.bin`, new Uint8Array(1 << 20)]));
  const zip = zipSync(members, { level: 9 });
  assert.ok(zip.length < 128 * 1024, `${zip.length}`);
  assert.throws(() => unpackArchive(zip, 512 << 20, { maxRatio: 200 }), refusedWith('INVALID_ARGUMENT', /^archive: its members unpack to more than 200-fold the archive's \d+ bytes/));
  // A folder of small files that barely compress is far from it.
  const small = zipSync(Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`c${i % 2}/f${i}.bin`, Uint8Array.from({ length: 2000 }, (_, j) => (i * 7 + j * 13) % 251)])));
  assert.equal(unpackArchive(small, 512 << 20, { maxRatio: 200 }).length, 64);
});
