// Backend selection: automatic choice (native packages are not installed
// here, so WASM), TICKETSMITH_BACKEND / prefer overrides, clear errors, the
// cached result, and opt-in WASM threads. Each scenario runs in a fresh Node
// process because a process selects its backend once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const backendModule = fileURLToPath(new URL('../../src/runtime/backend.ts', import.meta.url));

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
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { env: childEnv, timeout: 30_000 },
      (err, stdout, stderr) => {
        const line = stdout.split('\n').find((l) => l.startsWith('RESULT'));
        if (line === undefined) return reject(new Error(`child failed: ${err?.message}\n${stderr.slice(-2000)}`));
        resolve(JSON.parse(line.slice('RESULT'.length)) as Outcome);
      },
    );
  });
}

test('without native packages it picks WASM with SIMD and says why it skipped the others', async () => {
  const r = await inChild(`
    const before = m.getBackendInfo();
    const info = await m.initBackend();
    const again = await m.initBackend();
    const tf = await import('@tensorflow/tfjs');
    return { info, extra: { before: before ?? null, same: again === info && m.getBackendInfo() === info, active: tf.getBackend() } };`);
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.equal(r.info!.name, 'wasm');
  assert.equal(r.info!.package, '@tensorflow/tfjs-backend-wasm');
  assert.equal(r.info!.version, '4.22.0');
  assert.equal(r.info!.simd, true);
  assert.equal(r.info!.threads, 1);
  assert.deepEqual(r.info!.skipped, [
    { name: 'tensorflow-gpu', reason: 'not installed' },
    { name: 'tensorflow', reason: 'not installed' },
  ]);
  assert.deepEqual(r.extra, { before: null, same: true, active: 'wasm' });
});

test('TICKETSMITH_BACKEND=cpu selects the pure-JS backend', async () => {
  const r = await inChild(`
    const info = await m.initBackend();
    const tf = await import('@tensorflow/tfjs');
    return { info, extra: tf.getBackend() };`, { TICKETSMITH_BACKEND: 'cpu' });
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.equal(r.info!.name, 'cpu');
  assert.equal(r.extra, 'cpu');
});

test('the prefer option beats TICKETSMITH_BACKEND, and a later call cannot switch', async () => {
  const r = await inChild(`
    const info = await m.initBackend({ prefer: 'wasm' });
    let err = null;
    try { await m.initBackend({ prefer: 'cpu' }); } catch (e) { err = e.message; }
    return { info, extra: err };`, { TICKETSMITH_BACKEND: 'cpu' });
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.equal(r.info!.name, 'wasm');
  assert.match(String(r.extra), /'wasm' is already initialised.*cannot switch to 'cpu'/);
});

test('an unknown TICKETSMITH_BACKEND value is rejected with the valid names', async () => {
  const r = await inChild(`return { info: await m.initBackend() };`, { TICKETSMITH_BACKEND: 'gpu' });
  assert.equal(r.ok, false);
  assert.equal(
    r.error!.message,
    "Unknown TF.js backend 'gpu' (from TICKETSMITH_BACKEND); expected one of: tensorflow-gpu, tensorflow, wasm, cpu",
  );
});

test('requesting an absent native backend names the package and how to get it', async () => {
  const r = await inChild(`return { info: await m.initBackend({ prefer: 'tensorflow' }) };`);
  assert.equal(r.ok, false);
  assert.equal(r.error!.name, 'BackendUnavailableError');
  assert.match(r.error!.message, /@tensorflow\/tfjs-node is not installed/);
  assert.match(r.error!.message, /npm run native-backend/);
  const gpu = await inChild(`return { info: await m.initBackend({ prefer: 'tensorflow-gpu' }) };`);
  assert.equal(gpu.ok, false);
  assert.match(gpu.error!.message, /@tensorflow\/tfjs-node-gpu is not installed.*CUDA/);
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

test('a malformed TICKETSMITH_WASM_THREADS is rejected', async () => {
  const r = await inChild(`return { info: await m.initBackend() };`, { TICKETSMITH_WASM_THREADS: 'many' });
  assert.equal(r.ok, false);
  assert.match(r.error!.message, /Invalid WASM thread count 'many' \(from TICKETSMITH_WASM_THREADS\)/);
});
