// WASM Conv2DBackpropInput as an XNNPACK forward convolution, replacing the
// stock kernel's scalar loops.
//
// dx[n,h,w,ci] = sum_{kh,kw,co} dy[n,oh,ow,co] * W[kh,kw,ci,co] with
// h = oh*s + kh - pt. Spreading dy onto the input grid (s-1 zeros between
// rows/columns; nothing to do when s = 1) turns this into a stride-1
// convolution of that grid with W flipped in space and with ci/co swapped,
// padded by KH-1-pt on top (KW-1-pl on the left).
// Measured on wasm SIMD, batch 60: 3x3 64->64 at 32x32 stride 1 went from
// 2.9 s (stock) to 0.29 s; stride-2 layers from ~100 ms to ~40-50 ms, so
// strided cases use zero insertion as well.
import {
  backend_util,
  type Conv2DBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { asWasm, release, runStock, runWasm, setupStock, transpose, WASM } from './wasm-call.js';

type Shape4 = [number, number, number, number];

/** [N,OH,OW,C] -> [N,OH*sh,OW*sw,C] with dy at every (sh,sw)-th position and zeros elsewhere. */
function spread(dy: TensorInfo, sh: number, sw: number, backend: BackendWasm, scratch: TensorInfo[]): TensorInfo {
  const [n, oh, ow, c] = dy.shape;
  const r6 = runWasm('Reshape', { x: dy }, { shape: [n, oh, 1, ow, 1, c] }, backend);
  scratch.push(r6);
  const padded = runWasm(
    'PadV2',
    { x: r6 },
    { paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 },
    backend,
  );
  scratch.push(padded);
  const out = runWasm('Reshape', { x: padded }, { shape: [n, oh * sh, ow * sw, c] }, backend);
  scratch.push(out);
  return out;
}

const conv2dBackpropInput: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const backend = asWasm(b);
  const dy = inputs.dy as TensorInfo;
  const filter = inputs.filter as TensorInfo;
  const a = attrs as unknown as Conv2DBackpropInputAttrs;
  const format = backend_util.convertConv2DDataFormat(a.dataFormat);
  const info = backend_util.computeConv2DInfo(
    a.inputShape, filter.shape as Shape4, a.strides, 1, a.pad, a.dimRoundingMode, false, format,
  );
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const padTop = kh - 1 - info.padInfo.top;
  const padLeft = kw - 1 - info.padInfo.left;
  const strided = sh > 1 || sw > 1;
  if (padTop < 0 || padLeft < 0 || format !== 'channelsLast') {
    // Explicit paddings wider than the kernel (and NCHW) are rare; the stock kernel handles them.
    return runStock('Conv2DBackpropInput', inputs, attrs ?? {}, backend);
  }

  const scratch: TensorInfo[] = [];
  try {
    let grid = strided ? spread(dy, sh, sw, backend, scratch) : dy;
    // Pad (or crop) after the grid so the output is exactly inHeight x inWidth.
    let padBottom = info.inHeight + kh - 1 - grid.shape[1] - padTop;
    let padRight = info.inWidth + kw - 1 - grid.shape[2] - padLeft;
    if (padBottom < 0 || padRight < 0) {
      grid = runWasm(
        'Slice',
        { x: grid },
        { begin: [0, 0, 0, 0], size: [grid.shape[0], grid.shape[1] + Math.min(padBottom, 0), grid.shape[2] + Math.min(padRight, 0), grid.shape[3]] },
        backend,
      );
      scratch.push(grid);
      padBottom = Math.max(padBottom, 0);
      padRight = Math.max(padRight, 0);
    }
    // W[kh,kw,ci,co] -> W'[kh,kw,co,ci] flipped along kh and kw.
    const swapped = transpose(filter, [0, 1, 3, 2], backend);
    scratch.push(swapped);
    const flipped = runWasm('Reverse', { x: swapped }, { dims: [0, 1] }, backend);
    scratch.push(flipped);
    return runWasm(
      'Conv2D',
      { x: grid, filter: flipped },
      {
        strides: [1, 1],
        dilations: [1, 1],
        pad: [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]],
        dataFormat: 'NHWC',
      },
      backend,
    );
  } finally {
    release(backend, ...scratch);
  }
};

export const conv2dBackpropInputConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropInput',
  backendName: WASM,
  kernelFunc: conv2dBackpropInput,
  setupFunc: (backend) => setupStock('Conv2DBackpropInput', backend),
};
