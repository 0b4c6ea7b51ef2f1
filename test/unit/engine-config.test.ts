// The engine's settings come from one EngineConfig that the runtime loads from
// the environment and the callers pass down: the loader reads every variable
// the README documents, a run honours the config it is given (training loop,
// parallel trainings, dataset byte cap, Fashion-MNIST folder) with none of
// those variables set, and no file under src/engine reads process.env.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'fflate';
import { loadConfig, loadEngineConfig } from '../../src/runtime/config.js';
import { DEFAULT_ENGINE_CONFIG, type EngineConfig } from '../../src/runtime/engine-config.js';
import { initBackend } from '../../src/runtime/backend.js';
import { runCompression } from '../../src/engine/run.js';
import { type RoundMetrics } from '../../src/engine/sink.js';
import { FileSink } from '../../src/engine/sinks/file.js';
import { DatasetError, withEngineConfig } from '../../src/engine/data/index.js';
import { encodeIdx } from '../../src/engine/data/encode.js';

const ENGINE_VARIABLES = [
  'TICKETSMITH_WORKERS',
  'TICKETSMITH_MLP',
  'TICKETSMITH_MAX_DATASET_BYTES',
  'TICKETSMITH_MAX_DATASET_RATIO',
  'TICKETSMITH_FASHION_MNIST_DIR',
] as const;

describe('loadEngineConfig', () => {
  test('defaults: automatic workers and loop, 2 GiB and 200-fold caps, the Debian Fashion-MNIST folder', () => {
    assert.deepEqual(loadEngineConfig({}), { ...DEFAULT_ENGINE_CONFIG, workers: undefined });
    assert.deepEqual(DEFAULT_ENGINE_CONFIG.datasets, { maxBytes: 2 * 1024 ** 3, maxRatio: 200 });
    assert.equal(DEFAULT_ENGINE_CONFIG.fashionMnistDir, '/usr/share/datasets/fashion-mnist');
    // Empty means unset, as for every other variable.
    assert.deepEqual(loadEngineConfig({ TICKETSMITH_MLP: '', TICKETSMITH_WORKERS: '' }), loadEngineConfig({}));
  });

  test('reads every engine variable, and loadConfig hands the service the same object', () => {
    const env = {
      TICKETSMITH_WORKERS: '2',
      TICKETSMITH_MLP: 'csr',
      TICKETSMITH_MAX_DATASET_BYTES: '5000',
      TICKETSMITH_MAX_DATASET_RATIO: '12.5',
      TICKETSMITH_FASHION_MNIST_DIR: '/srv/fashion',
    };
    const expected: EngineConfig = { workers: 2, loop: 'mlp-csr', datasets: { maxBytes: 5000, maxRatio: 12.5 }, fashionMnistDir: '/srv/fashion' };
    assert.deepEqual(loadEngineConfig(env), expected);
    assert.deepEqual(loadConfig(env).engine, expected);
    assert.deepEqual(loadConfig(env).datasets, { maxBytes: 5000, maxRatio: 12.5, probeSeconds: 120 });
    assert.equal(loadEngineConfig({ TICKETSMITH_MLP: 'simd' }).loop, 'mlp-simd');
    assert.equal(loadEngineConfig({ TICKETSMITH_MLP: 'tfjs' }).loop, 'tfjs');
  });

  test('a bad value fails at load, naming the variable', () => {
    assert.throws(() => loadEngineConfig({ TICKETSMITH_MLP: 'fast' }), /TICKETSMITH_MLP must be one of simd, csr, cnn, tfjs; got 'fast'/);
    assert.throws(() => loadEngineConfig({ TICKETSMITH_WORKERS: '0' }), /environment variable TICKETSMITH_WORKERS/);
    assert.throws(() => loadEngineConfig({ TICKETSMITH_WORKERS: '1.5' }), /environment variable TICKETSMITH_WORKERS/);
    assert.throws(() => loadEngineConfig({ TICKETSMITH_MAX_DATASET_BYTES: 'lots' }), /environment variable TICKETSMITH_MAX_DATASET_BYTES/);
    assert.throws(() => loadEngineConfig({ TICKETSMITH_MAX_DATASET_RATIO: '0.5' }), /environment variable TICKETSMITH_MAX_DATASET_RATIO/);
    assert.throws(() => loadConfig({ TICKETSMITH_MLP: 'fast' }), /TICKETSMITH_MLP must be one of simd, csr, cnn, tfjs/);
    for (const bad of ['false', 'off', 'yes', '2']) {
      assert.throws(() => loadEngineConfig({ TICKETSMITH_RELAXED_SIMD: bad }), /environment variable TICKETSMITH_RELAXED_SIMD: TICKETSMITH_RELAXED_SIMD must be 0 \(plain SIMD\) or 1/);
      assert.throws(() => loadConfig({ TICKETSMITH_RELAXED_SIMD: bad }), /TICKETSMITH_RELAXED_SIMD must be 0/);
    }
    for (const good of ['0', '1', '']) assert.deepEqual(loadEngineConfig({ TICKETSMITH_RELAXED_SIMD: good }), loadEngineConfig({}));
  });
});

describe('the engine reads no environment', () => {
  test('no file under src/engine mentions process.env', async () => {
    const root = join(import.meta.dirname, '../../src/engine');
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else files.push(p);
      }
    };
    await walk(root);
    assert.ok(files.length > 50, `only ${files.length} files found under ${root}`);
    const readers: string[] = [];
    for (const f of files) if ((await readFile(f, 'utf8')).includes('process.env')) readers.push(relative(root, f));
    assert.deepEqual(readers, []);
  });
});

describe('runCompression honours the EngineConfig it is passed, with no engine variable set', () => {
  const saved: Record<string, string | undefined> = {};
  let dir: string;
  before(async () => {
    for (const v of ENGINE_VARIABLES) {
      saved[v] = process.env[v];
      delete process.env[v];
    }
    dir = await mkdtemp(join(tmpdir(), 'ts-engine-config-'));
    await initBackend();
  });
  after(async () => {
    for (const v of ENGINE_VARIABLES) if (saved[v] !== undefined) process.env[v] = saved[v];
    await rm(dir, { recursive: true, force: true });
  });

  const spec = { model: 'lenet-30-10', dataset: 'builtin:mnist', rounds: 1, iterations: 12, evalEvery: 6, batchSize: 32, maxTrainExamples: 300 };
  const config = (over: Partial<EngineConfig>): EngineConfig => ({ ...DEFAULT_ENGINE_CONFIG, ...over });

  for (const loop of ['tfjs', 'mlp-csr'] as const) {
    test(`loop '${loop}' trains every round with it (the automatic choice for a dense LeNet would differ)`, async () => {
      const engine = config({ loop, workers: 1 });
      const result = await runCompression({ ...spec, controls: 'none' }, { sink: new FileSink(join(dir, `loop-${loop}`)), engine, data: withEngineConfig({}, engine) });
      const rounds = result.summary.rounds as RoundMetrics[];
      assert.deepEqual(rounds.map((r) => r.round), [0, 1]);
      for (const r of rounds) assert.equal(r.trainingLoop, loop, `round ${r.round}`);
    });
  }

  test('workers: 2 trains the controls on the trial pool, whose threads get the loop with each trial', async () => {
    const engine = config({ loop: 'tfjs', workers: 2 });
    const result = await runCompression({ ...spec, controls: 'last' }, { sink: new FileSink(join(dir, 'pool')), engine, data: withEngineConfig({}, engine) });
    const last = (result.summary.rounds as RoundMetrics[]).at(-1)!;
    assert.deepEqual(Object.keys(last.controls).sort(), ['reinit', 'shuffle']);
    assert.equal(last.trainingLoop, 'tfjs');
    for (const c of Object.values(last.controls)) assert.equal(c!.trainingLoop, 'tfjs');
  });

  test('the dataset byte cap and the Fashion-MNIST folder come from the config', async () => {
    const fashion = join(dir, 'fashion');
    await mkdir(fashion);
    // Random pixels do not compress: each image file is well over 1000 bytes gzipped.
    const px = (n: number) => Array.from(randomBytes(n * 784));
    const files = {
      'train-images-idx3-ubyte.gz': gzipSync(encodeIdx('ubyte', [4, 28, 28], px(4))),
      'train-labels-idx1-ubyte.gz': gzipSync(encodeIdx('ubyte', [4], [1, 2, 3, 4])),
      't10k-images-idx3-ubyte.gz': gzipSync(encodeIdx('ubyte', [2, 28, 28], px(2))),
      't10k-labels-idx1-ubyte.gz': gzipSync(encodeIdx('ubyte', [2], [5, 6])),
    };
    for (const [name, bytes] of Object.entries(files)) await writeFile(join(fashion, name), bytes);
    assert.ok(files['train-images-idx3-ubyte.gz'].length > 1000, 'the image file is over the cap');
    const engine = config({ datasets: { maxBytes: 1000, maxRatio: 200 }, fashionMnistDir: fashion });
    await assert.rejects(
      runCompression({ ...spec, dataset: 'builtin:fashion-mnist' }, { sink: new FileSink(join(dir, 'capped')), engine, data: withEngineConfig({}, engine) }),
      (err: unknown) => {
        assert.ok(err instanceof DatasetError, String(err));
        assert.match(err.message, new RegExp(`${fashion}/train-images-idx3-ubyte\\.gz: larger than the 1000-byte limit`));
        return true;
      },
    );
  });
});
