// redactPaths (queue/inputs.ts), the worker's last guard before a job's
// error, events or result are stored: the run's temp folders become what the
// tenant named, by full path and by base name alone, and a temp folder no
// run knows any more becomes the fallback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redactPaths } from '../../src/queue/inputs.js';

test('a temp folder by its base name alone is redacted like its full path', () => {
  const data = join(tmpdir(), 'ticketsmith-96141e8f-data-ktC4Os');
  const pairs = [[`${data}/`, 'dataset:d1/'], [data, 'dataset:d1'], ['ticketsmith-96141e8f-data-ktC4Os', 'dataset:d1']] as const;
  assert.equal(redactPaths(`cannot read ${data}/cat/1.png`, pairs), 'cannot read dataset:d1/cat/1.png');
  assert.equal(redactPaths('ticketsmith-96141e8f-data-ktC4Os: dog/3.png: cannot decode image', pairs), 'dataset:d1: dog/3.png: cannot decode image');
});

test('a temp folder name no pair knows falls back, nested in objects and arrays', () => {
  const out = redactPaths({ error: ['ticketsmith-0123abcd-Zz09aB: model.json: bad', `at ${join(tmpdir(), 'ticketsmith-0123abcd-data-Qq11Ww')}/x`] }, [], 'the upload');
  assert.deepEqual(out, { error: ['the upload: model.json: bad', 'at the upload'] });
  // Names that only look alike stay.
  assert.equal(redactPaths('ticketsmith-dsupload and ticketsmith-12-abc', []), 'ticketsmith-dsupload and ticketsmith-12-abc');
});
