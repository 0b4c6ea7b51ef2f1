// What a compression method is: given a run session, train its rounds
// (committing each to the session's sink as it finishes, so a rerun resumes)
// and return the run's result. The pipeline (run.ts) commits the result and
// ends the run, so one method can run another inside its own run.
import type { RunSession } from '../session.js';
import type { RunResultRecord } from '../sink.js';
import type { Dataset } from '../types.js';

export interface RunMethod {
  run(session: RunSession): Promise<RunResultRecord>;
}

/** `{ classNames }` for a result's summary when the data names its classes (image folders), else nothing. */
export function classNamesOf(dataset: Dataset): { classNames?: string[] } {
  return dataset.classNames ? { classNames: [...dataset.classNames] } : {};
}
