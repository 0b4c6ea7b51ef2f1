// A Layers model read as the conv engine's graph: one node per layer the
// engine can train (Conv2D, DepthwiseConv2D, MaxPooling2D,
// GlobalAveragePooling2D, BatchNormalization, Add, Flatten, Dense), ReLU
// activations fused into the node that produces their input, every node's
// per-example output shape. A model with anything else (another layer or
// activation, channels-first data, dilation, a nested model, several inputs
// or outputs) compiles to a reason instead, and trains on TF.js kernels.
import * as tf from '@tensorflow/tfjs';

export type NodeKind = 'input' | 'conv' | 'maxpool' | 'gap' | 'bn' | 'add' | 'flatten' | 'dense';

export interface CnnNode {
  index: number;
  /** The layer's name (its weights are `${layer}/kernel`, ...); for fused ReLUs, the producing layer's. */
  layer: string;
  kind: NodeKind;
  /** Producer node indices, in the layer's input order. */
  inputs: number[];
  /** Output shape of one example ([H, W, C] or [F]). */
  shape: number[];
  /** Output elements of one example. */
  size: number;
  /** The output is passed through a ReLU (fused). */
  relu: boolean;
  /** The layer's config (kernel sizes, strides, padding, units, epsilon, ...). */
  config: Record<string, unknown>;
  /** Nodes that read this node's output. */
  consumers: number[];
}

export interface CnnGraph {
  nodes: CnnNode[];
  /** Per-example input shape. */
  inputShape: number[];
  /** Classes of the output (logits; a softmax output layer is read as logits). */
  classes: number;
}

type Layer = tf.layers.Layer;
type Sym = tf.SymbolicTensor;

const KIND_BY_CLASS: Readonly<Record<string, NodeKind>> = {
  InputLayer: 'input',
  Conv2D: 'conv',
  DepthwiseConv2D: 'conv',
  MaxPooling2D: 'maxpool',
  GlobalAveragePooling2D: 'gap',
  BatchNormalization: 'bn',
  Add: 'add',
  Flatten: 'flatten',
  Dense: 'dense',
};

/** Node kinds whose kernels can fuse a ReLU on their output. */
const FUSES_RELU: ReadonlySet<NodeKind> = new Set(['conv', 'bn', 'add', 'dense']);

const product = (s: number[]): number => s.reduce((a, b) => a * b, 1);

function asPair(v: unknown): [number, number] {
  return Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)];
}

/** Why `layer` (of class cls) cannot be trained by the engine, or null. */
function layerProblem(cls: string, cfg: Record<string, unknown>, last: boolean): string | null {
  if (cls === 'Activation' || cls === 'ReLU') return null;
  const kind = KIND_BY_CLASS[cls];
  if (kind === undefined) return `layer class ${cls}`;
  if (cfg.dataFormat !== undefined && cfg.dataFormat !== 'channelsLast') return `${cls} with dataFormat ${String(cfg.dataFormat)}`;
  if (cfg.dilationRate !== undefined && asPair(cfg.dilationRate).some((d) => d !== 1)) return `${cls} with dilation`;
  if (cfg.depthMultiplier !== undefined && cfg.depthMultiplier !== 1) return `${cls} with depth multiplier ${String(cfg.depthMultiplier)}`;
  for (const k of ['kernelRegularizer', 'biasRegularizer', 'activityRegularizer', 'kernelConstraint', 'biasConstraint', 'depthwiseRegularizer', 'depthwiseConstraint', 'betaRegularizer', 'gammaRegularizer', 'betaConstraint', 'gammaConstraint']) {
    if (cfg[k]) return `${cls} with ${k}`;
  }
  const act = (cfg.activation as string | undefined) ?? 'linear';
  if (act !== 'linear' && act !== 'relu' && !(last && act === 'softmax')) return `${cls} with activation ${act}`;
  if (kind === 'bn') {
    const axis = cfg.axis as number;
    if (axis !== -1 && axis !== 3 && axis !== 1) return `BatchNormalization over axis ${axis}`;
  }
  return null;
}

/** The activation a standalone Activation/ReLU layer applies: 'relu', 'linear', or null for anything else. */
function activationOf(cls: string, cfg: Record<string, unknown>): 'relu' | 'linear' | null {
  if (cls === 'Activation') return cfg.activation === 'relu' ? 'relu' : cfg.activation === 'linear' ? 'linear' : null;
  const plain = (cfg.maxValue === undefined || cfg.maxValue === null) && !cfg.negativeSlope && !cfg.threshold;
  return plain ? 'relu' : null;
}

function outShape(s: Sym): number[] {
  return s.shape.slice(1).map((d) => Number(d));
}

/**
 * The graph of `model`, or a sentence saying what the engine cannot train.
 * Nodes are in the model's (topological) layer order.
 */
export function compileGraph(model: tf.LayersModel, opts: { plainMlp?: boolean } = {}): CnnGraph | string {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return 'several inputs or outputs';
  const inShape = outShape(model.inputs[0]!);
  if (inShape.some((d) => !Number.isFinite(d) || d <= 0)) return 'an input of unknown size';
  if (inShape.length !== 3 && inShape.length !== 1) return `a rank-${inShape.length} input`;
  const outS = outShape(model.outputs[0]!);
  if (outS.length !== 1) return 'an output that is not one vector of class scores';

  const kinds = model.layers.map((l) => KIND_BY_CLASS[l.getClassName()]);
  // Plain MLPs have the MLP engines; the conv engine takes them only where asked (cnnPathForMlp says when).
  if (opts.plainMlp !== true && !kinds.some((k) => k === 'conv' || k === 'maxpool' || k === 'bn')) return 'no convolution, pooling or batch norm (a plain MLP)';

  const nodes: CnnNode[] = [];
  /** The node producing each symbolic tensor, by the producing layer's name (one output per layer). */
  const byLayer = new Map<string, number>();
  /** Layers whose own output a fused ReLU replaced: nothing else may read it. */
  const fusedAway = new Set<string>();
  const add = (n: Omit<CnnNode, 'index' | 'consumers' | 'size'>): number => {
    const index = nodes.length;
    nodes.push({ ...n, index, size: product(n.shape), consumers: [] });
    for (const i of n.inputs) nodes[i]!.consumers.push(index);
    return index;
  };

  /** Marks every layer whose output is node `index`'s (the producer and linear activations of it) as replaced by a fused ReLU or a flatten. */
  const fuseAway = (index: number): void => {
    for (const [name, i] of byLayer) if (i === index) fusedAway.add(name);
  };

  const outputLayer = model.outputs[0]!.sourceLayer.name;
  const layers: Layer[] = [...model.layers];
  const firstInput = model.inputs[0]!.sourceLayer;
  if (!layers.includes(firstInput)) layers.unshift(firstInput);
  for (const layer of layers) {
    const cls = layer.getClassName();
    if (layer instanceof tf.LayersModel) return `a nested model (${layer.name})`;
    // TF.js leaves a frozen layer's weights alone; the engine's optimiser would train them.
    if (!layer.trainable && layer.weights.length > 0) return `a frozen layer (${layer.name})`;
    const cfg = layer.getConfig() as Record<string, unknown>;
    const problem = layerProblem(cls, cfg, layer.name === outputLayer);
    if (problem) return problem;
    if (cls === 'InputLayer') {
      byLayer.set(layer.name, add({ layer: layer.name, kind: 'input', inputs: [], shape: inShape, relu: false, config: cfg }));
      continue;
    }
    const inbound = (layer as unknown as { inboundNodes: unknown[] }).inboundNodes;
    if (inbound.length !== 1) return `layer ${layer.name} used ${inbound.length} times`;
    const ins = ([] as Sym[]).concat(layer.input as Sym | Sym[]);
    const inputs: number[] = [];
    for (const s of ins) {
      if (fusedAway.has(s.sourceLayer.name)) return `layer ${layer.name} reads ${s.sourceLayer.name} before its ReLU`;
      const p = byLayer.get(s.sourceLayer.name);
      if (p === undefined) return `layer ${layer.name} reads a tensor the engine did not build`;
      inputs.push(p);
    }
    const shape = outShape(layer.output as Sym);
    if (cls === 'Activation' || cls === 'ReLU') {
      const act = activationOf(cls, cfg);
      if (act === null) return `${cls} layer ${layer.name} with ${String(cfg.activation ?? 'a clipped or leaky ReLU')}`;
      const p = nodes[inputs[0]!]!;
      if (act === 'linear') {
        byLayer.set(layer.name, p.index);
        continue;
      }
      // A ReLU fuses into its producer when nothing else reads the producer's pre-activation output.
      if (!FUSES_RELU.has(p.kind) || p.relu || p.consumers.length > 0 || p.layer === outputLayer) return `a ReLU (${layer.name}) after ${p.kind} ${p.layer}`;
      p.relu = true;
      fuseAway(p.index);
      byLayer.set(layer.name, p.index);
      continue;
    }
    const kind = KIND_BY_CLASS[cls]!;
    if (kind === 'add' && inputs.length !== 2) return `Add ${layer.name} of ${inputs.length} tensors`;
    if ((kind === 'conv' || kind === 'maxpool' || kind === 'gap') && nodes[inputs[0]!]!.shape.length !== 3) return `${cls} ${layer.name} on a non-image tensor`;
    if (kind === 'dense' && nodes[inputs[0]!]!.shape.length !== 1) return `Dense ${layer.name} on a rank-${nodes[inputs[0]!]!.shape.length + 1} tensor`;
    if (kind === 'bn' && nodes[inputs[0]!]!.shape.length === 3 && cfg.axis === 1) return `BatchNormalization ${layer.name} over axis 1 of an image`;
    if (kind === 'flatten') {
      // A flatten shares its input's buffers (engine.ts), so its input may have no other reader; it carries the input's ReLU.
      const p = nodes[inputs[0]!]!;
      if (p.consumers.length > 0) return `Flatten ${layer.name} of a tensor read elsewhere`;
      if (p.kind === 'input' && opts.plainMlp !== true) return `Flatten ${layer.name} of the input (the MLP engines train plain MLPs)`;
      if (p.kind === 'input') {
        // A flatten of the input: the input node is read as the vector (the same memory); it has no gradient to share.
        p.shape = shape;
        fuseAway(p.index);
        byLayer.set(layer.name, p.index);
        continue;
      }
      fuseAway(p.index);
      byLayer.set(layer.name, add({ layer: layer.name, kind, inputs, shape, relu: p.relu, config: cfg }));
      continue;
    }
    const relu = (cfg.activation as string | undefined) === 'relu';
    byLayer.set(layer.name, add({ layer: layer.name, kind, inputs, shape, relu, config: cfg }));
  }
  const out = byLayer.get(outputLayer);
  if (out === undefined || out !== nodes.length - 1) return 'an output that is not the last layer';
  // The loss reads the output as logits: a ReLU there would need its mask on the loss gradient.
  if (nodes[out]!.relu) return 'a ReLU on the output';
  return { nodes, inputShape: inShape, classes: outS[0]! };
}

export { asPair };
