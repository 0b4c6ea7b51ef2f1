// Shape arithmetic shared by the data readers, the model inspectors (inspect,
// budget, flops) and filter pruning's graph. Plain numbers, no TF.js, so the
// service may use it without loading a backend.

/** A tensor's shape as TF.js reports it; null where a dimension is unknown until run time. */
export type Shape = (number | null)[];

/** Elements of a tensor of `shape` (1 for a scalar). */
export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A layer's input or output shapes as a list, whether TF.js gave one shape or several. */
export function shapesOf(s: Shape | Shape[]): Shape[] {
  return s.length > 0 && Array.isArray(s[0]) ? (s as Shape[]) : [s as Shape];
}

/** The dimensions after the batch axis, which must all be known; `where` starts the error ("countFlops: layer 'x'"). */
export function fixedDims(s: Shape, where: string): number[] {
  const dims = s.slice(1);
  if (dims.some((d) => d === null)) {
    throw new Error(`${where} has an unknown dimension in shape ${JSON.stringify(s)}; a fixed input shape is needed`);
  }
  return dims as number[];
}
