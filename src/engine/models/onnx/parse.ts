// Reading an ONNX file into the plain shapes convert.ts works on: the decoded
// protobuf (onnx-proto, the generated onnx.proto classes), every initializer
// and Constant as a dense array, and the one input's fixed shape. Everything
// that makes a file unusable before its ops are even looked at is refused
// here, each with its own message: a corrupt protobuf, an opset outside
// MIN_OPSET..MAX_OPSET, weights in an external file, several inputs or
// outputs, an input that is not float32 or has dynamic spatial dims.
// It does not build anything (convert.ts) nor run anything (check.ts).
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { ModelImportError } from '../import/errors.js';

const { onnx } = onnxProto;

/** Lowest and highest default-domain opsets whose op semantics the importer follows. */
export const MIN_OPSET = 9;
export const MAX_OPSET = 21;

export type NodeProto = OnnxTypes.INodeProto;
export type AttrProto = OnnxTypes.IAttributeProto;

/** A constant: initializer, Constant node or folded value. Integers (int64 shapes, indices) as numbers. */
export interface ConstValue {
  dims: number[];
  data: Float32Array | number[];
  /** true for integer tensors (data is number[]). */
  int: boolean;
}

export interface ParsedOnnx {
  graphName: string;
  opset: number;
  nodes: NodeProto[];
  /** Initializers by name (also those wrongly listed as graph inputs, as old exporters do). */
  initializers: Map<string, ConstValue>;
  input: { name: string; /** ONNX dims without the batch dim: [C, H, W] or [F]. */ dims: number[]; batch: number | null };
  output: { name: string; rank: number | null };
}

type Longish = number | { toNumber(): number } | null | undefined;

export function num(v: Longish): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

const FILE = 'model.onnx';

const unsupported = (message: string) => new ModelImportError('UNSUPPORTED_MODEL', message, FILE);

/** The tensor's values, whatever field the exporter put them in. */
export function tensorValue(t: OnnxTypes.ITensorProto, what: string): ConstValue {
  const dims = (t.dims ?? []).map((d) => num(d as Longish));
  const count = dims.reduce((a, b) => a * b, 1);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const loc = (t.externalData ?? []).find((e) => e.key === 'location')?.value ?? '?';
    throw unsupported(`${what} keeps its data in the external file '${loc}'; external-data weights are not supported: save the model as one file (onnx.save_model(model, path, save_as_external_data=False))`);
  }
  const raw = t.rawData && t.rawData.byteLength > 0 ? t.rawData : null;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : null;
  const T = onnx.TensorProto.DataType;
  const check = (n: number) => {
    if (n !== count) throw new ModelImportError('INVALID_ARGUMENT', `${what}: holds ${n} values but its dims ${JSON.stringify(dims)} need ${count}`, FILE);
  };
  switch (t.dataType) {
    case T.FLOAT: {
      if (view) {
        check(view.byteLength / 4);
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
        return { dims, data: out, int: false };
      }
      check((t.floatData ?? []).length);
      return { dims, data: Float32Array.from(t.floatData ?? []), int: false };
    }
    case T.DOUBLE: {
      if (view) {
        check(view.byteLength / 8);
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
        return { dims, data: out, int: false };
      }
      check((t.doubleData ?? []).length);
      return { dims, data: Float32Array.from(t.doubleData ?? []), int: false };
    }
    case T.INT64: {
      if (view) {
        check(view.byteLength / 8);
        const out: number[] = [];
        for (let i = 0; i < count; i++) out.push(Number(view.getBigInt64(i * 8, true)));
        return { dims, data: out, int: true };
      }
      check((t.int64Data ?? []).length);
      return { dims, data: (t.int64Data ?? []).map((v) => num(v as Longish)), int: true };
    }
    case T.INT32: {
      if (view) {
        check(view.byteLength / 4);
        const out: number[] = [];
        for (let i = 0; i < count; i++) out.push(view.getInt32(i * 4, true));
        return { dims, data: out, int: true };
      }
      check((t.int32Data ?? []).length);
      return { dims, data: [...(t.int32Data ?? [])], int: true };
    }
    default:
      throw unsupported(`${what} has data type ${onnx.TensorProto.DataType[t.dataType ?? 0] ?? t.dataType}; only float32/float64 weights and int32/int64 shapes are supported`);
  }
}

function dimsOf(v: OnnxTypes.IValueInfoProto): (number | string | null)[] | null {
  const shape = v.type?.tensorType?.shape;
  if (!shape) return null;
  return (shape.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null && num(d.dimValue as Longish) > 0 ? num(d.dimValue as Longish) : d.dimParam || null));
}

/** Decodes and vets an ONNX file; throws ModelImportError for each kind of unusable file. */
export function parseOnnx(bytes: Uint8Array): ParsedOnnx {
  let model: OnnxTypes.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new ModelImportError('INVALID_ARGUMENT', `${FILE}: not a valid ONNX protobuf (${(e as Error).message}); the file may be truncated or not an ONNX model`, FILE);
  }
  const graph = model.graph;
  if (!graph || (graph.node ?? []).length === 0) {
    throw new ModelImportError('INVALID_ARGUMENT', `${FILE}: no graph with nodes in the file; it is not an ONNX model`, FILE);
  }
  const opsets = model.opsetImport ?? [];
  const main = opsets.find((o) => !o.domain || o.domain === 'ai.onnx');
  const opset = main ? num(main.version as Longish) : 1;
  if (opset < MIN_OPSET || opset > MAX_OPSET) {
    throw unsupported(`${FILE}: opset ${opset} is not supported; re-export with an opset from ${MIN_OPSET} to ${MAX_OPSET} (torch.onnx.export(..., opset_version=13))`);
  }

  const initializers = new Map<string, ConstValue>();
  for (const t of graph.initializer ?? []) initializers.set(t.name ?? '', tensorValue(t, `initializer '${t.name}'`));
  (graph.node ?? []).forEach((n, i) => {
    for (const a of n.attribute ?? []) {
      if (a.t) tensorValue(a.t, `attribute '${a.name}' of node '${n.name || `#${i}`}'`);
    }
  });

  const inputs = (graph.input ?? []).filter((v) => !initializers.has(v.name ?? ''));
  if (inputs.length !== 1) {
    throw unsupported(`${FILE}: the graph has ${inputs.length} inputs (${inputs.map((v) => `'${v.name}'`).join(', ')}); exactly one input is supported`);
  }
  const outputs = graph.output ?? [];
  if (outputs.length !== 1) {
    throw unsupported(`${FILE}: the graph has ${outputs.length} outputs (${outputs.map((v) => `'${v.name}'`).join(', ')}); exactly one output is supported`);
  }
  const input = inputs[0]!;
  const elem = input.type?.tensorType?.elemType;
  if (elem !== onnx.TensorProto.DataType.FLOAT) {
    throw unsupported(`${FILE}: input '${input.name}' has element type ${onnx.TensorProto.DataType[elem ?? 0] ?? elem}; only float32 inputs are supported`);
  }
  const dims = dimsOf(input);
  if (dims === null || (dims.length !== 4 && dims.length !== 2)) {
    throw unsupported(`${FILE}: input '${input.name}' has ${dims === null ? 'no known shape' : `rank ${dims.length}`}; an NCHW image input [N, C, H, W] or a flat input [N, F] is supported`);
  }
  const dynamic = dims.slice(1).map((d, i) => (typeof d === 'number' ? null : `${['C', 'H', 'W'][i] ?? `dim ${i + 1}`}=${d ?? '?'}`)).filter((d) => d !== null);
  if (dynamic.length > 0) {
    throw unsupported(`${FILE}: input '${input.name}' has dynamic dims (${dynamic.join(', ')}); every dim but the batch must be fixed: export with a fixed input size (dynamic_axes only for the batch)`);
  }
  const output = outputs[0]!;
  const outDims = dimsOf(output);
  return {
    graphName: graph.name || 'onnx',
    opset,
    nodes: graph.node ?? [],
    initializers,
    input: { name: input.name ?? 'input', dims: dims.slice(1) as number[], batch: typeof dims[0] === 'number' ? dims[0] : null },
    output: { name: output.name ?? 'output', rank: outDims === null ? null : outDims.length },
  };
}
