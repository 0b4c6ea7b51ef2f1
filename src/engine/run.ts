// One compression run: resolve the spec once, open a session (dataset, model
// source, backend, sink, events), look the method up and run it, then commit
// its result (with ticket.zip, built by report/bundle.ts, and the job's plots
// as plots/*.svg, built by report/job-plots.ts) and end the run.
// The methods live in methods/ (imp: iterative magnitude pruning with
// rewinding; filter: structured filter pruning).
import type { RunResultRecord } from './sink.js';
import { resolveSpec, type RunSpec } from './spec.js';
import { availableParallelism } from 'node:os';
import { openSession, type RunContext } from './session.js';
import { getMethod } from './methods/registry.js';
import { TICKET_ZIP, ticketBundle } from './report/bundle.js';
import { jobPlotFiles, plotRoundOf } from './report/job-plots.js';
import type { RoundMetrics } from './metrics.js';

export type { RunContext };
export { rewindSource, verdictOf } from './methods/imp.js';

function parallelism(spec: RunSpec, ctx: RunContext): number {
  if (ctx.parallelism !== undefined) return Math.max(1, ctx.parallelism);
  const workers = ctx.engine?.workers;
  if (workers !== undefined) return Math.max(1, workers);
  if (spec.controls === 'none') return 1;
  return Math.max(1, Math.min(3, availableParallelism()));
}

export async function runCompression(specInput: RunSpec | unknown, ctx: RunContext): Promise<RunResultRecord> {
  return runResolved(resolveSpec(specInput), ctx);
}

/** runCompression for a spec resolveSpec already checked and filled in. */
export async function runResolved(spec: RunSpec, ctx: RunContext): Promise<RunResultRecord> {
  const method = getMethod(spec.method);
  const session = await openSession(spec, ctx, () => parallelism(spec, ctx));
  const result = withPlots(spec.method, withBundle(await method.run(session)));
  await ctx.sink.commitResult(result);
  session.emit({ kind: 'run-end', name: result.name, verdict: result.verdict });
  return result;
}

/** The result with `ticket.zip` built from it (the methods put the dataset's class names in the summary), committed with the rest. */
function withBundle(result: RunResultRecord): RunResultRecord {
  return { ...result, artifacts: { ...result.artifacts, [TICKET_ZIP]: ticketBundle(result) } };
}

/** The plots of the run's rounds (the methods list every committed round in `summary.rounds`), committed with the result. */
function withPlots(method: string, result: RunResultRecord): RunResultRecord {
  const rounds = Array.isArray(result.summary.rounds) ? (result.summary.rounds as RoundMetrics[]) : [];
  return { ...result, artifacts: { ...result.artifacts, ...jobPlotFiles(method, rounds.map(plotRoundOf)) } };
}
