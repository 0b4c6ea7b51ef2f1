// Bounds on what one request may ask for: every numeric, list and string
// field of the run spec has a maximum (checked at the edge: the largest value
// passes, one step beyond names the field), zoo names have bounded sizes,
// adding the bounds left run names unchanged, and the training-cost
// estimator's figures are worked out by hand.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { estimateCost } from '../../src/engine/cost.js';
import { createModel, zooNameProblem } from '../../src/engine/models/registry.js';
import { resolveSpec, runName, SPEC_LIMITS, SpecError } from '../../src/engine/spec.js';
import { checkJobCost, requireModelAndDataset } from '../../src/service/limits.js';
import { ServiceError } from '../../src/service/errors.js';

const rejects = (input: Record<string, unknown>, field: string) =>
  assert.throws(() => resolveSpec(input), (e: unknown) => e instanceof SpecError && e.field === field, `${JSON.stringify(input).slice(0, 80)} should fail on ${field}`);

describe('run spec bounds', () => {
  // [field, largest accepted, smallest refused above it, extra fields the case needs]
  const numeric: Array<[string, number, number, Record<string, unknown>?]> = [
    ['rounds', 100, 101],
    ['iterations', 1_000_000, 1_000_001],
    ['epochs', 1000, 1000.5],
    ['batchSize', 4096, 4097],
    ['evalEvery', 1_000_000, 1_000_001],
    ['warmupIterations', 1_000_000, 1_000_001, { iterations: 1_000_000 }], // warm-up may not outlast training
    ['rewindIteration', 1_000_000, 1_000_001],
    ['fineTuneIterations', 1_000_000, 1_000_001],
    ['maxTrainExamples', 10_000_000, 10_000_001],
    ['filterSteps', 50, 51],
    ['seed', Number.MAX_SAFE_INTEGER, 2 ** 53],
    ['learningRate', 9.99, 10],
    ['momentum', 0.99, 1],
    ['denseFraction', 0.99, 1],
    ['targetDensity', 0.5, 1, { schedule: 'one-shot' }],
    ['rewindFraction', 0.5, 1],
  ];
  test('each number has a maximum: the largest value passes, the next is refused naming the field', () => {
    for (const [field, ok, bad, extra] of numeric) {
      assert.equal((resolveSpec({ ...extra, [field]: ok }) as Record<string, unknown>)[field], ok, field);
      rejects({ ...extra, [field]: bad }, field);
    }
  });

  test('non-finite numbers and negatives are refused', () => {
    for (const field of ['learningRate', 'iterations', 'epochs', 'seed', 'batchSize']) {
      for (const v of [Infinity, -Infinity, Number.NaN, -1]) rejects({ [field]: v }, field);
    }
    for (const field of ['denseFraction', 'convFraction', 'outputFraction', 'fraction', 'filterFraction']) {
      rejects({ [field]: 0 }, field);
      rejects({ [field]: 1 }, field);
    }
  });

  test('lists and strings have maximum lengths', () => {
    const layers = (n: number) => Array.from({ length: n }, (_, i) => `l${i}`);
    assert.equal(resolveSpec({ skipLayers: layers(SPEC_LIMITS.layers) }).skipLayers.length, SPEC_LIMITS.layers);
    rejects({ skipLayers: layers(SPEC_LIMITS.layers + 1) }, 'skipLayers');
    rejects({ skipLayers: ['x'.repeat(SPEC_LIMITS.layerNameLength + 1)] }, 'skipLayers.0');
    assert.deepEqual(resolveSpec({ skipLayers: ['x'.repeat(SPEC_LIMITS.layerNameLength)] }).skipLayers, ['x'.repeat(256)]);
    rejects({ controlKinds: ['reinit', 'shuffle', 'reinit'] }, 'controlKinds');
    const fractions = (n: number) => Object.fromEntries(layers(n).map((l) => [l, 0.5]));
    assert.equal(Object.keys(resolveSpec({ method: 'filter', filterFractions: fractions(SPEC_LIMITS.layers) }).filterFractions!).length, SPEC_LIMITS.layers);
    rejects({ method: 'filter', filterFractions: fractions(SPEC_LIMITS.layers + 1) }, 'filterFractions');
    rejects({ model: 'm'.repeat(SPEC_LIMITS.refLength + 1) }, 'model');
    rejects({ dataset: `builtin:${'d'.repeat(SPEC_LIMITS.refLength)}` }, 'dataset');
  });

  test('run names are those computed before the bounds existed (hashes of the non-default fields)', () => {
    // Printed by the spec module of the commit before this change.
    assert.equal(runName(resolveSpec({})), 'imp_69757e001ca2');
    assert.equal(runName(resolveSpec({ model: 'lenet-300-100', dataset: 'builtin:mnist', rounds: 3, iterations: 2000, seed: 7 })), 'imp_8018992f4e2d');
    assert.equal(runName(resolveSpec({ model: 'conv-2', method: 'filter', filterFraction: 0.5, skipLayers: ['conv1'] })), 'filter_d0f94198767d');
  });
});

describe('zoo name bounds', () => {
  const MNIST = { inputShape: [28, 28, 1], numClasses: 10, seed: 1 };
  test('lenet widths and depth, resnet depth: a clear reason', () => {
    assert.match(zooNameProblem('lenet-99999999-99999999')!, /hidden widths are at most 2048 units \(got 99999999\)/);
    assert.match(zooNameProblem('lenet-2049')!, /at most 2048/);
    assert.match(zooNameProblem('lenet-1-2-3-4-5-6-7-8-9')!, /at most 8 hidden layers \(got 9\)/);
    assert.match(zooNameProblem('resnet-1208')!, /depth must be 6n\+2 between 8 and 1202/);
    assert.equal(zooNameProblem('lenet-2048-100'), null);
    assert.equal(zooNameProblem('resnet-20'), null);
    assert.equal(zooNameProblem('alexnet'), null);
    assert.throws(() => createModel('lenet-99999999-99999999', MNIST), /unknown model 'lenet-99999999-99999999' \(lenet-99999999-99999999: hidden widths are at most 2048/);
  });
});

describe('job cost estimate (worked by hand)', () => {
  test('IMP: dense round + each pruned round x (ticket + controls trained in it)', () => {
    // The paper's LeNet run: 1 + 10 x (1 + 2) = 31 trainings of 50,000 x 60 examples.
    assert.deepEqual(estimateCost(resolveSpec({}), null), { trainings: 31, examples: 31 * 50_000 * 60 });
    // controls only in the last of 3 rounds: 1 + 1 + 1 + 3 = 6 trainings of 100 x 10.
    assert.deepEqual(estimateCost(resolveSpec({ rounds: 3, iterations: 100, batchSize: 10, controls: 'last' }), null), { trainings: 6, examples: 6000 });
    assert.deepEqual(estimateCost(resolveSpec({ rounds: 2, iterations: 100, batchSize: 10, controls: 'none' }), null), { trainings: 3, examples: 3000 });
    // one control kind, 2 rounds: 1 + 2 x 2 = 5.
    assert.deepEqual(estimateCost(resolveSpec({ rounds: 2, iterations: 10, batchSize: 1, controlKinds: ['reinit'] }), null), { trainings: 5, examples: 50 });
    // one-shot trains rounds 0 and 1 whatever `rounds` says: 1 + 3 = 4.
    assert.deepEqual(estimateCost(resolveSpec({ schedule: 'one-shot', targetDensity: 0.1, rounds: 10, iterations: 10, batchSize: 2 }), null), { trainings: 4, examples: 80 });
    assert.deepEqual(estimateCost(resolveSpec({ rounds: 0, iterations: 7, batchSize: 3 }), null), { trainings: 1, examples: 21 });
  });

  test('epochs: iterations from the training-set size; unknown size cannot be costed', () => {
    // 2 epochs of 1,000 examples in batches of 50 = 40 iterations = 2,000 examples per training, 2 trainings.
    const s = resolveSpec({ epochs: 2, batchSize: 50, rounds: 1, controls: 'none' });
    assert.deepEqual(estimateCost(s, 1000), { trainings: 2, examples: 4000 });
    assert.equal(estimateCost(s, null), null);
  });

  test('filter: pretraining, fine-tune steps, then IMP', () => {
    const base = { method: 'filter', filterFraction: 0.5, iterations: 100, batchSize: 10 } as const;
    // pretrain 100 x 10 + one fine-tune of 1,000 x 10.
    assert.deepEqual(estimateCost(resolveSpec(base), null), { trainings: 2, examples: 11_000 });
    assert.deepEqual(estimateCost(resolveSpec({ ...base, filterSchedule: 'iterative', filterSteps: 4 }), null), { trainings: 5, examples: 41_000 });
    assert.deepEqual(estimateCost(resolveSpec({ ...base, pretrain: false, fineTuneIterations: 20 }), null), { trainings: 1, examples: 200 });
    // then IMP, 1 round without controls: + 2 trainings of 1,000.
    assert.deepEqual(estimateCost(resolveSpec({ ...base, thenImp: true, rounds: 1, controls: 'none' }), null), { trainings: 4, examples: 13_000 });
  });

  test('the submit check refuses above the budget, naming the field and the figures', () => {
    checkJobCost(resolveSpec({}), 5e8);
    const big = resolveSpec({ rounds: 100, iterations: 1_000_000, batchSize: 4096 });
    assert.throws(
      () => checkJobCost(big, 5e8),
      (e: unknown) => e instanceof ServiceError && e.code === 'INVALID_ARGUMENT' && e.field === 'iterations' && /about 1\.23e12 examples \(301 trainings, batchSize 4096\)/.test(e.message) && /at most 5\.00e8/.test(e.message),
    );
    // 1,000 epochs of 60,000 examples x 31 trainings = 1.86e9; of MNIST's 8,004: 2.48e8, within the budget.
    assert.throws(() => checkJobCost(resolveSpec({ epochs: 1000, dataset: 'builtin:fashion-mnist' }), 5e8), (e: unknown) => e instanceof ServiceError && e.field === 'epochs' && /about 1\.86e9/.test(e.message));
    checkJobCost(resolveSpec({ epochs: 1000, dataset: 'builtin:mnist' }), 5e8);
    assert.throws(() => checkJobCost(resolveSpec({ epochs: 1, dataset: 'https://example.org/x.npz' }), 5e8), (e: unknown) => e instanceof ServiceError && e.field === 'epochs' && /maxTrainExamples/.test(e.message));
    checkJobCost(resolveSpec({ epochs: 1, dataset: 'https://example.org/x.npz', maxTrainExamples: 1000, rounds: 1 }), 5e8);
  });

  test('the API needs model and dataset named', () => {
    for (const [body, field] of [[{}, 'model'], [{ model: 'lenet-300-100' }, 'dataset'], [{ dataset: 'builtin:mnist', model: '' }, 'model'], [null, 'body'], [[], 'body']] as const) {
      assert.throws(() => requireModelAndDataset(body), (e: unknown) => e instanceof ServiceError && e.code === 'INVALID_ARGUMENT' && e.field === field, JSON.stringify(body));
    }
    requireModelAndDataset({ model: 'lenet-300-100', dataset: 'builtin:mnist' });
  });
});
