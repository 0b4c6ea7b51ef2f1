// The strict door: every query parameter a request carries must be one its
// route declares, given once, and fit the schema the route documents (enum,
// uuid, integer range, not empty where documented so); a POST without a documented JSON body must not carry
// one; path parameters fit theirs too. Each refusal is a 400 naming the parameter or field, so a typo
// (`?stauts=running`, `?kind=bogus`) never answers 200 with a silently
// unfiltered or empty list. Routes check meaning (cursors, ownership) in the
// service; this checks form, from the same table OpenAPI is built from.
import type { Request } from 'express';
import { invalid, ServiceError, type FieldIssue } from '../../service/index.js';
import type { JsonSchema, RouteDef } from './route.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What is wrong with one value against its documented schema, or null. */
function problem(name: string, value: string, schema: JsonSchema | undefined): string | null {
  if (schema === undefined) return null;
  const values = schema.enum;
  if (Array.isArray(values) && !values.includes(value)) return `${name}: one of ${values.join(', ')}`;
  if (schema.format === 'uuid' && !UUID.test(value)) return `${name}: not an id (a UUID)`;
  if (typeof schema.minLength === 'number' && value.length < schema.minLength) return `${name}: must not be empty`;
  if (schema.type === 'integer') {
    const n = /^-?\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
    const min = typeof schema.minimum === 'number' ? schema.minimum : -Infinity;
    const max = typeof schema.maximum === 'number' ? schema.maximum : Infinity;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const range = Number.isFinite(max) ? ` from ${min} to ${max}` : Number.isFinite(min) ? ` >= ${min}` : '';
      return `${name}: an integer${range}`;
    }
  }
  return null;
}

/** At most this many problems are reported for one request: an answer must not grow with what the client sent. */
const MAX_ISSUES = 20;

/** Throws INVALID_ARGUMENT naming every query parameter the route does not take, repeats, or cannot read (the first as `error`). */
export function checkQuery(route: RouteDef, req: Request): void {
  const declared = new Map((route.query ?? []).map((q) => [q.name, q]));
  const issues: FieldIssue[] = [];
  for (const [name, value] of Object.entries(req.query as Record<string, unknown>)) {
    if (issues.length >= MAX_ISSUES) break;
    const doc = declared.get(name);
    const shown = name.length > 64 ? `${name.slice(0, 64)}…` : name;
    if (doc === undefined) {
      const known = [...declared.keys()];
      issues.push({ field: shown, message: `${shown}: unknown query parameter${known.length > 0 ? ` (this route takes ${known.join(', ')})` : ' (this route takes none)'}` });
      continue;
    }
    const p = typeof value !== 'string' ? `${name}: give it once, as a plain value` : problem(name, value, doc.schema);
    if (p !== null) issues.push({ field: name, message: p });
  }
  const first = issues[0];
  if (first) throw new ServiceError('INVALID_ARGUMENT', first.message, first.field, issues);
}

/**
 * Path parameters against the schemas the route documents: `/v1/jobs/abc` is
 * a 400 naming `id` (documented `format: uuid`), not a 404 that reads as if
 * the id had been looked up. A well-formed id of nothing stays 404.
 */
export function checkParams(route: RouteDef, req: Request): void {
  for (const doc of route.params ?? []) {
    const value = (req.params as Record<string, string | undefined>)[doc.name];
    if (value === undefined) continue;
    const p = problem(doc.name, value, doc.schema);
    if (p !== null) throw invalid(doc.name, p);
  }
}

/** A POST whose route documents no JSON body must come without one (an empty object is fine). */
export function checkNoBody(route: RouteDef, req: Request): void {
  if (route.method !== 'post' || route.rawBody || route.body !== undefined) return;
  const body: unknown = req.body;
  if (body === undefined || body === null) return;
  if (typeof body !== 'object' || Array.isArray(body)) throw invalid('body', 'body: this request takes no body');
  const first = Object.keys(body)[0];
  if (first !== undefined) throw invalid(first, `${first}: unknown field (this request takes no body)`);
}
