// A decompression bomb at the door and in the worker: a ~1 MiB gzip that
// expands to 1 GiB (an IDX header declaring 1 GiB of images, then zeros),
// built by streaming zeros through zlib so the test never holds 1 GiB. On
// disk the probe refuses it from the gzip trailer before inflating; over
// http (no trailer to read first) while streaming, from the ratio cap; the
// worker's loader refuses it too. The process's memory must stay bounded.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { createGzip } from 'node:zlib';
import { gzipSync } from 'fflate';
import { DatasetError, loadDataset } from '../../src/engine/data/index.js';
import { encodeIdx } from '../../src/engine/data/encode.js';
import { ServiceError, registerDataset, type ServiceContext } from '../../src/service/index.js';
import { tenantDataAccess } from '../../src/service/datasets.js';
import { listenLoopback } from '../unit/fixtures/scratch.js';
import { startTestDb, type TestDb } from './fixtures/harness.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Growth allowed over the resident size before an operation (the bomb is 1 GiB). */
const MEMORY_BOUND = 200 * MiB;

let t: TestDb;
let ctx: ServiceContext;
let root: string;
let dir: string;
let server: { base: string; close(): Promise<void> };

/** Header + 1 GiB of zeros through gzip, one reused 1 MiB buffer at a time. */
async function writeBomb(path: string): Promise<void> {
  const zeros = new Uint8Array(MiB);
  async function* body() {
    yield encodeIdx('ubyte', [GiB / 1024, 32, 32], []);
    for (let i = 0; i < 1024; i++) yield zeros;
  }
  await pipeline(Readable.from(body()), createGzip({ level: 9 }), createWriteStream(path));
}

/**
 * Runs `fn` and returns how far the resident size rose above where it
 * started: sampled every 10 ms, and from the OS's lifetime peak when `fn` set
 * a new one (that catches a peak inside synchronous work the sampler misses).
 */
async function growth(fn: () => Promise<void>): Promise<number> {
  const start = process.memoryUsage().rss;
  const osBefore = process.resourceUsage().maxRSS * 1024;
  let peak = start;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  try {
    await fn();
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  const osAfter = process.resourceUsage().maxRSS * 1024;
  return Math.max(peak, osAfter > osBefore ? osAfter : 0) - start;
}

before(async () => {
  t = await startTestDb();
  const rt = await t.open();
  root = await mkdtemp(join(tmpdir(), 'ts-dataset-bomb-'));
  // File datasets inside this folder, and the loopback server below, are what this file reads: a multi-tenant
  // server refuses both by default (no file roots, the outbound guard without an allow list).
  ctx = { ...rt.ctx, config: { ...rt.ctx.config, allowFileDatasets: true, fileRoots: [await realpath(root)], outboundAllow: ['127.0.0.1/32'] } };
  dir = join(root, 'bomb');
  await mkdir(dir);
  await writeBomb(join(dir, 'train-images-idx3-ubyte.gz'));
  const small = { 'train-labels-idx1-ubyte.gz': encodeIdx('ubyte', [1], [0]), 't10k-images-idx3-ubyte.gz': encodeIdx('ubyte', [1, 32, 32], []), 't10k-labels-idx1-ubyte.gz': encodeIdx('ubyte', [1], [0]) };
  for (const [name, bytes] of Object.entries(small)) await pipeline(Readable.from([gzipSync(bytes)]), createWriteStream(join(dir, name)));
  server = await listenLoopback((req, res) => {
    const name = (req.url ?? '').replace(/^\/bomb\//, '');
    const path = join(dir, name);
    stat(path).then(
      // Chunked, no Content-Length: nothing tells the reader the size up front.
      () => void pipeline(createReadStream(path), res).catch(() => undefined),
      () => res.writeHead(404).end(),
    );
  });
});

after(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
  await t?.stop();
});

describe('a 1 MiB gzip that expands to 1 GiB', () => {
  test('is about 1 MiB on disk', async () => {
    const size = (await stat(join(dir, 'train-images-idx3-ubyte.gz'))).size;
    assert.ok(size > 512 * 1024 && size < 2 * MiB, `bomb is ${size} bytes`);
  });

  test('registration of the folder answers 400 from the gzip trailer, memory bounded', async () => {
    let err: unknown;
    const grew = await growth(async () => {
      err = await registerDataset(ctx, 'acme', pathToFileURL(dir).href).catch((e: unknown) => e);
    });
    assert.ok(err instanceof ServiceError, String(err));
    assert.equal(err.httpStatus, 400);
    assert.equal(err.field, 'reference');
    assert.match(err.message, /train-images-idx3-ubyte\.gz: gzip trailer declares 1073741840 bytes unpacked from \d+, more than the 200-fold limit/);
    assert.ok(grew < MEMORY_BOUND, `resident memory grew ${Math.round(grew / MiB)} MiB`);
  });

  test('registration over http answers 400 while streaming, memory bounded', async () => {
    let err: unknown;
    const grew = await growth(async () => {
      err = await registerDataset(ctx, 'acme', `${server.base}/bomb/#format=idx`).catch((e: unknown) => e);
    });
    assert.ok(err instanceof ServiceError, String(err));
    assert.equal(err.httpStatus, 400);
    assert.equal(err.field, 'reference');
    assert.match(err.message, /train-images-idx3-ubyte\.gz: expands more than 200-fold/);
    assert.ok(grew < MEMORY_BOUND, `resident memory grew ${Math.round(grew / MiB)} MiB`);
    assert.equal(await ctx.prisma.dataset.count(), 0);
  });

  test("the worker's loader refuses it too, on disk and over http, memory bounded", async () => {
    for (const ref of [pathToFileURL(dir).href, `${server.base}/bomb/#format=idx`]) {
      let err: unknown;
      const grew = await growth(async () => {
        err = await loadDataset(ref, { access: tenantDataAccess(ctx.config) }).catch((e: unknown) => e);
      });
      assert.ok(err instanceof DatasetError, String(err));
      assert.match(err.message, /expands more than 200-fold/);
      assert.ok(grew < MEMORY_BOUND, `${ref}: resident memory grew ${Math.round(grew / MiB)} MiB`);
    }
  });
});
