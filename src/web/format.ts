// What the dashboard shows for a job's progress, as plain functions: the page
// runs these very functions (their source goes into dashboard.js, see
// script.ts), so each must stay one self-contained function without imports
// or outer names once its types are stripped; node tests call them directly.

/** What the job's progress says, as the REST API returns it (store/progress.ts). */
export interface ProgressShown {
  roundsCompleted: number;
  /** Rounds in the run, round 0 included; null until the engine says. */
  rounds: number | null;
}

/** The part of a job these helpers read (the REST Job). */
export interface JobProgressView {
  status: string;
  startedAt: string | null;
  progress: (ProgressShown & { step: number; totalSteps: number; etaSeconds: number | null }) | null;
}

/**
 * The "round" column: rounds committed / rounds in the run (both count round
 * 0, so a finished 1-round job shows 2/2).
 */
export function roundsShown(p: ProgressShown | null): string {
  if (!p) return '';
  return p.roundsCompleted + '/' + (p.rounds == null ? '?' : p.rounds);
}

/**
 * How far a job is (0..1) and the seconds it should still take, or null when
 * unknown. Done is the rounds committed plus the share of the round in
 * training; the estimate assumes the rest goes at the pace so far (time since
 * the job started over the share done), and falls back on the engine's own
 * estimate for the current training while no share is done yet.
 */
export function progressShown(job: JobProgressView, nowMs: number): { fraction: number; etaSeconds: number | null } {
  if (job.status === 'succeeded') return { fraction: 1, etaSeconds: 0 };
  const p = job.progress;
  if (!p || !p.rounds) return { fraction: 0, etaSeconds: null };
  const inRound = p.totalSteps > 0 && p.roundsCompleted < p.rounds ? Math.min(1, p.step / p.totalSteps) : 0;
  const fraction = Math.max(0, Math.min(1, (p.roundsCompleted + inRound) / p.rounds));
  if (job.status !== 'running') return { fraction, etaSeconds: null };
  const started = job.startedAt ? Date.parse(job.startedAt) : NaN;
  if (fraction > 0 && fraction < 1 && Number.isFinite(started) && nowMs > started) {
    return { fraction, etaSeconds: Math.round(((nowMs - started) / 1000) * ((1 - fraction) / fraction)) };
  }
  return { fraction, etaSeconds: p.etaSeconds == null ? null : Math.round(p.etaSeconds) };
}

/** Seconds as "45s", "3m 05s", "2h 07m"; "" for null. */
export function durationShown(seconds: number | null): string {
  if (seconds == null || !Number.isFinite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + 's';
  const pad = (n: number) => (n < 10 ? '0' : '') + n;
  if (s < 3600) return Math.floor(s / 60) + 'm ' + pad(s % 60) + 's';
  return Math.floor(s / 3600) + 'h ' + pad(Math.floor((s % 3600) / 60)) + 'm';
}
