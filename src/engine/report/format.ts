// How Ticketsmith writes a fraction as a percentage, for every reader: run
// summaries (engine), CLI tables and logs, bench reports and the dashboard
// (which embeds `pct`'s source in its script, so `pct` must stay one
// self-contained function without imports or inner helpers).

export interface PercentOptions {
  /** Decimals (default 2). */
  digits?: number;
  /** Drop trailing zeros: 0.5 -> "50%" instead of "50.00%". */
  trim?: boolean;
  /** Written for anything that is not a number (default "-"). */
  missing?: string;
}

/** A fraction as a percentage: pct(0.91234) is "91.23%", pct(undefined) is "-". */
export function pct(x: unknown, { digits = 2, trim = false, missing = '-' }: PercentOptions = {}): string {
  if (typeof x !== 'number') return missing;
  const fixed = (x * 100).toFixed(digits);
  return `${trim ? String(+fixed) : fixed}%`;
}
