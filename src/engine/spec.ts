// The run spec: one zod schema is the single source of truth for what a
// compression run can be asked to do. REST validation, the gRPC mapping, the
// CLI flags, the OpenAPI document and the run's name all derive from it; the
// doors read it through one reflection, RUN_SPEC_FIELDS (spec/fields.ts).
// Its fields are written one file per concern under spec/ and composed here;
// every other module imports the spec from this file.
//
// Hashing rule (as open_lth does): a run's name hashes only the fields whose
// value differs from the resolved default, so adding a field with a default
// later never changes the names of old runs.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { DATA_FIELDS } from './spec/data.js';
import { SpecError } from './spec/errors.js';
import { EXPORT_FIELDS } from './spec/export.js';
import { describeFields, type FieldDescriptor, type JsonSchema } from './spec/fields.js';
import { FILTER_FIELDS, FILTER_RULES } from './spec/filter.js';
import { checkImp, IMP_FIELDS, IMP_RULES } from './spec/imp.js';
import { METHOD_FIELDS } from './spec/method.js';
import { MODEL_FIELDS } from './spec/model.js';
import { checkRules, rulesJsonSchema, type FieldIssue, type SpecRule } from './spec/rules.js';
import { checkTraining, modelDefaults, TRAINING_FIELDS } from './spec/training.js';

export { SPEC_LIMITS } from './spec/limits.js';
export { SpecError } from './spec/errors.js';
export { rewindIteration, roundHasControls } from './spec/imp.js';
export { totalIterations } from './spec/training.js';
export { describeFields } from './spec/fields.js';
export type { FieldIssue, SpecRule } from './spec/rules.js';
export type { Bound, FieldDescriptor, FieldKind, JsonSchema, ScalarKind } from './spec/fields.js';

/**
 * The concerns, in the order their fields are listed (OpenAPI document, README
 * table, CLI help): the order the fields had when the schema was one file.
 */
export const SPEC_CONCERNS = Object.freeze({
  model: MODEL_FIELDS,
  data: DATA_FIELDS,
  method: METHOD_FIELDS,
  imp: IMP_FIELDS,
  training: TRAINING_FIELDS,
  export: EXPORT_FIELDS,
  filter: FILTER_FIELDS,
});
export type SpecConcern = keyof typeof SPEC_CONCERNS;

export const RunSpecSchema = z
  .object({ ...MODEL_FIELDS, ...DATA_FIELDS, ...METHOD_FIELDS, ...IMP_FIELDS, ...TRAINING_FIELDS, ...EXPORT_FIELDS, ...FILTER_FIELDS })
  .strict();

const concernOf = (name: string): SpecConcern | null =>
  (Object.keys(SPEC_CONCERNS) as SpecConcern[]).find((c) => Object.hasOwn(SPEC_CONCERNS[c], name)) ?? null;

const reflection = describeFields(RunSpecSchema, concernOf);
/** Every run-spec field described once (spec/fields.ts): what the CLI, gRPC, OpenAPI and README read. */
export const RUN_SPEC_FIELDS: readonly FieldDescriptor[] = Object.freeze(reflection.fields);
/** Spec fields no descriptor kind fits (none today; proto-contract.test.ts keeps it so). */
export const UNSUPPORTED_SPEC_FIELDS: readonly string[] = Object.freeze(reflection.unsupported);
/** The run spec's JSON Schema as a client sends it: the OpenAPI document's RunSpec. */
export const RUN_SPEC_JSON_SCHEMA: JsonSchema = reflection.jsonSchema;

export type RunSpecInput = z.input<typeof RunSpecSchema>;
export type ParsedSpec = z.output<typeof RunSpecSchema>;
/** A spec with every model-dependent default filled in. */
export type RunSpec = ParsedSpec & { learningRate: number; iterations: number };

/** Rules between fields, checked on every spec and published in its JSON Schema (spec/rules.ts). */
export const SPEC_RULES: readonly SpecRule[] = Object.freeze([...FILTER_RULES, ...IMP_RULES]);
/** SPEC_RULES as JSON Schema: an `allOf` for the OpenAPI document's RunSpec. */
export const SPEC_RULES_JSON_SCHEMA: JsonSchema[] = rulesJsonSchema(SPEC_RULES);

/** At most this many problems are reported for one spec: an answer must not grow with what the client sent. */
const MAX_ISSUES = 20;

function schemaIssues(issues: readonly z.core.$ZodIssue[]): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys' && issue.path.length === 0) {
      // Name the first few only, for the same reason as MAX_ISSUES.
      const shown = issue.keys.slice(0, 5).map((k) => (k.length > 64 ? `${k.slice(0, 64)}…` : k));
      const more = issue.keys.length > shown.length ? ` and ${issue.keys.length - shown.length} more` : '';
      out.push({ field: shown[0]!, message: `${shown.join(', ')}${more}: unknown field${issue.keys.length > 1 ? 's' : ''}` });
      continue;
    }
    const field = issue.path.join('.') || 'spec';
    out.push({ field, message: `${field}: ${issue.message}` });
  }
  return out.slice(0, MAX_ISSUES);
}

/** Parse and fill defaults; throws SpecError naming the first bad field, with every problem found in `issues`. */
export function resolveSpec(input: unknown): RunSpec {
  const parsed = RunSpecSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issues = schemaIssues(parsed.error.issues);
    throw new SpecError(issues[0]!.message, issues[0]!.field, issues);
  }
  const s = parsed.data;
  const d = modelDefaults(s.model);
  const spec: RunSpec = { ...s, learningRate: s.learningRate ?? d.learningRate, iterations: s.iterations ?? d.iterations };
  const broken = checkRules(SPEC_RULES, spec);
  if (broken.length > 0) throw new SpecError(broken[0]!.message, broken[0]!.field, broken);
  checkImp(spec);
  checkTraining(spec);
  return spec;
}

const defaultsByModel = new Map<string, RunSpec>();

/** The defaults a spec for this model resolves to (cached: every submit hashes a spec). */
export function defaultSpec(model = 'lenet-300-100'): RunSpec {
  let d = defaultsByModel.get(model);
  if (!d) {
    d = resolveSpec({ model });
    if (defaultsByModel.size > 1000) defaultsByModel.clear();
    defaultsByModel.set(model, d);
  }
  return structuredClone(d);
}

/** Fields that differ from the defaults, with keys sorted: the canonical form that is hashed. */
export function canonicalSpec(spec: RunSpec): Record<string, unknown> {
  const defaults = defaultSpec(spec.model) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(spec).sort()) {
    const value = (spec as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (JSON.stringify(value) !== JSON.stringify(defaults[key]) || key === 'model' || key === 'dataset' || key === 'method') {
      out[key] = value;
    }
  }
  return out;
}

export function specHash(spec: RunSpec): string {
  return createHash('sha256').update(JSON.stringify(canonicalSpec(spec))).digest('hex');
}

/** Storage name of a run, e.g. `imp_3f2a9c0d1b7e`. */
export function runName(spec: RunSpec): string {
  return `${spec.method}_${specHash(spec).slice(0, 12)}`;
}
