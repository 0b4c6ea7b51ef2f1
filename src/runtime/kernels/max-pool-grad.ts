// WASM MaxPoolGrad as one pass over the WASM heap from JavaScript.
//
// The stock C++ kernel visits every input pixel and, for each, every window
// that may cover it, recomputing window maxima (~130 ms per call on a batch
// of 60 at 32x32x64 in a Conv-2 training step; ~35 ms here). Here each window
// is scanned once and its gradient is routed to the
// first maximal element in row-major window order, which is the cpu
// backend's (and TensorFlow's) tie rule. The stock kernel instead picks the
// last maximum, and in a window whose values are all <= FLT_MIN (negative
// inputs, i.e. max-pooling without a ReLU before it) it sends the gradient to
// the window's first element whatever the maximum is: [-3,-1,-2,-1] gets
// [g,0,0,0] instead of [0,g,0,0].
import {
  backend_util,
  type KernelConfig,
  type KernelFunc,
  type MaxPoolGradAttrs,
  type TensorInfo,
} from '@tensorflow/tfjs';
import { asWasm, runStock, setupStock, WASM } from './wasm-call.js';

type Shape4 = [number, number, number, number];

const maxPoolGrad: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const backend = asWasm(b);
  const dy = inputs.dy as TensorInfo;
  const input = inputs.input as TensorInfo;
  if (dy.dtype !== 'float32' || input.dtype !== 'float32') {
    return runStock('MaxPoolGrad', inputs, attrs ?? {}, backend);
  }
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
  const info = backend_util.computePool2DInfo(input.shape as Shape4, filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels: ch, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const { effectiveFilterHeight, effectiveFilterWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;

  const dx = backend.makeOutput(input.shape, 'float32');
  // Views are taken after the only allocation: a heap growth would detach them.
  const xv = backend.typedArrayFromHeap(input) as Float32Array;
  const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
  const dxv = backend.typedArrayFromHeap(dx) as Float32Array;
  dxv.fill(0);

  // Element offsets of the current window's in-bounds positions (channel 0).
  const window = new Int32Array(Math.max(1, info.filterHeight * info.filterWidth));
  const rowStride = inWidth * ch;
  let dyOffset = 0;
  for (let n = 0; n < batchSize; n++) {
    const xBatch = n * inHeight * rowStride;
    for (let oh = 0; oh < outHeight; oh++) {
      const top = oh * strideHeight - padTop;
      let hMin = top;
      while (hMin < 0) hMin += dilationHeight;
      const hMax = Math.min(inHeight, top + effectiveFilterHeight);
      for (let ow = 0; ow < outWidth; ow++, dyOffset += ch) {
        const left = ow * strideWidth - padLeft;
        let wMin = left;
        while (wMin < 0) wMin += dilationWidth;
        const wMax = Math.min(inWidth, left + effectiveFilterWidth);
        let count = 0;
        for (let h = hMin; h < hMax; h += dilationHeight) {
          for (let w = wMin; w < wMax; w += dilationWidth) window[count++] = xBatch + h * rowStride + w * ch;
        }
        // Per channel, the maximum lives in locals; '>' keeps the first of equal values.
        for (let c = 0; c < ch; c++) {
          let bestValue = Number.NEGATIVE_INFINITY;
          let bestAt = -1;
          for (let k = 0; k < count; k++) {
            const at = window[k]! + c;
            const v = xv[at]!;
            if (v > bestValue) {
              bestValue = v;
              bestAt = at;
            }
          }
          if (bestAt >= 0) dxv[bestAt] += dyv[dyOffset + c]!;
        }
      }
    }
  }
  return dx;
};

export const maxPoolGradConfig: KernelConfig = {
  kernelName: 'MaxPoolGrad',
  backendName: WASM,
  kernelFunc: maxPoolGrad,
  setupFunc: (backend) => setupStock('MaxPoolGrad', backend),
};
