// ticket/model.onnx from real runs (the engine with a FileSink, as the CLI
// runs it): the IMP ticket's ONNX file gives the TF.js ticket's outputs in
// onnxruntime-node within 1e-4 with the ticket's zeros in place; a filter
// run's file has the smaller parameter count the summary reports (with
// thenImp, IMP's ticket over the shrunken model replaces it); a model
// exportOnnx refuses still succeeds, with no file and the reason in the
// summary; ticket.zip lands beside the result.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { unzipSync } from 'fflate';
import { initBackend } from '../../src/runtime/backend.ts';
import { runCompression } from '../../src/engine/run.ts';
import { FileSink } from '../../src/engine/sinks/file.ts';
import { loadModelFrom, saveModelTo } from '../../src/engine/models/load.ts';
import { countParams, prunableWeights } from '../../src/engine/models/inspect.ts';
import type { OnnxFileMetrics } from '../../src/engine/export/onnx-ticket.ts';
import { mulberry32 } from '../../src/engine/rng.ts';
import type { Dataset, Split } from '../../src/engine/types.ts';
import { floatInitializers, onnxVsTfjs } from '../fixtures/onnx-check.js';


before(async () => {
  await initBackend();
});

/** Horizontal / vertical / diagonal bars, 8x8x1 (as filter-run.test.ts). */
function bars(n: number, seed: number): Split {
  const next = mulberry32(seed);
  const x = new Float32Array(n * 64);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    const at = 1 + Math.floor(next() * 6);
    y[i] = c;
    for (let r = 0; r < 8; r++) for (let q = 0; q < 8; q++) {
      const on = c === 0 ? r === at : c === 1 ? q === at : r === q;
      x[i * 64 + r * 8 + q] = Math.min(1, (on ? 0.6 : 0) + 0.4 * next());
    }
  }
  return { x, y, n };
}

const ds: Dataset = {
  reference: 'synthetic:bars', name: 'bars', sha256: '', inputShape: [8, 8, 1], numClasses: 3,
  train: bars(240, 1), validation: bars(60, 2), test: bars(90, 3), classNames: ['diagonal', 'horizontal', 'vertical'],
};

const base = { dataset: 'synthetic:bars', iterations: 40, evalEvery: 20, batchSize: 32, learningRate: 0.01, controls: 'none' };

/** conv1 (8) -> BN -> ReLU -> pool -> conv2 (8, ReLU) -> flatten -> out 3; `reshape` adds a layer exportOnnx refuses. */
async function saved(dir: string, opts: { reshape?: boolean } = {}): Promise<string> {
  const m = tf.sequential({ name: 'tiny-vgg' });
  m.add(tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 8, kernelSize: 3, padding: 'same', useBias: false, name: 'conv1' }));
  m.add(tf.layers.batchNormalization({ name: 'bn1' }));
  m.add(tf.layers.activation({ activation: 'relu', name: 'relu1' }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }));
  m.add(tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv2' }));
  if (opts.reshape) m.add(tf.layers.reshape({ targetShape: [128], name: 'to_vector' }));
  else m.add(tf.layers.flatten({ name: 'flatten' }));
  m.add(tf.layers.dense({ units: 3, name: 'out' }));
  const path = join(dir, 'upload');
  await saveModelTo(m, path);
  m.dispose();
  return path;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('IMP: model.onnx runs in onnxruntime with the ticket\'s outputs and zeros; ticket.zip holds it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ts-onnx-'));
  try {
    const model = await saved(dir);
    const result = await runCompression({ ...base, method: 'imp', model, rounds: 2 }, { sink: new FileSink(join(dir, 'run')), dataset: ds, parallelism: 1 });
    const out = join(dir, 'run', 'result');
    const bytes = new Uint8Array(await readFile(join(out, 'ticket', 'model.onnx')));
    const summary = result.summary.onnx as OnnxFileMetrics;
    const density = result.summary.density as number;
    assert.ok(density < 0.9, `two rounds pruned (density ${density})`);

    const ticket = await loadModelFrom(join(out, 'ticket'));
    const diff = await onnxVsTfjs(ticket, bytes);
    assert.ok(diff <= 1e-4, `ONNX vs TF.js ticket: max |diff| ${diff}`);

    // The ticket's zeros are in the file: zeros in the prunable kernels = (1 - density) of them.
    const inits = floatInitializers(bytes);
    let prunable = 0;
    let zeros = 0;
    for (const w of prunableWeights(ticket)) {
      const values = inits.get(w.name);
      assert.ok(values, `kernel ${w.name} is an initializer`);
      prunable += values.length;
      for (const v of values) if (v === 0) zeros++;
    }
    assert.equal(zeros, Math.round(prunable * (1 - density)), `zeros ${zeros} of ${prunable} at density ${density}`);
    assert.deepEqual(
      { params: summary.params, bytes: summary.bytes, opset: summary.opset, sha256: summary.sha256 },
      { params: countParams(ticket), bytes: bytes.length, opset: 13, sha256: sha256(bytes) },
    );
    assert.ok(summary.nonzeroParams <= summary.params - zeros, `nonzero ${summary.nonzeroParams}`);
    ticket.dispose();

    const zip = unzipSync(new Uint8Array(await readFile(join(out, 'ticket.zip'))));
    assert.equal(sha256(zip['model.onnx']!), sha256(bytes));
    const inZip = JSON.parse(new TextDecoder().decode(zip['result.json']!)) as { summary: { classNames: string[]; onnx: OnnxFileMetrics } };
    assert.deepEqual(inZip.summary.classNames, ds.classNames, 'class names travel in result.json');
    assert.equal(inZip.summary.onnx.sha256, summary.sha256);
    assert.ok(zip['mask.npz'] && zip['accuracy.svg'], 'mask.npz and the plot are in the archive');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('filter: model.onnx has the reported, smaller parameter count', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ts-onnx-'));
  try {
    const model = await saved(dir);
    const result = await runCompression({ ...base, method: 'filter', model, filterFraction: 0.5, fineTuneIterations: 20 }, { sink: new FileSink(join(dir, 'run')), dataset: ds });
    const bytes = new Uint8Array(await readFile(join(dir, 'run', 'result', 'ticket', 'model.onnx')));
    const summary = result.summary.onnx as OnnxFileMetrics;
    const f = result.summary.filter as { paramsBefore: number; paramsAfter: number };
    let params = 0;
    for (const v of floatInitializers(bytes).values()) params += v.length;
    assert.equal(f.paramsAfter, 395);
    assert.equal(summary.params, 395, 'the summary counts the file');
    assert.equal(params, 395, 'the file holds the smaller model');
    assert.ok(summary.params < f.paramsBefore);
    const ticket = await loadModelFrom(join(dir, 'run', 'result', 'ticket'));
    const diff = await onnxVsTfjs(ticket, bytes);
    ticket.dispose();
    assert.ok(diff <= 1e-4, `ONNX vs TF.js filter-pruned model: max |diff| ${diff}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('filter then IMP: model.onnx is IMP\'s ticket over the shrunken model, zeros in place', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ts-onnx-'));
  try {
    const model = await saved(dir);
    const result = await runCompression(
      { ...base, method: 'filter', model, filterFraction: 0.5, fineTuneIterations: 20, thenImp: true, rounds: 1, iterations: 30 },
      { sink: new FileSink(join(dir, 'run')), dataset: ds, parallelism: 1 },
    );
    const bytes = new Uint8Array(await readFile(join(dir, 'run', 'result', 'ticket', 'model.onnx')));
    const summary = result.summary.onnx as OnnxFileMetrics;
    assert.equal(summary.sha256, sha256(bytes), 'the summary describes the file that was written');
    assert.equal(summary.params, 395, 'the shrunken architecture');
    assert.ok(summary.nonzeroParams < summary.params, `IMP's zeros are in the file (${summary.nonzeroParams} of ${summary.params} nonzero)`);
    const ticket = await loadModelFrom(join(dir, 'run', 'result', 'ticket'));
    const diff = await onnxVsTfjs(ticket, bytes);
    ticket.dispose();
    assert.ok(diff <= 1e-4, `ONNX vs TF.js ticket: max |diff| ${diff}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a layer exportOnnx refuses: the run succeeds without model.onnx and says why', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ts-onnx-'));
  try {
    const model = await saved(dir, { reshape: true });
    const result = await runCompression({ ...base, method: 'imp', model, rounds: 1 }, { sink: new FileSink(join(dir, 'run')), dataset: ds, parallelism: 1 });
    const err = (result.summary.onnx as { error: string }).error;
    assert.match(err, /to_vector.*Reshape/);
    assert.equal(result.artifacts['ticket/model.onnx'], undefined);
    assert.ok(!(await readdir(join(dir, 'run', 'result', 'ticket'))).includes('model.onnx'));
    const zip = unzipSync(new Uint8Array(await readFile(join(dir, 'run', 'result', 'ticket.zip'))));
    assert.equal(zip['model.onnx'], undefined);
    assert.ok(zip['model.json'] && zip['mask.npz'], 'the rest of the ticket is there');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
