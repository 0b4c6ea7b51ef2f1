// Rules between run-spec fields that one field's schema cannot say ("one-shot
// needs targetDensity", "a FLOP target or fractions, not both"), written once
// as data. The spec check (`checkRules`) and the published JSON Schema
// (`rulesJsonSchema`, in the OpenAPI document's RunSpec) both come from the
// same list, so the document refuses exactly what the server refuses.
//
// A rule's `when` values must differ from those fields' defaults: the check
// sees the resolved spec, the JSON Schema only what the client sent, and the
// two agree only if a default can never trigger a rule.
import type { JsonSchema } from './fields.js';

export interface FieldIssue {
  field: string;
  message: string;
}

export type SpecRule =
  /** When `when` holds, at least one of `fields` is given; the error names `field`. */
  | { kind: 'needs-one-of'; when: Record<string, string>; fields: readonly string[]; field: string; message: string }
  /** When `when` holds and `field` is given, none of `others` is. */
  | { kind: 'excludes'; when: Record<string, string>; field: string; others: readonly string[]; message: string };

const given = (spec: Record<string, unknown>, name: string) => spec[name] !== undefined;

function applies(rule: SpecRule, spec: Record<string, unknown>): boolean {
  return Object.entries(rule.when).every(([k, v]) => spec[k] === v);
}

/** Every rule the spec breaks, in list order. */
export function checkRules(rules: readonly SpecRule[], spec: Record<string, unknown>): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const rule of rules) {
    if (!applies(rule, spec)) continue;
    const broken = rule.kind === 'needs-one-of' ? !rule.fields.some((f) => given(spec, f)) : given(spec, rule.field) && rule.others.some((f) => given(spec, f));
    if (broken) out.push({ field: rule.field, message: rule.message });
  }
  return out;
}

const requiredOf = (name: string): JsonSchema => ({ required: [name] });

/** One rule as JSON Schema 2020-12 (`if`/`then`, `anyOf`, `not`). */
function ruleSchema(rule: SpecRule): JsonSchema {
  const then: JsonSchema =
    rule.kind === 'needs-one-of'
      ? { anyOf: rule.fields.map(requiredOf) }
      : { not: { required: [rule.field], anyOf: rule.others.map(requiredOf) } };
  const when = Object.entries(rule.when);
  if (when.length === 0) return { ...then, description: rule.message };
  return {
    description: rule.message,
    if: { properties: Object.fromEntries(when.map(([k, v]) => [k, { const: v }])), required: when.map(([k]) => k) },
    then,
  };
}

/** The rules as an `allOf` to put beside the spec's own JSON Schema. */
export function rulesJsonSchema(rules: readonly SpecRule[]): JsonSchema[] {
  return rules.map(ruleSchema);
}
