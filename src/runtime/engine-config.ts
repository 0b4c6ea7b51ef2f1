// The engine's settings as one object: how many trainings a job runs side by
// side, which training loop trains plain MLPs, how much one dataset file may
// hold, and where builtin:fashion-mnist lives. The runtime reads them from the
// environment (config.ts: loadConfig for the service, loadEngineConfig for the
// CLI and scripts) and the callers hand them to the engine (RunContext,
// DataAccess, TrainConfig); the engine itself reads no environment variable.
import { z } from 'zod';

/**
 * Which loop trains a model: `auto` picks by model, backend, mask density,
 * and for plain MLPs the inputs' share of zeros and the thread count
 * (an MLP engine for plain MLPs, or the conv engine for a dense round on
 * mostly nonzero inputs with two threads or more, and the conv engine for
 * conv nets it can train, on CPU backends; TF.js kernels otherwise); `tfjs` keeps TF.js
 * kernels; `mlp-simd` / `mlp-csr` force that MLP engine for plain MLPs and
 * `cnn-simd` the conv engine for conv nets and plain MLPs (other models
 * train on TF.js kernels).
 */
export type TrainingLoopChoice = 'auto' | 'tfjs' | 'mlp-simd' | 'mlp-csr' | 'cnn-simd';
export const TRAINING_LOOPS: readonly TrainingLoopChoice[] = ['auto', 'tfjs', 'mlp-simd', 'mlp-csr', 'cnn-simd'];

/** Caps on one dataset file, downloaded or unpacked: a tenant's URL must not exhaust a worker's memory. */
export interface DatasetLimits {
  /** The most bytes one dataset file may have, downloaded or unpacked. */
  maxBytes: number;
  /** The most a gzip file or zip member may expand relative to its compressed size. */
  maxRatio: number;
}

/** Caps on an image-folder dataset (issue 11): every file and pixel is counted before a job or probe holds it. */
export interface ImageLimits {
  /** Most files in one image folder or archive (every file counts, images or not). */
  maxFiles: number;
  /** Largest width * height of one image, read from its header before decoding. */
  maxPixels: number;
  /** Largest sum of width * height over the folder's images (all are held decoded until the target size is known). */
  maxTotalPixels: number;
}

export interface EngineConfig {
  /** Trainings one job runs side by side; undefined: the cores (at most 3) when the run trains controls, else 1. */
  workers?: number;
  loop: TrainingLoopChoice;
  datasets: DatasetLimits;
  /** Where builtin:fashion-mnist is read from (the Debian package's folder by default). */
  fashionMnistDir: string;
  /** Image-folder caps; absent: DEFAULT_IMAGE_LIMITS (set only when one of their variables is). */
  images?: ImageLimits;
}

/** Real image data packs 2-20 fold, a decompression bomb a thousand fold. */
export const DEFAULT_DATASET_LIMITS: Readonly<DatasetLimits> = Object.freeze({ maxBytes: 2 * 1024 ** 3, maxRatio: 200 });
/** 100,000 files, 4096x4096 pixels an image, 2^28 pixels a folder (the decoded images are held at once). */
export const DEFAULT_IMAGE_LIMITS: Readonly<ImageLimits> = Object.freeze({ maxFiles: 100_000, maxPixels: 4096 * 4096, maxTotalPixels: 2 ** 28 });
export const FASHION_MNIST_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';

/** What the engine does when nobody passes a config: every setting's default, nothing from the environment. */
export const DEFAULT_ENGINE_CONFIG: Readonly<EngineConfig> = Object.freeze({
  loop: 'auto',
  datasets: DEFAULT_DATASET_LIMITS,
  fashionMnistDir: FASHION_MNIST_DEFAULT_DIR,
});

/** TICKETSMITH_MLP's values (the names the README documents) and the loop each picks. */
const LOOP_BY_ENV: Readonly<Record<string, TrainingLoopChoice>> = { simd: 'mlp-simd', csr: 'mlp-csr', cnn: 'cnn-simd', tfjs: 'tfjs' };

/** The engine's environment variables, as zod fields (config.ts parses them with the rest). */
export const ENGINE_ENV = {
  /** Parallel trainings per job (the ticket and its controls). */
  TICKETSMITH_WORKERS: z.coerce.number().int().min(1).optional(),
  /** `tfjs` keeps TF.js kernels for MLPs; `simd` or `csr` forces that MLP engine; unset: automatic. */
  TICKETSMITH_MLP: z
    .string()
    .optional()
    .transform((v, ctx): TrainingLoopChoice => {
      if (v === undefined) return 'auto';
      const loop = LOOP_BY_ENV[v];
      if (loop !== undefined) return loop;
      ctx.addIssue({ code: 'custom', message: `TICKETSMITH_MLP must be one of ${Object.keys(LOOP_BY_ENV).join(', ')}; got '${v}'` });
      return z.NEVER;
    }),
  /** The most one dataset file may download or unpack to (the door's probe and the worker's loaders alike). */
  TICKETSMITH_MAX_DATASET_BYTES: z.coerce.number().int().min(1).default(DEFAULT_DATASET_LIMITS.maxBytes),
  /** The most a gzip file or zip member may expand relative to its compressed size. */
  TICKETSMITH_MAX_DATASET_RATIO: z.coerce.number().min(1).default(DEFAULT_DATASET_LIMITS.maxRatio),
  /** Where builtin:fashion-mnist is read from. */
  TICKETSMITH_FASHION_MNIST_DIR: z.string().default(FASHION_MNIST_DEFAULT_DIR),
  /** Most files in one image-folder dataset. */
  TICKETSMITH_MAX_IMAGE_FILES: z.coerce.number().int().min(1).optional(),
  /** Largest width * height of one image. */
  TICKETSMITH_MAX_IMAGE_PIXELS: z.coerce.number().int().min(1).optional(),
  /** Largest sum of width * height over one image folder. */
  TICKETSMITH_MAX_IMAGE_TOTAL_PIXELS: z.coerce.number().int().min(1).optional(),
  /**
   * `0` runs the WebAssembly kernels' plain-SIMD build, `1` (or unset) the
   * relaxed-SIMD one where it compiles. Read by the kernels' loader
   * (src/runtime/simd/), not the engine; checked here so that a bad value
   * stops the process at start.
   */
  TICKETSMITH_RELAXED_SIMD: z.enum(['0', '1'], { message: "TICKETSMITH_RELAXED_SIMD must be 0 (plain SIMD) or 1 (relaxed SIMD where it compiles)" }).optional(),
};

export const EngineEnvSchema = z.object(ENGINE_ENV);
export type EngineEnv = z.infer<typeof EngineEnvSchema>;

/** The EngineConfig of parsed environment variables. */
export function engineConfigOf(e: EngineEnv): EngineConfig {
  return {
    workers: e.TICKETSMITH_WORKERS,
    loop: e.TICKETSMITH_MLP,
    datasets: { maxBytes: e.TICKETSMITH_MAX_DATASET_BYTES, maxRatio: e.TICKETSMITH_MAX_DATASET_RATIO },
    fashionMnistDir: e.TICKETSMITH_FASHION_MNIST_DIR,
    ...imageLimitsOf(e),
  };
}

/** `{ images }` when any image cap is set (the others keep their defaults), else nothing: the config stays as it was. */
function imageLimitsOf(e: EngineEnv): { images?: ImageLimits } {
  const { TICKETSMITH_MAX_IMAGE_FILES: files, TICKETSMITH_MAX_IMAGE_PIXELS: pixels, TICKETSMITH_MAX_IMAGE_TOTAL_PIXELS: total } = e;
  if (files === undefined && pixels === undefined && total === undefined) return {};
  const d = DEFAULT_IMAGE_LIMITS;
  return { images: { maxFiles: files ?? d.maxFiles, maxPixels: pixels ?? d.maxPixels, maxTotalPixels: total ?? d.maxTotalPixels } };
}
