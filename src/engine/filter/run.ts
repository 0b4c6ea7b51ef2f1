// Filter pruning as its own entry point (tests, scripts): runCompression for
// a spec whose method must be `filter`. The method itself is methods/filter.ts.
import { runResolved, type RunContext } from '../run.js';
import type { RunResultRecord } from '../sink.js';
import { resolveSpec, SpecError, type RunSpec } from '../spec.js';

export async function runFilterPruning(specInput: RunSpec | unknown, ctx: RunContext): Promise<RunResultRecord> {
  const spec = resolveSpec(specInput);
  if (spec.method !== 'filter') throw new SpecError(`method: runFilterPruning runs method 'filter', got '${spec.method}'`, 'method');
  return runResolved(spec, ctx);
}
