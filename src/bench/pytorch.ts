// The PyTorch baseline: torch_train.py (beside this file) run with the
// Python the user named, for one model at one thread count. PyTorch is
// optional: a missing interpreter or torch (exit status 3) is reported as
// such, and the benchmark goes on without a baseline.
import { fileURLToPath } from 'node:url';
import { lastLine, runChild } from './child.js';

const TORCH_SCRIPT = fileURLToPath(new URL('./torch_train.py', import.meta.url));

/** What torch_train.py prints as its one JSON line. */
export interface TorchResult {
  torch: string;
  threads: number;
  examplesPerSecond: number;
  medianStepMs: number;
  steps: number;
  /** Parameters + BN statistics of the PyTorch model (to check it matches ours). */
  params?: number;
}

export interface TorchRun {
  python: string;
  model: string;
  batchSize: number;
  warmupSteps: number;
  seconds: number;
  threads: number;
}

export type TorchOutcome =
  | { kind: 'measured'; result: TorchResult }
  /** No Python, or no torch in it: skip the baseline for the rest of the run. */
  | { kind: 'missing'; message: string }
  | { kind: 'failed'; message: string };

export async function measureTorch(o: TorchRun): Promise<TorchOutcome> {
  const r = await runChild(
    o.python,
    [TORCH_SCRIPT, '--model', o.model, '--batch', String(o.batchSize), '--warmup', String(o.warmupSteps), '--seconds', String(o.seconds), '--threads', String(o.threads)],
    120 + 3 * o.seconds,
  );
  if (r.spawnError) return { kind: 'missing', message: `could not run '${o.python}': ${r.spawnError}` };
  if (r.code === 3) return { kind: 'missing', message: r.stderr.trim() };
  const json = r.stdout.split('\n').find((l) => l.startsWith('{"torch"'));
  if (r.code !== 0 || !json) return { kind: 'failed', message: lastLine(r) };
  return { kind: 'measured', result: JSON.parse(json) as TorchResult };
}
