// Job states: ONE frozen set shared by the database enum (prisma/schema.prisma
// `JobStatus`, checked by a test), the REST API, and the gRPC enum.
export const JOB_STATES = Object.freeze(['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const);
export type JobState = (typeof JOB_STATES)[number];

/** States a job never leaves. */
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set<JobState>(['succeeded', 'failed', 'cancelled']);

export function isJobState(x: unknown): x is JobState {
  return typeof x === 'string' && (JOB_STATES as readonly string[]).includes(x);
}

export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.has(state);
}
