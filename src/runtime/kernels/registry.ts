// The one list of WASM kernel overrides Ticketsmith installs on top of
// tfjs-backend-wasm 4.22, and the idempotent installer. Each override lives
// in its own module; add new ones here only.
import { engine, getKernel, registerKernel, unregisterKernel, type KernelConfig } from '@tensorflow/tfjs';
import { batchMatMulConfig } from './batch-matmul.js';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputConfig } from './conv2d-backprop-input.js';
import { gatherV2Config } from './gather.js';
import { maxPoolGradConfig } from './max-pool-grad.js';
import { sumConfig } from './sum.js';
import { rememberStockKernel, WASM } from './wasm-call.js';

export const wasmKernelOverrides: KernelConfig[] = [
  conv2dBackpropFilterConfig,
  conv2dBackpropInputConfig,
  batchMatMulConfig,
  maxPoolGradConfig,
  sumConfig,
  gatherV2Config,
];

/**
 * Registers every override for the 'wasm' backend, keeping the stock kernel it
 * displaces reachable for fallbacks. Safe to call before or after the WASM
 * backend is initialised, and any number of times.
 */
export function installWasmKernelOverrides(): void {
  // Only an initialised backend is in the engine's registry; the engine runs
  // setup functions at initialisation, so after it we must run them ourselves.
  const initialised = (engine().registry as Record<string, object | undefined>)[WASM];
  for (const override of wasmKernelOverrides) {
    const current = getKernel(override.kernelName, WASM);
    if (current === override) continue;
    if (current !== undefined) {
      rememberStockKernel(current);
      unregisterKernel(override.kernelName, WASM);
    }
    registerKernel(override);
    if (initialised !== undefined) override.setupFunc?.(initialised);
  }
}

/** Names of the kernels currently served by a Ticketsmith override. */
export function installedWasmOverrides(): string[] {
  return wasmKernelOverrides.filter((o) => getKernel(o.kernelName, WASM) === o).map((o) => o.kernelName);
}
