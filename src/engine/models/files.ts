// A Layers model as in-memory files and back: model.json (topology + weights
// manifest) and one weight blob, the form rounds and results carry through
// the checkpoint sink, readable by stock `tf.loadLayersModel`.
import * as tf from '@tensorflow/tfjs';
// Registers the custom layers of imported models, so their saved form loads.
import './layers/index.js';

export interface ModelFiles {
  json: Uint8Array;
  bin: Uint8Array;
}

/** Serialise through TF.js's own saver; the manifest points at `binName`. */
export async function modelToFiles(model: tf.LayersModel, binName = 'weights.bin'): Promise<ModelFiles> {
  let files: ModelFiles | null = null;
  await model.save(
    tf.io.withSaveHandler(async (art) => {
      const bin = art.weightData === undefined ? new Uint8Array(0) : new Uint8Array(tf.io.CompositeArrayBuffer.join(art.weightData));
      const json: tf.io.ModelJSON = {
        modelTopology: art.modelTopology as tf.io.ModelJSON['modelTopology'],
        format: art.format ?? 'layers-model',
        generatedBy: art.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: art.convertedBy ?? null,
        weightsManifest: [{ paths: [binName], weights: art.weightSpecs ?? [] }],
      };
      files = { json: new TextEncoder().encode(JSON.stringify(json)), bin };
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(art) };
    }),
  );
  if (files === null) throw new Error(`saving model '${model.name}' produced no files`);
  return files;
}

/** Rebuild a model from the bytes modelToFiles wrote (any single-blob manifest). */
export async function modelFromFiles(files: ModelFiles): Promise<tf.LayersModel> {
  const parsed = JSON.parse(new TextDecoder().decode(files.json)) as tf.io.ModelJSON;
  const weightSpecs = parsed.weightsManifest.flatMap((g) => g.weights);
  const weightData = files.bin.buffer.slice(files.bin.byteOffset, files.bin.byteOffset + files.bin.byteLength) as ArrayBuffer;
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: parsed.modelTopology, weightSpecs, weightData }), { strict: true });
}
