// Small elementwise layers that ONNX graphs use and TF.js Layers has no class
// for (a constant scale, a general Clip, HardSigmoid with any slope,
// HardSwish). Each acts on every value on its own, so channels pass through
// them unchanged (filter pruning treats them as pass-through, see
// pruning/structure/graph.ts) and each has an ONNX counterpart in
// export/onnx.ts. Registered with TF.js's serialization map when this module
// is imported: every model loader (load.ts, files.ts) imports it, so a saved
// imported model reloads.
import * as tf from '@tensorflow/tfjs';

type Kwargs = Record<string, unknown>;
type LayerArgs = ConstructorParameters<typeof tf.layers.Layer>[0];

function one(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0]! : inputs;
}

/** JSON has no Infinity: an unbounded side is stored as null. */
const bound = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);

/** y = x * scale (ONNX: Mul by a scalar constant). */
export class TsScale extends tf.layers.Layer {
  static className = 'TsScale';
  readonly scale: number;

  constructor(args: LayerArgs & { scale: number }) {
    super(args);
    this.scale = args.scale;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => tf.mul(one(inputs), this.scale));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), scale: this.scale };
  }
}

/** y = min(max(x, min), max); either side may be unbounded (ONNX: Clip other than ReLU6). */
export class TsClip extends tf.layers.Layer {
  static className = 'TsClip';
  readonly min: number;
  readonly max: number;

  constructor(args: LayerArgs & { min?: number | null; max?: number | null }) {
    super(args);
    this.min = bound(args.min, -Infinity);
    this.max = bound(args.max, Infinity);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      let y = one(inputs);
      if (Number.isFinite(this.min)) y = tf.maximum(y, this.min);
      if (Number.isFinite(this.max)) y = tf.minimum(y, this.max);
      return y === one(inputs) ? tf.clone(y) : y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), min: Number.isFinite(this.min) ? this.min : null, max: Number.isFinite(this.max) ? this.max : null };
  }
}

/** y = clip(alpha * x + beta, 0, 1) (ONNX HardSigmoid; TF.js's own hardSigmoid is fixed at 0.2, 0.5). */
export class TsHardSigmoid extends tf.layers.Layer {
  static className = 'TsHardSigmoid';
  readonly alpha: number;
  readonly beta: number;

  constructor(args: LayerArgs & { alpha?: number; beta?: number }) {
    super(args);
    this.alpha = args.alpha ?? 0.2;
    this.beta = args.beta ?? 0.5;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => tf.clipByValue(tf.add(tf.mul(one(inputs), this.alpha), this.beta), 0, 1));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), alpha: this.alpha, beta: this.beta };
  }
}

/** y = x * clip(alpha * x + beta, 0, 1) (ONNX HardSwish: alpha 1/6, beta 0.5, as torch's hardswish). */
export class TsHardSwish extends tf.layers.Layer {
  static className = 'TsHardSwish';
  readonly alpha: number;
  readonly beta: number;

  constructor(args: LayerArgs & { alpha?: number; beta?: number }) {
    super(args);
    this.alpha = args.alpha ?? 1 / 6;
    this.beta = args.beta ?? 0.5;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs);
      return tf.mul(x, tf.clipByValue(tf.add(tf.mul(x, this.alpha), this.beta), 0, 1));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), alpha: this.alpha, beta: this.beta };
  }
}

/** Class names of the layers above: all act elementwise, so channels pass through. */
export const ELEMENTWISE_LAYERS: readonly string[] = Object.freeze([TsScale.className, TsClip.className, TsHardSigmoid.className, TsHardSwish.className]);

for (const cls of [TsScale, TsClip, TsHardSigmoid, TsHardSwish]) tf.serialization.registerClass(cls);
