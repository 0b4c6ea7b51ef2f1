// HTTP Range / If-None-Match / If-Range parsing for artifact downloads,
// checked by hand against RFC 9110's examples on a 10 000-byte artifact.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ifRangeHolds, noneMatch, parseRange } from '../../src/api/rest/conditional.js';

describe('parseRange', () => {
  const size = 10_000;
  test('first-last, open-ended and suffix ranges', () => {
    assert.deepEqual(parseRange('bytes=0-499', size), { kind: 'range', range: { start: 0, end: 499 } });
    assert.deepEqual(parseRange('bytes=500-999', size), { kind: 'range', range: { start: 500, end: 999 } });
    assert.deepEqual(parseRange('bytes=9500-', size), { kind: 'range', range: { start: 9500, end: 9999 } });
    assert.deepEqual(parseRange('bytes=-500', size), { kind: 'range', range: { start: 9500, end: 9999 } });
    assert.deepEqual(parseRange('bytes=-20000', size), { kind: 'range', range: { start: 0, end: 9999 } });
    // A last byte past the end is clamped (RFC 9110 §14.1.2).
    assert.deepEqual(parseRange('bytes=9990-20000', size), { kind: 'range', range: { start: 9990, end: 9999 } });
  });

  test('a start beyond the end is passed on for the 416 check; empty suffixes are unsatisfiable', () => {
    assert.deepEqual(parseRange('bytes=10000-10010', size), { kind: 'range', range: { start: 10000, end: 10000 } });
    assert.deepEqual(parseRange('bytes=-0', size), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=-5', 0), { kind: 'unsatisfiable' });
  });

  test('malformed, other units, reversed and multi-range headers are ignored (whole body)', () => {
    for (const h of [undefined, '', 'bytes=', 'bytes=-', 'items=0-5', 'bytes=abc', 'bytes=5-3', 'bytes=0-1,5-6', 'bytes 0-5']) {
      assert.deepEqual(parseRange(h, size), { kind: 'none' }, String(h));
    }
  });
});

describe('validators', () => {
  const etag = '"ab12"';
  test('If-None-Match: lists, weak tags and * match; others do not', () => {
    assert.equal(noneMatch('"ab12"', etag), true);
    assert.equal(noneMatch('"x", W/"ab12"', etag), true);
    assert.equal(noneMatch('*', etag), true);
    assert.equal(noneMatch('"ab13"', etag), false);
    assert.equal(noneMatch(undefined, etag), false);
  });

  test('If-Range holds only for the same strong tag', () => {
    assert.equal(ifRangeHolds(undefined, etag), true);
    assert.equal(ifRangeHolds('"ab12"', etag), true);
    assert.equal(ifRangeHolds('W/"ab12"', etag), false);
    assert.equal(ifRangeHolds('Wed, 21 Oct 2015 07:28:00 GMT', etag), false);
  });
});
