// Shape ops. On tensors: Flatten and Reshape to [N, features] (NCHW element order kept), Transpose as
// tf2onnx's NHWC<->NCHW view switches, Shape of a tensor as a constant carrying BATCH. On constants
// they fold, with the shape arithmetic torch writes before a Reshape (Gather, Squeeze, Unsqueeze).
import * as tf from '@tensorflow/tfjs';
import {
  attrInt, attrInts, BATCH, evalConst, ints, isPerm, normAxis, product, toTensor,
  type FoldCtx, type NodeCtx, type OpFamily,
} from '../context.js';
import type { ConstValue } from '../parse.js';

/** Refuses a Reshape that is not a flatten to [N, total]. */
function checkFlattenShape(c: NodeCtx, total: number): void {
  const shape = Array.from(c.constAt(1, 'shape').data as ArrayLike<number>);
  if (attrInt(c.a, 'allowzero', 0) === 1 && shape.includes(0)) return c.refuse('reshapes with allowzero 1 to a shape holding 0; only a flatten to [N, features] is supported');
  const rest = shape.slice(1);
  const batch = c.cv.p.input.batch;
  const batchOk = shape[0] === BATCH || shape[0] === 0 || shape[0] === -1 || (batch !== null && shape[0] === batch);
  const restOk = rest.length === 1 && (rest[0] === -1 || rest[0] === total) && !(shape[0] === -1 && rest[0] === -1);
  if (!batchOk || !restOk) return c.refuse(`reshapes to ${JSON.stringify(shape.map((s) => (s === BATCH ? 'N' : s)))}; only a flatten to [N, ${total}] is supported`);
}

function flatten(c: NodeCtx): void {
  const { x, cv } = c;
  const total = product(x.dims);
  if (c.op === 'Flatten') {
    const axis = attrInt(c.a, 'axis', 1);
    if (axis !== 1) return c.refuse(`flattens from axis ${axis}; only axis 1 is supported`);
  } else {
    checkFlattenShape(c, total);
  }
  if (x.dims.length === 1) return c.set(x);
  if (x.squeezed) return c.set({ ...x, dims: [total], squeezed: false });
  // ONNX [H, W, C] flattens in TF.js's own (h, w, c) order.
  if (x.nhwc) return c.set({ kind: 'tensor', t: cv.apply(tf.layers.flatten({ name: c.name() }), x.t), dims: [total], squeezed: false });
  const [ch, h, wd] = x.dims as [number, number, number];
  let src = x.t;
  // NHWC flattens in (h, w, c) order; torch's Dense after it expects (c, h, w).
  if (ch > 1 && h * wd > 1) src = cv.apply(tf.layers.permute({ dims: [3, 1, 2], name: cv.layerName(`${c.node.name || c.op}_nchw`) }), src);
  const y = cv.apply(tf.layers.flatten({ name: c.name() }), src);
  return c.set({ kind: 'tensor', t: y, dims: [total], squeezed: false });
}

function transpose(c: NodeCtx): void {
  const { x, node } = c;
  // Only the layout switches tf2onnx writes around NCHW ops: the TF.js tensor stays NHWC, the ONNX view changes.
  if (x.dims.length === 3 && !x.squeezed && x.nhwc && isPerm(node, [0, 3, 1, 2])) {
    return c.set({ ...x, dims: [x.dims[2]!, x.dims[0]!, x.dims[1]!], nhwc: false });
  }
  if (x.dims.length === 3 && !x.squeezed && !x.nhwc && isPerm(node, [0, 2, 3, 1])) {
    return c.set({ ...x, dims: [x.dims[1]!, x.dims[2]!, x.dims[0]!], nhwc: true });
  }
  return c.refuse(`transposes with perm ${JSON.stringify(attrInts(c.a, 'perm'))}; only NHWC<->NCHW switches of an image tensor are supported`);
}

/** dims[start:end] as an int64 constant. */
function shapeSlice(a: FoldCtx['a'], dims: number[]): ConstValue {
  const start = attrInt(a, 'start', 0);
  const end = a.has('end') ? attrInt(a, 'end', 0) : dims.length;
  const d = dims.slice(start, end);
  return { dims: [d.length], data: d, int: true };
}

/** The Shape of a tensor: a constant whose batch entry is BATCH. */
const shapeOf = (c: NodeCtx) => c.set({ kind: 'const', c: shapeSlice(c.a, [BATCH, ...c.x.dims]) });

function foldSqueeze({ op, opset, a, ins, x }: FoldCtx): ConstValue {
  const axes = opset >= 13 ? (ins[1] ? Array.from(ints(ins[1])) : null) : attrInts(a, 'axes');
  let dims = [...x.dims];
  if (op === 'Squeeze') {
    const ax = (axes ?? dims.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)).map((v) => normAxis(v, dims.length));
    dims = dims.filter((_, i) => !ax.includes(i));
  } else {
    const rank = dims.length + (axes ?? []).length;
    for (const ax of (axes ?? []).map((v) => normAxis(v, rank)).sort((p, q) => p - q)) dims.splice(ax, 0, 1);
  }
  return { dims, data: x.data, int: x.int };
}

function foldGather({ a, ins, x }: FoldCtx): ConstValue {
  const idx = ins[1]!;
  const axis = normAxis(attrInt(a, 'axis', 0), x.dims.length);
  if (x.dims.length === 1) {
    const src = Array.from(ints(x));
    const out = Array.from(ints(idx), (i) => src[i < 0 ? i + src.length : i]!);
    return { dims: idx.dims, data: x.int ? out : Float32Array.from(out), int: x.int };
  }
  return evalConst(() => tf.gather(toTensor(x), toTensor(idx), axis), x.int);
}

function foldReshape({ ins, x }: FoldCtx): ConstValue {
  const shape = Array.from(ints(ins[1]!));
  const resolved = shape.map((s, i) => (s === 0 ? x.dims[i]! : s));
  const known = product(resolved.filter((s) => s !== -1));
  return { dims: resolved.map((s) => (s === -1 ? product(x.dims) / known : s)), data: x.data, int: x.int };
}

function foldFlatten({ a, x }: FoldCtx): ConstValue {
  const axis = normAxis(attrInt(a, 'axis', 1), x.dims.length);
  return { dims: [product(x.dims.slice(0, axis)), product(x.dims.slice(axis))], data: x.data, int: x.int };
}

function foldTranspose({ a, x }: FoldCtx): ConstValue {
  const perm = attrInts(a, 'perm') ?? x.dims.map((_, i) => x.dims.length - 1 - i);
  return evalConst(() => tf.transpose(toTensor(x), perm), x.int);
}

export const shapeOps: OpFamily = {
  Flatten: { convert: flatten, fold: foldFlatten },
  Gather: { fold: foldGather, constantsOnly: true },
  Reshape: { convert: flatten, fold: foldReshape },
  Shape: { convert: shapeOf, fold: ({ a, x }) => shapeSlice(a, x.dims) },
  Squeeze: { fold: foldSqueeze, constantsOnly: true },
  Transpose: { convert: transpose, fold: foldTranspose },
  Unsqueeze: { fold: foldSqueeze, constantsOnly: true },
};
