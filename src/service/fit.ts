// Submit-time fit of a job's model to its dataset, from summaries only: the
// dataset's stored (or fresh) probe against a zoo family's input rule or an
// uploaded model's stored architecture. A mismatch is a 400 on `dataset`
// before anything is queued, instead of a failed job minutes later.
import type { DatasetProbe } from '../engine/data/probe.js';
import { misfit } from '../engine/data/fits.js';
import { modelArchitecture } from '../store/models.js';
import type { ServiceContext } from './context.js';
import { invalid } from './errors.js';
import { MODEL_REF } from '../queue/inputs.js';

let zoo: Promise<{ zooInputProblem(name: string, inputShape: number[]): string | null }> | undefined;

interface StoredArchitecture {
  inputShape: number[];
  numClasses: number;
}

function architectureOf(value: unknown): StoredArchitecture | null {
  const a = value as Partial<StoredArchitecture> | null;
  if (a === null || typeof a !== 'object' || !Array.isArray(a.inputShape) || typeof a.numClasses !== 'number') return null;
  return { inputShape: a.inputShape, numClasses: a.numClasses };
}

/**
 * The example shape an image folder gives a model taking `model`: with
 * resizing on, the model's own [height, width] and channels when those are 1
 * or 3 (images are resized and converted to gray or RGB); with resizing off,
 * the images' size with the model's channels. Any other dataset: as probed.
 */
function imageInput(probe: DatasetProbe, model: number[]): number[] {
  if (probe.format !== 'images' || model.length !== 3) return probe.inputShape;
  const [h, w, c] = model as [number, number, number];
  const channels = c === 1 || c === 3 ? c : probe.inputShape[2]!;
  if (probe.images?.resize === false) return [probe.inputShape[0]!, probe.inputShape[1]!, channels];
  return [h === -1 ? probe.inputShape[0]! : h, w === -1 ? probe.inputShape[1]! : w, channels];
}

/** Throws INVALID_ARGUMENT (field `dataset`, as the request names it) when the dataset cannot feed the model. */
export async function checkFit(ctx: ServiceContext, model: string, modelId: string | null, probe: DatasetProbe | null): Promise<void> {
  if (probe === null) return;
  const shape = probe.inputShape.join('x');
  if (modelId !== null) {
    const arch = architectureOf(await modelArchitecture(ctx.prisma, modelId));
    if (arch === null) return;
    const problem = misfit({ inputShape: imageInput(probe, arch.inputShape), numClasses: probe.numClasses, maxLabel: probe.labels.max }, arch, `${MODEL_REF}${modelId}`);
    if (problem !== null) throw invalid('dataset', `dataset: ${problem}`);
    return;
  }
  zoo ??= import('../engine/models/registry.js');
  const problem = (await zoo).zooInputProblem(model, probe.inputShape);
  if (problem !== null) {
    const why = problem.startsWith(`${model}: `) ? problem.slice(model.length + 2) : problem;
    throw invalid('dataset', `dataset: the dataset's examples are ${shape}, which ${model} cannot take (${why})`);
  }
}
