// Where a Keras file keeps each layer's weights, and copying them into the
// built TF.js model. Both layouts list a layer's variables in the order Keras
// created them (kernel, bias; gamma, beta, moving mean, moving variance;
// depthwise, pointwise, bias), which is the order of TF.js's `layer.weights`,
// so they are matched by position and every shape is checked before any
// values are read.
//
// - Keras 3 (`model.weights.h5` in a .keras archive): `layers/<key>/vars/0..n`,
//   where <key> is not the layer's name but its class in snake_case, numbered
//   per class in layer order (`conv2d`, `conv2d_1`, ...: keras saving_lib's
//   `_save_container_state`). Recent Keras also writes the layer's name as an
//   attribute of `vars`; that is preferred when present.
// - Legacy .h5: `model_weights/<layer>` lists `weight_names`, each a dataset
//   path under that group (`stem/kernel`, Keras 2's `stem/kernel:0`).
import * as tf from '@tensorflow/tfjs';
import { ModelImportError } from '../import/errors.js';
import type { KerasLayer } from './config.js';
import { h5get, isDataset, isGroup, stringAttr, stringListAttr, type H5Dataset, type H5Group } from './hdf5.js';

/** Keras's `naming.to_snake_case` of a class name (`Conv2D` -> `conv2d`, `ReLU` -> `re_lu`). */
export function kerasSnakeCase(name: string): string {
  const a = name.replace(/\W+/g, '').replace(/(.)([A-Z][a-z]+)/g, '$1_$2');
  return a.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

/** A layer's weight datasets in creation order, or null when the file has none for it. */
export type WeightLocator = (layer: KerasLayer) => H5Dataset[] | null;

const invalid = (label: string, msg: string): ModelImportError => new ModelImportError('INVALID_ARGUMENT', `${label}: ${msg}`, label);

/** Keras 3's layout (see above). */
export function keras3Locator(root: H5Group, layers: KerasLayer[], label: string): WeightLocator {
  const group = h5get(root, 'layers');
  if (!isGroup(group)) throw invalid(label, "has no 'layers' group; this is not a Keras 3 weights file");
  const byName = new Map<string, H5Group>();
  for (const key of group.keys()) {
    const vars = h5get(group, `${key}/vars`);
    const name = isGroup(vars) ? stringAttr(vars, 'name') : null;
    if (isGroup(vars) && name !== null) byName.set(name, vars);
  }
  const byKey = new Map<string, H5Group>();
  const used = new Map<string, number>();
  for (const layer of layers) {
    const base = kerasSnakeCase(layer.className);
    const n = used.get(base);
    used.set(base, n === undefined ? 0 : n + 1);
    const key = n === undefined ? base : `${base}_${n + 1}`;
    const vars = h5get(group, `${key}/vars`);
    if (isGroup(vars)) byKey.set(layer.name, vars);
  }
  return (layer) => {
    const vars = byName.get(layer.name) ?? byKey.get(layer.name);
    if (vars === undefined) return null;
    const keys = vars.keys().filter((k) => /^\d+$/.test(k)).sort((a, b) => Number(a) - Number(b));
    return keys.map((k, i) => {
      const d = h5get(vars, k);
      if (!isDataset(d) || Number(k) !== i) throw invalid(label, `layer '${layer.name}': weight ${vars.path}/${k} is not a numbered dataset in sequence`);
      return d;
    });
  };
}

/** The legacy .h5 layout (see above); `model_weights` is the root of a weights-only file too. */
export function legacyLocator(root: H5Group, label: string): WeightLocator {
  const mw = h5get(root, 'model_weights');
  const base = isGroup(mw) ? mw : root;
  return (layer) => {
    const g = h5get(base, layer.name);
    if (!isGroup(g)) return null;
    const names = stringListAttr(g, 'weight_names');
    if (names === null) throw invalid(label, `layer '${layer.name}': group ${g.path} has no readable 'weight_names' attribute`);
    return names.map((n) => {
      const d = h5get(g, n);
      if (!isDataset(d)) throw invalid(label, `layer '${layer.name}': weight '${n}' is listed but missing from ${g.path}`);
      return d;
    });
  };
}

function values(d: H5Dataset, label: string, what: string): Float32Array {
  const v: unknown = d.value;
  if (v instanceof Float32Array) return v;
  if (v instanceof Float64Array) return Float32Array.from(v);
  throw invalid(label, `${what} is stored as ${String(d.dtype)}; float32 weights are required`);
}

/**
 * Copies every weight of `model`'s layers from `locate` into the model, by
 * position, after checking count and shape. Layers without weights must
 * have none in the file either.
 */
export function loadKerasWeights(model: tf.LayersModel, layers: KerasLayer[], locate: WeightLocator, label: string): void {
  const byName = new Map(layers.map((l) => [l.name, l]));
  for (const layer of model.layers) {
    const keras = byName.get(layer.name);
    if (keras === undefined) continue; // an InputLayer made up for a Sequential model
    const expected = layer.weights;
    const found = locate(keras);
    if (found === null) {
      if (expected.length === 0) continue;
      throw invalid(label, `has no weights for layer '${layer.name}' (${keras.className}), which needs ${expected.length} (${expected.map((w) => w.originalName.split('/').pop()).join(', ')})`);
    }
    if (found.length !== expected.length) {
      throw invalid(label, `layer '${layer.name}' (${keras.className}) has ${found.length} weight(s) in the file, the model needs ${expected.length}`);
    }
    const data = found.map((d, i) => {
      const want = expected[i]!.shape;
      const what = `layer '${layer.name}' weight ${i} (${expected[i]!.originalName.split('/').pop()})`;
      const shape = d.shape ?? [];
      if (shape.length !== want.length || shape.some((s, k) => s !== want[k])) {
        throw invalid(label, `${what} has shape [${shape.join(', ')}] in the file, the model needs [${want.join(', ')}]`);
      }
      return values(d, label, what);
    });
    const tensors = data.map((v, i) => tf.tensor(v, expected[i]!.shape as number[], 'float32'));
    try {
      layer.setWeights(tensors);
    } finally {
      tf.dispose(tensors);
    }
  }
}
