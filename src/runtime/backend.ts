// Picks and initialises the TF.js backend once per process (or worker
// thread): CUDA (tfjs-node-gpu) > native TensorFlow (tfjs-node) > WASM (SIMD,
// optional threads, with Ticketsmith's kernel overrides) > pure-JS cpu.
// TICKETSMITH_BACKEND or `prefer` forces one; TICKETSMITH_WASM_THREADS or
// `wasmThreads` sets WASM's XNNPACK threads (default: defaultWasmThreads;
// see kernels/wasm-threads.ts).
import { availableParallelism } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount, version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { installNativeKernelOverrides } from './kernels/native.js';
import { installWasmKernelOverrides } from './kernels/registry.js';
import { prepareWasmThreads } from './kernels/wasm-threads.js';

export const BACKEND_NAMES = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface BackendInfo {
  name: BackendName;
  /** npm package that provides it. */
  package: string;
  /** WASM only: SIMD binary in use. */
  simd?: boolean;
  /** WASM only: XNNPACK threads. */
  threads?: number;
  /** Version of the providing package. */
  version: string;
  /** Backends tried first and passed over in automatic selection, with why. */
  skipped?: { name: BackendName; reason: string }[];
}

export interface InitBackendOptions {
  /** One of BACKEND_NAMES; overrides TICKETSMITH_BACKEND. */
  prefer?: string;
  /** WASM threads (>= 2 turns threads on); overrides TICKETSMITH_WASM_THREADS. */
  wasmThreads?: number;
}

export class BackendUnavailableError extends Error {
  constructor(
    readonly backend: BackendName,
    message: string,
  ) {
    super(message);
    this.name = 'BackendUnavailableError';
  }
}

const PACKAGES: Record<BackendName, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

const HOW_TO_GET: Record<BackendName, string> = {
  'tensorflow-gpu':
    'build it with `npm run native-backend -- --gpu` (TensorFlow C libraries for CUDA 12 and cuDNN 9; see scripts/native-backend.sh)',
  tensorflow: 'build it with `npm run native-backend` (scripts/native-backend.sh)',
  wasm: 'it is a dependency of Ticketsmith: run `npm ci`',
  cpu: 'it is a dependency of Ticketsmith: run `npm ci`',
};

let selected: Promise<BackendInfo> | undefined;
let info: BackendInfo | undefined;

function parseName(value: string, source: string): BackendName {
  const name = value.trim();
  if ((BACKEND_NAMES as readonly string[]).includes(name)) return name as BackendName;
  throw new Error(`Unknown TF.js backend '${value}' (from ${source}); expected one of: ${BACKEND_NAMES.join(', ')}`);
}

/** Most XNNPACK threads a process takes by default, however many cores it sees. */
const MAX_DEFAULT_THREADS = 8;

/**
 * XNNPACK threads when none are asked for: every core (up to 8) in a
 * process's main thread, where a run without controls trains one trial at a
 * time (conv nets then use all cores inside each step); one in worker
 * threads, where a trial pool already spreads a round's trials over the cores.
 */
export function defaultWasmThreads(mainThread: boolean = isMainThread): number {
  return mainThread ? Math.max(1, Math.min(MAX_DEFAULT_THREADS, availableParallelism())) : 1;
}

function parseThreads(value: string | number | undefined, source: string): number {
  if (value === undefined || value === '') return defaultWasmThreads();
  const n = typeof value === 'number' ? value : Number(value.trim());
  if (!Number.isInteger(n) || n < 0) throw new Error(`Invalid WASM thread count '${value}' (from ${source}); expected an integer >= 0`);
  return Math.max(n, 1);
}

function isMissingModule(err: unknown, pkg: string): boolean {
  const e = err as { code?: string; message?: string };
  return (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') && (e.message ?? '').includes(pkg);
}

/** A native package loads (its addon included) and runs an op; `missing` when it is simply not installed. */
async function tryNative(name: 'tensorflow-gpu' | 'tensorflow'): Promise<BackendInfo | { missing: boolean; reason: string }> {
  const pkg = PACKAGES[name];
  let mod: { version?: { [k: string]: string } | string };
  try {
    // A computed specifier: these packages are optional and not installed by
    // default, so tsc must not try to resolve (or type) them.
    mod = (await import(pkg)) as typeof mod;
  } catch (err) {
    return { missing: isMissingModule(err, pkg), reason: (err as Error).message };
  }
  try {
    if (!(await tf.setBackend('tensorflow'))) return { missing: false, reason: `${pkg} loaded but its backend did not initialise` };
    const three = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0]);
    if (three !== 3) return { missing: false, reason: `${pkg} computed 1 + 2 = ${three}` };
    installNativeKernelOverrides();
  } catch (err) {
    return { missing: false, reason: `${pkg} loaded but failed: ${(err as Error).message}` };
  }
  const v = mod.version;
  const version = typeof v === 'string' ? v : (v?.['tfjs-node'] ?? tf.version_core);
  return { name, package: pkg, version };
}

async function initWasm(threads: number): Promise<BackendInfo> {
  installWasmKernelOverrides();
  const finishThreads = threads > 1 ? prepareWasmThreads(threads) : undefined;
  let ok: boolean;
  try {
    ok = await tf.setBackend('wasm');
  } finally {
    finishThreads?.();
  }
  if (!ok) throw new BackendUnavailableError('wasm', `${PACKAGES.wasm} did not initialise; ${HOW_TO_GET.wasm}`);
  return {
    name: 'wasm',
    package: PACKAGES.wasm,
    simd: (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean,
    threads: getThreadsCount(),
    version: version_wasm,
  };
}

async function initCpu(): Promise<BackendInfo> {
  if (!(await tf.setBackend('cpu'))) throw new BackendUnavailableError('cpu', `${PACKAGES.cpu} did not initialise`);
  return { name: 'cpu', package: PACKAGES.cpu, version: tf.version_core };
}

async function initNamed(name: BackendName, threads: number): Promise<BackendInfo> {
  if (name === 'wasm') return initWasm(threads);
  if (name === 'cpu') return initCpu();
  const r = await tryNative(name);
  if ('name' in r) return r;
  const what = r.missing ? `${PACKAGES[name]} is not installed` : `${PACKAGES[name]} could not be used (${r.reason})`;
  throw new BackendUnavailableError(name, `TF.js backend '${name}' was requested but ${what}; ${HOW_TO_GET[name]}`);
}

/** Threads this thread's compute may use (set when the backend is chosen). */
let computeThreadCount: number | undefined;

/**
 * Threads one training in this thread may use inside a step: the WASM thread
 * setting (TICKETSMITH_WASM_THREADS or the wasmThreads option) once a backend
 * was chosen, else defaultWasmThreads. Ticketsmith's conv engine splits each
 * batch over this many threads on every backend.
 */
export function computeThreads(): number {
  return computeThreadCount ?? defaultWasmThreads();
}

async function select(opts: InitBackendOptions): Promise<BackendInfo> {
  const envBackend = process.env.TICKETSMITH_BACKEND;
  const prefer =
    opts.prefer !== undefined && opts.prefer !== ''
      ? parseName(opts.prefer, 'the prefer option')
      : envBackend !== undefined && envBackend.trim() !== ''
        ? parseName(envBackend, 'TICKETSMITH_BACKEND')
        : undefined;
  const threads =
    opts.wasmThreads !== undefined
      ? parseThreads(opts.wasmThreads, 'the wasmThreads option')
      : parseThreads(process.env.TICKETSMITH_WASM_THREADS, 'TICKETSMITH_WASM_THREADS');
  computeThreadCount = threads;
  if (prefer !== undefined) return initNamed(prefer, threads);

  const skipped: { name: BackendName; reason: string }[] = [];
  for (const name of ['tensorflow-gpu', 'tensorflow'] as const) {
    const r = await tryNative(name);
    if ('name' in r) return { ...r, skipped };
    skipped.push({ name, reason: r.missing ? 'not installed' : r.reason });
  }
  try {
    return { ...(await initWasm(threads)), skipped };
  } catch (err) {
    skipped.push({ name: 'wasm', reason: (err as Error).message });
  }
  return { ...(await initCpu()), skipped };
}

/**
 * Selects and initialises the backend; later calls return the same info
 * (a later call naming a different backend is an error rather than a silent
 * no-op). A failed selection is not cached, so it can be retried.
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  if (selected === undefined) {
    selected = select(opts).then(
      (chosen) => (info = chosen),
      (err: unknown) => {
        selected = undefined;
        throw err;
      },
    );
  }
  const chosen = await selected;
  if (opts.prefer !== undefined && opts.prefer !== '' && parseName(opts.prefer, 'the prefer option') !== chosen.name) {
    throw new Error(`TF.js backend '${chosen.name}' is already initialised in this process; cannot switch to '${opts.prefer}'`);
  }
  return chosen;
}

/** The backend chosen by initBackend, or undefined before it has finished. */
export function getBackendInfo(): BackendInfo | undefined {
  return info;
}
