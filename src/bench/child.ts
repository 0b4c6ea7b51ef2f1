// Child processes of the benchmark: start one (a measuring worker, or
// PyTorch), collect the JSON lines it prints, and kill it when it runs past
// its limit, noting how long after 'ready' that was (a capped run proves a
// bound from it). Nothing here knows what is measured.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerJob, WorkerLine } from './protocol.js';

/** The measuring child: a module of this layer, started by path (under tsx unless this is the compiled build). */
const COMPILED = import.meta.url.endsWith('.js');
const WORKER_ENTRY = fileURLToPath(new URL(COMPILED ? './worker.js' : './worker.ts', import.meta.url));

export interface ChildOutcome {
  lines: WorkerLine[];
  stdout: string;
  code: number | null;
  /** Seconds after the child reported ready at which it was killed for running past its limit. */
  killedAfter?: number;
  stderr: string;
  spawnError?: string;
}

export function runChild(cmd: string, args: string[], limitSeconds: number, env: NodeJS.ProcessEnv = process.env): Promise<ChildOutcome> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: WorkerLine[] = [];
    let stdout = '';
    let stderr = '';
    let pending = '';
    let readyAt = performance.now();
    let killedAfter: number | undefined;
    const timer = setTimeout(() => {
      killedAfter = (performance.now() - readyAt) / 1000;
      child.kill('SIGKILL');
    }, limitSeconds * 1000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const text = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (!text.startsWith('{"type"')) continue;
        try {
          const line = JSON.parse(text) as WorkerLine;
          if (line.type === 'ready') readyAt = performance.now();
          lines.push(line);
        } catch {
          // A library printed something brace-shaped; not ours.
        }
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      done({ lines, stdout, code: null, stderr, spawnError: err.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ lines, stdout, code, killedAfter, stderr });
    });
  });
}

/** A measuring child (worker.ts) on one backend, given its job. */
export function runWorkerChild(job: WorkerJob, limitSeconds: number, env?: NodeJS.ProcessEnv): Promise<ChildOutcome> {
  const loader = COMPILED ? [] : ['--import', import.meta.resolve('tsx')];
  return runChild(process.execPath, [...loader, WORKER_ENTRY, JSON.stringify(job)], limitSeconds, env);
}

/**
 * A measuring child from the compiled build (dist/, built first where src/
 * is newer: `npm run build -- --if-stale`), as the service runs its code: for
 * memory, where tsx's loader and transformed modules in every thread would
 * count. The build's own failure comes back as the child's.
 */
/** The longest the build before a compiled child may take (a cold `tsc` here takes about a minute). */
const BUILD_LIMIT_MS = 600_000;

export function runCompiledWorkerChild(job: WorkerJob, limitSeconds: number, env?: NodeJS.ProcessEnv): Promise<ChildOutcome> {
  if (COMPILED) return runWorkerChild(job, limitSeconds, env);
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const build = spawnSync('npm', ['run', '--silent', 'build', '--', '--if-stale'], { cwd: root, encoding: 'utf8', timeout: BUILD_LIMIT_MS });
  if (build.status !== 0) {
    const stderr = `${build.stdout ?? ''}${build.stderr ?? ''}`.slice(-4000) || (build.error ? `npm run build: ${build.error.message}` : `npm run build exited ${build.status}`);
    return Promise.resolve({ lines: [], stdout: '', code: build.status, stderr, spawnError: build.error?.message });
  }
  return runChild(process.execPath, [fileURLToPath(new URL('../../dist/bench/worker.js', import.meta.url)), JSON.stringify(job)], limitSeconds, env);
}

/** The last line a child wrote on stderr, or its exit status. */
export const lastLine = (r: ChildOutcome) => r.stderr.trim().split('\n').at(-1) || `exit ${r.code}`;

export function lineOf<T extends WorkerLine['type']>(r: ChildOutcome, type: T): Extract<WorkerLine, { type: T }> | undefined {
  return r.lines.find((l): l is Extract<WorkerLine, { type: T }> => l.type === type);
}
