// Two-input ops. On tensors: Add of same-shaped tensors (a zero constant vanishes; a bias constant was
// folded into the layer before it), Mul by a scalar, channel Concat. On constants: Add, Sub, Mul, Div,
// Sqrt and Concat fold.
import * as tf from '@tensorflow/tfjs';
import { TsScale } from '../../layers/index.js';
import { attrInt, evalConst, ints, normAxis, product, toTensor, type FoldCtx, type NodeCtx, type OpFamily, type TensorVal } from '../context.js';
import type { ConstValue } from '../parse.js';

function add(c: NodeCtx): void {
  const { x, refuse } = c;
  const other = c.ins[1];
  if (!other) return refuse('has one input');
  if (other.kind === 'const') {
    if (Array.from(other.c.data).every((v) => v === 0)) return c.set(x);
    return refuse('adds a constant that is not a bias right after a Conv, Gemm or MatMul');
  }
  if (other.squeezed !== x.squeezed || Boolean(other.nhwc) !== Boolean(x.nhwc) || other.dims.join() !== x.dims.join()) return refuse(`adds tensors of different shapes ([N, ${x.dims.join(', ')}] and [N, ${other.dims.join(', ')}]); broadcasting is not supported`);
  return c.set({ ...x, t: c.cv.apply(tf.layers.add({ name: c.name() }), [x.t, other.t]) });
}

function mul(c: NodeCtx): void {
  const other = c.ins[1];
  if (!other || other.kind !== 'const' || product(other.c.dims) !== 1) return c.refuse('multiplies by something other than a scalar constant; only Mul by a scalar constant is supported');
  return c.elementwise(new TsScale({ scale: other.c.data[0]!, name: c.name() }));
}

function concat(c: NodeCtx): void {
  const { x, ins, refuse } = c;
  const ts = ins.filter((v): v is TensorVal => v !== null && v.kind === 'tensor');
  if (ts.length !== ins.length) return refuse('concatenates tensors with constants');
  if (ts.some((v) => v.nhwc)) return refuse('concatenates NHWC tensors; only NCHW channel concatenation is supported');
  const rank = x.dims.length + 1;
  let axis = attrInt(c.a, 'axis', 1);
  if (axis < 0) axis += x.squeezed ? 4 : rank;
  if (axis !== 1) return refuse(`concatenates on axis ${attrInt(c.a, 'axis', 1)}; only the channel axis 1 is supported`);
  if (ts.some((v) => v.squeezed !== x.squeezed || v.dims.slice(1).join() !== x.dims.slice(1).join())) return refuse('concatenates tensors of different spatial shapes');
  const channels = ts.reduce((s, v) => s + v.dims[0]!, 0);
  const y = c.cv.apply(tf.layers.concatenate({ axis: -1, name: c.name() }), ts.map((v) => v.t));
  return c.set({ kind: 'tensor', t: y, dims: [channels, ...x.dims.slice(1)], squeezed: x.squeezed });
}

function foldConcat({ a, ins, x }: FoldCtx): ConstValue {
  const axis = normAxis(attrInt(a, 'axis', 0), x.dims.length);
  if (x.int && x.dims.length <= 1 && axis === 0) {
    const all = ins.flatMap((v) => Array.from(ints(v!)));
    return { dims: [all.length], data: x.int ? all : Float32Array.from(all), int: x.int };
  }
  return evalConst(() => tf.concat(ins.map((v) => toTensor(v!)), axis), x.int);
}

const arithmetic = (fn: (p: tf.Tensor, q: tf.Tensor) => tf.Tensor) => ({ ins, x }: FoldCtx): ConstValue =>
  evalConst(() => fn(toTensor(x), toTensor(ins[1]!)), x.int && ins[1]!.int);

export const elementwiseOps: OpFamily = {
  Add: { convert: add, fold: arithmetic(tf.add) },
  Concat: { convert: concat, fold: foldConcat },
  Div: { fold: arithmetic(tf.div), constantsOnly: true },
  Mul: { convert: mul, fold: arithmetic(tf.mul) },
  Sqrt: { fold: ({ x }) => evalConst(() => tf.sqrt(toTensor(x)), false), constantsOnly: true },
  Sub: { fold: arithmetic(tf.sub), constantsOnly: true },
};
