// Times mlp.c's three dense kernels (forward, weight gradient, input gradient)
// per call on a dense layer with a large kernel (Conv-2's fc1: 16384 -> 256,
// 16 MiB, inputs a max-pool of ReLU outputs, ~50% zero) and on smaller ones
// (LeNet's 784 -> 300, 1 MiB), for one or more builds of the module in the
// same process, and prints ms per call and each build's ratio to the first.
// Used to place DENSE_FM_MIN_BYTES in mlp.c, e.g. against the build before it:
//   git show HEAD~1:src/runtime/simd/mlp-wasm.gen.ts > /tmp/old.gen.ts
//   npx tsx scripts/bench-dense-big.ts /tmp/old.gen.ts src/runtime/simd/mlp-wasm.gen.ts
// With no arguments it times the committed build. Fastest of interleaved
// rounds of thread CPU time, so a busy machine disturbs it less. Seconds.
import { WasmArena } from '../src/runtime/simd/arena.js';
import type { MlpExports } from '../src/runtime/simd/mlp-kernels.js';
import { mulberry32 } from '../src/engine/rng.js';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const builds = process.argv.slice(2).map((f) => resolve(f));
if (builds.length === 0) builds.push(resolve(import.meta.dirname, '../src/runtime/simd/mlp-wasm.gen.ts'));
// [batch, in, out, fraction of inputs zero]
const shapes: Array<[number, number, number, number]> = [
  [30, 16384, 256, 0.5],
  [30, 16384, 256, 0],
  [60, 16384, 256, 0.5],
  [30, 4096, 256, 0.5],
  [30, 2048, 512, 0.5],
  [60, 784, 300, 0.8],
  [60, 784, 300, 0],
  [60, 300, 100, 0.5],
];
// Rounds per shape: more for small kernels, whose calls take a millisecond or so.
const roundsFor = (inSize: number, outSize: number): number => (inSize * outSize >= 1 << 20 ? 7 : 60);

type Pass = 'forward' | 'weight gradient' | 'input gradient';
const passes: Pass[] = ['forward', 'weight gradient', 'input gradient'];

async function load(file: string): Promise<MlpExports & { mem: WasmArena }> {
  const { WASM_BASE64 } = (await import(pathToFileURL(file).href)) as { WASM_BASE64: string };
  const memory = new WebAssembly.Memory({ initial: 2 });
  const mod = new WebAssembly.Module(Buffer.from(WASM_BASE64, 'base64'));
  const k = new WebAssembly.Instance(mod, { env: { memory } }).exports as unknown as MlpExports;
  return Object.assign(Object.create(k) as MlpExports, { mem: new WasmArena(memory, k.__heap_base.value as number) });
}

const ks = await Promise.all(builds.map(load));
console.log(`ms per call, thread CPU time, fastest of 7 (kernels of 4 MiB and more) or 60 interleaved rounds; ratio = first build's time / this build's`);
console.log(['shape', 'pass', ...builds.map((b, i) => `#${i} ${b.split('/').pop()}`)].join('  |  '));
for (const [batch, inSize, outSize, zeros] of shapes) {
  const setups = ks.map((k) => {
    const { mem } = k;
    const p = {
      x: mem.alloc(batch * inSize),
      w: mem.alloc(inSize * outSize),
      b: mem.alloc(outSize),
      out: mem.alloc(batch * outSize),
      dz: mem.alloc(batch * outSize),
      dw: mem.alloc(inSize * outSize),
      db: mem.alloc(outSize),
      dx: mem.alloc(batch * inSize),
      idx: mem.alloc(Math.max(batch, inSize)),
      val: mem.alloc(Math.max(batch, inSize)),
    };
    const next = mulberry32(11);
    const set = (ptr: number, n: number, z: number, nonneg: boolean): void => {
      const v = mem.f32(ptr, n);
      for (let i = 0; i < n; i++) v[i] = next() < z ? 0 : nonneg ? next() : next() * 2 - 1;
    };
    set(p.x, batch * inSize, zeros, true);
    set(p.w, inSize * outSize, 0, false);
    set(p.b, outSize, 0, false);
    set(p.dz, batch * outSize, 0, false);
    const run: Record<Pass, () => void> = {
      forward: () => k.dense_forward(p.x, batch, inSize, p.w, p.b, p.out, outSize, 1, p.idx, p.val),
      'weight gradient': () => k.dense_grad_weights(p.x, batch, inSize, p.dz, outSize, p.dw, p.db, p.idx, p.val),
      'input gradient': () => k.dense_grad_input(p.dz, batch, outSize, p.w, inSize, p.x, 1, p.dx),
    };
    return run;
  });
  for (const pass of passes) {
    const times = setups.map(() => Infinity);
    for (let r = 0; r < roundsFor(inSize, outSize); r++) {
      setups.forEach((run, i) => {
        const t0 = process.cpuUsage();
        run[pass]();
        const t = process.cpuUsage(t0);
        times[i] = Math.min(times[i]!, (t.user + t.system) / 1000);
      });
    }
    const shape = `${batch}x${inSize}->${outSize} ${Math.round(zeros * 100)}% zeros`;
    console.log([shape.padEnd(28), pass.padEnd(15), ...times.map((t) => `${t.toFixed(2)} ms (${(times[0]! / t).toFixed(2)}x)`)].join('  |  '));
  }
}
