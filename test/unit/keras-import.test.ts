// Keras in: the committed Keras fixtures (a functional model as .keras and
// legacy .h5, a Sequential .keras) import into TF.js Layers with the outputs
// Keras gave (io.json) within 1e-4, stay prunable, save and reload through
// modelToFiles, export to ONNX that onnxruntime-node runs the same; and each
// broken or unsupported file, crafted here from the fixtures, is refused with
// its code and a message naming the problem.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { unzipSync, zipSync } from 'fflate';
import h5wasm from 'h5wasm/node';
import { exportOnnx } from '../../src/engine/export/onnx.ts';
import { modelFromFiles, modelToFiles } from '../../src/engine/models/files.ts';
import { prunableWeights } from '../../src/engine/models/inspect.ts';
import { ModelImportError } from '../../src/engine/models/import/errors.ts';
import { importKeras, importKerasFiles, isHdf5, isKerasArchive, KERAS_LAYER_CLASSES, MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH } from '../../src/engine/models/keras/index.ts';
import { kerasSnakeCase } from '../../src/engine/models/keras/weights.ts';
import { mulberry32 } from '../../src/engine/rng.ts';

const DIR = new URL('../fixtures/models/', import.meta.url);
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, DIR)));

interface IoCase { input: number[]; keras: number[] }
interface Io { input: { shape: number[] }; output: { shape: number[] }; layout: string; cases: IoCase[] }
const io = (name: string): Io => JSON.parse(readFileSync(new URL(`${name}.io.json`, DIR), 'utf8')) as Io;

type Json = Record<string, any>;

/** The fixture archive with config.json edited by `edit` (and entries dropped or replaced). */
function editArchive(edit: (config: Json) => void, entries: Record<string, Uint8Array | null> = {}): Uint8Array {
  const files = unzipSync(fixture('keras-functional.keras'));
  const config = JSON.parse(new TextDecoder().decode(files['config.json'])) as Json;
  edit(config);
  files['config.json'] = new TextEncoder().encode(JSON.stringify(config));
  for (const [name, bytes] of Object.entries(entries)) {
    if (bytes === null) delete files[name];
    else files[name] = new Uint8Array(bytes);
  }
  return zipSync(files);
}

const layerOf = (config: Json, name: string): Json => config.config.layers.find((l: Json) => l.name === name);

/** An HDF5 file changed in place by h5wasm (attributes deleted), read back as bytes. */
async function editHdf5(bytes: Uint8Array, edit: (f: InstanceType<typeof h5wasm.File>) => void): Promise<Uint8Array<ArrayBuffer>> {
  const m = await h5wasm.ready;
  const path = `/keras-import-test-${Math.random().toString(36).slice(2)}.h5`;
  m.FS.writeFile(path, bytes);
  const f = new h5wasm.File(path, 'a');
  edit(f);
  f.close();
  const out = m.FS.readFile(path);
  m.FS.unlink(path);
  return new Uint8Array(out);
}

async function refusal(bytes: Uint8Array, fileName: string, code: 'UNSUPPORTED_MODEL' | 'INVALID_ARGUMENT', ...patterns: RegExp[]): Promise<ModelImportError> {
  const before = tf.memory().numTensors;
  const err = await importKeras(bytes, fileName).then(
    () => assert.fail(`${fileName} was imported`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ModelImportError, `expected a ModelImportError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  for (const p of patterns) assert.match(err.message, p);
  assert.equal(tf.memory().numTensors, before, 'a refused import leaves no tensors behind');
  return err;
}

/** max |model - Keras| over the io.json cases; the outputs are checked not to be flat. */
function maxDiffToKeras(model: tf.LayersModel, name: string): number {
  const doc = io(name);
  assert.equal(doc.layout, 'NHWC');
  let diff = 0;
  for (const c of doc.cases) {
    const y = tf.tidy(() => (model.predict(tf.tensor(c.input, doc.input.shape)) as tf.Tensor).dataSync());
    assert.equal(y.length, c.keras.length);
    assert.ok(Math.max(...c.keras) - Math.min(...c.keras) > 1e-3, 'Keras outputs are not all equal');
    for (let i = 0; i < y.length; i++) diff = Math.max(diff, Math.abs(y[i]! - c.keras[i]!));
  }
  return diff;
}

test('keras-functional.keras and .h5 import with the outputs Keras gave, within 1e-4', async () => {
  for (const file of ['keras-functional.keras', 'keras-functional.h5']) {
    const before = tf.memory().numTensors;
    const model = await importKeras(fixture(file), file);
    assert.deepEqual(model.inputs[0]!.shape, [null, 32, 32, 3]);
    assert.deepEqual(model.outputs[0]!.shape, [null, 10]);
    const diff = maxDiffToKeras(model, 'keras-functional');
    assert.ok(diff < 1e-4, `${file}: max |TF.js - Keras| = ${diff}`);
    model.dispose();
    assert.equal(tf.memory().numTensors, before, `${file}: import + dispose leaks no tensors`);
  }
});

test('a Keras 3 Sequential model imports (Rescaling, padding, depthwise and separable convs, LeakyReLU, Dense, Activation)', async () => {
  const model = await importKeras(fixture('keras-sequential.keras'), 'keras-sequential.keras');
  const classes = model.layers.map((l) => l.getClassName());
  for (const cls of ['Rescaling', 'ZeroPadding2D', 'DepthwiseConv2D', 'SeparableConv2D', 'BatchNormalization', 'LeakyReLU', 'Flatten', 'Dense']) {
    assert.ok(classes.includes(cls), `${cls} in ${classes.join(', ')}`);
  }
  const diff = maxDiffToKeras(model, 'keras-sequential');
  assert.ok(diff < 1e-4, `max |TF.js - Keras| = ${diff}`);
  model.dispose();
});

test('the imported model lists its conv and dense kernels as prunable and saves and reloads through modelToFiles', async () => {
  const model = await importKeras(fixture('keras-functional.keras'), 'keras-functional.keras');
  const names = prunableWeights(model).map((w) => w.name).sort();
  assert.deepEqual(names, ['branch_a/kernel', 'branch_b/kernel', 'probs/kernel', 'res_conv/kernel', 'stem/kernel']);
  const reloaded = await modelFromFiles(await modelToFiles(model));
  const x = tf.tensor(io('keras-functional').cases[1]!.input, [1, 32, 32, 3]);
  const a = (model.predict(x) as tf.Tensor).dataSync();
  const b = (reloaded.predict(x) as tf.Tensor).dataSync();
  assert.deepEqual(Array.from(b), Array.from(a));
  assert.ok(maxDiffToKeras(reloaded, 'keras-functional') < 1e-4);
  tf.dispose(x);
  model.dispose();
  reloaded.dispose();
});

test('exportOnnx of the imported model runs in onnxruntime-node with the Keras outputs within 1e-4', async () => {
  const model = await importKeras(fixture('keras-functional.h5'), 'keras-functional.h5');
  const session = await ort.InferenceSession.create(exportOnnx(model));
  let diff = 0;
  for (const c of io('keras-functional').cases) {
    const nchw = tf.tidy(() => tf.transpose(tf.tensor(c.input, [1, 32, 32, 3]), [0, 3, 1, 2]).dataSync() as Float32Array);
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', nchw, [1, 3, 32, 32]) });
    const got = out[session.outputNames[0]!]!.data as Float32Array;
    assert.equal(got.length, 10);
    for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i]! - c.keras[i]!));
  }
  assert.ok(diff < 1e-4, `max |ONNX Runtime - Keras| = ${diff}`);
  await session.release();
  model.dispose();
});

test("Keras 3 weight groups are found by Keras's own class numbering when the vars carry no layer name", async () => {
  assert.deepEqual(['Conv2D', 'BatchNormalization', 'ReLU', 'GlobalAveragePooling2D', 'InputLayer', 'SeparableConv2D'].map(kerasSnakeCase), [
    'conv2d', 'batch_normalization', 're_lu', 'global_average_pooling2d', 'input_layer', 'separable_conv2d',
  ]);
  const files = unzipSync(fixture('keras-functional.keras'));
  let stripped = 0;
  files['model.weights.h5'] = await editHdf5(files['model.weights.h5']!, (f) => {
    const layers = f.get('layers') as InstanceType<typeof h5wasm.Group>;
    for (const key of layers.keys()) {
      const vars = layers.get(`${key}/vars`) as InstanceType<typeof h5wasm.Group>;
      if ('name' in vars.attrs) {
        vars.delete_attribute('name');
        stripped++;
      }
    }
  });
  assert.ok(stripped >= 10, `stripped ${stripped} name attributes`);
  const model = await importKeras(zipSync(files), 'unnamed.keras');
  assert.ok(maxDiffToKeras(model, 'keras-functional') < 1e-4);
  model.dispose();
});

/** A Keras 3 model_config rewritten the way tf.keras 2 wrote it (nested-list inbound nodes, batch_input_shape, dtype strings). */
function asKeras2(config: Json): Json {
  const strip = (x: any): any => {
    if (Array.isArray(x)) return x.map(strip);
    if (x === null || typeof x !== 'object') return x;
    if (x.class_name === 'DTypePolicy') return x.config.name;
    const out: Json = {};
    for (const [k, v] of Object.entries(x)) if (!['module', 'registered_name', 'build_config', 'shared_object_id'].includes(k)) out[k] = strip(v);
    return out;
  };
  const c = strip(config) as Json;
  for (const layer of c.config.layers as Json[]) {
    if (layer.class_name === 'InputLayer') {
      layer.config.batch_input_shape = layer.config.batch_shape;
      delete layer.config.batch_shape;
      delete layer.config.optional;
    }
    layer.inbound_nodes = (layer.inbound_nodes as Json[]).map((call) =>
      [call.args].flat(2).map((t: Json) => [...(t.config.keras_history as unknown[]), {}]));
  }
  c.config.input_layers = [c.config.input_layers];
  c.config.output_layers = [c.config.output_layers];
  c.keras_version = '2.15.0';
  return c;
}

test('a legacy .h5 whose model_config is in tf.keras 2 form imports the same', async () => {
  let converted: Json = {};
  const h5 = await editHdf5(fixture('keras-functional.h5'), (f) => {
    converted = asKeras2(JSON.parse(String(f.attrs.model_config!.value)) as Json);
    f.delete_attribute('model_config');
    f.create_attribute('model_config', JSON.stringify(converted));
  });
  const add = (converted.config.layers as Json[]).find((l) => l.name === 'res_add')!;
  assert.deepEqual(add.inbound_nodes, [[['stem_relu', 0, 0, {}], ['res_bn', 0, 0, {}]]]);
  const model = await importKeras(h5, 'keras2.h5');
  assert.ok(maxDiffToKeras(model, 'keras-functional') < 1e-4);
  model.dispose();
});

test('an archive already unpacked (the files isKerasArchive accepts) imports the same, and refuses a missing weights file', async () => {
  const files = Object.entries(unzipSync(fixture('keras-functional.keras'))).map(([name, bytes]) => ({ name, bytes }));
  assert.equal(isKerasArchive(files), true);
  const model = await importKerasFiles(files, 'upload');
  assert.ok(maxDiffToKeras(model, 'keras-functional') < 1e-4);
  model.dispose();
  const err = await importKerasFiles(files.filter((f) => f.name !== 'model.weights.h5'), 'upload').catch((e: unknown) => e);
  assert.ok(err instanceof ModelImportError);
  assert.equal(err.code, 'INVALID_ARGUMENT');
  assert.match(err.message, /upload: the archive has no model\.weights\.h5/);
});

test('format detection: isKerasArchive on unpacked names, isHdf5 on bytes', () => {
  assert.equal(isKerasArchive([{ name: 'config.json' }, { name: 'metadata.json' }, { name: 'model.weights.h5' }]), true);
  assert.equal(isKerasArchive([{ name: 'model.json' }, { name: 'weights.bin' }]), false);
  assert.equal(isKerasArchive([{ name: 'config.json' }]), false);
  assert.equal(isHdf5(fixture('keras-functional.h5')), true);
  assert.equal(isHdf5(unzipSync(fixture('keras-functional.keras'))['model.weights.h5']!), true);
  assert.equal(isHdf5(fixture('keras-functional.keras')), false);
  assert.equal(isHdf5(fixture('mlp-gemm.onnx')), false);
});

test('a ReLU with a negative slope is built as a LeakyReLU with that slope', async () => {
  const model = await importKeras(editArchive((c) => { layerOf(c, 'res_relu').config.negative_slope = 0.25; }), 'slope.keras');
  const layer = model.getLayer('res_relu');
  assert.equal(layer.getClassName(), 'LeakyReLU');
  const y = tf.tidy(() => (layer.apply(tf.tensor1d([-2, 3])) as tf.Tensor).dataSync());
  assert.deepEqual(Array.from(y), [-0.5, 3]);
  model.dispose();
});

test('unsupported layer classes are refused as UNSUPPORTED_MODEL, each named with its first layer, with the supported set', async () => {
  const bytes = editArchive((c) => {
    layerOf(c, 'branch_a').class_name = 'MyAttention';
    layerOf(c, 'branch_b').class_name = 'MyAttention';
    layerOf(c, 'pool').class_name = 'LSTM';
  });
  const err = await refusal(bytes, 'custom.keras', 'UNSUPPORTED_MODEL', /MyAttention \(first used by layer 'branch_a'\)/, /LSTM \(first used by layer 'pool'\)/, /supported: InputLayer, .*Conv2D/);
  assert.doesNotMatch(err.message, /branch_b/);
  for (const cls of ['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Dense', 'BatchNormalization', 'GlobalAveragePooling2D', 'Add', 'Concatenate']) {
    assert.ok(KERAS_LAYER_CLASSES.includes(cls), cls);
  }
});

test('settings TF.js lacks are refused by layer: channels_first, grouped convolution, mixed precision, an unknown activation, a ReLU threshold, a dynamic input size', async () => {
  await refusal(editArchive((c) => { layerOf(c, 'res_conv').config.data_format = 'channels_first'; }), 'cf.keras', 'UNSUPPORTED_MODEL', /layer 'res_conv' \(Conv2D\)/, /channels_first/);
  await refusal(editArchive((c) => { layerOf(c, 'branch_b').config.groups = 2; }), 'groups.keras', 'UNSUPPORTED_MODEL', /layer 'branch_b'/, /groups=2/);
  await refusal(editArchive((c) => { layerOf(c, 'probs').config.dtype.config.name = 'mixed_float16'; }), 'mixed.keras', 'UNSUPPORTED_MODEL', /layer 'probs'/, /mixed_float16/);
  await refusal(editArchive((c) => { layerOf(c, 'branch_a').config.activation = 'hard_sigmoid'; }), 'act.keras', 'UNSUPPORTED_MODEL', /layer 'branch_a'/, /activation 'hard_sigmoid'/);
  await refusal(editArchive((c) => { layerOf(c, 'stem_relu').config.threshold = 0.5; }), 'threshold.keras', 'UNSUPPORTED_MODEL', /layer 'stem_relu' \(ReLU\) sets threshold=0\.5/);
  await refusal(editArchive((c) => { layerOf(c, 'input').config.batch_shape = [null, null, null, 3]; }), 'dynamic.keras', 'UNSUPPORTED_MODEL', /layer 'input' \(InputLayer\) has input shape \[null,null,null,3\] with a dynamic \(None\) size/);
});

test('a model with two inputs or two outputs is refused, naming them', async () => {
  const twoInputs = editArchive((c) => {
    const second = structuredClone(layerOf(c, 'input'));
    second.name = second.config.name = 'extra';
    c.config.layers.splice(1, 0, second);
    c.config.input_layers = [['input', 0, 0], ['extra', 0, 0]];
  });
  await refusal(twoInputs, 'two-inputs.keras', 'UNSUPPORTED_MODEL', /2 inputs \('input', 'extra'\)/, /one input and give one output/);
  const twoOutputs = editArchive((c) => {
    c.config.output_layers = [['probs', 0, 0], ['gap', 0, 0]];
  });
  await refusal(twoOutputs, 'two-outputs.keras', 'UNSUPPORTED_MODEL', /2 outputs \('probs', 'gap'\)/);
});

test('a corrupt zip, a corrupt or foreign HDF5 file and an archive without weights are refused as INVALID_ARGUMENT', async () => {
  const zip = fixture('keras-functional.keras');
  await refusal(zip.subarray(0, zip.length >> 1), 'cut.keras', 'INVALID_ARGUMENT', /cut\.keras: not a valid \.keras archive/);
  await refusal(new TextEncoder().encode('not a model at all'), 'junk.keras', 'INVALID_ARGUMENT', /junk\.keras: not a valid \.keras archive/);

  const h5 = fixture('keras-functional.h5');
  await refusal(h5.subarray(0, 20_000), 'cut.h5', 'INVALID_ARGUMENT', /cut\.h5: not a readable HDF5 file \(File has been truncated\)/);
  const scrambled = new Uint8Array(h5);
  for (let i = 2048; i < scrambled.length; i++) scrambled[i] = (i * 31) & 255;
  await refusal(scrambled, 'scrambled.h5', 'INVALID_ARGUMENT', /scrambled\.h5: /, /HDF5/);
  // HDF5 may abort() inside its WebAssembly build on such bytes; the reader must still work after.
  const after = await importKeras(h5, 'after.h5');
  after.dispose();
  await refusal(fixture('mlp-gemm.onnx'), 'model.h5', 'INVALID_ARGUMENT', /model\.h5: not an HDF5 file/);

  const files = unzipSync(zip);
  const badWeights = editArchive(() => {}, { 'model.weights.h5': files['model.weights.h5']!.subarray(0, 4096) });
  await refusal(badWeights, 'badweights.keras', 'INVALID_ARGUMENT', /badweights\.keras model\.weights\.h5: not a readable HDF5 file/);
  await refusal(editArchive(() => {}, { 'model.weights.h5': null }), 'noweights.keras', 'INVALID_ARGUMENT', /noweights\.keras: the archive has no model\.weights\.h5/);
  await refusal(editArchive(() => {}, { 'config.json': null }), 'noconfig.keras', 'INVALID_ARGUMENT', /noconfig\.keras: the archive has no config\.json/);
  const weightsOnly = await editHdf5(h5, (f) => f.delete_attribute('model_config'));
  await refusal(weightsOnly, 'weights-only.h5', 'INVALID_ARGUMENT', /weights-only\.h5: the HDF5 file has no 'model_config'/);
});

test('flipped bytes in a .keras or .h5 give a model or a ModelImportError, nothing else, and leak no tensors', async () => {
  const next = mulberry32(11);
  const before = tf.memory().numTensors;
  const outcomes = { ok: 0, refused: 0 };
  for (const file of ['keras-functional.keras', 'keras-functional.h5']) {
    const good = fixture(file);
    for (let k = 0; k < 25; k++) {
      const bytes = new Uint8Array(good);
      for (let j = 0; j < 8; j++) bytes[Math.floor(next() * bytes.length)] ^= 1 + Math.floor(next() * 255);
      try {
        (await importKeras(bytes, file)).dispose();
        outcomes.ok++;
      } catch (e) {
        assert.ok(e instanceof ModelImportError, `${file} flip ${k}: ${String(e)}`);
        outcomes.refused++;
      }
    }
  }
  assert.ok(outcomes.refused > 0, JSON.stringify(outcomes));
  assert.equal(tf.memory().numTensors, before);
  (await importKeras(fixture('keras-functional.h5'), 'keras-functional.h5')).dispose();
});

test('weights that do not fit the config, and a layer missing from the weights file, are refused naming the layer', async () => {
  await refusal(editArchive((c) => { layerOf(c, 'probs').config.units = 12; }), 'units.keras', 'INVALID_ARGUMENT', /layer 'probs' weight 0 \(kernel\) has shape \[8, 10\] in the file, the model needs \[8, 12\]/);
  const h5 = await editHdf5(fixture('keras-functional.h5'), (f) => {
    (f.get('model_weights/res_conv') as InstanceType<typeof h5wasm.Group>).delete_attribute('weight_names');
  });
  await refusal(h5, 'noattr.h5', 'INVALID_ARGUMENT', /layer 'res_conv'/, /weight_names/);
  // The config names a layer the weights file has no group for.
  const renamed = await editHdf5(fixture('keras-functional.h5'), (f) => {
    const text = String(f.attrs.model_config!.value).replaceAll('"res_conv"', '"res_conv_renamed"');
    f.delete_attribute('model_config');
    f.create_attribute('model_config', text);
  });
  await refusal(renamed, 'renamed.h5', 'INVALID_ARGUMENT', /renamed\.h5: has no weights for layer 'res_conv_renamed' \(Conv2D\), which needs 2 \(kernel, bias\)/);
});

test('sizes are bounded: the model budget before TF.js allocates, and the unpacked archive', async () => {
  await refusal(editArchive((c) => { layerOf(c, 'probs').config.units = 30_000_000; }), 'huge.keras', 'INVALID_ARGUMENT', /huge\.keras config\.json: .*'probs'/);
  // A config padded with 4 MB of blanks deflates to a few KB: the cap is on what it unpacks to.
  const bomb = editArchive((c) => { c.config.note = ' '.repeat(4_000_000); });
  assert.ok(bomb.length < 200_000, `${bomb.length} bytes`);
  const err = await importKeras(bomb, 'bomb.keras', { maxBytes: 1_000_000 }).catch((e: unknown) => e);
  assert.ok(err instanceof ModelImportError);
  assert.equal(err.code, 'INVALID_ARGUMENT');
  assert.match(err.message, /bomb\.keras: the archive unpacks to more than 1000000 bytes/);
  const big = await importKeras(fixture('keras-functional.keras'), 'big.keras', { maxBytes: 20_000 }).catch((e: unknown) => e);
  assert.ok(big instanceof ModelImportError);
  assert.match(big.message, /big\.keras: \d+ bytes is over the 20000-byte limit/);
});

test('a config.json too deep or too large is refused before JSON.parse holds it', async () => {
  const keras = (config: string): Uint8Array => zipSync({ 'config.json': new TextEncoder().encode(config), 'model.weights.h5': new Uint8Array([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]) });
  const refused = async (bytes: Uint8Array, re: RegExp): Promise<void> => {
    await assert.rejects(importKeras(bytes, 'm.keras'), (e: Error) => {
      assert.ok(e instanceof ModelImportError, `${e.name}: ${e.message}`);
      assert.equal(e.code, 'INVALID_ARGUMENT');
      assert.match(e.message, re);
      return true;
    });
  };
  const started = Date.now();
  // Before: 2 MB of brackets (2 KB zipped) took JSON.parse to 875 MB of memory.
  await refused(keras('['.repeat(1_000_000) + ']'.repeat(1_000_000)), new RegExp(`^m\\.keras config\\.json: nests objects and lists more than ${MAX_CONFIG_DEPTH} deep`));
  // Brackets inside strings do not count.
  await refused(keras(JSON.stringify({ name: '['.repeat(1000) })), /^m\.keras config\.json: expected a Keras model config with a 'class_name'/);
  // Before: a 123 MB config (5 MB zipped) took 19 s and 1.6 GB to be refused.
  await refused(keras(`{"class_name":"Sequential","pad":"${' '.repeat(MAX_CONFIG_BYTES)}"}`), new RegExp(`^m\\.keras config\\.json: ${MAX_CONFIG_BYTES + 36} bytes is over the ${MAX_CONFIG_BYTES}-byte limit for a model config$`));
  assert.ok(Date.now() - started < 10_000, `refused in ${Date.now() - started} ms`);
});
