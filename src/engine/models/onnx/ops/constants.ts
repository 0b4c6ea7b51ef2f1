// Ops that build nothing: Constant (always folded), Cast (on constants only), and Identity and
// Dropout (inference), which pass their input through.
import { attrFloat, attrInt, attrInts, unsupported, type FoldCtx, type OpFamily } from '../context.js';
import { tensorValue, type ConstValue } from '../parse.js';

function foldConstant({ a, where }: FoldCtx): ConstValue {
  if (a.get('value')?.t) return tensorValue(a.get('value')!.t!, `Constant ${where}`);
  if (a.has('value_float')) return { dims: [], data: new Float32Array([attrFloat(a, 'value_float', 0)]), int: false };
  if (a.has('value_floats')) return { dims: [a.get('value_floats')!.floats!.length], data: Float32Array.from(a.get('value_floats')!.floats!), int: false };
  if (a.has('value_int')) return { dims: [], data: [attrInt(a, 'value_int', 0)], int: true };
  if (a.has('value_ints')) { const v = attrInts(a, 'value_ints')!; return { dims: [v.length], data: v, int: true }; }
  throw unsupported(`Constant ${where} has no value this importer reads (value, value_float(s), value_int(s))`);
}

function foldCast({ a, x }: FoldCtx): ConstValue {
  const to = attrInt(a, 'to', 1);
  const int = to === 6 || to === 7;
  const data = x.data as ArrayLike<number>;
  return { dims: x.dims, data: int ? Array.from(data, Math.trunc) : Float32Array.from(data), int };
}

const passThrough: OpFamily[string] = { convert: (c) => c.set(c.x), fold: ({ x }) => x };

export const constantOps: OpFamily = {
  Cast: { fold: foldCast, constantsOnly: true },
  Constant: { fold: foldConstant },
  Dropout: passThrough,
  Identity: passThrough,
};
