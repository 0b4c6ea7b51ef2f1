// WASM BatchMatMul that keeps products on XNNPACK's fully-connected path and
// packs the cheaper operand.
//
// The stock kernel only uses XNNPACK when neither operand is transposed and
// the batch is 1; otherwise it runs blocked scalar loops (strided across
// memory when transposeA is set). A dense layer's backward pass hits exactly
// those cases: dW = x^T dy and dx = dy W^T. XNNPACK also re-packs its right
// operand whenever that tensor is new (every step, since weights change), and
// packing a large operand costs more than transposing it, so for every
// batch-1 product (plain ones too: a wide layer's forward x W) we pick the
// cheaper of two plain products:
//   C   = A B            (packs B; transposes A and/or B first if flagged)
//   C^T = B^T A^T        (packs A^T; free when transposeA, then one transpose of C)
import {
  type BatchMatMulAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { asWasm, release, runStock, runWasm, setupStock, transpose, WASM } from './wasm-call.js';

/** Packing an operand costs about this many element transposes (measured on 16384x256, wasm SIMD). */
const PACK_COST = 2;

function size(shape: number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

function reshape(x: TensorInfo, shape: number[], backend: BackendWasm): TensorInfo {
  return runWasm('Reshape', { x }, { shape }, backend);
}

/** Swaps a 2-D [r, c] tensor to [c, r]. */
function t2(x: TensorInfo, backend: BackendWasm): TensorInfo {
  return transpose(x, [1, 0], backend);
}

/**
 * Which plain product is cheaper for 2-D operands as stored: 'direct'
 * (C = A B, packs B) or 'swapped' (C^T = B^T A^T, packs A^T, transposes C).
 */
export function matMulPlan(
  aShape: [number, number],
  bShape: [number, number],
  transposeA: boolean,
  transposeB: boolean,
): 'direct' | 'swapped' {
  const sizeA = aShape[0] * aShape[1];
  const sizeB = bShape[0] * bShape[1];
  const m = transposeA ? aShape[1] : aShape[0];
  const n = transposeB ? bShape[0] : bShape[1];
  const direct = (transposeA ? sizeA : 0) + (transposeB ? sizeB : 0) + PACK_COST * sizeB;
  const swapped = (transposeB ? 0 : sizeB) + (transposeA ? 0 : sizeA) + PACK_COST * sizeA + m * n;
  return direct <= swapped ? 'direct' : 'swapped';
}

const batchMatMul: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const backend = asWasm(b);
  const a = inputs.a as TensorInfo;
  const bm = inputs.b as TensorInfo;
  const { transposeA, transposeB } = attrs as unknown as BatchMatMulAttrs;
  // Only batch-1 float products reach XNNPACK; larger batches gain nothing from the copies.
  const batchA = size(a.shape.slice(0, -2));
  const batchB = size(bm.shape.slice(0, -2));
  if (batchA !== 1 || batchB !== 1 || a.dtype !== 'float32' || bm.dtype !== 'float32') {
    return runStock('BatchMatMul', inputs, attrs ?? {}, backend);
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = bm.shape.slice(-2);
  const m = transposeA ? ac : ar;
  const n = transposeB ? br : bc;
  const outShape = [...(a.shape.length >= bm.shape.length ? a.shape : bm.shape).slice(0, -2), m, n];
  const plan = matMulPlan([ar, ac], [br, bc], transposeA, transposeB);

  const scratch: TensorInfo[] = [];
  const keep = (t: TensorInfo): TensorInfo => (scratch.push(t), t);
  try {
    const a2 = keep(reshape(a, [ar, ac], backend));
    const b2 = keep(reshape(bm, [br, bc], backend));
    if (plan === 'direct') {
      if (!transposeA && !transposeB) return runStock('BatchMatMul', inputs, attrs ?? {}, backend);
      const lhs = transposeA ? keep(t2(a2, backend)) : a2; // [m, k]
      const rhs = transposeB ? keep(t2(b2, backend)) : b2; // [k, n]
      const c = keep(runStock('BatchMatMul', { a: lhs, b: rhs }, { transposeA: false, transposeB: false }, backend));
      return reshape(c, outShape, backend);
    }
    const lhs = transposeB ? b2 : keep(t2(b2, backend)); // B^T [n, k]
    const rhs = transposeA ? a2 : keep(t2(a2, backend)); // A^T [k, m]
    const ct = keep(runStock('BatchMatMul', { a: lhs, b: rhs }, { transposeA: false, transposeB: false }, backend));
    const c = keep(t2(keep(reshape(ct, [n, m], backend)), backend));
    return reshape(c, outShape, backend);
  } finally {
    release(backend, ...scratch);
  }
};

export const batchMatMulConfig: KernelConfig = {
  kernelName: 'BatchMatMul',
  backendName: WASM,
  kernelFunc: batchMatMul,
  setupFunc: (backend) => setupStock('BatchMatMul', backend),
};
