// WASM Conv2DBackpropFilter (absent from tfjs-backend-wasm 4.22, so conv nets
// cannot train there) computed as one XNNPACK forward convolution.
//
// dW[kh,kw,ci,co] = sum_{n,oh,ow} x[n, oh*s + kh*d - pt, ow*s + kw*d - pl, ci] * dy[n,oh,ow,co]
// reads as a convolution whose "batch" is ci, whose "channels" are n, whose
// "filter" is dy laid out [OH,OW,N,Co] and whose output pixels are (kh,kw):
// the forward stride s becomes the filter dilation and the forward dilation d
// becomes the stride. The GEMM inside is then (Ci*KH*KW) x (OH*OW*N) x Co,
// which XNNPACK runs with SIMD instead of the naive loops of other backends.
import {
  backend_util,
  type Conv2DBackpropFilterAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs';
import { asWasm, release, runWasm, transpose, WASM } from './wasm-call.js';

/** The TF.js attrs plus the forward dilation, which TF.js gradients never pass (they reject dilation > 1). */
export type BackpropFilterAttrs = Conv2DBackpropFilterAttrs & { dilations?: [number, number] | number };

type Shape4 = [number, number, number, number];

const conv2dBackpropFilter: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const backend = asWasm(b);
  const x = inputs.x as TensorInfo;
  const dy = inputs.dy as TensorInfo;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape, dilations } =
    attrs as unknown as BackpropFilterAttrs;
  const format = backend_util.convertConv2DDataFormat(dataFormat);
  const info = backend_util.computeConv2DInfo(
    x.shape as Shape4, filterShape, strides, dilations ?? 1, pad, dimRoundingMode, false, format,
  );
  const channelsLast = format === 'channelsLast';

  // Input extent the forward conv actually read along each axis; rows past it
  // (possible with 'valid' and stride > 1) must go, zero rows before/after are padding.
  const needH = (info.filterHeight - 1) * info.dilationHeight + (info.outHeight - 1) * info.strideHeight + 1;
  const needW = (info.filterWidth - 1) * info.dilationWidth + (info.outWidth - 1) * info.strideWidth + 1;
  const padBottom = needH - info.inHeight - info.padInfo.top;
  const padRight = needW - info.inWidth - info.padInfo.left;

  const scratch: TensorInfo[] = [];
  try {
    // [Ci, H, W, N]: batch plays the channel role.
    let xT = transpose(x, channelsLast ? [3, 1, 2, 0] : [1, 2, 3, 0], backend);
    scratch.push(xT);
    if (padBottom < 0 || padRight < 0) {
      xT = runWasm(
        'Slice',
        { x: xT },
        { begin: [0, 0, 0, 0], size: [info.inChannels, info.inHeight + Math.min(padBottom, 0), info.inWidth + Math.min(padRight, 0), info.batchSize] },
        backend,
      );
      scratch.push(xT);
    }
    // [OH, OW, N, Co]: dy becomes an HWIO filter with N input channels.
    const dyT = transpose(dy, channelsLast ? [1, 2, 0, 3] : [2, 3, 0, 1], backend);
    scratch.push(dyT);
    const conv = runWasm(
      'Conv2D',
      { x: xT, filter: dyT },
      {
        strides: [info.dilationHeight, info.dilationWidth],
        dilations: [info.strideHeight, info.strideWidth],
        pad: [[0, 0], [info.padInfo.top, Math.max(padBottom, 0)], [info.padInfo.left, Math.max(padRight, 0)], [0, 0]],
        dataFormat: 'NHWC',
      },
      backend,
    );
    scratch.push(conv);
    // [Ci, KH, KW, Co] -> [KH, KW, Ci, Co]
    return transpose(conv, [1, 2, 0, 3], backend);
  } finally {
    release(backend, ...scratch);
  }
};

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: WASM,
  kernelFunc: conv2dBackpropFilter,
};
