// The run spec's one reflection (engine/spec/fields.ts): its descriptors read
// the schema as written (kinds, bounds, defaults, concerns), each concern file
// owns its own fields, and every door (CLI flags, gRPC mapping, OpenAPI,
// README table) lists exactly those descriptors. No source file reaches into
// zod's private internals.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { describeFields, RUN_SPEC_FIELDS, RUN_SPEC_JSON_SCHEMA, RunSpecSchema, SPEC_CONCERNS, UNSUPPORTED_SPEC_FIELDS } from '../../src/engine/spec.js';
import { flagsOf, flagTableMarkdown } from '../../src/cli/flags.js';
import { SPEC_FIELDS } from '../../src/api/grpc/mapping.js';
import { components } from '../../src/api/rest/openapi.js';

const byName = new Map(RUN_SPEC_FIELDS.map((f) => [f.name, f]));
const pick = (name: string) => {
  const { jsonSchema: _j, description: _d, ...rest } = byName.get(name)!;
  return rest;
};

describe('field descriptors', () => {
  test('read kinds, bounds, defaults and concerns as the schema writes them (hand-checked sample)', () => {
    assert.deepEqual(pick('rounds'), { name: 'rounds', kind: 'int', item: 'int', values: null, min: { value: 0, exclusive: false }, max: { value: 100, exclusive: false }, default: 10, required: false, concern: 'imp' });
    assert.deepEqual(pick('targetDensity'), { name: 'targetDensity', kind: 'number', item: 'number', values: null, min: { value: 0, exclusive: true }, max: { value: 1, exclusive: true }, default: undefined, required: false, concern: 'imp' });
    assert.deepEqual(pick('optimizer'), { name: 'optimizer', kind: 'enum', item: 'enum', values: ['adam', 'sgd', 'momentum'], min: null, max: null, default: 'adam', required: false, concern: 'training' });
    assert.deepEqual(pick('controlKinds'), { name: 'controlKinds', kind: 'list', item: 'enum', values: ['reinit', 'shuffle'], min: null, max: null, default: ['reinit', 'shuffle'], required: false, concern: 'imp' });
    assert.deepEqual(pick('skipLayers'), { name: 'skipLayers', kind: 'list', item: 'string', values: null, min: null, max: null, default: [], required: false, concern: 'imp' });
    assert.deepEqual(pick('filterFractions'), { name: 'filterFractions', kind: 'map', item: 'number', values: null, min: { value: 0, exclusive: false }, max: { value: 1, exclusive: true }, default: undefined, required: false, concern: 'filter' });
    assert.deepEqual(pick('float16'), { name: 'float16', kind: 'boolean', item: 'boolean', values: null, min: null, max: null, default: false, required: false, concern: 'export' });
    assert.deepEqual(pick('model'), { name: 'model', kind: 'string', item: 'string', values: null, min: null, max: null, default: 'lenet-300-100', required: false, concern: 'model' });
    assert.equal(byName.get('dataset')!.concern, 'data');
    assert.equal(byName.get('method')!.concern, 'method');
    assert.match(byName.get('denseFraction')!.description, /hidden dense weights/);
  });

  test('each concern file owns its fields, and the schema is exactly their union, in their order', () => {
    const owned = Object.entries(SPEC_CONCERNS).flatMap(([concern, shape]) => Object.keys(shape).map((name) => [name, concern]));
    assert.deepEqual(owned.map(([name]) => name), Object.keys(RunSpecSchema.shape), 'a field in two concerns, or out of order');
    assert.deepEqual(RUN_SPEC_FIELDS.map((f) => [f.name, f.concern]), owned);
    assert.deepEqual(UNSUPPORTED_SPEC_FIELDS, []);
  });

  test('a field no kind fits is reported, not guessed', () => {
    const probe = describeFields(z.object({ u: z.union([z.string(), z.number()]), n: z.number().int().min(1), nested: z.object({ a: z.string() }), m: z.record(z.string(), z.boolean()) }));
    assert.deepEqual(probe.unsupported, ['u', 'nested']);
    assert.deepEqual(probe.fields.map((f) => [f.name, f.kind, f.item, f.required, f.concern]), [['n', 'int', 'int', true, null], ['m', 'map', 'boolean', true, null]]);
  });
});

describe('every door lists exactly the descriptors', () => {
  const names = RUN_SPEC_FIELDS.map((f) => f.name);

  test('CLI flags, gRPC spec fields and the OpenAPI RunSpec, in the same order', () => {
    assert.deepEqual(flagsOf(RunSpecSchema).map((f) => f.key), names);
    assert.deepEqual(SPEC_FIELDS.map((f) => f.key), names);
    const openapi = components().RunSpec as { properties: Record<string, unknown>; additionalProperties: unknown };
    assert.deepEqual(Object.keys(openapi.properties), names);
    assert.equal(openapi.additionalProperties, false, 'unknown spec fields are refused');
    // The document adds one thing of its own: `dataset` refuses builtins the reference parser does not know.
    for (const f of RUN_SPEC_FIELDS) {
      const { not: _refused, ...own } = openapi.properties[f.name] as Record<string, unknown>;
      assert.deepEqual(own, f.jsonSchema, f.name);
    }
    assert.ok((openapi.properties.dataset as { not?: unknown }).not, 'dataset: unknown builtins refused');
    assert.equal(RUN_SPEC_JSON_SCHEMA.$schema, undefined);
  });

  test('the README table has one row per descriptor', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const table = readme.match(/<!-- spec-table -->\n([\s\S]*)\n<!-- \/spec-table -->/)![1]!;
    assert.equal(table, flagTableMarkdown(flagsOf(RunSpecSchema)));
    assert.deepEqual(table.split('\n').slice(2).map((row) => row.match(/^\| `(\w+)` \|/)![1]), names);
  });
});

test("no source file reads zod's private internals (_zod)", async () => {
  const root = new URL('../../src/', import.meta.url).pathname;
  const offenders: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'generated') await walk(path);
      } else if (/\.(ts|mts|mjs|js)$/.test(e.name) && (await readFile(path, 'utf8')).includes('_zod')) {
        offenders.push(path.slice(root.length));
      }
    }
  };
  await walk(root);
  assert.deepEqual(offenders, []);
});
