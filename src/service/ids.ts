// Identifier and cursor checks shared by the use cases. The doors refuse a
// malformed id first (REST from the path's documented `format: uuid`, gRPC in
// call.ts requiredId), naming the field; here a malformed id that still gets
// through (a direct caller) is simply not found.
import { invalid } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(id: unknown): id is string {
  return typeof id === 'string' && UUID.test(id);
}

/** Keyset cursor for newest-first lists: (createdAt, id) of the last item. */
export interface Cursor {
  createdAt: Date;
  id: string;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.createdAt.toISOString(), c.id])).toString('base64url');
}

export function decodeCursor(cursor: string): Cursor {
  try {
    const [time, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    const createdAt = new Date(String(time));
    if (typeof time !== 'string' || Number.isNaN(createdAt.getTime()) || !isUuid(id)) throw new Error('bad cursor');
    return { createdAt, id };
  } catch {
    throw invalid('cursor', 'cursor: not a cursor returned by this API');
  }
}

/** Every list: `limit` defaults to PAGE_DEFAULT and may be up to PAGE_MAX (the OpenAPI document says the same). */
export const PAGE_DEFAULT = 50;
export const PAGE_MAX = 200;

/** What a list request says about its page: `cursor` from the previous page's `nextCursor`, `limit` items at most. */
export interface PageQuery {
  cursor?: string;
  limit?: number | string;
}

/** An opaque cursor for any keyset: the sort key of the last item returned. */
export function encodeKeys(keys: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(keys)).toString('base64url');
}

/** The keys of a cursor made by encodeKeys, checked by `read` (which throws or returns null on a foreign shape). */
export function decodeKeys<T>(cursor: string, read: (keys: unknown[]) => T | null): T {
  let out: T | null = null;
  try {
    const keys: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    out = Array.isArray(keys) ? read(keys) : null;
  } catch {
    out = null;
  }
  if (out === null) throw invalid('cursor', 'cursor: not a cursor returned by this API');
  return out;
}

/** Splits `take = limit + 1` rows into a page: the rows shown and the cursor after the last, when there are more. */
export function toPage<R, T>(rows: R[], limit: number, dto: (r: R) => T, keyOf: (r: R) => string): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items: items.map(dto), nextCursor: rows.length > limit && last !== undefined ? keyOf(last) : null };
}

export function pageLimit(limit: unknown, def = PAGE_DEFAULT, max = PAGE_MAX): number {
  if (limit === undefined || limit === null) return def;
  const n = Number(limit);
  if (!Number.isInteger(n) || n < 1 || n > max) throw invalid('limit', `limit: an integer from 1 to ${max}`);
  return n;
}
