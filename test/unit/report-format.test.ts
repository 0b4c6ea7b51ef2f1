// The one percentage helper (engine/report/format.ts) and its readers: the
// rounds table for a local run and for a service job, and the dashboard's
// script, which embeds the helper's source and runs it in a browser (here a
// node:vm context with the few DOM calls it makes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { pct } from '../../src/engine/report/format.js';
import { roundRows, roundsTable } from '../../src/cli/rounds-table.js';
import type { RoundDto } from '../../src/client/index.js';
import type { RoundMetrics, TrainingMetrics } from '../../src/engine/sink.js';
import { dashboardRoutes } from '../../src/web/dashboard.js';

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

/** Runs dashboard.js against stubbed DOM calls and one page of jobs; the text of each row's cells. */
async function renderDashboard(items: unknown[]): Promise<string[][]> {
  const rows: string[][] = [];
  const element = () => ({
    value: '', textContent: '', hidden: true, addEventListener: () => {},
    tBodies: [{ replaceChildren: () => {}, insertRow: () => {
      const cells: string[] = [];
      rows.push(cells);
      return { insertCell: () => {
        const i = cells.push('') - 1;
        return { set textContent(t: string) { cells[i] = t; }, className: '' };
      } };
    } }],
  });
  const elements = new Map<string, ReturnType<typeof element>>();
  const context = vm.createContext({
    document: { hidden: false, getElementById: (id: string) => elements.get(id) ?? elements.set(id, element()).get(id) },
    localStorage: { getItem: () => 'tsk_test', setItem: () => {} },
    fetch: async () => ({ ok: true, json: async () => ({ items }) }),
    setInterval: () => 0,
    String, Date, Math,
  });
  const js = dashboardRoutes().find((r) => r.path === '/dashboard.js')!.body;
  vm.runInContext(js, context);
  await vm.runInContext('load()', context);
  return rows;
}

test('the dashboard formats percentages with the same pct, blank where a job has no result yet', async () => {
  const job = (id: string, summary?: object) => ({
    id: `${id}-0000-0000`, status: summary ? 'succeeded' : 'queued', spec: { model: 'lenet-300-100', dataset: 'builtin:mnist' },
    progress: null, result: summary ? { summary } : null, createdAt: '2026-01-01T00:00:00Z',
  });
  const [done, queued] = await renderDashboard([job('aaaaaaaa', { density: 0.8, finalTestAccuracy: 0.91234 }), job('bbbbbbbb')]);
  assert.ok(done!.includes(pct(0.8)) && done!.includes(pct(0.91234)), `cells: ${JSON.stringify(done)}`);
  assert.ok(!queued!.some((c) => c === '-' || c.endsWith('%')), `cells: ${JSON.stringify(queued)}`);
});
