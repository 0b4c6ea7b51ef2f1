// The dense MLP engine: every layer's kernel, gradient and optimiser state
// live in one WebAssembly memory and are trained by the SIMD kernels of
// src/runtime/simd/mlp.c, one call per layer and pass instead of TF.js's
// dozens of kernels per layer. Masks zero pruned gradients inside the
// optimiser call, so pruned weights stay exactly zero. Driven by mlpStepper (mlp.ts).
import type { Mask, WeightMap } from '../types.js';
import type { TrainConfig } from './config.js';
import type { DenseConfig, MlpEngine } from './mlp-engine.js';
import { MlpKernels, wasmOptimiser } from '../../runtime/simd/mlp-kernels.js';

interface SimdLayer {
  name: string;
  inSize: number;
  outSize: number;
  relu: boolean;
  /** Byte offsets in the kernels' memory (0: none). */
  w: number;
  b: number;
  mask: number;
  gw: number;
  gb: number;
  mw: number;
  vw: number;
  mb: number;
  vb: number;
  act: number;
  delta: number;
}

export function simdEngine(cfgs: DenseConfig[], weights: WeightMap, mask: Mask | null, cfg: TrainConfig, maxBatch: number): MlpEngine {
  const mem = new MlpKernels();
  const k = mem.k;
  const opt = wasmOptimiser(k, cfg);
  const adam = opt.needsV;
  const shapes = cfgs.map((c) => weights[`${c.name}/kernel`]!.shape as [number, number]);
  const inSize = shapes[0]![0];
  const input = mem.alloc(maxBatch * inSize);
  const scratch = Math.max(maxBatch, ...shapes.map((s) => s[0]));
  const idx = mem.alloc(scratch);
  const val = mem.alloc(scratch);
  const layers: SimdLayer[] = cfgs.map((c, i) => {
    const [I, O] = shapes[i]!;
    const hasBias = weights[`${c.name}/bias`] !== undefined;
    const m = mask?.[`${c.name}/kernel`];
    const masked = m !== undefined && m.some((x) => x === 0);
    return {
      name: c.name,
      inSize: I,
      outSize: O,
      relu: c.activation === 'relu',
      w: mem.alloc(I * O),
      b: hasBias ? mem.alloc(O) : 0,
      mask: masked ? mem.alloc(I * O) : 0,
      gw: mem.alloc(I * O),
      gb: mem.alloc(O),
      mw: mem.alloc(I * O),
      vw: adam ? mem.alloc(I * O) : 0,
      mb: hasBias ? mem.alloc(O) : 0,
      vb: hasBias && adam ? mem.alloc(O) : 0,
      act: mem.alloc(maxBatch * O),
      delta: mem.alloc(maxBatch * O),
    };
  });
  // All memory is allocated: views from here on stay valid.
  const kernelView = (l: SimdLayer) => mem.f32(l.w, l.inSize * l.outSize);
  const biasView = (l: SimdLayer) => (l.b ? mem.f32(l.b, l.outSize) : null);
  cfgs.forEach((c, i) => {
    const l = layers[i]!;
    const kv = kernelView(l);
    kv.set(weights[`${c.name}/kernel`]!.values);
    if (l.mask) {
      const m = mask![`${c.name}/kernel`]!;
      mem.f32(l.mask, m.length).set(m);
      for (let j = 0; j < kv.length; j++) kv[j]! *= m[j]!;
    }
    biasView(l)?.set(weights[`${c.name}/bias`]!.values);
  });
  const last = layers.at(-1)!;
  const logits = mem.f32(last.act, maxBatch * last.outSize);

  return {
    input: mem.f32(input, maxBatch * inSize),
    outputGrad: mem.f32(last.delta, maxBatch * last.outSize),
    forward(batch) {
      let a = input;
      for (const l of layers) {
        k.dense_forward(a, batch, l.inSize, l.w, l.b, l.act, l.outSize, l.relu ? 1 : 0, idx, val);
        a = l.act;
      }
      return logits;
    },
    backward(batch) {
      for (let li = layers.length - 1; li >= 0; li--) {
        const l = layers[li]!;
        const below = li > 0 ? layers[li - 1]! : null;
        k.dense_grad_weights(below ? below.act : input, batch, l.inSize, l.delta, l.outSize, l.gw, l.b ? l.gb : 0, idx, val);
        if (below) k.dense_grad_input(l.delta, batch, l.outSize, l.w, l.inSize, below.act, below.relu ? 1 : 0, below.delta);
      }
    },
    update(lr) {
      for (const l of layers) {
        opt.step(l.w, l.gw, l.mw, l.vw, l.mask, l.inSize * l.outSize, lr);
        if (l.b) opt.step(l.b, l.gb, l.mb, l.vb, 0, l.outSize, lr);
      }
      opt.tick();
    },
    parameters: () => layers.flatMap((l) => [kernelView(l), ...(l.b ? [biasView(l)!] : [])]),
    weightMap() {
      const map: WeightMap = {};
      for (const l of layers) {
        map[`${l.name}/kernel`] = { shape: [l.inSize, l.outSize], values: Float32Array.from(kernelView(l)) };
        if (l.b) map[`${l.name}/bias`] = { shape: [l.outSize], values: Float32Array.from(biasView(l)!) };
      }
      return map;
    },
  };
}
