// Fault injection for crash tests: named points in the write path (blob
// store, round and result commits, claim, heartbeat, finish) where a process
// can be made to SIGKILL itself, so a test can prove that a worker dying at
// exactly that instant leaves nothing half-recorded and the job still ends.
//
// The point is chosen once, from TICKETSMITH_FAULT_POINT=name:n through
// runtime/config.ts, and handed down as a Faults object; nothing below reads
// the environment. Unset, `hit` is an empty function (no counting, no lookup).
// This module does not decide what a crash means for the data: the code
// around each point does, and the kill-points test checks it.

/** Every point a fault can be set at; config rejects other names. */
export const FAULT_POINTS = Object.freeze([
  /** Inside the claim transaction, after the job row says running (rolled back by the kill). */
  'claim.in-tx',
  /** The claim committed; the run has not started. */
  'claim.after-commit',
  /** Before / after a heartbeat statement. */
  'heartbeat.before',
  'heartbeat.after',
  /** Inside the transaction of an engine event row (progress, round-start, ...). */
  'event.in-tx',
  /** Blob store: the temp file is written and synced, not yet renamed to its key. */
  'blob.temp-written',
  /** Blob store: renamed to its key (durable), no row references it yet. */
  'blob.after-rename',
  /** A round's blobs are all stored; its transaction has not begun. */
  'round.blobs-stored',
  /** Inside the round transaction, after the Round row, before its Artifact rows. */
  'round.in-tx',
  /** Inside the round transaction, everything written, before COMMIT. */
  'round.before-commit',
  /** The round transaction committed. */
  'round.after-commit',
  /** The result's (ticket export's) blobs are stored; its transaction has not begun. */
  'result.blobs-stored',
  /** Inside the result transaction, before COMMIT. */
  'result.in-tx',
  /** The result committed; the job is not yet marked finished. */
  'result.after-commit',
  /** Inside the transaction that marks the job finished. */
  'finish.in-tx',
] as const);

export type FaultPointName = (typeof FAULT_POINTS)[number];

export interface FaultPoint {
  name: FaultPointName;
  /** Fire on the n-th hit of the point in this process (1 = the first). */
  n: number;
}

export interface Faults {
  hit(point: FaultPointName): void;
}

export const NO_FAULTS: Faults = Object.freeze({ hit() {} });

/** Parses `name:n` (`name` alone means the first hit); throws a message naming the problem. */
export function parseFaultPoint(text: string): FaultPoint {
  const m = /^([a-z.-]+)(?::(\d+))?$/.exec(text.trim());
  if (!m) throw new Error(`expected <point>:<n>, got '${text}'`);
  const name = m[1] as FaultPointName;
  if (!FAULT_POINTS.includes(name)) throw new Error(`unknown fault point '${m[1]}' (one of ${FAULT_POINTS.join(', ')})`);
  const n = m[2] === undefined ? 1 : Number(m[2]);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`fault point hit count must be >= 1, got '${m[2]}'`);
  return { name, n };
}

/**
 * Faults for one process: SIGKILL on the n-th hit of the chosen point. The
 * kill is synchronous from the caller's view (no await, no cleanup runs).
 */
export function faultsFor(point: FaultPoint | null | undefined, die: () => void = () => process.kill(process.pid, 'SIGKILL')): Faults {
  if (!point) return NO_FAULTS;
  let hits = 0;
  return {
    hit(name) {
      if (name !== point.name) return;
      hits += 1;
      if (hits === point.n) die();
    },
  };
}
