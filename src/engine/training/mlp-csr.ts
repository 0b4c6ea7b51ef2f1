// The sparse MLP engine for late pruning rounds: each kernel's surviving
// weights in compressed rows (CSR) in WebAssembly memory, trained by the
// csr_* kernels of src/runtime/simd/mlp.c over feature-major activations (a
// survivor's work is a few SIMD operations across the batch), so a step's work
// scales with the number of survivors, and the optimiser touches only
// surviving weights: pruned weights stay exactly zero by construction.
// Driven by mlpStepper (mlp.ts).
import type { Mask, WeightMap } from '../types.js';
import type { TrainConfig } from './config.js';
import type { DenseConfig, MlpEngine } from './mlp-engine.js';
import { MlpKernels, wasmOptimiser } from '../../runtime/simd/mlp-kernels.js';

interface CsrLayer {
  name: string;
  inSize: number;
  outSize: number;
  relu: boolean;
  nnz: number;
  /** Flat index (row * outSize + col) of each survivor in the dense kernel. */
  flat: Int32Array;
  // Byte offsets in the kernels' memory (bias ones 0 where the layer has none).
  row: number;
  col: number;
  val: number;
  gval: number;
  mval: number;
  vval: number;
  bias: number;
  gb: number;
  mb: number;
  vb: number;
  act: number;
  delta: number;
}

/** Survivors of a kernel under its mask (all weights where the mask has no entry), in row order. */
function survivors(kernel: { shape: number[]; values: Float32Array }, m: Float32Array | undefined) {
  const [inSize, outSize] = kernel.shape as [number, number];
  const row = new Int32Array(inSize + 1);
  const flat: number[] = [];
  for (let i = 0; i < inSize; i++) {
    for (let j = 0; j < outSize; j++) {
      const f = i * outSize + j;
      if (!m || m[f] !== 0) flat.push(f);
    }
    row[i + 1] = flat.length;
  }
  return { inSize, outSize, row, flat: Int32Array.from(flat) };
}

export function csrEngine(cfgs: DenseConfig[], weights: WeightMap, mask: Mask | null, cfg: TrainConfig, maxBatch: number): MlpEngine {
  const mem = new MlpKernels();
  const k = mem.k;
  const opt = wasmOptimiser(k, cfg);
  const adam = opt.needsV;
  const parts = cfgs.map((c) => survivors(weights[`${c.name}/kernel`]!, mask?.[`${c.name}/kernel`]));
  const input = mem.alloc(maxBatch * parts[0]!.inSize);
  /** Lanes per feature: the batch rounded up to whole SIMD vectors. */
  const lanes = (batch: number) => (batch + 3) & ~3;
  const maxLanes = lanes(maxBatch);
  const inputT = mem.alloc(maxLanes * parts[0]!.inSize);
  const layers: CsrLayer[] = cfgs.map((c, i) => {
    const { inSize, outSize, flat } = parts[i]!;
    const nnz = flat.length;
    const hasBias = weights[`${c.name}/bias`] !== undefined;
    return {
      name: c.name,
      inSize,
      outSize,
      relu: c.activation === 'relu',
      nnz,
      flat,
      row: mem.alloc(inSize + 1),
      col: mem.alloc(nnz),
      val: mem.alloc(nnz),
      gval: mem.alloc(nnz),
      mval: mem.alloc(nnz),
      vval: adam ? mem.alloc(nnz) : 0,
      bias: hasBias ? mem.alloc(outSize) : 0,
      gb: mem.alloc(outSize),
      mb: hasBias ? mem.alloc(outSize) : 0,
      vb: hasBias && adam ? mem.alloc(outSize) : 0,
      act: mem.alloc(maxLanes * outSize),
      delta: mem.alloc(maxLanes * outSize),
    };
  });
  const classes = parts.at(-1)!.outSize;
  const logitsAt = mem.alloc(maxBatch * classes);
  const outputGradAt = mem.alloc(maxBatch * classes);
  // All memory is allocated: views from here on stay valid.
  const valView = (l: CsrLayer) => mem.f32(l.val, l.nnz);
  const biasView = (l: CsrLayer) => (l.bias ? mem.f32(l.bias, l.outSize) : null);
  cfgs.forEach((c, i) => {
    const l = layers[i]!;
    mem.i32(l.row, l.inSize + 1).set(parts[i]!.row);
    const col = mem.i32(l.col, l.nnz);
    const val = valView(l);
    const kernel = weights[`${c.name}/kernel`]!.values;
    for (let s = 0; s < l.nnz; s++) {
      col[s] = l.flat[s]! % l.outSize;
      val[s] = kernel[l.flat[s]!]!;
    }
    biasView(l)?.set(weights[`${c.name}/bias`]!.values);
  });
  const last = layers.at(-1)!;
  const logits = mem.f32(logitsAt, maxBatch * classes);

  return {
    input: mem.f32(input, maxBatch * parts[0]!.inSize),
    outputGrad: mem.f32(outputGradAt, maxBatch * classes),
    forward(batch) {
      const s = lanes(batch);
      k.to_feature_major(input, batch, parts[0]!.inSize, inputT, s);
      let a = inputT;
      for (const l of layers) {
        k.csr_forward(a, s, l.inSize, l.row, l.col, l.val, l.bias, l.act, l.outSize, l.relu ? 1 : 0);
        a = l.act;
      }
      k.from_feature_major(last.act, batch, classes, logitsAt, s);
      return logits;
    },
    backward(batch) {
      const s = lanes(batch);
      k.to_feature_major(outputGradAt, batch, classes, last.delta, s);
      for (let li = layers.length - 1; li >= 0; li--) {
        const l = layers[li]!;
        const below = li > 0 ? layers[li - 1]! : null;
        k.csr_backward(below ? below.act : inputT, s, l.inSize, l.row, l.col, l.val, l.delta, l.outSize, l.gval, l.bias ? l.gb : 0, below ? below.delta : 0, below?.relu ? 1 : 0);
      }
    },
    update(lr) {
      for (const l of layers) {
        opt.step(l.val, l.gval, l.mval, l.vval, 0, l.nnz, lr);
        if (l.bias) opt.step(l.bias, l.gb, l.mb, l.vb, 0, l.outSize, lr);
      }
      opt.tick();
    },
    parameters: () => layers.flatMap((l) => [valView(l), ...(l.bias ? [biasView(l)!] : [])]),
    weightMap() {
      const map: WeightMap = {};
      for (const l of layers) {
        const values = new Float32Array(l.inSize * l.outSize);
        const val = valView(l);
        for (let s = 0; s < l.nnz; s++) values[l.flat[s]!] = val[s]!;
        map[`${l.name}/kernel`] = { shape: [l.inSize, l.outSize], values };
        if (l.bias) map[`${l.name}/bias`] = { shape: [l.outSize], values: Float32Array.from(biasView(l)!) };
      }
      return map;
    },
  };
}
