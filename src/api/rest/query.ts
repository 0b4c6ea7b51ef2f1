// The strict door: every query parameter a request carries must be one its
// route declares, given once, and fit the schema the route documents (enum,
// uuid, integer range); a POST without a documented JSON body must not carry
// one. Each refusal is a 400 naming the parameter or field, so a typo
// (`?stauts=running`, `?kind=bogus`) never answers 200 with a silently
// unfiltered or empty list. Routes check meaning (cursors, ownership) in the
// service; this checks form, from the same table OpenAPI is built from.
import type { Request } from 'express';
import { invalid } from '../../service/index.js';
import type { JsonSchema, RouteDef } from './route.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkValue(name: string, value: string, schema: JsonSchema | undefined): void {
  if (schema === undefined) return;
  const values = schema.enum;
  if (Array.isArray(values) && !values.includes(value)) throw invalid(name, `${name}: one of ${values.join(', ')}`);
  if (schema.format === 'uuid' && !UUID.test(value)) throw invalid(name, `${name}: not an id (a UUID)`);
  if (schema.type === 'integer') {
    const n = /^-?\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
    const min = typeof schema.minimum === 'number' ? schema.minimum : -Infinity;
    const max = typeof schema.maximum === 'number' ? schema.maximum : Infinity;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const range = Number.isFinite(max) ? ` from ${min} to ${max}` : Number.isFinite(min) ? ` >= ${min}` : '';
      throw invalid(name, `${name}: an integer${range}`);
    }
  }
}

/** Throws INVALID_ARGUMENT naming the first query parameter the route does not take, repeats, or cannot read. */
export function checkQuery(route: RouteDef, req: Request): void {
  const declared = new Map((route.query ?? []).map((q) => [q.name, q]));
  for (const [name, value] of Object.entries(req.query as Record<string, unknown>)) {
    const doc = declared.get(name);
    const shown = name.length > 64 ? `${name.slice(0, 64)}…` : name;
    if (doc === undefined) {
      const known = [...declared.keys()];
      throw invalid(shown, `${shown}: unknown query parameter${known.length > 0 ? ` (this route takes ${known.join(', ')})` : ' (this route takes none)'}`);
    }
    if (typeof value !== 'string') throw invalid(name, `${name}: give it once, as a plain value`);
    checkValue(name, value, doc.schema);
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
