// ONNX in: every good fixture (made by scripts/fixtures/make_models.py)
// imports, and its TF.js outputs match the onnxruntime outputs recorded in
// its .io.json within 1e-4; it still does after a save/reload through
// modelToFiles/modelFromFiles and after exporting back to ONNX and running
// that in onnxruntime. A hand-built graph covers the ops the fixtures lack
// (custom layers included), each refusal names its problem, a perturbed model
// fails the onnxruntime check with the difference, and filter pruning runs on
// the imported residual net.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { initBackend } from '../../src/runtime/backend.ts';
import { CONSTANT_OPS, importOnnx, MAX_OPSET, SUPPORTED_OPS } from '../../src/engine/models/onnx/index.ts';
import { checkAgainstOnnxRuntime, compareWithOnnxRuntime } from '../../src/engine/models/onnx/check.ts';
import { ModelImportError } from '../../src/engine/models/import/errors.ts';
import { modelFromFiles, modelToFiles } from '../../src/engine/models/files.ts';
import { exportOnnx } from '../../src/engine/export/onnx.ts';
import { describeModel, getWeightMap, prunableWeights, setWeightMap } from '../../src/engine/models/inspect.ts';
import { buildGraph } from '../../src/engine/pruning/structure/graph.ts';
import { DEFAULT_MODEL_LIMITS } from '../../src/engine/models/budget.ts';
import { shrinkModel } from '../../src/engine/pruning/structure/surgery.ts';

const { onnx } = onnxProto;
const DIR = new URL('../fixtures/models/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, DIR)));

interface IoJson {
  input: { shape: number[] };
  output: { shape: number[] };
  cases: { input: number[]; onnxruntime: number[] }[];
}

before(async () => {
  await initBackend({ prefer: 'cpu' });
});

/** TF.js outputs for an NCHW (or flat) input given as ONNX would take it. */
function predictNchw(model: tf.LayersModel, values: number[], shape: number[]): Float32Array {
  return tf.tidy(() => {
    let x = tf.tensor(values, shape);
    if (shape.length === 4) x = tf.transpose(x, [0, 2, 3, 1]);
    return (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
  });
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function diffToIo(model: tf.LayersModel, io: IoJson): number {
  let d = 0;
  for (const c of io.cases) {
    const got = predictNchw(model, c.input, io.input.shape);
    assert.ok(c.onnxruntime.some((v) => Math.abs(v) > 1e-2), 'reference outputs are not all near zero');
    d = Math.max(d, maxAbs(got, c.onnxruntime));
  }
  return d;
}

async function runOrt(bytes: Uint8Array, values: number[], shape: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', Float32Array.from(values), shape) });
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('good fixtures', () => {
  for (const name of ['resnet-bn', 'resnet-folded', 'mlp-gemm', 'dw-separable', 'resnet-dynamo', 'dw-dynamo']) {
    test(`${name}: matches onnxruntime, after reload, and exported back`, async () => {
      const bytes = read(`${name}.onnx`);
      const io = JSON.parse(readFileSync(new URL(`${name}.io.json`, DIR), 'utf8')) as IoJson;
      const model = await importOnnx(bytes);
      const [, c, h, w] = io.input.shape as [number, number, number, number];
      assert.deepEqual(model.inputs[0]!.shape, [null, h, w, c], 'channels-last input');
      assert.ok(diffToIo(model, io) < 1e-4, `imported vs io.json: ${diffToIo(model, io)}`);

      const reloaded = await modelFromFiles(await modelToFiles(model));
      assert.ok(diffToIo(reloaded, io) < 1e-4, 'reloaded model still matches');

      const exported = exportOnnx(reloaded);
      for (const k of io.cases) {
        const got = await runOrt(exported, k.input, io.input.shape);
        assert.ok(maxAbs(got, k.onnxruntime) < 1e-4, 'exported back to ONNX, onnxruntime still matches');
      }
      // Every conv and Dense kernel is prunable.
      const kernels = prunableWeights(model).map((p) => p.layer).sort();
      const expected = model.layers.filter((l) => ['Conv2D', 'DepthwiseConv2D', 'Dense'].includes(l.getClassName())).map((l) => l.name).sort();
      assert.deepEqual(kernels, expected);
      model.dispose();
      reloaded.dispose();
    });
  }

  test('layer names come from the ONNX node names, weights are OIHW -> HWIO', async () => {
    const model = await importOnnx(read('resnet-bn.onnx'), { check: false });
    const proto = onnx.ModelProto.decode(read('resnet-bn.onnx'));
    const w = (proto.graph!.initializer ?? []).find((t) => t.name === 'stem.weight')!;
    const raw = new Float32Array(w.rawData!.slice().buffer);
    const kernel = getWeightMap(model)['stem_Conv/kernel']!;
    assert.deepEqual(kernel.shape, [3, 3, 3, 8]);
    // ONNX [o=5, i=2, y=1, x=0] is TF.js [y=1, x=0, i=2, o=5].
    assert.equal(kernel.values[((1 * 3 + 0) * 3 + 2) * 8 + 5], raw[((5 * 3 + 2) * 3 + 1) * 3 + 0]);
    model.dispose();
  });
});

// --- a hand-built graph for the ops the fixtures do not use ---------------------------------

type Attr = OnnxTypes.IAttributeProto;
const A = onnx.AttributeProto.AttributeType;
const ints = (name: string, v: number[]): Attr => ({ name, type: A.INTS, ints: v });
const int = (name: string, v: number): Attr => ({ name, type: A.INT, i: v });
const float = (name: string, v: number): Attr => ({ name, type: A.FLOAT, f: v });

function seeded(n: number, seed: number, scale = 0.5): Float32Array {
  let s = seed;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = ((s / 2147483648) * 2 - 1) * scale;
  }
  return out;
}

function floatInit(name: string, dims: number[], values: Float32Array): OnnxTypes.ITensorProto {
  return { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(values.buffer.slice(0)) };
}
function int64Init(name: string, values: number[]): OnnxTypes.ITensorProto {
  return { name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer) };
}

function modelBytes(nodes: OnnxTypes.INodeProto[], initializer: OnnxTypes.ITensorProto[], inDims: number[], opset = 13, outName = 'y'): Uint8Array {
  const vi = (name: string, dims: (number | string)[]): OnnxTypes.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: opset }],
    graph: { name: 'hand', node: nodes, initializer, input: [vi('x', ['N', ...inDims])], output: [vi(outName, ['N', 4])] },
  })).finish();
}

/** Pad → Conv (asymmetric pads) → HardSwish → Conv dilated → HardSigmoid(1/6) → Clip(-1, 1) → Mul 1.5 → LeakyRelu → Concat with AveragePool(count_include_pad) → Conv 1x1 → Flatten(permute) → MatMul + Add → Sigmoid/Tanh → Softmax; and a ReduceMean branch. */
function handBuilt(): Uint8Array {
  const C = 3;
  const init = [
    int64Init('pads', [0, 0, 1, 0, 0, 0, 0, 1]),
    floatInit('w1', [4, C, 3, 3], seeded(4 * C * 9, 1)), floatInit('b1', [4], seeded(4, 2)),
    floatInit('w2', [4, 4, 3, 3], seeded(4 * 4 * 9, 3, 0.3)),
    floatInit('clipmin', [], new Float32Array([-1])), floatInit('clipmax', [], new Float32Array([1])),
    floatInit('scale', [], new Float32Array([1.5])),
    floatInit('w3', [2, 8, 1, 1], seeded(16, 4)),
    floatInit('mm', [2 * 4 * 4, 4], seeded(32 * 4, 5)), floatInit('mmb', [4], seeded(4, 6)),
    floatInit('g', [4, 2], seeded(8, 7)),
  ];
  const nodes: OnnxTypes.INodeProto[] = [
    { opType: 'Pad', name: 'pad', input: ['x', 'pads'], output: ['p'] },
    { opType: 'Conv', name: 'conv1', input: ['p', 'w1', 'b1'], output: ['c1'], attribute: [ints('pads', [0, 1, 1, 0]), ints('strides', [1, 1])] },
    { opType: 'HardSwish', name: 'hswish', input: ['c1'], output: ['h1'] },
    { opType: 'Conv', name: 'conv2', input: ['h1', 'w2'], output: ['c2'], attribute: [ints('pads', [2, 2, 2, 2]), ints('dilations', [2, 2])] },
    { opType: 'HardSigmoid', name: 'hsig', input: ['c2'], output: ['h2'], attribute: [float('alpha', 1 / 6), float('beta', 0.5)] },
    { opType: 'Clip', name: 'clip', input: ['h2', 'clipmin', 'clipmax'], output: ['k'] },
    { opType: 'Mul', name: 'mul', input: ['scale', 'k'], output: ['m'] },
    { opType: 'LeakyRelu', name: 'leaky', input: ['m'], output: ['l'], attribute: [float('alpha', 0.1)] },
    { opType: 'AveragePool', name: 'avg', input: ['c1'], output: ['a'], attribute: [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1]), int('count_include_pad', 1)] },
    { opType: 'Concat', name: 'cat', input: ['l', 'a'], output: ['cc'], attribute: [int('axis', 1)] },
    { opType: 'Conv', name: 'pw', input: ['cc', 'w3'], output: ['q'] },
    { opType: 'MaxPool', name: 'pool', input: ['q'], output: ['qp'], attribute: [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])] },
    { opType: 'Flatten', name: 'flat', input: ['qp'], output: ['f'] },
    { opType: 'MatMul', name: 'mm', input: ['f', 'mm'], output: ['mmo'] },
    { opType: 'Add', name: 'bias', input: ['mmo', 'mmb'], output: ['d'] },
    { opType: 'Tanh', name: 'tanh', input: ['d'], output: ['t'] },
    { opType: 'ReduceMean', name: 'rm', input: ['c1'], output: ['r'], attribute: [ints('axes', [2, 3]), int('keepdims', 0)] },
    { opType: 'Gemm', name: 'gemm', input: ['r', 'g'], output: ['gr'], attribute: [int('transB', 0), float('alpha', 0.5)] },
    { opType: 'Sigmoid', name: 'sig', input: ['gr'], output: ['s'] },
    { opType: 'Identity', name: 'id', input: ['s'], output: ['s2'] },
    { opType: 'Concat', name: 'cat2', input: ['t', 's2'], output: ['u'], attribute: [int('axis', 1)] },
    { opType: 'Gemm', name: 'head', input: ['u', 'g2'], output: ['z'], attribute: [int('transB', 1)] },
    { opType: 'Softmax', name: 'softmax', input: ['z'], output: ['y'], attribute: [int('axis', 1)] },
  ];
  init.push(floatInit('g2', [4, 6], seeded(24, 8)));
  return modelBytes(nodes, init, [C, 8, 8], 14);
}

describe('hand-built graph: the rest of the op set', () => {
  test('imports (custom layers included), matches onnxruntime, reloads and exports back', async () => {
    const bytes = handBuilt();
    const model = await importOnnx(bytes);
    const classes = new Set(model.layers.map((l) => l.getClassName()));
    for (const cls of ['TsHardSwish', 'TsHardSigmoid', 'TsClip', 'TsScale', 'LeakyReLU', 'ZeroPadding2D', 'Permute', 'Concatenate', 'Softmax']) {
      assert.ok(classes.has(cls), `${cls} in ${[...classes].join(', ')}`);
    }
    const diff = await compareWithOnnxRuntime(model, bytes, { cases: 3 });
    assert.ok(diff < 1e-4, `imported vs onnxruntime: ${diff}`);
    const reloaded = await modelFromFiles(await modelToFiles(model));
    assert.ok((await compareWithOnnxRuntime(reloaded, bytes)) < 1e-4, 'reloaded');
    const back = exportOnnx(reloaded);
    assert.ok((await compareWithOnnxRuntime(reloaded, back)) < 1e-4, 'exported back and run in onnxruntime');
    model.dispose();
    reloaded.dispose();
  });

  test('the upload check (budget, conversion, onnxruntime, stored files) accepts it: the custom layers are known to the model budget', async () => {
    const { checkModelUpload } = await import('../../src/service/models.ts');
    const checked = await checkModelUpload({ files: [{ name: 'hand.onnx', bytes: handBuilt() }] }, 1 << 24, DEFAULT_MODEL_LIMITS);
    assert.equal(checked.format, 'onnx');
    assert.deepEqual(checked.files.map((f) => f.name).sort(), ['model.json', 'source.onnx', 'weights.bin']);
    const stored = await modelFromFiles({ json: checked.files.find((f) => f.name === 'model.json')!.bytes, bin: checked.files.find((f) => f.name === 'weights.bin')!.bytes });
    assert.ok((await compareWithOnnxRuntime(stored, handBuilt())) < 1e-4, 'the stored model matches onnxruntime');
    stored.dispose();
  });

  test('filter pruning passes channels through the custom layers and ZeroPadding2D; the shrunken model exports', async () => {
    const model = await importOnnx(handBuilt());
    const graph = buildGraph(model);
    const group = (layer: string) => graph.groups.find((g) => g.producers.includes(layer))!;
    // conv1 feeds HardSwish, a zero-padded AveragePool and a ReduceMean; conv2 the HardSigmoid, Clip, Mul, LeakyRelu chain.
    for (const layer of ['conv1', 'conv2']) assert.equal(group(layer).blocked, undefined, `${layer}: ${group(layer).blocked}`);
    const small = await shrinkModel(model, { [group('conv1').name]: [0, 2], [group('conv2').name]: [1, 3] }, graph);
    assert.deepEqual(getWeightMap(small)['conv2/kernel']!.shape, [3, 3, 2, 2]);
    assert.ok((await compareWithOnnxRuntime(small, exportOnnx(small))) < 1e-4, 'the shrunken model exported and run in onnxruntime');
    model.dispose();
    small.dispose();
  });

  test('a 1x1 conv after a global pool (rank 4 again) imports and exports back', async () => {
    const bytes = modelBytes([
      { opType: 'GlobalAveragePool', name: 'gap', input: ['x'], output: ['g'] },
      { opType: 'Conv', name: 'fc_conv', input: ['g', 'w', 'b'], output: ['c'] },
      { opType: 'Flatten', name: 'flat', input: ['c'], output: ['y'] },
    ], [floatInit('w', [4, 3, 1, 1], seeded(12, 31)), floatInit('b', [4], seeded(4, 32))], [3, 5, 5]);
    const model = await importOnnx(bytes);
    assert.ok(model.layers.some((l) => l.getClassName() === 'Reshape'));
    assert.ok((await compareWithOnnxRuntime(model, exportOnnx(model))) < 1e-4, 'exported back');
    model.dispose();
  });

  test('a tf2onnx-style NHWC graph: Transposes around the convs, flatten and mean in NHWC', async () => {
    const perm = (p: number[]): Attr[] => [ints('perm', p)];
    const bytes = modelBytes([
      { opType: 'Transpose', name: 'to_nchw', input: ['x'], output: ['t'], attribute: perm([0, 3, 1, 2]) },
      { opType: 'Conv', name: 'conv', input: ['t', 'w', 'b'], output: ['c'], attribute: [ints('pads', [1, 1, 1, 1])] },
      { opType: 'Relu', name: 'relu', input: ['c'], output: ['r'] },
      { opType: 'Transpose', name: 'to_nhwc', input: ['r'], output: ['h'], attribute: perm([0, 2, 3, 1]) },
      { opType: 'Reshape', name: 'flatten', input: ['h', 'shape'], output: ['f'] },
      { opType: 'MatMul', name: 'dense', input: ['f', 'k'], output: ['d0'] },
      { opType: 'Add', name: 'dense_bias', input: ['d0', 'kb'], output: ['d'] },
      { opType: 'ReduceMean', name: 'gap', input: ['h'], output: ['g'], attribute: [ints('axes', [1, 2]), int('keepdims', 0)] },
      { opType: 'Concat', name: 'join', input: ['d', 'g'], output: ['j'], attribute: [int('axis', -1)] },
      { opType: 'Gemm', name: 'head', input: ['j', 'hw'], output: ['z'] },
      { opType: 'Softmax', name: 'softmax', input: ['z'], output: ['y'] },
    ], [
      floatInit('w', [4, 3, 3, 3], seeded(108, 11)), floatInit('b', [4], seeded(4, 12)),
      int64Init('shape', [-1, 8 * 8 * 4]), floatInit('k', [256, 4], seeded(1024, 13, 0.1)), floatInit('kb', [4], seeded(4, 14)),
      floatInit('hw', [8, 4], seeded(32, 15)),
    ], [8, 8, 3]);
    const model = await importOnnx(bytes);
    assert.deepEqual(model.inputs[0]!.shape, [null, 8, 8, 3]);
    assert.ok(!model.layers.some((l) => l.getClassName() === 'Permute'), 'no Permute: the Reshape flattens an NHWC tensor');
    assert.ok((await compareWithOnnxRuntime(model, bytes, { inputLayout: 'nhwc' })) < 1e-4);
    model.dispose();
  });

  test('the check refuses a model that differs from onnxruntime, saying by how much', async () => {
    const bytes = read('resnet-folded.onnx');
    const model = await importOnnx(bytes);
    const w = getWeightMap(model);
    const bias = w['fc_Gemm/bias']!;
    bias.values[3] = bias.values[3]! + 0.01;
    setWeightMap(model, { 'fc_Gemm/bias': bias });
    await assert.rejects(checkAgainstOnnxRuntime(model, bytes), (e: Error) => {
      assert.ok(e instanceof ModelImportError);
      assert.equal(e.code, 'UNSUPPORTED_MODEL');
      assert.match(e.message, /differs from onnxruntime by up to 1\.0\d*e-2 \(more than 0\.0001\)/);
      return true;
    });
    model.dispose();
  });
});

describe('refusals', () => {
  const refused = async (bytes: Uint8Array, code: string, re: RegExp) => {
    await assert.rejects(importOnnx(bytes), (e: Error) => {
      assert.ok(e instanceof ModelImportError, `${e.name}: ${e.message}`);
      assert.equal(e.code, code);
      assert.match(e.message, re);
      return true;
    });
  };
  test('the op registry lists exactly the ops refusals have always quoted, sorted', async () => {
    assert.deepEqual(SUPPORTED_OPS, [
      'Add', 'AveragePool', 'BatchNormalization', 'Clip', 'Concat', 'Constant', 'Conv', 'Dropout', 'Flatten', 'Gemm',
      'GlobalAveragePool', 'HardSigmoid', 'HardSwish', 'Identity', 'LeakyRelu', 'MatMul', 'MaxPool', 'Mul', 'Pad',
      'ReduceMean', 'Relu', 'Reshape', 'Shape', 'Sigmoid', 'Softmax', 'Tanh', 'Transpose',
    ]);
    assert.deepEqual(CONSTANT_OPS, ['Cast', 'Div', 'Gather', 'Sqrt', 'Squeeze', 'Sub', 'Unsqueeze']);
    await refused(read('unsupported-op.onnx'), 'UNSUPPORTED_MODEL', new RegExp(`; supported ops: ${SUPPORTED_OPS.join(', ')}; on constants only \\(folded at import\\): ${CONSTANT_OPS.join(', ')}$`));
  });
  test('each bad fixture with its own message', async () => {
    await refused(read('unsupported-op.onnx'), 'UNSUPPORTED_MODEL', /Einsum \(first used by node 'einsum_0'\), Erf \(first used by node 'erf_0'\); supported ops: Add, .*Conv.*; on constants only \(folded at import\): Cast/);
    await refused(read('corrupt.onnx'), 'INVALID_ARGUMENT', /not a valid ONNX protobuf/);
    await refused(read('opset8.onnx'), 'UNSUPPORTED_MODEL', /opset 8 is not supported/);
    await refused(read('external-data.onnx'), 'UNSUPPORTED_MODEL', /external file 'external-data\.onnx\.data'/);
    await refused(read('dynamic-spatial.onnx'), 'UNSUPPORTED_MODEL', /dynamic dims \(H=height, W=width\)/);
    await refused(read('two-inputs.onnx'), 'UNSUPPORTED_MODEL', /2 inputs \('a', 'b'\)/);
    await refused(read('two-outputs.onnx'), 'UNSUPPORTED_MODEL', /2 outputs \('logits', 'probs'\)/);
  });

  test('the lowest and highest supported opsets import (attribute-style Clip at opset 9)', async () => {
    for (const opset of [9, MAX_OPSET]) {
      const bytes = modelBytes([
        { opType: 'Flatten', name: 'flat', input: ['x'], output: ['f'] },
        { opType: 'Gemm', name: 'fc', input: ['f', 'w', 'b'], output: ['g'], attribute: [int('transB', 1)] },
        ...(opset < 11
          ? [{ opType: 'Clip', name: 'clip', input: ['g'], output: ['c'], attribute: [float('min', -0.5), float('max', 0.25)] }]
          : [{ opType: 'Clip', name: 'clip', input: ['g', 'lo', 'hi'], output: ['c'] }]),
        { opType: 'Softmax', name: 'softmax', input: ['c'], output: ['y'], attribute: [int('axis', 1)] },
      ], [floatInit('w', [4, 12], seeded(48, 21)), floatInit('b', [4], seeded(4, 22)), floatInit('lo', [], new Float32Array([-0.5])), floatInit('hi', [], new Float32Array([0.25]))], [3, 2, 2], opset);
      const model = await importOnnx(bytes);
      assert.ok(model.layers.some((l) => l.getClassName() === 'TsClip'), `opset ${opset}: general Clip`);
      model.dispose();
    }
  });

  test('an opset above the supported maximum', async () => {
    const proto = onnx.ModelProto.decode(read('mlp-gemm.onnx'));
    proto.opsetImport = [{ domain: '', version: MAX_OPSET + 1 }];
    await refused(onnx.ModelProto.encode(proto).finish(), 'UNSUPPORTED_MODEL', new RegExp(`opset ${MAX_OPSET + 1} is not supported; re-export with an opset from 9 to ${MAX_OPSET}`));
  });

  test('an op supported only on constants, applied to a tensor, is refused naming the node', async () => {
    const bytes = modelBytes(
      [{ opType: 'Flatten', name: 'flat', input: ['x'], output: ['f'] },
        { opType: 'Sub', name: 'minus', input: ['f', 'one'], output: ['y'] }],
      [floatInit('one', [], new Float32Array([1]))], [4]);
    await refused(bytes, 'UNSUPPORTED_MODEL', /node 'minus' \(Sub\) is applied to a tensor; Sub is supported only on constants/);
  });

  test('a few hundred bytes declaring a huge input or a huge Pad are refused by the budget before anything runs them', async () => {
    const head = (src: string): OnnxTypes.INodeProto[] => [
      { opType: 'GlobalAveragePool', name: 'gap', input: [src], output: ['g'] },
      { opType: 'Flatten', name: 'flat', input: ['g'], output: ['f'] },
      { opType: 'Gemm', name: 'fc', input: ['f', 'w'], output: ['y'], attribute: [int('transB', 1)] },
    ];
    const w = floatInit('w', [4, 3], seeded(12, 1));
    // Before: the onnxruntime check fed a 3x8192x8192 example through both runtimes (over 2 minutes, gigabytes).
    const started = Date.now();
    await refused(modelBytes(head('x'), [w], [3, 8192, 8192]), 'INVALID_ARGUMENT', /^model\.onnx: layer 'x' \(InputLayer\): output shape \[8192,8192,3\] holds 201,326,592 values per example; the limit per layer is 16,777,216$/);
    await refused(
      modelBytes([{ opType: 'Pad', name: 'pad', input: ['x', 'pads'], output: ['p'] }, ...head('p')], [int64Init('pads', [0, 0, 6000, 6000, 0, 0, 6000, 6000]), w], [3, 4, 4]),
      'INVALID_ARGUMENT', /^model\.onnx: layer 'pad' \(ZeroPadding2D\): output shape \[12004,12004,3\] holds 432,288,048 values per example/);
    assert.ok(Date.now() - started < 20_000, `refused in ${Date.now() - started} ms`);
  });

  test('a graph of 100,000 nodes is refused at the layer cap, reading one input or chained', async () => {
    const head = (src: string): OnnxTypes.INodeProto[] => [
      { opType: 'GlobalAveragePool', name: 'gap', input: [src], output: ['g'] },
      { opType: 'Flatten', name: 'flat', input: ['g'], output: ['f'] },
      { opType: 'Gemm', name: 'fc', input: ['f', 'w'], output: ['y'], attribute: [int('transB', 1)] },
    ];
    const w = floatInit('w', [4, 3], seeded(12, 1));
    const n = 100_000;
    // Before: all reading 'x' took over 90 s (the consumer lists were copied per node); chained, 4 s and a stack overflow.
    const fan = Array.from({ length: n }, (_, i): OnnxTypes.INodeProto => ({ opType: 'Relu', name: `r${i}`, input: ['x'], output: [`r${i}`] }));
    const chain = Array.from({ length: n }, (_, i): OnnxTypes.INodeProto => ({ opType: 'Relu', name: `r${i}`, input: [i === 0 ? 'x' : `r${i - 1}`], output: [`r${i}`] }));
    const started = Date.now();
    await refused(modelBytes([...fan, ...head('x')], [w], [3, 4, 4]), 'INVALID_ARGUMENT', /^model\.onnx: node 'r999' \(Relu\) makes layer 1,001; the limit is 1,000 layers$/);
    await refused(modelBytes([...chain, ...head(`r${n - 1}`)], [w], [3, 4, 4]), 'INVALID_ARGUMENT', /^model\.onnx: node 'r999' \(Relu\) makes layer 1,001; the limit is 1,000 layers$/);
    assert.ok(Date.now() - started < 30_000, `refused in ${Date.now() - started} ms`);
  });

  test('a conv or pool window that cannot slide over its input is refused naming the node, not failed inside onnxruntime', async () => {
    const head: OnnxTypes.INodeProto[] = [
      { opType: 'GlobalAveragePool', name: 'gap', input: ['c'], output: ['g'] },
      { opType: 'Flatten', name: 'flat', input: ['g'], output: ['f'] },
      { opType: 'Gemm', name: 'fc', input: ['f', 'w'], output: ['y'], attribute: [int('transB', 1)] },
    ];
    const w = floatInit('w', [4, 3], seeded(12, 1));
    const conv = (k: number, attribute: Attr[] = []) => modelBytes([{ opType: 'Conv', name: 'big', input: ['x', 'k'], output: ['c'], attribute }, ...head], [floatInit('k', [3, 3, k, k], seeded(9 * k * k, 2)), w], [3, 4, 4]);
    await refused(conv(9), 'UNSUPPORTED_MODEL', /^node 'big' \(Conv\) has a 9x9 kernel \(dilations 1x1\) larger than its 4x4 input padded by \[0,0,0,0\]$/);
    await refused(conv(3, [ints('dilations', [3, 3])]), 'UNSUPPORTED_MODEL', /node 'big' \(Conv\) has a 3x3 kernel \(dilations 3x3\) larger than its 4x4 input/);
    await refused(conv(1, [ints('strides', [0, 1])]), 'UNSUPPORTED_MODEL', /node 'big' \(Conv\) has strides \[0,1\]; two positive strides are needed/);
    await refused(conv(1, [ints('dilations', [-1, -1])]), 'UNSUPPORTED_MODEL', /node 'big' \(Conv\) has dilations \[-1,-1\]; two positive dilations are needed/);
    const pool = (attribute: Attr[]) => modelBytes([{ opType: 'MaxPool', name: 'mp', input: ['x'], output: ['c'], attribute }, ...head], [w], [3, 4, 4]);
    await refused(pool([ints('kernel_shape', [5, 5])]), 'UNSUPPORTED_MODEL', /node 'mp' \(MaxPool\) has a 5x5 kernel \(dilations 1x1\) larger than its 4x4 input/);
    await refused(pool([ints('kernel_shape', [0, 2])]), 'UNSUPPORTED_MODEL', /node 'mp' \(MaxPool\) has kernel shape \[0,2\]; two positive sizes are needed/);
  });

  test('constants that fold to more values than a layer may hold are refused before they are computed', async () => {
    const head: OnnxTypes.INodeProto[] = [
      { opType: 'GlobalAveragePool', name: 'gap', input: ['x'], output: ['g'] },
      { opType: 'Flatten', name: 'flat', input: ['g'], output: ['f'] },
      { opType: 'Gemm', name: 'fc', input: ['f', 'w'], output: ['y'], attribute: [int('transB', 1)] },
    ];
    const w = floatInit('w', [4, 3], seeded(12, 1));
    // Before: 30 doublings (2^30 values from a 2 KB file) held the thread past a minute.
    const cats = Array.from({ length: 30 }, (_, i): OnnxTypes.INodeProto => ({ opType: 'Concat', name: `cat${i + 1}`, input: [`c${i}`, `c${i}`], output: [`c${i + 1}`], attribute: [int('axis', 0)] }));
    const started = Date.now();
    await refused(modelBytes([...cats, ...head], [floatInit('c0', [1], new Float32Array([1])), w], [3, 4, 4]), 'INVALID_ARGUMENT', /^model\.onnx: node 'cat25' \(Concat\) folds to a constant of 33,554,432 values; the limit is 25,000,000/);
    // Broadcasting [8192, 1] by [1, 8192] would be 67M values.
    const add: OnnxTypes.INodeProto = { opType: 'Add', name: 'outer', input: ['col', 'row'], output: ['o'] };
    await refused(modelBytes([add, ...head], [floatInit('col', [8192, 1], seeded(8192, 3)), floatInit('row', [1, 8192], seeded(8192, 4)), w], [3, 4, 4]), 'INVALID_ARGUMENT', /^model\.onnx: node 'outer' \(Add\) folds to a constant of 67,108,864 values/);
    assert.ok(Date.now() - started < 10_000, `refused in ${Date.now() - started} ms`);
  });

  test('a graph exported with a fixed batch is checked at that batch; one fixed too large is refused, not a 500', async () => {
    const head: OnnxTypes.INodeProto[] = [
      { opType: 'GlobalAveragePool', name: 'gap', input: ['x'], output: ['g'] },
      { opType: 'Flatten', name: 'flat', input: ['g'], output: ['f'] },
      { opType: 'Gemm', name: 'fc', input: ['f', 'w'], output: ['y'], attribute: [int('transB', 1)] },
    ];
    const fixed = (batch: number) => {
      const proto = onnx.ModelProto.decode(modelBytes(head, [floatInit('w', [4, 3], seeded(12, 1))], [3, 4, 4]));
      proto.graph!.input![0]!.type!.tensorType!.shape!.dim![0] = { dimValue: batch };
      return onnx.ModelProto.encode(proto).finish();
    };
    // Before: onnxruntime's "Got invalid dimensions for input" escaped as an unexpected error.
    const model = await importOnnx(fixed(8));
    assert.deepEqual(model.outputs[0]!.shape, [null, 4]);
    model.dispose();
    await refused(fixed(1000), 'UNSUPPORTED_MODEL', /^model\.onnx: input 'x' has a fixed batch of 1000; export with a batch of at most 16 or a dynamic one/);
  });

  test('a grouped conv (1 < groups < channels) is refused naming the node', async () => {
    const bytes = modelBytes(
      [{ opType: 'Conv', name: 'grouped', input: ['x', 'w'], output: ['c'], attribute: [int('group', 2)] },
        { opType: 'GlobalAveragePool', name: 'gap', input: ['c'], output: ['g'] },
        { opType: 'Flatten', name: 'flat', input: ['g'], output: ['y'] }],
      [floatInit('w', [4, 2, 1, 1], seeded(8, 1))], [4, 4, 4]);
    await refused(bytes, 'UNSUPPORTED_MODEL', /node 'grouped' \(Conv\) is a grouped convolution \(group 2 of 4 input channels\)/);
  });
});

test('importing and checking leaks no tensors', async () => {
  const before = tf.memory().numTensors;
  const model = await importOnnx(read('dw-separable.onnx'));
  model.dispose();
  await assert.rejects(importOnnx(read('unsupported-op.onnx')));
  assert.equal(tf.memory().numTensors, before);
});

test('filter pruning runs on the imported resnet-bn', async () => {
  const model = await importOnnx(read('resnet-bn.onnx'));
  const graph = buildGraph(model);
  const prunable = graph.groups.filter((g) => g.producers.length > 0 && g.blocked === undefined);
  assert.ok(prunable.length >= 2, `prunable groups: ${prunable.map((g) => g.name).join(', ')}`);
  const plan = Object.fromEntries(prunable.filter((g) => g.kind === 'conv').map((g) => [g.name, Array.from({ length: g.size / 2 }, (_, i) => i * 2)]));
  const small = await shrinkModel(model, plan, graph);
  assert.ok(describeModel(small).params < describeModel(model).params, 'the shrunken model is smaller');
  const out = tf.tidy(() => (small.predict(tf.ones([1, 32, 32, 3])) as tf.Tensor).shape);
  assert.deepEqual(out, [1, 10]);
  model.dispose();
  small.dispose();
});
