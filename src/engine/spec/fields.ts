// The one reflection of the run-spec schema: a list of field descriptors
// (name, kind, bounds, enum values, default, description, concern) that the
// CLI flags, the gRPC mapping, the OpenAPI document and the README table are
// all generated from. It reads the schema through zod's public
// z.toJSONSchema (the very JSON Schema the OpenAPI document publishes), so no
// door walks zod's internals its own way.
//
// It does not validate anything (the zod schema does, once) and does not know
// the wire formats: each door turns a descriptor into its own form.
import { z } from 'zod';

/** A JSON Schema object, as z.toJSONSchema writes it. */
export type JsonSchema = Record<string, unknown>;

/** The kind of a single value. */
export type ScalarKind = 'number' | 'int' | 'enum' | 'boolean' | 'string';
/** A field's kind: a single value, a list of them, or a map from string keys to them. */
export type FieldKind = ScalarKind | 'list' | 'map';

/** A numeric bound; `exclusive` when the value itself is not allowed. */
export interface Bound {
  value: number;
  exclusive: boolean;
}

export interface FieldDescriptor {
  name: string;
  kind: FieldKind;
  /** The kind of the value: the field's own kind, or of each entry of a list / value of a map. */
  item: ScalarKind;
  /** The allowed strings when `item` is an enum, in schema order; null otherwise. */
  values: readonly string[] | null;
  /** Bounds of the number (of each entry / value of a list / map); null when unbounded or not a number. */
  min: Bound | null;
  max: Bound | null;
  /** The schema's default, undefined when it has none. */
  default: unknown;
  /** Must be given: neither optional nor defaulted. */
  required: boolean;
  description: string;
  /** The concern (spec/<concern>.ts) the field is written in; null for a schema that is not the run spec. */
  concern: string | null;
  /** The field's JSON Schema, as the OpenAPI document publishes it. */
  jsonSchema: JsonSchema;
}

export interface SchemaReflection {
  fields: FieldDescriptor[];
  /** Fields whose type has no descriptor kind (a nested object, a union...): no door can carry them yet. */
  unsupported: string[];
  /** The whole object's JSON Schema (what a client sends), without `$schema`. */
  jsonSchema: JsonSchema;
}

const SCALAR_TYPES: Record<string, ScalarKind> = { number: 'number', integer: 'int', boolean: 'boolean', string: 'string' };

function scalarOf(p: JsonSchema | undefined): { item: ScalarKind; values: string[] | null } | null {
  if (!p || typeof p.type !== 'string') return null;
  const kind = SCALAR_TYPES[p.type];
  if (kind === undefined) return null;
  if (kind === 'string' && Array.isArray(p.enum)) return { item: 'enum', values: p.enum.map(String) };
  return { item: kind, values: null };
}

function bound(p: JsonSchema | undefined, inclusive: 'minimum' | 'maximum', exclusive: 'exclusiveMinimum' | 'exclusiveMaximum'): Bound | null {
  if (typeof p?.[exclusive] === 'number') return { value: p[exclusive], exclusive: true };
  if (typeof p?.[inclusive] === 'number') return { value: p[inclusive], exclusive: false };
  return null;
}

const isObject = (x: unknown): x is JsonSchema => typeof x === 'object' && x !== null && !Array.isArray(x);

/** The shape of one property: a scalar, a list of scalars, or a string-keyed map of scalars; null for anything else. */
function shapeOf(p: JsonSchema): { kind: FieldKind; value: JsonSchema } | null {
  if (p.type === 'array' && isObject(p.items)) return { kind: 'list', value: p.items };
  if (p.type === 'object') {
    const keys = p.propertyNames;
    const stringKeys = keys === undefined || (isObject(keys) && keys.type === 'string');
    if (p.properties === undefined && isObject(p.additionalProperties) && stringKeys) return { kind: 'map', value: p.additionalProperties };
    return null;
  }
  const s = scalarOf(p);
  return s ? { kind: s.item, value: p } : null;
}

/**
 * The descriptors of every field of a zod object schema, in shape order.
 * `concernOf` names the concern a field is written in (the run spec's
 * composition knows it).
 */
export function describeFields(schema: z.ZodObject, concernOf: (name: string) => string | null = () => null): SchemaReflection {
  const jsonSchema = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as JsonSchema;
  delete jsonSchema.$schema;
  const properties = (jsonSchema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((jsonSchema.required as string[] | undefined) ?? []);
  const fields: FieldDescriptor[] = [];
  const unsupported: string[] = [];
  for (const name of Object.keys(schema.shape)) {
    const p = properties[name] ?? {};
    const shape = shapeOf(p);
    const scalar = shape && scalarOf(shape.value);
    if (!shape || !scalar) {
      unsupported.push(name);
      continue;
    }
    fields.push({
      name,
      kind: shape.kind,
      item: scalar.item,
      values: scalar.values,
      min: bound(shape.value, 'minimum', 'exclusiveMinimum'),
      max: bound(shape.value, 'maximum', 'exclusiveMaximum'),
      default: p.default,
      required: required.has(name),
      description: typeof p.description === 'string' ? p.description : '',
      concern: concernOf(name),
      jsonSchema: p,
    });
  }
  return { fields, unsupported, jsonSchema };
}
