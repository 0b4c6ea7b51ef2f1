// The run spec: defaults from the paper, clear errors naming the field, a
// stable run name, and CLI flags generated from the same schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalSpec, resolveSpec, rewindIteration, runName, SpecError, totalIterations } from '../../src/engine/spec.js';
import { RunSpecSchema } from '../../src/engine/spec.js';
import { flagsOf, parseFlags, UsageError } from '../../src/cli/flags.js';

test('defaults follow the paper per model', () => {
  const lenet = resolveSpec({});
  assert.equal(lenet.model, 'lenet-300-100');
  assert.equal(lenet.learningRate, 1.2e-3);
  assert.equal(lenet.batchSize, 60);
  assert.equal(lenet.iterations, 50_000);
  assert.equal(lenet.denseFraction, 0.2);
  assert.equal(lenet.outputFraction, 0.1);
  const conv2 = resolveSpec({ model: 'conv-2' });
  assert.equal(conv2.learningRate, 2e-4);
  assert.equal(conv2.iterations, 20_000);
});

test('bad input names the field', () => {
  const cases: Array<[unknown, string]> = [
    [{ rounds: -1 }, 'rounds'],
    [{ denseFraction: 1.5 }, 'denseFraction'],
    [{ optimizer: 'rmsprop' }, 'optimizer'],
    [{ bogus: 1 }, 'bogus'],
    [{ schedule: 'one-shot' }, 'targetDensity'],
    [{ rewind: 'iteration', rewindIteration: 500, iterations: 100 }, 'rewindIteration'],
  ];
  for (const [input, field] of cases) {
    assert.throws(() => resolveSpec(input), (e: unknown) => e instanceof SpecError && e.field === field && e.message.startsWith(field), JSON.stringify(input));
  }
});

test('run name hashes only non-default fields, so explicit defaults do not change it', () => {
  const a = resolveSpec({ rounds: 3 });
  const b = resolveSpec({ rounds: 3, batchSize: 60, learningRate: 1.2e-3, optimizer: 'adam' });
  assert.equal(runName(a), runName(b));
  assert.notEqual(runName(a), runName(resolveSpec({ rounds: 4 })));
  assert.deepEqual(Object.keys(canonicalSpec(a)), ['dataset', 'method', 'model', 'rounds']);
  assert.match(runName(a), /^imp_[0-9a-f]{12}$/);
});

test('iterations from epochs, rewind points', () => {
  const s = resolveSpec({ epochs: 2, batchSize: 50 });
  assert.equal(totalIterations(s, 1000), 40);
  assert.equal(rewindIteration(resolveSpec({ rewind: 'fraction', rewindFraction: 0.05, iterations: 1000 }), 1000), 50);
  assert.equal(rewindIteration(resolveSpec({ rewind: 'iteration', rewindIteration: 30, iterations: 1000 }), 1000), 30);
  assert.equal(rewindIteration(resolveSpec({ rewind: 'init' }), 1000), 0);
});

test('CLI flags come from the schema', () => {
  const flags = flagsOf(RunSpecSchema);
  const byKey = new Map(flags.map((f) => [f.key, f]));
  assert.equal(flags.length, Object.keys(RunSpecSchema.shape).length);
  assert.equal(byKey.get('batchSize')!.flag, '--batch-size');
  assert.equal(byKey.get('batchSize')!.defaultValue, 60);
  assert.deepEqual(byKey.get('optimizer')!.choices, ['adam', 'sgd', 'momentum']);
  assert.ok(byKey.get('denseFraction')!.description.length > 10, "byKey.get('denseFraction')!.description.length > 10");
  const { spec, options } = parseFlags(
    ['--rounds', '3', '--control-kinds=reinit', '--float16', '--skip-layers', 'fc1,out', '--out', 'x'],
    flags,
    { out: 'string' },
  );
  assert.deepEqual(spec, { rounds: 3, controlKinds: ['reinit'], float16: true, skipLayers: ['fc1', 'out'] });
  assert.deepEqual(options, { out: 'x' });
  assert.throws(() => parseFlags(['--rounds', 'many'], flags), UsageError);
  assert.throws(() => parseFlags(['--nope'], flags), /unknown flag --nope/);
});

test('README run-spec table matches the schema', async () => {
  const { readFile } = await import('node:fs/promises');
  const { flagTableMarkdown } = await import('../../src/cli/flags.js');
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  assert.ok(readme.includes(flagTableMarkdown(flagsOf(RunSpecSchema))), 'README.md is stale: run `npm run docs:spec`');
});
