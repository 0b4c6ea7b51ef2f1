// The one FLOP count of the engine: multiply-adds of one layer call at batch
// 1, for Conv*, DepthwiseConv2D, SeparableConv* and Dense (k_h*k_w*c_in*c_out
// per output position for Conv2D, in*units for Dense). Biases, batch norm,
// pooling, activations and residual adds are not counted: they are a rounding
// error next to the convolutions, and the filter-pruning literature (Li et al.
// 2017) counts the same way. inspect.ts's countFlops sums these terms over a
// model; filter pruning's graph keeps them per layer to estimate a plan's
// FLOPs by the share of channels it keeps.
import type * as tf from '@tensorflow/tfjs';
import { fixedDims, product, shapesOf } from '../shapes.js';
import { isPrunableClass } from './classes.js';

type Layer = tf.layers.Layer;

/** Multiply-adds of one part of a layer, and whether they shrink with its kept input / output channels. */
export interface CostTerm {
  macs: number;
  input: boolean;
  output: boolean;
}

/** The shape of a layer's weight by its short name (`kernel`, `depthwise_kernel`). */
function kernelShape(layer: Layer, short: string, context: string): number[] {
  const v = layer.weights.find((w) => w.originalName.split('/').at(-1) === short);
  if (v === undefined) throw new Error(`${context}: layer '${layer.name}' has no '${short}' weight`);
  return v.shape as number[];
}

/**
 * The cost of call `nodeIndex` of `layer`, split by what it scales with; []
 * for layers that are not counted. Shapes must be fixed; `context` starts the
 * errors ("countFlops", "filter pruning").
 */
export function layerCost(layer: Layer, nodeIndex: number, context: string): CostTerm[] {
  const cls = layer.getClassName();
  if (!isPrunableClass(cls)) return [];
  const node = layer.inboundNodes[nodeIndex]!;
  const where = `${context}: layer '${layer.name}'`;
  const out = fixedDims(shapesOf(node.outputShapes)[0]!, where);
  const kernel = (short: string) => kernelShape(layer, short, context);
  switch (cls) {
    case 'Dense':
      // Applied along the last axis: every output element costs in_dim MACs.
      return [{ macs: kernel('kernel')[0]! * product(out), input: true, output: true }];
    case 'Conv2DTranspose':
    case 'Conv3DTranspose': {
      // Each input pixel is scattered through the whole kernel: [k..., out, in].
      const k = kernel('kernel');
      const inp = fixedDims(shapesOf(node.inputShapes)[0]!, where);
      return [{ macs: (product(k) * product(inp)) / k.at(-1)!, input: true, output: true }];
    }
    case 'DepthwiseConv2D': {
      // Kernel [k_h, k_w, in, multiplier]: k_h*k_w per output element.
      const k = kernel('depthwise_kernel');
      return [{ macs: k[0]! * k[1]! * product(out), input: true, output: false }];
    }
    case 'SeparableConv1D':
    case 'SeparableConv2D': {
      const dk = kernel('depthwise_kernel');
      const pk = kernel('pointwise_kernel');
      const spatial = product(out) / pk.at(-1)!;
      return [
        { macs: product(dk) * spatial, input: true, output: false },
        { macs: product(pk) * spatial, input: true, output: true },
      ];
    }
    default: {
      // Conv1D/2D/3D, kernel [k..., in, out]: k_h*k_w*c_in*c_out per output position.
      const k = kernel('kernel');
      return [{ macs: (product(k) * product(out)) / k.at(-1)!, input: true, output: true }];
    }
  }
}

/** Multiply-adds of the unpruned layer call: the sum of its cost terms. */
export function layerFlops(layer: Layer, nodeIndex: number, context: string): number {
  return layerCost(layer, nodeIndex, context).reduce((a, c) => a + c.macs, 0);
}
