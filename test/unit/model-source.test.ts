// The model source: a spec's model reference resolved once (zoo name, files
// under a stable reference, a model in memory). A run on files unpacked
// somewhere is named, and reports, by the reference: the same run name and
// no folder in its events, result or errors wherever the files lie.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/runtime/backend.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { saveModelTo } from '../../src/engine/models/load.js';
import { modelSourceFor, openModel } from '../../src/engine/models/source.js';
import { runCompression } from '../../src/engine/run.js';
import { FileSink } from '../../src/engine/sinks/file.js';
import { resolveSpec, runName } from '../../src/engine/spec.js';
import { mulberry32 } from '../../src/engine/rng.js';
import type { Dataset, Split } from '../../src/engine/types.js';

const REF = 'model:00000000-0000-4000-8000-000000000001';
let root: string;
let dirA: string;
let dirB: string;

function split(n: number, seed: number): Split {
  const next = mulberry32(seed);
  const x = Float32Array.from({ length: n * 16 }, () => next());
  const y = Int32Array.from({ length: n }, (_, i) => i % 2);
  for (let i = 0; i < n; i++) x[i * 16 + y[i]!] += 2;
  return { x, y, n };
}

const ds: Dataset = {
  reference: 'synthetic:two', name: 'two', sha256: '', inputShape: [4, 4, 1], numClasses: 2,
  train: split(80, 1), validation: split(20, 2), test: split(20, 3),
};

before(async () => {
  await initBackend();
  root = await mkdtemp(join(tmpdir(), 'ts-source-'));
  dirA = join(root, 'unpacked-a');
  dirB = join(root, 'elsewhere-b');
  const m = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1], name: 'flat' }), tf.layers.dense({ units: 6, activation: 'relu', name: 'fc' }), tf.layers.dense({ units: 2, name: 'out' })] });
  await saveModelTo(m, dirA);
  m.dispose();
  await cp(dirA, dirB, { recursive: true });
});
after(() => rm(root, { recursive: true, force: true }));

test('modelSourceFor: zoo names, paths, and a given source that must carry the spec reference', () => {
  assert.deepEqual(modelSourceFor('lenet-300-100'), { kind: 'zoo', name: 'lenet-300-100' });
  assert.deepEqual(modelSourceFor('/some/dir'), { kind: 'files', dir: '/some/dir', ref: '/some/dir' });
  assert.deepEqual(modelSourceFor(REF, { kind: 'files', dir: dirA, ref: REF }), { kind: 'files', dir: dirA, ref: REF });
  assert.throws(() => modelSourceFor('model:other', { kind: 'files', dir: dirA, ref: REF }), /given the files of model 'model:00000000/);
});

test('openModel: a load error names the reference, not the folder; a memory model stays its owner\'s', async () => {
  await assert.rejects(
    openModel({ kind: 'files', dir: dirA, ref: REF }, { inputShape: [5], numClasses: 3, seed: 0 }),
    (e: Error) => e.message.includes(`model '${REF}' takes input`) && !e.message.includes(root),
  );
  const m = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 2 })] });
  const opened = await openModel({ kind: 'memory', model: m }, { inputShape: [2], numClasses: 2, seed: 0 });
  assert.equal(opened.model, m);
  assert.equal(opened.owned, false);
  m.dispose();
});

test('a run on uploaded files has the spec\'s run name wherever the files were unpacked, and never shows the folder', async () => {
  const spec = { model: REF, rounds: 1, iterations: 8, evalEvery: 4, batchSize: 20, controls: 'none', seed: 3 };
  const expected = runName(resolveSpec(spec));
  for (const dir of [dirA, dirB]) {
    const events: EngineEvent[] = [];
    const result = await runCompression(spec, {
      sink: new FileSink(join(root, `run-${dir === dirA ? 'a' : 'b'}`)),
      dataset: ds,
      parallelism: 1,
      model: { kind: 'files', dir, ref: REF },
      onEvent: (e) => events.push(e),
    });
    assert.equal(result.name, expected);
    const start = events.find((e) => e.kind === 'run-start');
    assert.deepEqual(start, { kind: 'run-start', name: expected, backend: start?.backend, lastRound: 1, resumedFrom: 0 });
    assert.equal((result.summary.spec as { model: string }).model, REF);
    const said = JSON.stringify({ events, verdict: result.verdict, summary: result.summary });
    assert.ok(!said.includes(root), 'no folder in what the run reports');
  }
});

// Issue 11: `--model path.onnx` on the command line is a files reference ending in .onnx.
test('an .onnx path (or file:// URL) is imported on open, fitted to the data, and runs', async () => {
  const onnxPath = new URL('../fixtures/models/mlp-gemm.onnx', import.meta.url);
  const file = fileURLToPath(onnxPath);
  const opened = await openModel(modelSourceFor(file), { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
  assert.equal(opened.owned, true);
  assert.deepEqual(opened.model.inputs[0]!.shape, [null, 28, 28, 1]);
  opened.model.dispose();
  const viaUrl = await openModel(modelSourceFor(onnxPath.href), { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
  viaUrl.model.dispose();
  await assert.rejects(openModel(modelSourceFor(file), { inputShape: [4, 4, 1], numClasses: 2, seed: 0 }), /takes input \[28,28,1\] with 10 classes/);
  await assert.rejects(openModel(modelSourceFor(join(root, 'missing.onnx')), { inputShape: [4], numClasses: 2, seed: 0 }), /cannot read model .*missing\.onnx': no such file/);

  const next = mulberry32(9);
  const mnistLike = (n: number): Split => ({ x: Float32Array.from({ length: n * 784 }, () => next()), y: Int32Array.from({ length: n }, (_, i) => i % 10), n });
  const data: Dataset = { reference: 'synthetic:mnist', name: 'mnist-like', sha256: '', inputShape: [28, 28, 1], numClasses: 10, train: mnistLike(60), validation: mnistLike(20), test: mnistLike(20) };
  const result = await runCompression({ model: file, rounds: 2, iterations: 4, evalEvery: 2, batchSize: 20, controls: 'none', seed: 1 }, {
    sink: new FileSink(join(root, 'run-onnx')), dataset: data, parallelism: 1,
  });
  assert.equal((result.summary.spec as { model: string }).model, file);
});
