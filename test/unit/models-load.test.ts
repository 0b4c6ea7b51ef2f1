// Saving and loading Layers models: round trips for Sequential and functional
// (residual) models, stock tf.loadLayersModel over real HTTP, sharded
// manifests, createOrLoadModel, and every malformed-upload error we name.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile, mkdir, readdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { createOrLoadModel, loadModelFrom, saveModelTo } from '../../src/engine/models/load.js';
import { getWeightMap } from '../../src/engine/models/inspect.js';
import { createModel } from '../../src/engine/models/registry.js';

let root: string;
let server: http.Server;
let baseUrl: string;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'ticketsmith-models-'));
  // A plain static file server over the temp dir, so HTTP loading is real.
  server = http.createServer((req, res) => {
    const file = path.join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    readFile(file).then(
      (data) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(data),
      () => res.writeHead(404).end('not found'),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(root, { recursive: true, force: true });
});

function predictValues(model: tf.LayersModel, x: tf.Tensor): Float32Array {
  const y = model.predict(x) as tf.Tensor;
  const v = y.dataSync() as Float32Array;
  y.dispose();
  return Float32Array.from(v);
}

/** Copies a saved model dir so a test can break its copy. */
async function copyDir(from: string, to: string): Promise<string> {
  await mkdir(to, { recursive: true });
  for (const f of await readdir(from)) await writeFile(path.join(to, f), await readFile(path.join(from, f)));
  return to;
}

async function editModelJSON(dir: string, edit: (j: Record<string, any>) => void): Promise<void> {
  const file = path.join(dir, 'model.json');
  const j = JSON.parse(await readFile(file, 'utf8')) as Record<string, any>;
  edit(j);
  await writeFile(file, JSON.stringify(j));
}

describe('save and load round trips', () => {
  test('Sequential lenet-300-100: files, sizes, identical weights and predictions', async () => {
    const model = createModel('lenet-300-100', { inputShape: [28, 28, 1], numClasses: 10, seed: 5 });
    const dir = path.join(root, 'lenet');
    const saved = await saveModelTo(model, dir);
    assert.deepEqual(saved.files, [path.join(dir, 'model.json'), path.join(dir, 'weights.bin')]);
    const sizes = await Promise.all(saved.files.map(async (f) => (await stat(f)).size));
    assert.equal(sizes[1], 266_610 * 4);
    assert.equal(saved.bytes, sizes[0] + sizes[1]);
    const manifest = JSON.parse(await readFile(saved.files[0], 'utf8')) as tf.io.ModelJSON;
    assert.equal(manifest.format, 'layers-model');
    assert.deepEqual(manifest.weightsManifest[0].paths, ['weights.bin']);

    const x = tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 11);
    const expected = predictValues(model, x);
    for (const uri of [dir, pathToFileURL(dir).href, path.join(dir, 'model.json')]) {
      const loaded = await loadModelFrom(uri);
      assert.ok(loaded instanceof tf.Sequential, uri);
      assert.deepEqual(predictValues(loaded, x), expected, uri);
      assert.deepEqual(getWeightMap(loaded), getWeightMap(model), uri);
      loaded.dispose();
    }
    x.dispose();
    model.dispose();
  });

  test('functional resnet-20 with residual adds and batch norm: identical predictions', async () => {
    const model = createModel('resnet-20', { inputShape: [32, 32, 3], numClasses: 10, seed: 9 });
    const dir = path.join(root, 'resnet');
    await saveModelTo(model, dir);
    const loaded = await loadModelFrom(dir);
    assert.ok(!(loaded instanceof tf.Sequential), "!(loaded instanceof tf.Sequential)");
    assert.deepEqual(loaded.layers.map((l) => l.name), model.layers.map((l) => l.name));
    const x = tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 12);
    assert.deepEqual(predictValues(loaded, x), predictValues(model, x));
    assert.deepEqual(getWeightMap(loaded), getWeightMap(model));
    tf.dispose([x]);
    loaded.dispose();
    model.dispose();
  });

  test('over HTTP: our loader and stock tf.loadLayersModel read what we saved', async () => {
    const model = createModel('conv-2', { inputShape: [8, 8, 1], numClasses: 3, seed: 2 });
    await saveModelTo(model, path.join(root, 'http-conv'));
    const x = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 13);
    const expected = predictValues(model, x);
    const ours = await loadModelFrom(`${baseUrl}/http-conv`); // model.json appended
    const stock = await tf.loadLayersModel(`${baseUrl}/http-conv/model.json`);
    assert.deepEqual(predictValues(ours, x), expected);
    assert.deepEqual(predictValues(stock, x), expected);
    await assert.rejects(loadModelFrom(`${baseUrl}/nowhere/model.json`), /missing model\.json: HTTP 404 from http:\/\/127\.0\.0\.1:\d+\/nowhere\/model\.json/);
    const broken = await copyDir(path.join(root, 'http-conv'), path.join(root, 'http-broken'));
    await rm(path.join(broken, 'weights.bin'));
    await assert.rejects(loadModelFrom(`${baseUrl}/http-broken/model.json`),
      /missing weight file 'weights\.bin' \(listed in weightsManifest\[0\]\.paths\): HTTP 404/);
    for (const m of [model, ours, stock]) m.dispose();
    x.dispose();
  });

  test('weights split over several shards and groups load in manifest order', async () => {
    const model = createModel('lenet-6-5', { inputShape: [4], numClasses: 3, seed: 4 });
    const dir = path.join(root, 'sharded');
    await saveModelTo(model, dir);
    const bin = await readFile(path.join(dir, 'weights.bin'));
    const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
    const specs = json.weightsManifest[0].weights;
    // fc1/kernel + fc1/bias = (4*6 + 6) floats in group 0, split across two shard files at an odd byte.
    const g0 = (4 * 6 + 6) * 4;
    await writeFile(path.join(dir, 'g0-a.bin'), bin.subarray(0, 50));
    await writeFile(path.join(dir, 'g0-b.bin'), bin.subarray(50, g0));
    await writeFile(path.join(dir, 'g1.bin'), bin.subarray(g0));
    await rm(path.join(dir, 'weights.bin'));
    json.weightsManifest = [
      { paths: ['g0-a.bin', 'g0-b.bin'], weights: specs.slice(0, 2) },
      { paths: ['g1.bin'], weights: specs.slice(2) },
    ];
    await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
    const loaded = await loadModelFrom(dir);
    assert.deepEqual(getWeightMap(loaded), getWeightMap(model));
    loaded.dispose();
    model.dispose();
  });
});

describe('malformed models are named precisely', () => {
  let good: string;
  before(async () => {
    const m = createModel('lenet-8', { inputShape: [4], numClasses: 2, seed: 1 });
    good = path.join(root, 'good');
    await saveModelTo(m, good);
    m.dispose();
  });

  test('missing model.json, missing path, unsupported scheme', async () => {
    const empty = path.join(root, 'empty');
    await mkdir(empty);
    await assert.rejects(loadModelFrom(empty), new RegExp(`missing model\\.json in ${empty}`));
    await assert.rejects(loadModelFrom(path.join(root, 'nope')), /no model at '.*nope': no such file or directory/);
    await assert.rejects(loadModelFrom('s3://bucket/model.json'), /unsupported model URI scheme/);
  });

  test('invalid JSON and missing fields', async () => {
    const dir = await copyDir(good, path.join(root, 'badjson'));
    await writeFile(path.join(dir, 'model.json'), '{"modelTopology": ');
    await assert.rejects(loadModelFrom(dir), /invalid JSON in .*badjson\/model\.json/);
    await writeFile(path.join(dir, 'model.json'), '{"weightsManifest": []}');
    await assert.rejects(loadModelFrom(dir), /missing 'modelTopology' object/);
    await writeFile(path.join(dir, 'model.json'), '{"modelTopology": {}, "format": "graph-model", "weightsManifest": []}');
    await assert.rejects(loadModelFrom(dir), /format 'graph-model' is not supported/);
    const dir2 = await copyDir(good, path.join(root, 'badfield'));
    await editModelJSON(dir2, (j) => { j.weightsManifest[0].weights[1].shape = [-1]; });
    await assert.rejects(loadModelFrom(dir2), /weightsManifest\[0\]\.weights\[1\]\.shape \('fc1\/bias'\)/);
    await editModelJSON(dir2, (j) => { delete j.weightsManifest; });
    await assert.rejects(loadModelFrom(dir2), /'weightsManifest' must be a list/);
  });

  test('missing weight file and weight byte count not matching the manifest', async () => {
    const dir = await copyDir(good, path.join(root, 'noweights'));
    await rm(path.join(dir, 'weights.bin'));
    await assert.rejects(loadModelFrom(dir), /missing weight file 'weights\.bin' \(listed in weightsManifest\[0\]\.paths/);
    // lenet-8 on 4 inputs, 2 classes: (4*8 + 8 + 8*2 + 2) floats = 58 * 4 = 232 bytes
    const short = await copyDir(good, path.join(root, 'short'));
    const bin = await readFile(path.join(short, 'weights.bin'));
    assert.equal(bin.length, 232);
    await writeFile(path.join(short, 'weights.bin'), bin.subarray(0, 228));
    await assert.rejects(loadModelFrom(short),
      /weight file\(s\) weights\.bin hold 228 bytes but weightsManifest\[0\] describes 232 bytes/);
    await editModelJSON(short, (j) => { j.weightsManifest[0].weights[0].dtype = 'string'; });
    await assert.rejects(loadModelFrom(short), /weights\[0\]\.dtype 'string' is not supported/);
  });

  test('weight paths may not leave the model directory', async () => {
    const dir = await copyDir(good, path.join(root, 'escape'));
    await editModelJSON(dir, (j) => { j.weightsManifest[0].paths = ['../good/weights.bin']; });
    await assert.rejects(loadModelFrom(dir), /'\.\.\/good\/weights\.bin' points outside the model directory/);
  });

  test('unsupported layer class names the class and the layer', async () => {
    const dir = await copyDir(good, path.join(root, 'fancy'));
    await editModelJSON(dir, (j) => { j.modelTopology.config.layers[0].class_name = 'FancyDense'; });
    await assert.rejects(loadModelFrom(dir), /unsupported layer class 'FancyDense' \(layer 'fc1'\)/);
  });

  test('weights the topology does not know are refused by the build step', async () => {
    const dir = await copyDir(good, path.join(root, 'renamed'));
    await editModelJSON(dir, (j) => { j.weightsManifest[0].weights[0].name = 'zzz/kernel'; });
    await assert.rejects(loadModelFrom(dir), /cannot build the model in .*renamed\/model\.json/);
  });
});

describe('createOrLoadModel', () => {
  test('zoo names build, paths load, mismatches and unknown refs are errors', async () => {
    const opts = { inputShape: [4], numClasses: 2, seed: 1 };
    const fresh = await createOrLoadModel('lenet-8', opts);
    assert.deepEqual(fresh.outputs[0].shape, [null, 2]);
    const dir = path.join(root, 'col');
    await saveModelTo(fresh, dir);
    const loaded = await createOrLoadModel(dir, { ...opts, seed: 99 });
    assert.deepEqual(getWeightMap(loaded), getWeightMap(fresh));
    await assert.rejects(createOrLoadModel(dir, { ...opts, numClasses: 10 }),
      /takes input \[4\] with 2 classes, but the data has input \[4\] with 10 classes/);
    await assert.rejects(createOrLoadModel('lenet-x', opts), /'lenet-x' is neither a zoo model \(.*lenet-300-100.*\) nor an existing path/);
    const viaFileUrl = await createOrLoadModel(pathToFileURL(dir).href, opts);
    assert.deepEqual(getWeightMap(viaFileUrl), getWeightMap(fresh));
    for (const m of [fresh, loaded, viaFileUrl]) m.dispose();
  });
});
