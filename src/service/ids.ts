// Identifier and cursor checks shared by the use cases. A malformed id is
// simply not found: an id is opaque to clients, and a 400 would tell them
// more about it than they need.
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

export function pageLimit(limit: unknown, def = 20, max = 100): number {
  if (limit === undefined || limit === null) return def;
  const n = Number(limit);
  if (!Number.isInteger(n) || n < 1 || n > max) throw invalid('limit', `limit: an integer from 1 to ${max}`);
  return n;
}
