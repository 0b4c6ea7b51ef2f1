// file:// datasets under TICKETSMITH_FILE_ROOTS: inside a root is read;
// outside, through a symlink that leads out, with `..`, /etc/passwd and
// /proc/self/environ are refused, at the door (registration on a real
// Postgres) and in the engine's reads (the worker's policy); no error names a
// server path. With the switch on and no roots the configuration fails at start.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { encodeIdx } from '../../src/engine/data/encode.js';
import { DatasetError, loadDataset, type DataAccess } from '../../src/engine/data/index.js';
import { ConfigError, loadConfig } from '../../src/runtime/config.js';
import { openService, type ServiceRuntime } from '../../src/service/context.js';
import { tenantDataAccess } from '../../src/service/datasets.js';
import { registerDataset, ServiceError } from '../../src/service/index.js';
import { startTestDb, type TestDb } from './fixtures/harness.js';

const IDX = {
  'train-images-idx3-ubyte': encodeIdx('ubyte', [4, 2, 2], [0, 255, 51, 102, 255, 0, 0, 255, 10, 20, 30, 40, 1, 2, 3, 4]),
  'train-labels-idx1-ubyte': encodeIdx('ubyte', [4], [0, 1, 0, 1]),
  't10k-images-idx3-ubyte': encodeIdx('ubyte', [2, 2, 2], [0, 0, 0, 0, 255, 255, 255, 255]),
  't10k-labels-idx1-ubyte': encodeIdx('ubyte', [2], [1, 0]),
};

let base = '';
let root = '';
let outside = '';
const url = (p: string) => pathToFileURL(p).href;

async function writeIdx(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(IDX)) await writeFile(join(dir, name), bytes);
}

before(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), 'ts-file-roots-')));
  root = join(base, 'root');
  outside = join(base, 'outside');
  await writeIdx(join(root, 'inside'));
  await writeIdx(outside);
  await symlink(outside, join(root, 'link-out')); // a folder link that leads out
  await mkdir(join(root, 'mixed'));
  for (const name of Object.keys(IDX)) {
    // One file linked out of the root, the rest real.
    if (name === 'train-images-idx3-ubyte') await symlink(join(outside, name), join(root, 'mixed', name));
    else await writeFile(join(root, 'mixed', name), IDX[name as keyof typeof IDX]);
  }
  await symlink(join(root, 'inside'), join(root, 'link-in')); // a link that stays inside
});
after(() => rm(base, { recursive: true, force: true }));

/** No message names the root, the outside folder or their temp parent. */
function noPaths(message: string): void {
  for (const p of [base, root, outside]) assert.ok(!message.includes(p), `message names a server path: ${message}`);
}

describe('engine reads under the worker policy', () => {
  const access = (): DataAccess => ({ files: { kind: 'roots', roots: [root] } });

  test('inside a root is read, also through a link that stays inside', async () => {
    const ds = await loadDataset(url(join(root, 'inside')), { access: access(), validationFraction: 0 });
    assert.equal(ds.train.n, 4);
    assert.equal(ds.test.n, 2);
    const linked = await loadDataset(url(join(root, 'link-in')), { access: access(), validationFraction: 0 });
    assert.equal(linked.sha256, ds.sha256);
  });

  test('outside, a link out, a file linked out, an option escaping, /etc/passwd and /proc/self/environ are refused', async () => {
    const cases: Array<[string, string]> = [
      [url(outside), 'reference'],
      [url(join(root, 'link-out')), 'reference'],
      [url(join(root, 'mixed')), 'train_images'],
      [`${url(join(root, 'inside'))}?train_images=${encodeURIComponent(join(outside, 'train-images-idx3-ubyte'))}`, 'train_images'],
      [`${url(join(root, 'inside'))}?train_images=../../outside/train-images-idx3-ubyte`, 'train_images'],
      ['file:///etc/passwd', 'reference'],
      ['file:///proc/self/environ', 'reference'],
      ['file:///etc/?format=idx', 'train_images'],
    ];
    for (const [ref, field] of cases) {
      await assert.rejects(loadDataset(ref, { access: access() }), (e: unknown) => {
        assert.ok(e instanceof DatasetError, `${ref}: DatasetError expected, got ${String(e)}`);
        assert.equal(e.field, field, `${ref}: ${e.message}`);
        assert.match(e.message, /dataset file is not allowed: it is not inside a folder this server lets tenants read/);
        noPaths(e.message);
        return true;
      }, ref);
    }
  });

  test('with file datasets off, the worker policy reads no file at all', async () => {
    const config = loadConfig({ TICKETSMITH_DATA_DIR: base });
    await assert.rejects(loadDataset(url(join(root, 'inside')), { access: tenantDataAccess(config) }), /file:\/\/ datasets are disabled on this server/);
  });
});

describe('registration', () => {
  let t: TestDb;
  let rt: ServiceRuntime;
  before(async () => {
    t = await startTestDb();
    const config = loadConfig({
      TICKETSMITH_DATA_DIR: t.dir,
      DATABASE_URL: t.db.url,
      TICKETSMITH_ALLOW_FILE_DATASETS: 'true',
      TICKETSMITH_FILE_ROOTS: `${root}, ${join(base, 'missing-root')}`,
    });
    rt = await openService({ config, database: { url: t.db.url } });
  });
  after(async () => {
    await rt?.stop();
    await t?.stop();
  });

  test('a reference inside a root is registered', async () => {
    const ds = await registerDataset(rt.ctx, 'acme', url(join(root, 'inside')));
    assert.equal(ds.reference, url(join(root, 'inside')));
  });

  test('outside, links out, `..`, /etc/passwd and /proc/self/environ are a 400 on reference that names no path', async () => {
    const refs = [
      url(outside),
      url(join(root, 'link-out')),
      `file://${root}/inside/../../outside`,
      `file://${root}/inside/%2e%2e/%2e%2e/outside`,
      `${url(join(root, 'inside'))}?train_images=../../outside/train-images-idx3-ubyte`,
      `${url(join(root, 'inside'))}?train_images=${encodeURIComponent(join(outside, 'train-images-idx3-ubyte'))}`,
      'file:///etc/passwd',
      'file:///proc/self/environ',
      'file:///var/lib/postgresql/data',
    ];
    for (const ref of refs) {
      await assert.rejects(registerDataset(rt.ctx, 'acme', ref), (e: unknown) => {
        assert.ok(e instanceof ServiceError, `${ref}: ServiceError expected, got ${String(e)}`);
        assert.equal(e.code, 'INVALID_ARGUMENT');
        assert.equal(e.field, 'reference');
        assert.match(e.message, /not inside a folder this server lets tenants read|'\.\.' is not allowed/);
        noPaths(e.message);
        return true;
      }, ref);
    }
    assert.equal(await rt.ctx.prisma.dataset.count({ where: { tenant: 'acme' } }), 1);
  });
});

test('file datasets switched on without TICKETSMITH_FILE_ROOTS fail the configuration at start', () => {
  assert.throws(
    () => loadConfig({ TICKETSMITH_ALLOW_FILE_DATASETS: '1' }),
    (e: unknown) => e instanceof ConfigError && /TICKETSMITH_FILE_ROOTS is empty: set it to the folders tenants may read/.test(e.message),
  );
  assert.deepEqual(loadConfig({ TICKETSMITH_ALLOW_FILE_DATASETS: '1', TICKETSMITH_FILE_ROOTS: '/srv/a, /srv/b' }).fileRoots, ['/srv/a', '/srv/b']);
  assert.throws(() => loadConfig({ TICKETSMITH_OUTBOUND_ALLOW: '10.0.0.0/99' }), /TICKETSMITH_OUTBOUND_ALLOW: '10.0.0.0\/99': prefix length/);
});
