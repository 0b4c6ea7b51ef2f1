// `ticketsmith prune`: run one compression job locally, without a server,
// checkpointing into runs/<name>/ so a rerun resumes after the last round.
import { join } from 'node:path';
import { RunSpecSchema, resolveSpec, runName, SpecError } from '../engine/spec.js';
import { runCompression } from '../engine/run.js';
import type { EngineEvent, RoundMetrics } from '../engine/sink.js';
import { FileSink } from '../engine/sinks/file.js';
import { withEngineConfig, type DataAccess } from '../engine/data/index.js';
import { loadEngineConfig } from '../runtime/config.js';
import { flagHelp, flagsOf, kebab, parseFlags } from './flags.js';
import { pct } from '../engine/report/format.js';
import { roundRows, roundsTable } from './rounds-table.js';

/**
 * The operator runs prune on their own machine with their own references: no
 * tenant is involved, so any file may be read and any URL fetched (plain fetch,
 * not the outbound guard the worker applies to tenant input).
 */
const OPERATOR_ACCESS: DataAccess = { fetch: (url, init) => fetch(url, init), files: { kind: 'any' } };

function progressBar(e: Extract<EngineEvent, { kind: 'progress' }>): string {
  const width = 30;
  const filled = Math.round((e.step / e.totalSteps) * width);
  const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
  const loss = e.validationLoss === undefined ? '' : ` val loss ${e.validationLoss.toFixed(4)}`;
  return `round ${e.round} ${e.trial.padEnd(7)} [${bar}] ${e.step}/${e.totalSteps} ${e.examplesPerSecond.toFixed(0)} ex/s eta ${Math.ceil(e.etaSeconds)}s${loss}`;
}

export const pruneUsage = () => `usage: ticketsmith prune [flags]

Runs a compression job (IMP or filter pruning) locally; checkpoints go to --out/<run name>/.
Run-spec flags (lists are comma-separated):
${flagHelp(flagsOf(RunSpecSchema))}
Other flags:
  --out <dir>                                  where runs are kept (default "runs")
  --json                                       print events and the result as JSON lines
`;

export async function pruneCommand(argv: string[]): Promise<number> {
  const { spec: raw, options } = parseFlags(argv, flagsOf(RunSpecSchema), { out: 'string', json: 'boolean' });
  let spec;
  try {
    spec = resolveSpec(raw);
  } catch (err) {
    if (err instanceof SpecError) {
      process.stderr.write(`error: --${kebab(err.field)}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const json = options.json === true;
  const dir = join(String(options.out ?? 'runs'), runName(spec));
  const tty = process.stderr.isTTY === true;
  let lastLine = 0;
  const onEvent = (e: EngineEvent) => {
    if (json) {
      if (e.kind !== 'progress') process.stdout.write(`${JSON.stringify(e)}\n`);
      return;
    }
    if (e.kind === 'progress') {
      const now = Date.now();
      if (tty) process.stderr.write(`\r${progressBar(e)}\x1b[K`);
      else if (now - lastLine > 5000 || e.step === e.totalSteps) {
        lastLine = now;
        process.stderr.write(`${progressBar(e)}\n`);
      }
    } else if (e.kind === 'run-start') {
      process.stderr.write(`run ${e.name} on ${e.backend}: ${e.lastRound} pruning rounds${e.resumedFrom ? `, resuming after round ${e.resumedFrom - 1}` : ''}\n`);
    } else if (e.kind === 'trial-end') {
      if (tty) process.stderr.write('\n');
      process.stderr.write(`round ${e.round} ${e.trial}: test accuracy ${pct(e.metrics.finalTestAccuracy)}, early stop at ${e.metrics.earlyStopIteration}\n`);
    } else if (e.kind === 'round-start') {
      process.stderr.write(`round ${e.round}: ${pct(e.density)} of weights remain\n`);
    }
  };
  const engine = loadEngineConfig();
  const result = await runCompression(spec, { sink: new FileSink(dir), onEvent, data: withEngineConfig(OPERATOR_ACCESS, engine), engine });
  if (json) {
    process.stdout.write(`${JSON.stringify({ kind: 'result', name: result.name, dir, verdict: result.verdict, summary: result.summary })}\n`);
  } else {
    const rounds = (result.summary.rounds ?? []) as RoundMetrics[];
    process.stdout.write(`\n${roundsTable(roundRows(rounds))}\n\n${result.verdict.summary}\nticket: ${join(dir, 'result', 'ticket')}\n`);
  }
  return 0;
}
