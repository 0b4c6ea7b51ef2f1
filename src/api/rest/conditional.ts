// HTTP conditional and partial requests for artifact downloads (RFC 9110):
// If-None-Match against the strong ETag (the sha256), If-Range, and one
// `bytes=` range. Only syntax lives here; whether a range fits the artifact
// is the service's checkRange.
import type { ByteRange } from '../../service/index.js';

/** True when an If-None-Match header matches `etag` (weak comparison, as RFC 9110 asks for this header). */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === bare);
}

export type RangeRequest =
  | { kind: 'none' }
  /** Syntactically fine but cannot be satisfied (e.g. a suffix of 0 bytes). */
  | { kind: 'unsatisfiable' }
  | { kind: 'range'; range: ByteRange };

/**
 * One `bytes=` range against a resource of `size` bytes. Malformed headers,
 * other units and multi-range requests are ignored (the whole body is sent),
 * which RFC 9110 allows; open ends are clamped to the size.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (!header) return { kind: 'none' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return { kind: 'none' };
  const [, first, last] = m as unknown as [string, string, string];
  if (first === '' && last === '') return { kind: 'none' };
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', range: { start: Math.max(0, size - suffix), end: size - 1 } };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return { kind: 'none' };
  // start beyond the end: checkRange answers 416 for it.
  return { kind: 'range', range: { start, end: Math.max(start, end) } };
}

/** If-Range: serve the range only while the client's validator is still current. */
export function ifRangeHolds(header: string | undefined, etag: string): boolean {
  if (!header) return true;
  return header.trim() === etag;
}
