// The one percentage helper (engine/report/format.ts) and its readers: the
// rounds table for a local run and for a service job, and the dashboard's
// script, which embeds the helper's source (and its own progress helpers) and
// runs them in a browser (here the script's helper part in a node:vm context).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { pct } from '../../src/engine/report/format.js';
import { roundRows, roundsTable } from '../../src/cli/rounds-table.js';
import type { RoundDto } from '../../src/client/index.js';
import type { RoundMetrics, TrainingMetrics } from '../../src/engine/sink.js';
import { dashboardRoutes, durationShown, progressShown, roundsShown } from '../../src/web/dashboard.js';
import { APP_MARK } from '../../src/web/script.js';

test('pct: decimals, trimmed zeros and the missing mark', () => {
  assert.equal(pct(0.91234), '91.23%');
  assert.equal(pct(0.8), '80.00%');
  assert.equal(pct(0.8, { digits: 1 }), '80.0%');
  assert.equal(pct(0.125, { digits: 1, trim: true }), '12.5%');
  assert.equal(pct(0.05, { digits: 1, trim: true }), '5%');
  assert.equal(pct(undefined), '-');
  assert.equal(pct('0.5'), '-');
  assert.equal(pct(null, { missing: '' }), '');
});

test('roundRows: an engine round and the same round as a job DTO give one table row', () => {
  const training = (acc: number): TrainingMetrics => ({
    finalTestAccuracy: acc, finalTestLoss: 0.3, earlyStopIteration: 40, earlyStopTestAccuracy: 0.9,
    earlyStopValidationLoss: 0.31, curve: [], trainSeconds: 2, examplesPerSecond: 1234.4,
  });
  const local: RoundMetrics = {
    ...training(0.9123), round: 1, density: 0.8, layerDensity: {}, paramsRemaining: 80, paramsTotal: 100,
    flops: 1000, denseBytes: 4096, compressedBytes: 2048, backend: 'cpu', controls: { shuffle: training(0.5) },
  };
  const job = {
    index: 1, density: 0.8, testAccuracy: 0.9123, earlyStopIteration: 40, earlyStopTestAccuracy: 0.9,
    examplesPerSecond: 1234.4, compressedBytes: 2048, controls: { shuffle: { finalTestAccuracy: 0.5 } },
  } as unknown as RoundDto;
  const [fromEngine] = roundRows([local]);
  assert.deepEqual(roundRows([job]), [fromEngine]);
  assert.deepEqual(fromEngine, {
    round: 1, density: 0.8, testAccuracy: 0.9123, earlyStopIteration: 40, earlyStopTestAccuracy: 0.9,
    reinitAccuracy: undefined, shuffleAccuracy: 0.5, examplesPerSecond: 1234.4, compressedBytes: 2048,
  });
  assert.match(roundsTable([fromEngine!]).split('\n')[2]!, /^\s+1\s+80\.00%\s+91\.23%\s+40\s+90\.00%\s+-\s+50\.00%\s+1234\s+2 KiB$/);
});

/** The helpers of the served dashboard.js (the part before its app), evaluated in a fresh context as the page would. */
function dashboardHelpers(): Record<string, (...args: never[]) => unknown> {
  const js = dashboardRoutes().find((r) => r.path === '/dashboard.js')!.body;
  const cut = js.indexOf(APP_MARK);
  assert.ok(cut > 0, 'the served script marks where its app starts');
  const context = vm.createContext({});
  vm.runInContext(js.slice(0, cut) + '\nglobalThis.helpers = { pct, roundsShown, progressShown, durationShown };', context);
  return (context as { helpers: Record<string, (...args: never[]) => unknown> }).helpers;
}

test('the dashboard formats percentages with the same pct, blank where a job has no result yet', () => {
  const page = dashboardHelpers();
  const pagePct = page.pct as (x: unknown) => string;
  assert.equal(pagePct(0.8), pct(0.8));
  assert.equal(pagePct(0.91234), '91.23%');
  assert.equal(pagePct(undefined), '');
});

test('the dashboard shows rounds with round 0 counted once, progress, ETA and durations', () => {
  const page = dashboardHelpers();
  const rounds = page.roundsShown as typeof roundsShown;
  // Spread into this realm: objects made in the vm context have its Object prototype.
  const progress: typeof progressShown = (job, now) => ({ ...(page.progressShown as typeof progressShown)(job, now) });
  const duration = page.durationShown as typeof durationShown;
  // A finished 1-round job trained 2 rounds (round 0 included): 2/2, not 2/3.
  assert.equal(rounds({ roundsCompleted: 2, rounds: 2 }), '2/2');
  assert.equal(rounds({ roundsCompleted: 0, rounds: null }), '0/?');
  assert.equal(rounds(null), '');
  const start = Date.parse('2026-01-01T00:00:00Z');
  const running = (roundsCompleted: number, step: number, etaSeconds: number | null = 30) => ({
    status: 'running', startedAt: new Date(start).toISOString(),
    progress: { roundsCompleted, rounds: 4, step, totalSteps: 10, etaSeconds },
  });
  // 1 round of 4 done and half of the next: 37.5% in 60 s leaves 100 s at that pace.
  assert.deepEqual(progress(running(1, 5), start + 60_000), { fraction: 0.375, etaSeconds: 100 });
  // Nothing done yet: the engine's estimate for the training under way.
  assert.deepEqual(progress(running(0, 0, 12.4), start + 1_000), { fraction: 0, etaSeconds: 12 });
  assert.deepEqual(progress({ status: 'succeeded', startedAt: null, progress: null }, start), { fraction: 1, etaSeconds: 0 });
  assert.deepEqual(progress({ status: 'queued', startedAt: null, progress: null }, start), { fraction: 0, etaSeconds: null });
  assert.equal(duration(45), '45s');
  assert.equal(duration(185), '3m 05s');
  assert.equal(duration(7620), '2h 07m');
  assert.equal(duration(null), '');
});
