// Shared shapes that cross engine sub-modules (data, models, pruning, training).
// Kept dependency-free so every layer of the engine can import it.

/** One split of a classification dataset, row-major NHWC images in [0, 1]. */
export interface Split {
  /** n * prod(inputShape) floats */
  x: Float32Array;
  /** n integer class labels in [0, numClasses) */
  y: Int32Array;
  n: number;
}

export interface Dataset {
  /** The reference the dataset was resolved from, e.g. `builtin:mnist`. */
  reference: string;
  /** Short human name, e.g. `mnist`. */
  name: string;
  /** sha256 (hex) of the bytes that were read, in a fixed order. */
  sha256: string;
  /** Shape of one example, e.g. [28, 28, 1] or [32, 32, 3]. */
  inputShape: number[];
  numClasses: number;
  train: Split;
  /** Carved from training data; used for early stopping only. */
  validation: Split;
  test: Split;
  /** Class names in label order, when the data names them (image folders). */
  classNames?: string[];
}

/** How a prunable weight is treated by the per-kind pruning fractions. */
export type WeightKind = 'conv' | 'dense' | 'output';

export interface PrunableWeight {
  /** `${layerName}/kernel`; stable across save/load because layer names are. */
  name: string;
  layer: string;
  kind: WeightKind;
  shape: number[];
}

/** A mask is data: weight name -> 0/1 values in the weight's row-major order. */
export type Mask = Record<string, Float32Array>;

/** Weights as plain data: weight name (`layer/kernel`, `layer/bias`, ...) -> values. */
export type WeightMap = Record<string, { shape: number[]; values: Float32Array }>;
