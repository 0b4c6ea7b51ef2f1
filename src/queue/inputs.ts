// Turns a stored job spec into one the engine can run: an uploaded model
// (`model:<id>`) is written from the blob store into a private temp directory,
// a registered dataset (`dataset:<id>`) becomes its reference. Both were
// checked to belong to the job's tenant at submit time.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import type { RunSpec } from '../engine/spec.js';
import type { BlobStore } from '../store/blobs.js';
import type { PrismaClient } from '../store/db.js';

export const MODEL_REF = 'model:';
export const DATASET_REF = 'dataset:';

export interface PreparedRun {
  spec: RunSpec;
  cleanup(): Promise<void>;
}

export async function prepareRun(prisma: PrismaClient, blobs: BlobStore, jobId: string, stored: RunSpec): Promise<PreparedRun> {
  const spec: RunSpec = { ...stored };
  let dir: string | null = null;
  const cleanup = async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  };
  try {
    if (spec.model.startsWith(MODEL_REF)) {
      const modelId = spec.model.slice(MODEL_REF.length);
      const files = await prisma.artifact.findMany({ where: { modelId, kind: 'model-file' }, select: { name: true, storageKey: true } });
      if (files.length === 0) throw new Error(`uploaded model ${modelId} has no files`);
      dir = await mkdtemp(join(tmpdir(), `ticketsmith-${jobId.slice(0, 8)}-`));
      for (const f of files) {
        const target = normalize(join(dir, f.name));
        if (!target.startsWith(dir)) throw new Error(`model file name escapes its directory: ${f.name}`);
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, await blobs.get(f.storageKey));
      }
      spec.model = dir;
    }
    if (spec.dataset.startsWith(DATASET_REF)) {
      const id = spec.dataset.slice(DATASET_REF.length);
      const ds = await prisma.dataset.findUnique({ where: { id }, select: { reference: true } });
      if (!ds) throw new Error(`registered dataset ${id} no longer exists`);
      spec.dataset = ds.reference;
    }
  } catch (e) {
    await cleanup();
    throw e;
  }
  return { spec, cleanup };
}
