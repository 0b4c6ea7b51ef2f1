// The rounds of a run as an aligned text table, the same for a local run
// (engine RoundMetrics) and a service job (RoundDto).

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

const pct = (x: number | undefined) => (typeof x === 'number' ? `${(x * 100).toFixed(2)}%` : '-');

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
