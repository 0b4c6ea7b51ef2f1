// Datasets checked at the door, over the service functions on a real
// Postgres: registration probes the files (400 on `reference` with one short
// sentence naming the file, never the server's folder), submit probes a raw
// reference and fits the dataset to the model (400 on `dataset`, as the request names it), and a
// registered dataset is fitted from its stored probe without reading again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync, zipSync } from 'fflate';
import * as tf from '@tensorflow/tfjs';
import { encodeIdx, encodeNpy } from '../../src/engine/data/encode.js';
import { ServiceError, registerDataset, submitJob, uploadModel, type ServiceContext } from '../../src/service/index.js';
import { listenLoopback } from '../unit/fixtures/scratch.js';
import { startTestDb, type TestDb, uploadFiles } from './fixtures/harness.js';

let t: TestDb;
let ctx: ServiceContext;
let root: string;
let server: { base: string; close(): Promise<void> };
const served: Record<string, Uint8Array> = {};
let dirs = 0;

/** IDX files of `n` side x side training images; labels as given. */
function idx(o: { side?: number; trainLabels?: number[]; trainImages?: Uint8Array; magic?: boolean } = {}): Record<string, Uint8Array> {
  const side = o.side ?? 4;
  const labels = o.trainLabels ?? [0, 1, 2];
  return {
    'train-images-idx3-ubyte.gz': gzipSync(o.trainImages ?? encodeIdx('ubyte', [3, side, side], new Array(3 * side * side).fill(3))),
    'train-labels-idx1-ubyte.gz': gzipSync(encodeIdx('ubyte', [labels.length], labels)),
    't10k-images-idx3-ubyte.gz': gzipSync(encodeIdx('ubyte', [2, side, side], new Array(2 * side * side).fill(1))),
    't10k-labels-idx1-ubyte.gz': gzipSync(encodeIdx('ubyte', [2], [1, 0])),
  };
}

async function folder(files: Record<string, Uint8Array>): Promise<string> {
  const dir = join(root, `set${dirs++}`);
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
  return pathToFileURL(dir).href;
}

/** A 400 on `field` whose message matches and names no server folder. */
function bad(field: string, message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ServiceError, `expected a ServiceError, got ${String(e)}`);
    assert.equal(e.httpStatus, 400, e.message);
    assert.equal(e.code, 'INVALID_ARGUMENT');
    assert.equal(e.field, field, e.message);
    assert.match(e.message, message);
    assert.ok(!e.message.includes(root) && !e.message.includes(tmpdir()), `server path in: ${e.message}`);
    assert.ok(e.message.length < 240, `not short: ${e.message}`);
    return true;
  };
}

const job = (model: string, dataset: string) => ({ model, dataset, rounds: 1, iterations: 10 });

before(async () => {
  t = await startTestDb();
  const rt = await t.open();
  // This file exercises file:// datasets, which a multi-tenant server refuses by default.
  root = await mkdtemp(join(tmpdir(), 'ts-dataset-validation-'));
  // File datasets inside this folder, and the loopback server below, are what this file reads: a multi-tenant
  // server refuses both by default (no file roots, the outbound guard without an allow list).
  ctx = { ...rt.ctx, config: { ...rt.ctx.config, allowFileDatasets: true, fileRoots: [await realpath(root)], outboundAllow: ['127.0.0.1/32'] } };
  server = await listenLoopback((req, res) => {
    const body = served[(req.url ?? '').slice(1)];
    if (body === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-length': body.length }).end(body);
  });
});

after(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
  await t?.stop();
});

describe('registration', () => {
  test('a valid IDX folder is registered with its probe: shape, classes, counts, sizes, sha256', async () => {
    const d = await registerDataset(ctx, 'acme', await folder(idx()));
    assert.equal(d.format, 'idx');
    assert.deepEqual(d.shapes.inputShape, [4, 4, 1]);
    assert.equal(d.shapes.numClasses, 3);
    assert.deepEqual(d.shapes.counts, { train: 3, test: 2 });
    assert.match(d.sha256 ?? '', /^[0-9a-f]{64}$/);
  });

  test('a valid NPZ over loopback http is registered', async () => {
    served['ok.npz'] = zipSync({
      'x_train.npy': encodeNpy('|u1', [2, 3], [1, 2, 3, 4, 5, 6]),
      'y_train.npy': encodeNpy('<i8', [2], [0, 1]),
      'x_test.npy': encodeNpy('|u1', [1, 3], [7, 8, 9]),
      'y_test.npy': encodeNpy('|u1', [1], [1]),
    });
    const d = await registerDataset(ctx, 'acme', `${server.base}/ok.npz`);
    assert.equal(d.format, 'npz');
    assert.deepEqual(d.shapes.inputShape, [3]);
  });

  test('a wrong IDX magic: one short sentence naming the file', async () => {
    const files = { ...idx(), 'train-images-idx3-ubyte.gz': gzipSync(gzipSync(encodeIdx('ubyte', [1, 4, 4], new Array(16).fill(0)))) };
    await assert.rejects(
      registerDataset(ctx, 'acme', await folder(files)),
      bad('reference', /^reference: train-images-idx3-ubyte\.gz: not an IDX file \(magic 0x1f8b0800; expected 0x00000803\)$/),
    );
  });

  test('a label outside the classes the reference declares', async () => {
    const ref = `${await folder(idx({ trainLabels: [0, 1, 12] }))}?classes=10`;
    await assert.rejects(registerDataset(ctx, 'acme', ref), bad('reference', /train-labels-idx1-ubyte\.gz: label 12 is outside the 10 classes/));
  });

  test('truncated images', async () => {
    const full = encodeIdx('ubyte', [3, 4, 4], new Array(48).fill(3));
    const ref = await folder(idx({ trainImages: full.subarray(0, 40) }));
    await assert.rejects(registerDataset(ctx, 'acme', ref), bad('reference', /train-images-idx3-ubyte\.gz: truncated \(header declares 3x4x4 ubyte = 48 bytes of data, file has 24\)/));
  });

  test('an image/label count mismatch', async () => {
    const ref = await folder(idx({ trainLabels: [0, 1] }));
    await assert.rejects(registerDataset(ctx, 'acme', ref), bad('reference', /2 labels but train-images-idx3-ubyte\.gz has 3 images/));
  });

  test('a missing file is named as the reference would name it', async () => {
    const files = idx();
    delete files['t10k-labels-idx1-ubyte.gz'];
    await assert.rejects(registerDataset(ctx, 'acme', await folder(files)), bad('reference', /t10k-labels-idx1-ubyte\.gz: file not found/));
  });

  test('nothing is stored for a refused dataset', async () => {
    const before = await ctx.prisma.dataset.count();
    await assert.rejects(registerDataset(ctx, 'acme', await folder(idx({ trainLabels: [0] }))), bad('reference', /counts must match/));
    assert.equal(await ctx.prisma.dataset.count(), before);
  });
});

describe('submit', () => {
  let mlp: string;
  before(async () => {
    // 4x4x1 in, 3 classes out.
    const net = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1], name: 'flat' }), tf.layers.dense({ units: 3, name: 'out' })] });
    mlp = `model:${(await uploadModel(ctx, 'acme', { files: await uploadFiles(net) })).id}`;
    net.dispose();
  });

  test('a fitting raw reference and a fitting registered dataset are accepted', async () => {
    const ref = await folder(idx());
    assert.equal((await submitJob(ctx, 'acme', job(mlp, ref))).created, true);
    const d = await registerDataset(ctx, 'acme', ref);
    assert.equal((await submitJob(ctx, 'acme', job(mlp, `dataset:${d.id}`))).created, true);
    assert.equal((await submitJob(ctx, 'acme', job('lenet-20-10', `dataset:${d.id}`))).created, true);
  });

  test('an image shape the uploaded model does not take', async () => {
    const ref = await folder(idx({ side: 5 }));
    await assert.rejects(submitJob(ctx, 'acme', job(mlp, ref)), bad('dataset', /^dataset: the dataset's examples are 5x5x1 but model:[0-9a-f-]+ expects input 4x4x1$/));
  });

  test('labels outside the uploaded model\'s classes', async () => {
    const ref = await folder(idx({ trainLabels: [0, 1, 4] }));
    await assert.rejects(submitJob(ctx, 'acme', job(mlp, ref)), bad('dataset', /labels up to 4 but model:[0-9a-f-]+ outputs 3 classes/));
  });

  test('a shape a zoo family cannot take', async () => {
    const ref = await folder(idx());
    await assert.rejects(submitJob(ctx, 'acme', job('conv-6', ref)), bad('dataset', /examples are 4x4x1, which conv-6 cannot take \(3 2x2 max-pools need height and width >= 8, got 4x4\)/));
    served['flat.npz'] = zipSync({
      'x_train.npy': encodeNpy('|u1', [2, 3], [1, 2, 3, 4, 5, 6]),
      'y_train.npy': encodeNpy('|u1', [2], [0, 1]),
      'x_test.npy': encodeNpy('|u1', [2, 3], [1, 2, 3, 4, 5, 6]),
      'y_test.npy': encodeNpy('|u1', [2], [1, 0]),
    });
    await assert.rejects(submitJob(ctx, 'acme', job('resnet-20', `${server.base}/flat.npz`)), bad('dataset', /examples are 3, which resnet-20 cannot take/));
  });

  test('a dataset of a single class is refused at registration and at submit', async () => {
    served['one.npz'] = zipSync({
      'x_train.npy': encodeNpy('|u1', [2, 3], [1, 2, 3, 4, 5, 6]),
      'y_train.npy': encodeNpy('|u1', [2], [0, 0]),
      'x_test.npy': encodeNpy('|u1', [2, 3], [1, 2, 3, 4, 5, 6]),
      'y_test.npy': encodeNpy('|u1', [2], [0, 0]),
    });
    const ref = `${server.base}/one.npz`;
    await assert.rejects(registerDataset(ctx, 'acme', ref), bad('reference', /single class \(every label is 0\); training needs at least 2/));
    await assert.rejects(submitJob(ctx, 'acme', job('lenet-20-10', ref)), bad('dataset', /single class/));
  });

  test('a single class is refused whatever the label, naming the training labels; labels stay below 10,000', async () => {
    const npz = (train: number[], test: number[], dtype: '|u1' | '<i4' = '|u1') =>
      zipSync({
        'x_train.npy': encodeNpy('|u1', [train.length, 3], new Array(train.length * 3).fill(1)),
        'y_train.npy': encodeNpy(dtype, [train.length], train),
        'x_test.npy': encodeNpy('|u1', [test.length, 3], new Array(test.length * 3).fill(1)),
        'y_test.npy': encodeNpy(dtype, [test.length], test),
      });
    served['five.npz'] = npz([5, 5], [5, 1]);
    served['twohundred.npz'] = npz([200, 200, 200], [200, 0]);
    served['huge.npz'] = npz([0, 10_000], [0, 1], '<i4');
    await assert.rejects(registerDataset(ctx, 'acme', `${server.base}/five.npz`), bad('reference', /y_train\.npy\]: the dataset has a single class \(every label is 5\)/));
    await assert.rejects(registerDataset(ctx, 'acme', `${server.base}/twohundred.npz`), bad('reference', /y_train\.npy\]: .*single class \(every label is 200\)/));
    await assert.rejects(submitJob(ctx, 'acme', job('lenet-20-10', `${server.base}/five.npz`)), bad('dataset', /single class/));
    await assert.rejects(registerDataset(ctx, 'acme', `${server.base}/huge.npz`), bad('reference', /y_train\.npy\]: label 10000 at index 1 is not below 10000/));
    await assert.rejects(registerDataset(ctx, 'acme', `${server.base}/five.npz#classes=10001`), bad('reference', /classes must be at most 10000/));
    // Sparse ids below the cap stay allowed: numClasses is the largest label + 1.
    served['sparse.npz'] = npz([0, 200], [0, 200]);
    const sparse = await registerDataset(ctx, 'acme', `${server.base}/sparse.npz`);
    assert.equal((sparse.shapes as { numClasses: number }).numClasses, 201);
  });

  test('a broken raw reference is refused at submit as at registration', async () => {
    const ref = await folder(idx({ trainLabels: [0, 1] }));
    await assert.rejects(submitJob(ctx, 'acme', job('lenet-20-10', ref)), bad('dataset', /^dataset: train-labels-idx1-ubyte\.gz: 2 labels but/));
  });

  test('a registered dataset is fitted from its stored probe, without reading its files again', async () => {
    const dir = join(root, `set${dirs}`);
    const ref = await folder(idx({ side: 5 }));
    const d = await registerDataset(ctx, 'acme', ref);
    await rm(dir, { recursive: true, force: true });
    await assert.rejects(submitJob(ctx, 'acme', job(mlp, `dataset:${d.id}`)), bad('dataset', /examples are 5x5x1 but model:/));
    assert.equal((await submitJob(ctx, 'acme', job('lenet-20-10', `dataset:${d.id}`))).created, true);
  });

  test('nothing is queued for a refused submission', async () => {
    const before = await ctx.prisma.job.count();
    await assert.rejects(submitJob(ctx, 'acme', job(mlp, await folder(idx({ side: 6 })))), bad('dataset', /6x6x1/));
    assert.equal(await ctx.prisma.job.count(), before);
  });
});
