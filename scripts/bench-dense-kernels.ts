// Times the dense kernels of src/runtime/simd/mlp.c on LeNet-300-100's
// shapes (batch 60: 784 -> 300 -> 100 -> 10) at several fractions of nonzero
// inputs, for one or more builds of the module in the same process, and
// prints each build's time per training step's kernels (Adam included) and its ratio to the
// first build. Used to place the path choices in mlp.c: build variants that
// always take one path (DENSE_BLOCKED_COST 100 and DENSE_BLOCKED_MIN_LIVE 1.01:
// one row at a time; both 0: four rows at a time), e.g. into /tmp as modules
// exporting WASM_BASE64, and compare them:
//   npx tsx scripts/bench-dense-kernels.ts /tmp/rows.gen.ts /tmp/blocked.gen.ts
// A file's relaxed-SIMD build (WASM_RELAXED_BASE64) is FILE#relaxed. With no
// arguments it times the committed plain and relaxed builds side by side. CPU
// time of this thread, fastest of interleaved rounds, so a busy machine
// disturbs it less. Seconds.
import { WasmArena, simdBuilds } from '../src/runtime/simd/arena.js';
import type { MlpExports } from '../src/runtime/simd/mlp-kernels.js';
import { mulberry32 } from '../src/engine/rng.js';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const builds = process.argv.slice(2);
if (builds.length === 0) {
  const committed = resolve(import.meta.dirname, '../src/runtime/simd/mlp-wasm.gen.ts');
  builds.push(committed, `${committed}#relaxed`);
}
const batch = 60;
const sizes = [784, 300, 100, 10];
const fractions = [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1];

interface Bench {
  k: MlpExports;
  run(): void;
  fill(nonzero: number, seed: number): void;
}

async function load(arg: string): Promise<Bench> {
  const [file, variant] = arg.split('#') as [string, string | undefined];
  const { WASM_BASE64, WASM_RELAXED_BASE64 } = (await import(pathToFileURL(file).href)) as { WASM_BASE64: string; WASM_RELAXED_BASE64?: string };
  const memory = new WebAssembly.Memory({ initial: 2 });
  const mod = simdBuilds(WASM_BASE64, WASM_RELAXED_BASE64 ?? '').build(variant === 'relaxed' ? 'relaxed' : 'plain');
  if (!mod) throw new Error(`${arg}: this engine cannot compile it`);
  const k = new WebAssembly.Instance(mod, { env: { memory } }).exports as unknown as MlpExports;
  const mem = new WasmArena(memory, k.__heap_base.value as number);
  const acts = sizes.map((n) => mem.alloc(batch * n));
  const deltas = sizes.map((n) => mem.alloc(batch * n));
  const layers = sizes.slice(1).map((o, l) => {
    const n = sizes[l]! * o;
    return { w: mem.alloc(n), b: mem.alloc(o), gw: mem.alloc(n), gb: mem.alloc(o), m: mem.alloc(n + o), v: mem.alloc(n + o) };
  });
  const idx = mem.alloc(1000);
  const val = mem.alloc(1000);
  const fill = (nonzero: number, seed: number): void => {
    const next = mulberry32(seed);
    const set = (p: number, n: number, nz: number): void => {
      const v = mem.f32(p, n);
      for (let i = 0; i < n; i++) v[i] = next() < nz ? next() * 2 - 1 : 0;
    };
    set(acts[0]!, batch * sizes[0]!, nonzero);
    layers.forEach((l, i) => set(l.w, sizes[i]! * sizes[i + 1]!, 1));
    for (let i = 1; i < sizes.length; i++) set(deltas[i]!, batch * sizes[i]!, 1);
  };
  // One step's kernels, as mlp-simd.ts calls them (hidden ReLU outputs are whatever the forward pass gives).
  const run = (): void => {
    for (let l = 0; l < layers.length; l++) {
      const L = layers[l]!;
      k.dense_forward(acts[l]!, batch, sizes[l]!, L.w, L.b, acts[l + 1]!, sizes[l + 1]!, l < layers.length - 1 ? 1 : 0, idx, val);
    }
    for (let l = layers.length - 1; l >= 0; l--) {
      const L = layers[l]!;
      k.dense_grad_weights(acts[l]!, batch, sizes[l]!, deltas[l + 1]!, sizes[l + 1]!, L.gw, L.gb, idx, val);
      if (l > 0) k.dense_grad_input(deltas[l + 1]!, batch, sizes[l + 1]!, L.w, sizes[l]!, acts[l]!, 1, deltas[l]!);
    }
    // The optimiser's share of a step (Adam, as the engine runs it; small learning rate so weights barely move).
    layers.forEach((L, l) => {
      const n = sizes[l]! * sizes[l + 1]!;
      k.adam(L.w, L.gw, L.m, L.v, 0, n, 1e-6, 0.9, 0.999, 1e-7, 0.1, 0.001);
      k.adam(L.b, L.gb, L.m + 4 * n, L.v + 4 * n, 0, sizes[l + 1]!, 1e-6, 0.9, 0.999, 1e-7, 0.1, 0.001);
    });
  };
  return { k, run, fill };
}

const benches = await Promise.all(builds.map(load));
console.log(`ms per step's kernels incl. Adam (LeNet-300-100, batch ${batch}), CPU time, fastest of 80 interleaved steps; ratio = first build's time / this build's`);
console.log(['input nonzero', ...builds.map((b, i) => `#${i} ${b.split('/').pop()}`)].join('  |  '));
for (const f of fractions) {
  benches.forEach((b) => b.fill(f, 42));
  const times: number[][] = benches.map(() => []);
  for (let round = 0; round < 80; round++) {
    benches.forEach((b, i) => {
      // CPU time of this thread, not wall time: on a shared machine the time spent descheduled is not ours.
      const t0 = process.cpuUsage();
      b.run();
      const t = process.cpuUsage(t0);
      times[i]!.push((t.user + t.system) / 1000);
    });
  }
  const med = times.map((t) => Math.min(...t));
  console.log([`${f.toFixed(2)}`.padEnd(13), ...med.map((m) => `${m.toFixed(3)} ms (${(med[0]! / m).toFixed(2)}x)`)].join('  |  '));
}
