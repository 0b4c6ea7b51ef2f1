// Ticketsmith's overrides for the native 'tensorflow' backend (tfjs-node 4.22
// on TensorFlow's C library), installed once that backend has initialised.
// A profile of a native Conv-2 step showed the ReLU gradient built from ~7
// eager ops: tfjs-node's Step kernel is isNaN + greater + ones + fill + two
// selects, then the gradient multiplies by it. Here:
// - Step(alpha = 0) on float32 is Sign(Relu(x)): 1 where x > 0, 0 elsewhere,
//   NaN kept (checked by test/unit/native.test.ts). Fused conv/matmul ReLU
//   gradients (tfjs-core's dy * step(y)) use it.
// - the Relu kernel's gradient is one native ReluGrad op (dy * (x > 0)) on this
//   backend; on every other backend the stock gradient runs unchanged.
// The package is optional and untyped here (tsc never resolves it), so the
// backend is reached through the small interface below.
import { engine, getGradient, getKernel, registerGradient, registerKernel, unregisterKernel, type GradConfig, type KernelConfig, type KernelFunc, type Tensor, type TensorInfo } from '@tensorflow/tfjs';

export const NATIVE = 'tensorflow';

/** The part of tfjs-node's NodeJSKernelBackend these overrides call. */
interface NativeBackend {
  binding: { TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeSingleInput(name: string, input: TensorInfo): Tensor;
  executeSingleOutput(name: string, attrs: { name: string; type: number; value: unknown }[], inputs: TensorInfo[]): Tensor;
}

/** Kernel name of the fused ReLU gradient (dy, x) -> dy * (x > 0). */
export const RELU_GRAD = 'TicketsmithReluGrad';

const stock = new Map<string, KernelFunc>();

const stepConfig: KernelConfig = {
  kernelName: 'Step',
  backendName: NATIVE,
  kernelFunc: (args) => {
    const x = args.inputs.x as TensorInfo;
    const alpha = (args.attrs as { alpha?: number } | undefined)?.alpha ?? 0;
    if (alpha !== 0 || x.dtype !== 'float32') return stock.get('Step')!(args);
    const be = args.backend as unknown as NativeBackend;
    const relu = be.executeSingleInput('Relu', x);
    const step = be.executeSingleInput('Sign', relu);
    relu.dispose();
    return step;
  },
};

const reluGradConfig: KernelConfig = {
  kernelName: RELU_GRAD,
  backendName: NATIVE,
  kernelFunc: (args) => {
    const { dy, x } = args.inputs as { dy: TensorInfo; x: TensorInfo };
    const be = args.backend as unknown as NativeBackend;
    const t = { name: 'T', type: be.binding.TF_ATTR_TYPE, value: be.binding.TF_FLOAT };
    return be.executeSingleOutput('ReluGrad', [t], [dy, x]);
  },
};

let stockReluGradient: GradConfig | undefined;

/** Relu's gradient: one ReluGrad op on the native backend, the stock one elsewhere. */
function reluGradient(base: GradConfig): GradConfig {
  return {
    kernelName: 'Relu',
    inputsToSave: base.inputsToSave ?? ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0]!;
      if (engine().backendName !== NATIVE || x.dtype !== 'float32' || (dy as Tensor).dtype !== 'float32') {
        return base.gradFunc(dy, saved, attrs);
      }
      return { x: () => engine().runKernel(RELU_GRAD, { dy: dy as Tensor, x }) as Tensor };
    },
  };
}

/**
 * Registers the overrides for the 'tensorflow' backend (idempotent). Call
 * after tfjs-node has been imported (its kernels are registered then).
 */
export function installNativeKernelOverrides(): void {
  for (const override of [stepConfig, reluGradConfig]) {
    const current = getKernel(override.kernelName, NATIVE);
    if (current === override) continue;
    if (current !== undefined) {
      stock.set(override.kernelName, current.kernelFunc);
      unregisterKernel(override.kernelName, NATIVE);
    }
    registerKernel(override);
  }
  if (stockReluGradient === undefined) {
    const base = getGradient('Relu');
    if (base !== undefined) {
      stockReluGradient = base;
      registerGradient(reluGradient(base));
    }
  }
}

/** Removes the overrides again (tests compare against the stock kernels). */
export function uninstallNativeKernelOverrides(): void {
  for (const override of [stepConfig, reluGradConfig]) {
    if (getKernel(override.kernelName, NATIVE) !== override) continue;
    unregisterKernel(override.kernelName, NATIVE);
    const func = stock.get(override.kernelName);
    if (func !== undefined) registerKernel({ kernelName: override.kernelName, backendName: NATIVE, kernelFunc: func });
  }
  if (stockReluGradient !== undefined) {
    registerGradient(stockReluGradient);
    stockReluGradient = undefined;
  }
}
