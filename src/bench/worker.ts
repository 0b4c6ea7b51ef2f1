// The measuring child the benchmark planner starts once per backend:
// `node --import tsx src/bench/worker.ts '<WorkerJob as JSON>'`. It
// initialises the backend it was given, runs the measurements and prints one
// JSON line per event (protocol.ts); the exit status is 0 when all ran.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initBackend, BackendUnavailableError, type BackendInfo } from '../runtime/backend.js';
import { loadEngineConfig } from '../runtime/config.js';
import { measureImpRss, measureParallelTrials, measureTraining, STEP_PROFILERS } from '../engine/training/bench.js';
import type { WorkerJob, WorkerLine } from './protocol.js';

const emit = (line: WorkerLine) => process.stdout.write(`${JSON.stringify(line)}\n`);

export async function runWorker(job: WorkerJob): Promise<number> {
  let backend: BackendInfo;
  try {
    backend = await initBackend({ prefer: job.backend, wasmThreads: job.wasmThreads });
  } catch (err) {
    emit(err instanceof BackendUnavailableError ? { type: 'unavailable', message: err.message } : { type: 'error', message: (err as Error).message });
    return 1;
  }
  emit({ type: 'ready', backend });
  // TICKETSMITH_MLP reaches the measured loop as it reaches a run's (the "TF.js kernels" rows force tfjs).
  const { loop } = loadEngineConfig();
  try {
    if (job.kind === 'parallel') {
      const result = await measureParallelTrials({
        model: job.model,
        batchSize: job.batchSize,
        steps: job.steps,
        parallelism: job.parallelism,
        repeats: job.repeats,
        backend: backend.name,
        loop,
      });
      emit({ type: 'parallel', result });
      return 0;
    }
    if (job.kind === 'rss') {
      const { model, rounds, densities, steps, parallelism, examples, evalExamples, batchSize } = job;
      emit({ type: 'rss', result: { ...(await measureImpRss({ model, rounds, densities, steps, parallelism, examples, evalExamples, batchSize, backend: backend.name, loop })), mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? null } });
      return 0;
    }
    if (job.kind === 'profile') {
      for (const profiler of Object.values(STEP_PROFILERS)) {
        const result = await profiler({ model: job.model, batchSize: job.batchSize, repeats: job.repeats, density: job.density });
        if (result) emit({ type: 'profile', result });
      }
      return 0;
    }
    for (const item of job.plan) {
      const result = await measureTraining({
        model: item.model,
        batchSize: job.batchSize,
        density: item.density,
        seconds: item.seconds,
        maxSteps: item.maxSteps ?? 1e6,
        warmupSteps: item.warmup,
        tfjsLoop: item.tfjsLoop,
        loop: item.cnnLoop === true ? 'cnn-simd' : loop,
        zeroFraction: item.zeroFraction,
        onStep: job.everyStep === true ? ({ step }) => emit({ type: 'step', model: item.model, step }) : undefined,
      });
      emit({ type: 'result', result, tfjsLoop: item.tfjsLoop === true, ...(item.cnnLoop === true ? { cnnLoop: true } : {}) });
    }
    return 0;
  } catch (err) {
    emit({ type: 'error', message: (err as Error).message });
    return 1;
  }
}

// Run as a process (not when imported): the job is the one argument.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let job: WorkerJob;
  try {
    job = JSON.parse(process.argv[2] ?? '') as WorkerJob;
  } catch {
    emit({ type: 'error', message: `bench worker: expected a job as JSON, got '${process.argv[2] ?? ''}'` });
    process.exit(2);
  }
  process.exitCode = await runWorker(job);
}
