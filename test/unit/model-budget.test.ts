// The model.json budget check: hand-built model.json documents that would cost
// far more than they weigh (huge Dense, huge Conv, too many layers, unknown
// classes, manifests that disagree with their files, bogus numbers) are each
// refused naming the layer or weight, without TF.js building anything; real
// zoo models pass with the parameter counts TF.js itself reports; and the
// engine's loader refuses an oversized directory before building it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { checkModelJson, DEFAULT_MODEL_LIMITS, ModelBudgetError, type ModelLimits } from '../../src/engine/models/budget.js';
import { modelToFiles } from '../../src/engine/models/files.js';
import { countParams } from '../../src/engine/models/inspect.js';
import { createOrLoadModel, loadModelFrom } from '../../src/engine/models/load.js';
import { createModel } from '../../src/engine/models/registry.js';

type Json = Record<string, unknown>;

const limits: ModelLimits = { ...DEFAULT_MODEL_LIMITS };

const dense = (name: string, units: unknown, extra: Json = {}): Json => ({ class_name: 'Dense', config: { name, units, ...extra } });

function sequential(layers: Json[], weights: Json[] = []): Json {
  return {
    modelTopology: { class_name: 'Sequential', config: { name: 'm', layers } },
    format: 'layers-model',
    weightsManifest: [{ paths: ['weights.bin'], weights }],
  };
}

/** Asserts a ModelBudgetError whose message names `who` and matches `also`. */
function refused(fn: () => unknown, who: string, also?: RegExp): ModelBudgetError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ModelBudgetError, `expected a ModelBudgetError, got ${String(caught)}`);
  assert.ok(caught.message.includes(who), `message should name ${who}: ${caught.message}`);
  if (also) assert.match(caught.message, also);
  assert.ok(caught.field.startsWith('model.json'), caught.field);
  return caught;
}

describe('checkModelJson refuses before anything is built', () => {
  test('a 20M-unit Dense layer is refused naming the layer and its figures', () => {
    const mj = sequential([dense('fc1', 784, { batch_input_shape: [null, 784] }), dense('huge', 20_000_000)]);
    const e = refused(() => checkModelJson(mj, limits), "layer 'huge' (Dense)", /20,000,000 units x 784 inputs: 15,700,000,000 parameters; the limit per layer is 25,000,000/);
    assert.ok(e.message.length < 400);
  });

  test('a Conv2D with a huge filter count is refused (filters x kernel x input channels)', () => {
    const mj = sequential([
      { class_name: 'Conv2D', config: { name: 'c1', filters: 64, kernel_size: [3, 3], padding: 'same', batch_input_shape: [null, 32, 32, 3] } },
      { class_name: 'Conv2D', config: { name: 'wide', filters: 100_000, kernel_size: [7, 7], padding: 'valid' } },
    ]);
    // 7*7*64*100000 + 100000 = 313,700,000
    refused(() => checkModelJson(mj, limits), "layer 'wide' (Conv2D)", /kernel 7x7 x 64 input channels -> 100,000 channels: 313,700,000 parameters/);
  });

  test('many layers under the per-layer cap still hit the whole-model cap, named at the layer that crosses it', () => {
    const layers = [dense('d0', 4000, { batch_input_shape: [null, 4000] })];
    for (let i = 1; i < 10; i++) layers.push(dense(`d${i}`, 4000));
    // each layer is 16,004,000 parameters: the fourth crosses 50M
    refused(() => checkModelJson(sequential(layers), limits), "layer 'd3' (Dense)", /64,016,000 parameters at this layer; the limit is 50,000,000/);
  });

  test('a deep model is refused past the layer limit', () => {
    const layers = [dense('d0', 2, { batch_input_shape: [null, 2] })];
    for (let i = 1; i < 1500; i++) layers.push(dense(`d${i}`, 2));
    refused(() => checkModelJson(sequential(layers), limits), "model 'm'", /1,500 layers; the limit is 1,000/);
    const deep = { ...limits, maxLayers: 10 };
    refused(() => checkModelJson(sequential(layers.slice(0, 20)), deep), 'model', /limit is 10/);
  });

  test('nested models deeper than the nesting limit are refused', () => {
    let inner: Json = { class_name: 'Sequential', config: { name: 'leaf', layers: [dense('x', 2, { batch_input_shape: [null, 2] })] } };
    for (let i = 0; i < 12; i++) inner = { class_name: 'Sequential', config: { name: `n${i}`, layers: [inner] } };
    refused(() => checkModelJson({ modelTopology: inner, weightsManifest: [] }, limits), 'nested more than');
  });

  test('a huge activation (output shape) is refused even with few parameters', () => {
    const mj = sequential([{ class_name: 'UpSampling2D', config: { name: 'up', size: [4096, 4096], batch_input_shape: [null, 32, 32, 3] } }]);
    refused(() => checkModelJson(mj, limits), "layer 'up' (UpSampling2D)", /values per example/);
  });

  test('an unknown layer class is refused with its name and the layer', () => {
    const mj = sequential([dense('fc1', 10, { batch_input_shape: [null, 4] }), { class_name: 'MyFancyLayer', config: { name: 'fancy' } }]);
    refused(() => checkModelJson(mj, limits), "unsupported layer class 'MyFancyLayer' (layer 'fancy')");
  });

  test('bogus numbers in the topology: negative, NaN, non-integer, huge, strings', () => {
    for (const units of [-5, Number.NaN, 1.5, 2 ** 40, '10', null]) {
      const mj = sequential([dense('bad', units, { batch_input_shape: [null, 4] })]);
      refused(() => checkModelJson(mj, limits), "layer 'bad' (Dense)", /units/);
    }
    for (const shape of [[null, -1], [null, 2.5], [null, Number.NaN], 'x']) {
      const mj = sequential([dense('in', 3, { batch_input_shape: shape })]);
      refused(() => checkModelJson(mj, limits), "layer 'in' (Dense)", /shape/);
    }
    const conv = sequential([{ class_name: 'Conv2D', config: { name: 'k', filters: 4, kernel_size: [3, 0], batch_input_shape: [null, 8, 8, 1] } }]);
    refused(() => checkModelJson(conv, limits), "layer 'k' (Conv2D)", /kernel_size/);
  });

  test('manifest shapes: negative, NaN, non-integer dims are refused naming the weight', () => {
    const layers = [dense('fc', 2, { batch_input_shape: [null, 2] })];
    for (const shape of [[2, -2], [2, Number.NaN], [2, 0.5], 'x']) {
      const e = refused(() => checkModelJson(sequential(layers, [{ name: 'fc/kernel', shape, dtype: 'float32' }]), limits), "weight 'fc/kernel'");
      assert.equal(e.field, 'model.json.weightsManifest[0].weights[0].shape');
    }
    refused(() => checkModelJson(sequential(layers, [{ name: 'fc/kernel', shape: [2, 2], dtype: 'string' }]), limits), "weight 'fc/kernel'", /dtype/);
  });

  test('a manifest describing a huge weight is refused even when the topology is small', () => {
    const mj = sequential([dense('fc', 2, { batch_input_shape: [null, 2] })], [{ name: 'fc/kernel', shape: [100_000, 1000], dtype: 'float32' }]);
    refused(() => checkModelJson(mj, limits), "weight 'fc/kernel'", /100,000,000 values; the limit per layer is 25,000,000/);
    const bytes = { ...limits, maxBytes: 1000 };
    refused(() => checkModelJson(sequential([dense('fc', 2, { batch_input_shape: [null, 2] })], [{ name: 'fc/kernel', shape: [20, 20], dtype: 'float32' }]), bytes), "weight 'fc/kernel'", /1,600 weight bytes/);
  });

  test('weight files shorter than the manifest (truncated) name the first weight that does not fit', () => {
    const weights = [
      { name: 'fc/kernel', shape: [2, 3], dtype: 'float32' },
      { name: 'fc/bias', shape: [3], dtype: 'float32' },
    ];
    const mj = sequential([dense('fc', 3, { batch_input_shape: [null, 2] })], weights);
    assert.equal(checkModelJson(mj, limits, new Map([['weights.bin', 36]])).weightBytes, 36);
    const e = refused(() => checkModelJson(mj, limits, new Map([['weights.bin', 30]])), "weight 'fc/bias'", /bytes 24-36 .* hold only 30 bytes/);
    assert.equal(e.field, 'model.json.weightsManifest[0].weights[1]');
    refused(() => checkModelJson(mj, limits, new Map([['weights.bin', 40]])), 'weightsManifest[0]', /hold 40 bytes but .* describes 36 bytes/);
    refused(() => checkModelJson(mj, limits, new Map()), 'weights.bin', /missing/);
  });

  test('a functional graph reading a tensor no layer makes is refused', () => {
    const mj = {
      modelTopology: {
        class_name: 'Model',
        config: {
          name: 'g',
          layers: [
            { name: 'in', class_name: 'InputLayer', config: { name: 'in', batch_input_shape: [null, 4] }, inbound_nodes: [] },
            { name: 'fc', class_name: 'Dense', config: { name: 'fc', units: 2 }, inbound_nodes: [[['ghost', 0, 0, {}]]] },
          ],
          input_layers: [['in', 0, 0]],
          output_layers: [['fc', 0, 0]],
        },
      },
      weightsManifest: [],
    };
    refused(() => checkModelJson(mj, limits), "'fc'", /no layer produces/);
  });
});

describe('checkModelJson passes real models with their true figures', () => {
  for (const [name, inputShape] of [['lenet-300-100', [28, 28, 1]], ['conv-2', [32, 32, 3]], ['resnet-20', [32, 32, 3]], ['vgg-11', [32, 32, 3]]] as const) {
    test(`${name}: parameters and bytes equal what TF.js counts`, async () => {
      const model = createModel(name, { inputShape: [...inputShape], numClasses: 10, seed: 1 });
      try {
        const files = await modelToFiles(model);
        const mj = JSON.parse(new TextDecoder().decode(files.json)) as unknown;
        const budget = checkModelJson(mj, limits, new Map([['weights.bin', files.bin.byteLength]]));
        assert.equal(budget.params, countParams(model));
        assert.equal(budget.manifestElements, countParams(model));
        assert.equal(budget.weightBytes, files.bin.byteLength);
        assert.equal(budget.layers.length, model.layers.length);
      } finally {
        model.dispose();
      }
    });
  }
});

describe('checkModelJson follows nested and shared layers', () => {
  test('a functional model calling a nested Sequential twice and a shared Dense: TF.js and the check agree', async () => {
    const inner = tf.sequential({ name: 'inner' });
    inner.add(tf.layers.dense({ units: 6, inputShape: [5], name: 'inner_fc' }));
    inner.add(tf.layers.dense({ units: 5, name: 'inner_out' }));
    const input = tf.input({ shape: [5], name: 'x' });
    const shared = tf.layers.dense({ units: 5, name: 'shared' });
    const a = shared.apply(inner.apply(input) as tf.SymbolicTensor) as tf.SymbolicTensor;
    const b = shared.apply(inner.apply(a) as tf.SymbolicTensor) as tf.SymbolicTensor;
    const merged = tf.layers.concatenate({ name: 'cat' }).apply([a, b]) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, name: 'out' }).apply(merged) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out, name: 'outer' });
    try {
      const files = await modelToFiles(model);
      const budget = checkModelJson(JSON.parse(new TextDecoder().decode(files.json)), limits, new Map([['weights.bin', files.bin.byteLength]]));
      assert.equal(budget.params, countParams(model));
      assert.deepEqual(budget.layers.map((l) => l.name), ['x', 'inner_fc', 'inner_out', 'shared', 'cat', 'out']);
    } finally {
      model.dispose();
    }
  });
});

describe('the engine loader checks model directories first', () => {
  test('an oversized model.json in a directory is refused by loadModelFrom without building it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ticketsmith-budget-'));
    try {
      const mj = sequential([dense('fc1', 784, { batch_input_shape: [null, 784] }), dense('huge', 20_000_000)]);
      await writeFile(path.join(dir, 'model.json'), JSON.stringify(mj));
      await writeFile(path.join(dir, 'weights.bin'), new Uint8Array(0));
      const before = tf.memory().numBytes;
      await assert.rejects(loadModelFrom(dir), (e: Error) => e instanceof ModelBudgetError && /layer 'huge' \(Dense\)/.test(e.message));
      assert.equal(tf.memory().numBytes, before);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('createOrLoadModel honours the limits it is given (what the worker passes from settings)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ticketsmith-budget-'));
    const model = createModel('lenet-20-10', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
    try {
      const files = await modelToFiles(model);
      await writeFile(path.join(dir, 'model.json'), files.json);
      await writeFile(path.join(dir, 'weights.bin'), files.bin);
      const opts = { inputShape: [28, 28, 1], numClasses: 10, seed: 0 };
      const loaded = await createOrLoadModel(dir, opts);
      loaded.dispose();
      await assert.rejects(createOrLoadModel(dir, opts, { ...limits, maxLayerParams: 10_000 }), (e: Error) => e instanceof ModelBudgetError && /layer 'fc1' \(Dense\)/.test(e.message));
    } finally {
      model.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
