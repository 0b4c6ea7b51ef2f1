// Layer class names that carry meaning for pruning, in a module without TF.js
// so the service can judge a stored architecture summary without loading it.

/** Convolutions whose kernels are pruned with the `conv` fraction (and whose filters filter pruning removes). */
export const CONV_CLASSES: ReadonlySet<string> = new Set([
  'Conv1D', 'Conv2D', 'Conv3D', 'Conv2DTranspose', 'Conv3DTranspose',
  'DepthwiseConv2D', 'SeparableConv1D', 'SeparableConv2D',
]);

/** Layers with a prunable kernel: Dense and every convolution. */
export function isPrunableClass(className: string): boolean {
  return className === 'Dense' || CONV_CLASSES.has(className);
}
