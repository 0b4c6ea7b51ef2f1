// Helpers for WASM kernel overrides: run other WASM kernels from inside a
// kernel, reach the stock kernel an override replaced, and free scratch
// tensors. Kernels run below the engine, so nothing here is tracked by
// tf.tidy: every intermediate must be released with `backend.disposeData`.
import {
  getKernel,
  type KernelConfig,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export const WASM = 'wasm';

/** Stock kernels an override displaced, by kernel name (filled by the registry). */
const stockKernels = new Map<string, KernelConfig>();

export function rememberStockKernel(config: KernelConfig): void {
  if (!stockKernels.has(config.kernelName)) stockKernels.set(config.kernelName, config);
}

export function stockKernel(kernelName: string): KernelConfig | undefined {
  return stockKernels.get(kernelName);
}

/**
 * Setup of an override: the stock kernel it may fall back to is no longer in
 * the registry, so the engine will not call the stock setup (which binds the
 * C++ entry point) for us.
 */
export function setupStock(kernelName: string, backend: object): void {
  stockKernels.get(kernelName)?.setupFunc?.(backend);
}

function invoke(
  config: KernelConfig | undefined,
  kernelName: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap,
  backend: BackendWasm,
): TensorInfo {
  if (config === undefined) throw new Error(`WASM kernel '${kernelName}' is not registered`);
  const out = config.kernelFunc({ inputs, attrs, backend });
  if (Array.isArray(out)) throw new Error(`WASM kernel '${kernelName}' returned several outputs`);
  return out;
}

/** Runs the kernel currently registered for WASM under `kernelName`. */
export function runWasm(
  kernelName: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap,
  backend: BackendWasm,
): TensorInfo {
  return invoke(getKernel(kernelName, WASM), kernelName, inputs, attrs, backend);
}

/** Runs the stock kernel an override replaced (or the registered one if none was replaced). */
export function runStock(
  kernelName: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap,
  backend: BackendWasm,
): TensorInfo {
  const config = stockKernels.get(kernelName) ?? getKernel(kernelName, WASM);
  return invoke(config, kernelName, inputs, attrs, backend);
}

export function transpose(x: TensorInfo, perm: number[], backend: BackendWasm): TensorInfo {
  return runWasm('Transpose', { x }, { perm }, backend);
}

/** Frees scratch tensors; inputs handed in by the engine must never be passed here. */
export function release(backend: BackendWasm, ...scratch: TensorInfo[]): void {
  for (const t of scratch) backend.disposeData(t.dataId);
}

/** The engine types kernel backends as `{}`; WASM kernels always receive a BackendWasm. */
export function asWasm(backend: object): BackendWasm {
  return backend as BackendWasm;
}
