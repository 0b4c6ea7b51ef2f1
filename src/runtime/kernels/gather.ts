// WASM GatherV2 along axis 0 as row copies on the WASM heap.
//
// Every training step gathers its mini-batch from the dataset tensor by a
// shuffled index. The stock kernel walks the output element by element with
// full index arithmetic: ~3 ms for 60 MNIST rows (47k floats), 15–20% of a
// LeNet-300-100 step. Gathering whole rows is a memcpy per index. Other axes,
// batch dimensions and dtypes go to the stock kernel.
import { util, type GatherV2Attrs, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs';
import { asWasm, runStock, setupStock, WASM } from './wasm-call.js';

const gatherV2: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const backend = asWasm(b);
  const x = inputs.x as TensorInfo;
  const indices = inputs.indices as TensorInfo;
  const { axis, batchDims } = attrs as unknown as GatherV2Attrs;
  const ax = util.parseAxisParam(axis, x.shape)[0];
  if (ax !== 0 || (batchDims ?? 0) !== 0 || indices.dtype !== 'int32' || (x.dtype !== 'float32' && x.dtype !== 'int32') || x.shape.length === 0) {
    return runStock('GatherV2', inputs, attrs ?? {}, backend);
  }
  const rows = x.shape[0]!;
  const rowSize = util.sizeFromShape(x.shape.slice(1));
  const count = util.sizeFromShape(indices.shape);
  const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
  // Views after the only allocation: a heap growth would detach earlier ones.
  const idx = backend.typedArrayFromHeap(indices) as Int32Array;
  const src = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
  for (let i = 0; i < count; i++) {
    const r = idx[i]!;
    if (r < 0 || r >= rows) {
      backend.disposeData(out.dataId);
      throw new Error(`GatherV2: the index ${r} is not in [0, ${rows - 1}]`);
    }
    dst.set(src.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize);
  }
  return out;
};

export const gatherV2Config: KernelConfig = {
  kernelName: 'GatherV2',
  backendName: WASM,
  kernelFunc: gatherV2,
  setupFunc: (backend) => setupStock('GatherV2', backend),
};
