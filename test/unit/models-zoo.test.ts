// Zoo models: architectures, exact parameter counts (worked out by hand from
// the papers' layer lists), logits output, seeded determinism and the errors.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { createModel, isZooModel, listModels } from '../../src/engine/models/registry.js';
import { countFlops, countParams, getWeightMap, prunableWeights } from '../../src/engine/models/inspect.js';
import { ModelBudgetError } from '../../src/engine/models/budget.js';

const MNIST = { inputShape: [28, 28, 1], numClasses: 10, seed: 1 };
const CIFAR = { inputShape: [32, 32, 3], numClasses: 10, seed: 1 };

/** Weights + bias of a kxk conv with bias. */
const conv = (k: number, cin: number, cout: number): number => k * k * cin * cout + cout;
const dense = (nin: number, nout: number): number => nin * nout + nout;
/** A conv without bias followed by batch norm (gamma, beta, moving mean, moving variance). */
const convBn = (k: number, cin: number, cout: number): number => k * k * cin * cout + 4 * cout;

function layerNames(m: tf.LayersModel): string[] {
  return m.layers.map((l) => l.name);
}

function withModel<T>(name: string, opts: typeof MNIST, fn: (m: tf.LayersModel) => T): T {
  const m = createModel(name, opts);
  try {
    return fn(m);
  } finally {
    m.dispose();
  }
}

describe('registry', () => {
  test('listModels names every family with a description and default input', () => {
    const names = listModels().map((m) => m.name);
    for (const n of ['lenet-300-100', 'conv-2', 'conv-4', 'conv-6', 'vgg-11', 'vgg-16', 'resnet-20']) {
      assert.ok(names.includes(n), n);
    }
    for (const m of listModels()) {
      assert.ok(m.description.length > 10, "m.description.length > 10");
      assert.ok(isZooModel(m.name), "isZooModel(m.name)");
      assert.ok(m.defaultInput.every((d) => d > 0), "m.defaultInput.every((d) => d > 0)");
    }
  });

  test('unknown names are rejected with the known names listed', () => {
    assert.throws(() => createModel('alexnet', CIFAR), /unknown model 'alexnet'; known models: .*lenet-300-100.*conv-4.*vgg-16.*resnet-20/);
    assert.throws(() => createModel('resnet-21', CIFAR), /unknown model 'resnet-21'/); // not 6n+2
    assert.throws(() => createModel('lenet-0', MNIST), /unknown model/);
    assert.equal(isZooModel('conv-3'), false);
    assert.equal(isZooModel('./models/x'), false);
  });

  test('bad options are rejected', () => {
    assert.throws(() => createModel('lenet-300-100', { ...MNIST, inputShape: [] }), /inputShape/);
    assert.throws(() => createModel('lenet-300-100', { ...MNIST, inputShape: [28, 0] }), /inputShape/);
    assert.throws(() => createModel('lenet-300-100', { ...MNIST, numClasses: 0 }), /numClasses/);
    assert.throws(() => createModel('lenet-300-100', { ...MNIST, seed: 1.5 }), /seed/);
    // Three 2x2 pools need at least 8x8.
    assert.throws(() => createModel('conv-6', { ...CIFAR, inputShape: [4, 4, 3] }), /height and width >= 8/);
    assert.throws(() => createModel('vgg-11', { ...MNIST }), /height and width >= 32/);
    assert.throws(() => createModel('resnet-20', { ...MNIST, inputShape: [784] }), /image input/);
  });
});

describe('a layer sized by the data is judged before it is built', () => {
  // The data sets a zoo model's input size and class count: one label 1e9 in an uploaded NPY, or one 4096x4096
  // image, would otherwise make the worker allocate a layer of 1e11 or 15e9 weights (or a crash trying to).
  const refused = (layer: string) => (e: unknown) => {
    assert.ok(e instanceof ModelBudgetError, String(e));
    assert.match(e.message, new RegExp(`layer '${layer}' would hold [\\d,]+ weights, over the limit of 25,000,000 for one layer`));
    return true;
  };

  test('the output layer of every family, from the class count', () => {
    for (const name of ['lenet-300-100', 'conv-2', 'vgg-11', 'resnet-20']) {
      assert.throws(() => createModel(name, { ...CIFAR, numClasses: 1_000_000_000 }), refused('out'), name);
    }
  });

  test('the first dense layer, from the input size', () => {
    assert.throws(() => createModel('lenet-300-100', { inputShape: [4096, 4096, 3], numClasses: 10, seed: 1 }), refused('fc1'));
    assert.throws(() => createModel('conv-2', { inputShape: [2048, 2048, 3], numClasses: 10, seed: 1 }), refused('fc1'));
    // A flat input too (no Flatten layer in front).
    assert.throws(() => createModel('lenet-300-100', { inputShape: [100_000_000], numClasses: 10, seed: 1 }), refused('fc1'));
  });

  test('the first convolution, from the channels', () => {
    for (const name of ['conv-2', 'vgg-11', 'resnet-20']) {
      assert.throws(() => createModel(name, { inputShape: [32, 32, 1_000_000], numClasses: 10, seed: 1 }), refused('conv1'), name);
    }
  });

  test('the limit is the model budget\'s; at it a layer is built', () => {
    const m = createModel('lenet-10', { inputShape: [1000], numClasses: 20, seed: 1, maxLayerParams: 10 * 1000 + 10 });
    m.dispose();
    assert.throws(() => createModel('lenet-10', { inputShape: [1001], numClasses: 20, seed: 1, maxLayerParams: 10 * 1000 + 10 }), (e: unknown) => e instanceof ModelBudgetError && /layer 'fc1' would hold 10,020 weights, over the limit of 10,010/.test(e.message));
  });
});

describe('lenet', () => {
  test('lenet-300-100 has 266,610 parameters and outputs logits', () => {
    withModel('lenet-300-100', MNIST, (m) => {
      // 784*300+300 + 300*100+100 + 100*10+10
      assert.equal(dense(784, 300) + dense(300, 100) + dense(100, 10), 266_610);
      assert.equal(countParams(m), 266_610);
      assert.deepEqual(layerNames(m), ['flatten', 'fc1', 'fc2', 'out']);
      assert.deepEqual(m.outputs[0].shape, [null, 10]);
      const last = m.getLayer('out').getConfig();
      assert.equal(last.activation, 'linear');
      assert.equal(m.getLayer('fc1').getConfig().activation, 'relu');
    });
  });

  test('any widths: lenet-N, lenet-N-M, lenet-N-M-K', () => {
    withModel('lenet-64', MNIST, (m) => {
      assert.deepEqual(layerNames(m), ['flatten', 'fc1', 'out']);
      assert.equal(countParams(m), dense(784, 64) + dense(64, 10));
    });
    withModel('lenet-100-50', { ...MNIST, numClasses: 3 }, (m) => {
      assert.equal(countParams(m), dense(784, 100) + dense(100, 50) + dense(50, 3));
      assert.deepEqual(m.outputs[0].shape, [null, 3]);
    });
    withModel('lenet-32-16-8', { ...MNIST, inputShape: [20] }, (m) => {
      // Flat input needs no flatten layer.
      assert.deepEqual(layerNames(m), ['fc1', 'fc2', 'fc3', 'out']);
      assert.equal(countParams(m), dense(20, 32) + dense(32, 16) + dense(16, 8) + dense(8, 10));
    });
  });

  test('same seed gives identical weights, another seed different ones', () => {
    const a = createModel('lenet-300-100', MNIST);
    const b = createModel('lenet-300-100', MNIST);
    const c = createModel('lenet-300-100', { ...MNIST, seed: 2 });
    try {
      const wa = getWeightMap(a);
      const wb = getWeightMap(b);
      const wc = getWeightMap(c);
      assert.deepEqual(Object.keys(wa), ['fc1/kernel', 'fc1/bias', 'fc2/kernel', 'fc2/bias', 'out/kernel', 'out/bias']);
      for (const k of Object.keys(wa)) assert.deepEqual(wa[k].values, wb[k].values, k);
      for (const k of ['fc1/kernel', 'fc2/kernel', 'out/kernel']) {
        const diff = wa[k].values.filter((v, i) => v !== wc[k].values[i]).length;
        assert.ok(diff > 0.99 * wa[k].values.length, `${k}: only ${diff} values differ`);
      }
      // Layers get different streams: fc2 does not start like fc1.
      assert.notDeepEqual(wa['fc1/kernel'].values.slice(0, 100), wa['fc2/kernel'].values.slice(0, 100));
      // Gaussian Glorot: std = sqrt(2 / (784 + 300)) ~ 0.043 (truncated at 2 std, so a bit less).
      const v = wa['fc1/kernel'].values;
      const mean = v.reduce((s, x) => s + x, 0) / v.length;
      const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
      assert.ok(Math.abs(mean) < 1e-3, `mean ${mean}`);
      assert.ok(std > 0.03 && std < 0.045, `std ${std}`);
      assert.ok(wa['fc1/bias'].values.every((x) => x === 0), "wa['fc1/bias'].values.every((x) => x === 0)");
    } finally {
      for (const m of [a, b, c]) m.dispose();
    }
  });

  test('seed 0 is deterministic too (tfjs treats a falsy seed as unseeded)', () => {
    const a = createModel('lenet-10', { ...MNIST, seed: 0 });
    const b = createModel('lenet-10', { ...MNIST, seed: 0 });
    assert.deepEqual(getWeightMap(a)['fc1/kernel'].values, getWeightMap(b)['fc1/kernel'].values);
    a.dispose();
    b.dispose();
  });
});

describe('conv-2/4/6 (Frankle & Carbin 2019, Figure 2) on CIFAR-10', () => {
  test('conv-2: 4,301,642 parameters (paper: 4.3M)', () => {
    // conv 3->64, 64->64, pool to 16x16x64 = 16384, FC 256, 256, 10
    const expected = conv(3, 3, 64) + conv(3, 64, 64) + dense(16 * 16 * 64, 256) + dense(256, 256) + dense(256, 10);
    assert.equal(expected, 4_301_642);
    withModel('conv-2', CIFAR, (m) => {
      assert.equal(countParams(m), expected);
      assert.deepEqual(layerNames(m), ['conv1', 'conv2', 'pool1', 'flatten', 'fc1', 'fc2', 'out']);
      assert.deepEqual(m.getLayer('pool1').outputShape, [null, 16, 16, 64]);
      assert.equal(m.getLayer('conv1').getConfig().padding, 'same');
    });
  });

  test('conv-4: 2,425,930 parameters (paper: 2.4M)', () => {
    const expected = conv(3, 3, 64) + conv(3, 64, 64) + conv(3, 64, 128) + conv(3, 128, 128)
      + dense(8 * 8 * 128, 256) + dense(256, 256) + dense(256, 10);
    assert.equal(expected, 2_425_930);
    withModel('conv-4', CIFAR, (m) => {
      assert.equal(countParams(m), expected);
      assert.deepEqual(layerNames(m), ['conv1', 'conv2', 'pool1', 'conv3', 'conv4', 'pool2', 'flatten', 'fc1', 'fc2', 'out']);
    });
  });

  test('conv-6: 2,262,602 parameters (the paper lists 1.7M; the layer list gives this)', () => {
    const expected = conv(3, 3, 64) + conv(3, 64, 64) + conv(3, 64, 128) + conv(3, 128, 128)
      + conv(3, 128, 256) + conv(3, 256, 256) + dense(4 * 4 * 256, 256) + dense(256, 256) + dense(256, 10);
    assert.equal(expected, 2_262_602);
    withModel('conv-6', CIFAR, (m) => {
      assert.equal(countParams(m), expected);
      assert.deepEqual(m.getLayer('pool3').outputShape, [null, 4, 4, 256]);
      const kinds = prunableWeights(m).map((p) => `${p.layer}:${p.kind}`);
      assert.deepEqual(kinds, ['conv1:conv', 'conv2:conv', 'conv3:conv', 'conv4:conv', 'conv5:conv', 'conv6:conv',
        'fc1:dense', 'fc2:dense', 'out:output']);
    });
  });

  test('conv-4 also builds on MNIST-sized input', () => {
    withModel('conv-4', MNIST, (m) => {
      assert.deepEqual(m.getLayer('pool2').outputShape, [null, 7, 7, 128]);
      assert.deepEqual(m.outputs[0].shape, [null, 10]);
    });
  });
});

describe('vgg (CIFAR, Li et al. 2017 style)', () => {
  test('vgg-16: 14,996,682 parameters, 313,463,808 MACs (Li et al.: 1.5e7, 3.13e8), logits [n, 10]', () => {
    const convs: [number, number][] = [[3, 64], [64, 64], [64, 128], [128, 128], [128, 256], [256, 256], [256, 256],
      [256, 512], [512, 512], [512, 512], [512, 512], [512, 512], [512, 512]];
    // conv stack, fc1 512x512 (no bias) + BN(512), out 512x10 + 10
    const expected = convs.reduce((s, [i, o]) => s + convBn(3, i, o), 0) + 512 * 512 + 4 * 512 + dense(512, 10);
    assert.equal(expected, 14_996_682);
    // spatial size of each conv's output: 32,32 | 16,16 | 8,8,8 | 4,4,4 | 2,2,2
    const hw = [32, 32, 16, 16, 8, 8, 8, 4, 4, 4, 2, 2, 2];
    const macs = convs.reduce((s, [i, o], k) => s + 9 * i * o * hw[k] * hw[k], 0) + 512 * 512 + 512 * 10;
    assert.equal(macs, 313_463_808);
    withModel('vgg-16', CIFAR, (m) => {
      assert.equal(countParams(m), expected);
      assert.equal(countFlops(m), macs);
      const pw = prunableWeights(m);
      assert.equal(pw.filter((p) => p.kind === 'conv').length, 13);
      assert.deepEqual(pw.slice(-2).map((p) => `${p.name}:${p.kind}`), ['fc1/kernel:dense', 'out/kernel:output']);
      assert.deepEqual(layerNames(m).slice(0, 4), ['conv1', 'bn1', 'relu1', 'conv2']);
      const y = tf.tidy(() => m.predict(tf.ones([1, 32, 32, 3])) as tf.Tensor);
      assert.deepEqual(y.shape, [1, 10]);
      assert.ok(Array.from(y.dataSync()).every(Number.isFinite), "Array.from(y.dataSync()).every(Number.isFinite)");
      y.dispose();
    });
  });

  test('vgg-11: 9,498,058 parameters', () => {
    const convs: [number, number][] = [[3, 64], [64, 128], [128, 256], [256, 256], [256, 512], [512, 512], [512, 512], [512, 512]];
    const expected = convs.reduce((s, [i, o]) => s + convBn(3, i, o), 0) + 512 * 512 + 4 * 512 + dense(512, 10);
    assert.equal(expected, 9_498_058);
    withModel('vgg-11', { ...CIFAR, numClasses: 100 }, (m) => {
      assert.equal(countParams(m), expected - dense(512, 10) + dense(512, 100));
      assert.deepEqual(m.outputs[0].shape, [null, 100]);
    });
  });
});

describe('resnet (He et al. CIFAR)', () => {
  test('resnet-20: 274,042 parameters (paper 0.27M), residual adds, projection shortcuts, logits', () => {
    const stage1 = 3 * 2 * convBn(3, 16, 16);
    const stage2 = convBn(3, 16, 32) + convBn(3, 32, 32) + convBn(1, 16, 32) + 4 * convBn(3, 32, 32);
    const stage3 = convBn(3, 32, 64) + convBn(3, 64, 64) + convBn(1, 32, 64) + 4 * convBn(3, 64, 64);
    const expected = convBn(3, 3, 16) + stage1 + stage2 + stage3 + dense(64, 10);
    assert.equal(expected, 274_042);
    const a = createModel('resnet-20', CIFAR);
    const b = createModel('resnet-20', CIFAR);
    try {
      assert.equal(countParams(a), expected);
      const classes = a.layers.map((l) => l.getClassName());
      assert.equal(classes.filter((c) => c === 'Add').length, 9);
      assert.equal(classes.filter((c) => c === 'GlobalAveragePooling2D').length, 1);
      const proj = layerNames(a).filter((n) => n.endsWith('_proj_conv'));
      assert.deepEqual(proj, ['s2b1_proj_conv', 's3b1_proj_conv']);
      assert.deepEqual(a.getLayer('s3b3_relu2').outputShape, [null, 8, 8, 64]);
      const pw = prunableWeights(a);
      assert.equal(pw.length, 1 + 18 + 2 + 1);
      assert.deepEqual(pw.filter((p) => p.kind !== 'conv').map((p) => p.name), ['out/kernel']);
      assert.equal(pw.find((p) => p.kind === 'output')?.kind, 'output');
      // He-normal (truncated normal) is seeded too.
      const wa = getWeightMap(a);
      const wb = getWeightMap(b);
      for (const k of Object.keys(wa)) assert.deepEqual(wa[k].values, wb[k].values, k);
      const x = tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 7);
      const y = a.predict(x) as tf.Tensor;
      assert.deepEqual(y.shape, [2, 10]);
      tf.dispose([x, y]);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  test('resnet-32 is 6n+2 with n = 5', () => {
    withModel('resnet-32', CIFAR, (m) => {
      assert.equal(m.layers.filter((l) => l.getClassName() === 'Add').length, 15);
    });
  });
});
