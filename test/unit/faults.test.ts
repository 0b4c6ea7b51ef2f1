// Fault points: TICKETSMITH_FAULT_POINT is parsed once by loadConfig (a typo
// fails at start, naming the setting), and a Faults object fires on exactly
// the n-th hit of its point, never on other points; unset, it is a no-op.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/runtime/config.js';
import { FAULT_POINTS, faultsFor, NO_FAULTS, parseFaultPoint } from '../../src/runtime/faults.js';

test('loadConfig reads TICKETSMITH_FAULT_POINT once into { name, n }; unset is null; a bad one fails naming the setting', () => {
  assert.equal(loadConfig({}).faultPoint, null);
  assert.deepEqual(loadConfig({ TICKETSMITH_FAULT_POINT: 'blob.after-rename:3' }).faultPoint, { name: 'blob.after-rename', n: 3 });
  assert.deepEqual(loadConfig({ TICKETSMITH_FAULT_POINT: 'round.in-tx' }).faultPoint, { name: 'round.in-tx', n: 1 });
  for (const bad of ['blob.after-renam:1', 'round.in-tx:0', 'round.in-tx:x', ':2']) {
    assert.throws(() => loadConfig({ TICKETSMITH_FAULT_POINT: bad }), (e: unknown) => e instanceof ConfigError && e.message.startsWith('environment variable TICKETSMITH_FAULT_POINT:'), bad);
  }
});

test('faultsFor fires on the n-th hit of its point only, once', () => {
  const fired: number[] = [];
  let hits = 0;
  const f = faultsFor(parseFaultPoint('heartbeat.after:3'), () => fired.push(hits));
  for (let i = 0; i < 5; i++) {
    f.hit('heartbeat.before');
    hits += 1;
    f.hit('heartbeat.after');
  }
  assert.deepEqual(fired, [3]);
  assert.equal(faultsFor(null), NO_FAULTS);
  for (const p of FAULT_POINTS) NO_FAULTS.hit(p);
});
