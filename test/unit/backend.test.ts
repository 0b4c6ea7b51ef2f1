// Backend selection: automatic choice (native packages hidden from the child
// processes by test/fixtures/hide-native.mjs, so WASM, also where
// `npm run native-backend` built tfjs-node), TICKETSMITH_BACKEND / prefer overrides, clear errors, the
// cached result, and WASM threads (default and requested). Scenarios run in child Node
// processes because a process selects its backend only once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { defaultWasmThreads } from '../../src/runtime/backend.js';

const backendModule = fileURLToPath(new URL('../../src/runtime/backend.ts', import.meta.url));
const hideNative = fileURLToPath(new URL('../fixtures/hide-native.mjs', import.meta.url));

interface Outcome {
  ok: boolean;
  info?: Record<string, unknown>;
  error?: { name: string; message: string };
  extra?: unknown;
}

/** Runs `body` (an async function body given `m`, the backend module) in a child process. */
function inChild(body: string, env: Record<string, string> = {}): Promise<Outcome> {
  const script = `
    const m = await import(${JSON.stringify(backendModule)});
    try {
      const r = await (async () => { ${body} })();
      console.log('RESULT' + JSON.stringify({ ok: true, ...r }));
    } catch (e) {
      console.log('RESULT' + JSON.stringify({ ok: false, error: { name: e.name, message: e.message } }));
    }`;
  const childEnv = { ...process.env, ...env };
  for (const k of ['TICKETSMITH_BACKEND', 'TICKETSMITH_WASM_THREADS']) if (!(k in env)) delete childEnv[k];
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--import', hideNative, '--input-type=module', '-e', script],
      { env: childEnv, timeout: 30_000 },
      (err, stdout, stderr) => {
        const line = stdout.split('\n').find((l) => l.startsWith('RESULT'));
        if (line === undefined) return reject(new Error(`child failed: ${err?.message}\n${stderr.slice(-2000)}`));
        resolve(JSON.parse(line.slice('RESULT'.length)) as Outcome);
      },
    );
  });
}

interface Attempt {
  info?: Record<string, unknown>;
  error?: { name: string; message: string };
}

/**
 * One process walks through the failing requests first (a failed selection is
 * not cached, so the process can still select afterwards), then the default.
 */
let walk: Promise<Outcome> | undefined;
function walkthrough(): Promise<Outcome> {
  walk ??= inChild(`
    const attempt = async (env, opts) => {
      Object.assign(process.env, env);
      try { return { info: await m.initBackend(opts) }; }
      catch (e) { return { error: { name: e.name, message: e.message } }; }
      finally { for (const k of Object.keys(env)) delete process.env[k]; }
    };
    const unknown = await attempt({ TICKETSMITH_BACKEND: 'gpu' });
    const threads = await attempt({ TICKETSMITH_WASM_THREADS: 'many' });
    const tfNode = await attempt({}, { prefer: 'tensorflow' });
    const tfGpu = await attempt({}, { prefer: 'tensorflow-gpu' });
    const before = m.getBackendInfo() ?? null;
    const chosen = await attempt({});
    const again = await m.initBackend();
    const switching = await attempt({}, { prefer: 'cpu' });
    const tf = await import('@tensorflow/tfjs');
    return { extra: { unknown, threads, tfNode, tfGpu, before, chosen, switching,
      same: again === m.getBackendInfo() && again.name === chosen.info?.name, active: tf.getBackend() } };`);
  return walk;
}

async function attempts(): Promise<Record<string, Attempt> & { before: unknown; same: boolean; active: string }> {
  const r = await walkthrough();
  assert.ok(r.ok, JSON.stringify(r.error));
  return r.extra as Record<string, Attempt> & { before: unknown; same: boolean; active: string };
}

test('without native packages it picks WASM with SIMD and says why it skipped the others', async () => {
  const a = await attempts();
  assert.equal(a.before, null);
  const info = a.chosen!.info!;
  assert.equal(info.name, 'wasm');
  assert.equal(info.package, '@tensorflow/tfjs-backend-wasm');
  assert.equal(info.version, '4.22.0');
  assert.equal(info.simd, true);
  // The default: every core (up to 8) in a main thread; trial-pool worker threads take one.
  assert.equal(info.threads, defaultWasmThreads(true));
  assert.equal(defaultWasmThreads(true), Math.min(8, availableParallelism()));
  assert.equal(defaultWasmThreads(false), 1);
  assert.deepEqual(info.skipped, [
    { name: 'tensorflow-gpu', reason: 'not installed' },
    { name: 'tensorflow', reason: 'not installed' },
  ]);
  assert.equal(a.active, 'wasm');
});

test('later calls return the cached choice and refuse to switch backends', async () => {
  const a = await attempts();
  assert.equal(a.same, true);
  assert.match(a.switching!.error!.message, /'wasm' is already initialised.*cannot switch to 'cpu'/);
});

test('an unknown TICKETSMITH_BACKEND value is rejected with the valid names', async () => {
  const a = await attempts();
  assert.equal(
    a.unknown!.error!.message,
    "Unknown TF.js backend 'gpu' (from TICKETSMITH_BACKEND); expected one of: tensorflow-gpu, tensorflow, wasm, cpu",
  );
});

test('requesting an absent native backend names the package and how to get it', async () => {
  const a = await attempts();
  assert.equal(a.tfNode!.error!.name, 'BackendUnavailableError');
  assert.match(a.tfNode!.error!.message, /@tensorflow\/tfjs-node is not installed/);
  assert.match(a.tfNode!.error!.message, /npm run native-backend/);
  assert.match(a.tfGpu!.error!.message, /@tensorflow\/tfjs-node-gpu is not installed.*CUDA/);
});

test('a malformed TICKETSMITH_WASM_THREADS is rejected', async () => {
  const a = await attempts();
  assert.match(a.threads!.error!.message, /Invalid WASM thread count 'many' \(from TICKETSMITH_WASM_THREADS\)/);
});

test('TICKETSMITH_BACKEND=cpu selects the pure-JS backend; the prefer option beats it', async () => {
  const [cpu, preferred] = await Promise.all([
    inChild(`
      const info = await m.initBackend();
      const tf = await import('@tensorflow/tfjs');
      return { info, extra: tf.getBackend() };`, { TICKETSMITH_BACKEND: 'cpu' }),
    inChild(`return { info: await m.initBackend({ prefer: 'wasm' }) };`, { TICKETSMITH_BACKEND: 'cpu' }),
  ]);
  assert.ok(cpu.ok, JSON.stringify(cpu.error));
  assert.equal(cpu.info!.name, 'cpu');
  assert.equal(cpu.extra, 'cpu');
  assert.ok(preferred.ok, JSON.stringify(preferred.error));
  assert.equal(preferred.info!.name, 'wasm');
});

test('TICKETSMITH_WASM_THREADS=2 runs a 2-thread pool that computes what cpu computes and lets the process exit', async () => {
  const r = await inChild(`
    const info = await m.initBackend();
    const tf = await import('@tensorflow/tfjs');
    const conv = () => tf.tidy(() => {
      const x = tf.range(0, 2 * 16 * 16 * 8).reshape([2, 16, 16, 8]).div(1000).sin();
      const w = tf.range(0, 3 * 3 * 8 * 16).reshape([3, 3, 8, 16]).div(100).cos();
      return Array.from(tf.conv2d(x, w, 1, 'same').dataSync());
    });
    const wasm = conv();
    await tf.setBackend('cpu');
    const cpu = conv();
    return { info, extra: Math.max(...wasm.map((v, i) => Math.abs(v - cpu[i]))) };`, { TICKETSMITH_WASM_THREADS: '2' });
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.equal(r.info!.name, 'wasm');
  assert.equal(r.info!.threads, 2);
  assert.ok((r.extra as number) < 1e-4, `max |wasm - cpu| = ${String(r.extra)}`);
});
