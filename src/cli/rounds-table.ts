// The rounds of a run as an aligned text table, the same for a local run
// (engine RoundMetrics) and a service job (RoundDto).
import type { RoundDto } from '../client/index.js';
import type { RoundMetrics } from '../engine/sink.js';
import { pct } from '../engine/report/format.js';

export interface RoundRow {
  round: number;
  density: number;
  testAccuracy: number;
  earlyStopIteration: number;
  earlyStopTestAccuracy: number;
  reinitAccuracy?: number;
  shuffleAccuracy?: number;
  examplesPerSecond: number;
  compressedBytes: number;
}

/** A control's final test accuracy, from the engine's typed controls or a DTO's JSON ones. */
function controlAccuracy(controls: object, kind: string): number | undefined {
  const c = (controls as Record<string, { finalTestAccuracy?: unknown } | undefined>)[kind];
  return typeof c?.finalTestAccuracy === 'number' ? c.finalTestAccuracy : undefined;
}

/** Table rows from a local run's rounds (engine RoundMetrics) or a job's (RoundDto). */
export function roundRows(rounds: ReadonlyArray<RoundMetrics | RoundDto>): RoundRow[] {
  return rounds.map((r) => ({
    round: 'round' in r ? r.round : r.index,
    density: r.density,
    testAccuracy: 'round' in r ? r.finalTestAccuracy : r.testAccuracy,
    earlyStopIteration: r.earlyStopIteration,
    earlyStopTestAccuracy: r.earlyStopTestAccuracy,
    reinitAccuracy: controlAccuracy(r.controls, 'reinit'),
    shuffleAccuracy: controlAccuracy(r.controls, 'shuffle'),
    examplesPerSecond: r.examplesPerSecond,
    compressedBytes: r.compressedBytes,
  }));
}

export function roundsTable(rounds: RoundRow[]): string {
  const head = ['round', 'weights', 'test acc', 'early-stop it', 'acc@es', 'reinit acc', 'shuffle acc', 'ex/s', 'compressed'];
  const rows = rounds.map((r) => [
    String(r.round),
    pct(r.density),
    pct(r.testAccuracy),
    String(r.earlyStopIteration),
    pct(r.earlyStopTestAccuracy),
    pct(r.reinitAccuracy),
    pct(r.shuffleAccuracy),
    r.examplesPerSecond.toFixed(0),
    `${(r.compressedBytes / 1024).toFixed(0)} KiB`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
