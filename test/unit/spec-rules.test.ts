// The rules between run-spec fields (engine/spec/rules.ts) are checked by the
// server and published as JSON Schema; these say the two agree on specs that
// break each rule and on specs that keep it, and that no rule can be set off
// by a default (the JSON Schema sees only what the client sent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { checkRules, rulesJsonSchema } from '../../src/engine/spec/rules.js';
import { defaultSpec, resolveSpec, SPEC_RULES } from '../../src/engine/spec.js';

const ajv = new Ajv2020({ strict: false });
const documented = ajv.compile({ allOf: rulesJsonSchema(SPEC_RULES) });

test("no rule's condition is a default value", () => {
  const defaults = defaultSpec() as Record<string, unknown>;
  for (const rule of SPEC_RULES) {
    for (const [field, value] of Object.entries(rule.when)) assert.notEqual(defaults[field], value, `${rule.message}: ${field}=${value} is the default`);
  }
});

test('the check and the JSON Schema agree, and resolveSpec reports every broken rule', () => {
  const specs: { spec: Record<string, unknown>; broken: string[] }[] = [
    { spec: {}, broken: [] },
    { spec: { schedule: 'one-shot' }, broken: ['targetDensity'] },
    { spec: { schedule: 'one-shot', targetDensity: 0.1 }, broken: [] },
    { spec: { method: 'filter' }, broken: ['filterFraction'] },
    { spec: { method: 'filter', filterFraction: 0.5 }, broken: [] },
    { spec: { method: 'filter', filterFractions: { conv1: 0.5 } }, broken: [] },
    { spec: { method: 'filter', targetFlopReduction: 0.3 }, broken: [] },
    { spec: { method: 'filter', filterFraction: 0.5, targetFlopReduction: 0.3 }, broken: ['targetFlopReduction'] },
    { spec: { method: 'filter', schedule: 'one-shot' }, broken: ['filterFraction', 'targetDensity'] },
    // Not a filter run: the filter fields are not judged together.
    { spec: { filterFraction: 0.5, targetFlopReduction: 0.3 }, broken: [] },
  ];
  for (const { spec, broken } of specs) {
    const what = JSON.stringify(spec);
    assert.deepEqual(checkRules(SPEC_RULES, spec).map((i) => i.field), broken, what);
    assert.equal(documented(spec), broken.length === 0, `${what}: ${ajv.errorsText(documented.errors)}`);
    if (broken.length === 0) {
      assert.doesNotThrow(() => resolveSpec(spec), what);
    } else {
      assert.throws(() => resolveSpec(spec), (e: { field: string; issues: { field: string }[] }) => {
        assert.equal(e.field, broken[0]);
        assert.deepEqual(e.issues.map((i) => i.field), broken);
        return true;
      }, what);
    }
  }
});

test('every schema problem of a spec is reported, the first as the error', () => {
  assert.throws(() => resolveSpec({ rounds: -1, batchSize: 0, roundz: 1 }), (e: { field: string; message: string; issues: { field: string; message: string }[] }) => {
    assert.deepEqual(e.issues.map((i) => i.field).sort(), ['batchSize', 'rounds', 'roundz']);
    assert.deepEqual(e.issues[0], { field: e.field, message: e.message });
    return true;
  });
});
