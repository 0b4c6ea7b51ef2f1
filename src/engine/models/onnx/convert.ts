// ONNX graph -> TF.js Layers functional model, channels-last. Each ONNX
// value is either a constant (initializers, Constant nodes, and every node
// whose inputs are all constants, folded here: torch's
// Shape→Gather→Unsqueeze→Concat chain before a Reshape ends up as a constant
// shape) or a symbolic tensor of the model being built. Rank-4 tensors are
// NCHW in ONNX and NHWC here, so conv kernels are transposed (OIHW → HWIO),
// channel axes remapped, and a Flatten of a real H×W map first permutes back
// to channels-first so the Dense after it keeps torch's element order. A
// global pool yields [N, C] here for ONNX's [N, C, 1, 1] ("squeezed").
// What cannot be built exactly is refused by node name; ops outside
// SUPPORTED_OPS are all listed at once before anything is built. Each op's
// handling lives in ops/ (one file per family), found through its registry.
import * as tf from '@tensorflow/tfjs';
import { attrInt, attrs, Converter, isPerm, normAxis, nodeCtx, nodeInputs, nodeLabel, unsupported, type Attrs } from './context.js';
import { CONSTANT_OPS, OPS, SUPPORTED_OPS } from './ops/index.js';
import type { ConstValue, NodeProto, ParsedOnnx } from './parse.js';
import { ModelImportError } from '../import/errors.js';

export { CONSTANT_OPS, SUPPORTED_OPS } from './ops/index.js';

export interface ConvertOptions {
  name?: string;
  /** Layers the model may have (the model budget's maxLayers), refused while building. */
  maxLayers?: number;
  /** Values a folded constant may hold (the model budget's maxLayerParams). */
  maxConstValues?: number;
}

/** Every op type outside SUPPORTED_OPS with the first node that uses it, refused together. */
export function checkOps(nodes: NodeProto[]): void {
  const first = new Map<string, string>();
  nodes.forEach((n, i) => {
    const domain = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.` : '';
    const op = `${domain}${n.opType ?? '?'}`;
    const known = SUPPORTED_OPS.includes(n.opType ?? '') || CONSTANT_OPS.includes(n.opType ?? '');
    if ((domain || !known) && !first.has(op)) first.set(op, nodeLabel(n, i));
  });
  if (first.size > 0) {
    const list = [...first].map(([op, node]) => `${op} (first used by node ${node})`).join(', ');
    throw unsupported(`unsupported ONNX op type${first.size > 1 ? 's' : ''}: ${list}; supported ops: ${SUPPORTED_OPS.join(', ')}; on constants only (folded at import): ${CONSTANT_OPS.join(', ')}`);
  }
}

const size = (c: ConstValue | null) => (c ? c.dims.reduce((p, d) => p * d, 1) : 0);

/** Values a fold will produce, known before it runs: the ops whose output can outgrow their inputs. */
function foldSize(op: string, ins: (ConstValue | null)[], a: Attrs): number {
  if (op === 'Concat') return ins.reduce((n, c) => n + size(c), 0);
  if (['Add', 'Sub', 'Mul', 'Div'].includes(op)) {
    const rank = Math.max(...ins.map((c) => c?.dims.length ?? 0));
    const pad = (c: ConstValue | null) => [...new Array<number>(rank - (c?.dims.length ?? 0)).fill(1), ...(c?.dims ?? [])];
    const dims = ins.map(pad);
    return Array.from({ length: rank }, (_, i) => Math.max(...dims.map((d) => d[i]!))).reduce((p, d) => p * d, 1);
  }
  if (op === 'Gather' && ins[0] && ins[1]) {
    const x = ins[0];
    const axis = normAxis(attrInt(a, 'axis', 0), x.dims.length);
    return (size(x) / Math.max(1, x.dims[axis] ?? 1)) * size(ins[1]);
  }
  return Math.max(0, ...ins.map(size));
}

/**
 * Folds a node whose inputs are all constants, refusing one whose result would exceed
 * `maxValues` (the budget's largest layer): 30 Concats of a constant with itself fold to
 * 2^30 values, which held the upload thread past a minute and gigabytes from a 2 KB file.
 */
function foldConst(node: NodeProto, ins: (ConstValue | null)[], a: Attrs, opset: number, where: string, maxValues: number): ConstValue {
  const op = node.opType!;
  const fold = OPS.get(op)?.fold;
  if (!fold) throw unsupported(`node ${where} (${op}) has only constant inputs, and folding ${op} is not supported`);
  const tooMany = (n: number) => new ModelImportError('INVALID_ARGUMENT', `model.onnx: node ${where} (${op}) folds to a constant of ${n.toLocaleString('en-US')} values; the limit is ${maxValues.toLocaleString('en-US')} (the model budget's parameters per layer)`, 'model.onnx');
  const expected = foldSize(op, ins, a);
  if (!(expected <= maxValues)) throw tooMany(expected);
  const out = fold({ node, op, where, a, opset, ins, x: ins[0]! });
  if (!(out.data.length <= maxValues)) throw tooMany(out.data.length);
  return out;
}

/** 'nhwc' when the graph takes an NHWC image and transposes it to NCHW first (as tf2onnx writes Keras models). */
export type InputLayout = 'nchw' | 'nhwc' | 'flat';

export function inputLayout(p: ParsedOnnx): InputLayout {
  if (p.input.dims.length !== 3) return 'flat';
  const users = p.nodes.filter((n) => (n.input ?? []).includes(p.input.name));
  return users.length > 0 && users.every((n) => n.opType === 'Transpose' && isPerm(n, [0, 3, 1, 2])) ? 'nhwc' : 'nchw';
}

/** Builds the Layers model of a parsed ONNX graph (parse.ts), its weights set from the initializers. */
export function convertOnnx(p: ParsedOnnx, opts: ConvertOptions = {}): tf.LayersModel {
  checkOps(p.nodes);
  const cv = new Converter(p, opts.maxLayers, opts.maxConstValues);
  const inDims = p.input.dims;
  const layout = inputLayout(p);
  const shape = layout === 'nchw' ? [inDims[1]!, inDims[2]!, inDims[0]!] : inDims;
  const input = tf.input({ shape, name: cv.layerName(p.input.name) });
  cv.values.set(p.input.name, { kind: 'tensor', t: input, dims: inDims, squeezed: false, nhwc: layout === 'nhwc' });
  const created: tf.Tensor[] = [];
  try {
    p.nodes.forEach((node, index) => {
      if (cv.fused.has(node)) return;
      convertNode(cv, node, index, created);
    });
    const out = cv.values.get(p.output.name);
    if (!out || out.kind !== 'tensor') throw unsupported(`the graph output '${p.output.name}' is ${out ? 'a constant' : 'never computed'}`);
    if (out.t.shape.length !== 2) throw unsupported(`the graph output '${p.output.name}' has ONNX shape [N, ${out.dims.join(', ')}]; a classifier output [N, classes] is supported`);
    const model = tf.model({ inputs: input, outputs: out.t, name: cv.layerName(opts.name ?? p.graphName) });
    for (const { layer, weights } of cv.pending) layer.setWeights(weights);
    return model;
  } finally {
    tf.dispose(created);
    for (const { weights } of cv.pending) tf.dispose(weights);
  }
}

function convertNode(cv: Converter, node: NodeProto, index: number, created: tf.Tensor[]): void {
  const op = node.opType!;
  const where = nodeLabel(node, index);
  const a = attrs(node);
  const ins = nodeInputs(cv, node, where);
  const outName = node.output?.[0] ?? '';
  const entry = OPS.get(op);
  cv.current = `${where} (${op})`;
  const refuse = (why: string) => { throw unsupported(`node ${where} (${op}) ${why}`); };

  // Shape of a tensor is a constant (its batch dim BATCH), built by its handler below.
  const allConst = ins.every((v) => v === null || v.kind === 'const');
  if (allConst) {
    cv.values.set(outName, { kind: 'const', c: foldConst(node, ins.map((v) => (v && v.kind === 'const' ? v.c : null)), a, cv.p.opset, where, cv.maxConstValues) });
    return;
  }
  // Add and Mul commute: the constant may come first.
  if ((op === 'Add' || op === 'Mul') && ins[0]?.kind === 'const' && ins[1]?.kind === 'tensor') ins.reverse();
  const x = ins[0];
  if (!x || x.kind !== 'tensor') return refuse('takes a constant as its first input where a tensor is expected');
  if (!entry?.convert) return refuse(`is applied to a tensor; ${op} is supported only on constants, folded at import`);
  entry.convert(nodeCtx(cv, { node, index, where, a, ins, x, created }));
}
