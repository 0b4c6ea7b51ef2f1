// Dataset references a tenant registers (and jobs name as `dataset:<id>`), and
// the reference policy shared with job submission: builtin and http(s)
// references for everyone, file:// only where the operator allows reading the
// server's disk (TICKETSMITH_ALLOW_FILE_DATASETS, single-user installs).
// Registration parses the reference (no I/O); the data is read by the worker.
import { DatasetError } from '../engine/data/errors.js';
import { parseReference, type DatasetReference } from '../engine/data/reference.js';
import type { ServiceContext } from './context.js';
import { datasetDto, type DatasetDto } from './dto.js';
import { invalid, notFound, ServiceError } from './errors.js';
import { isUuid } from './ids.js';

export { DATASET_REF } from '../queue/inputs.js';
import { DATASET_REF } from '../queue/inputs.js';

const KNOWN_SHAPES: Record<string, { inputShape: number[]; numClasses: number }> = {
  mnist: { inputShape: [28, 28, 1], numClasses: 10 },
  'fashion-mnist': { inputShape: [28, 28, 1], numClasses: 10 },
  cifar10: { inputShape: [32, 32, 3], numClasses: 10 },
};

/** Parses and vets a reference; `field` names the request field for errors. */
export function checkReference(ctx: ServiceContext, reference: string, field: string): DatasetReference {
  let parsed: DatasetReference;
  try {
    parsed = parseReference(reference);
  } catch (e) {
    if (e instanceof DatasetError) throw invalid(field, e.message);
    throw e;
  }
  if (parsed.kind === 'location' && parsed.location.kind === 'file' && !ctx.config.allowFileDatasets) {
    throw invalid(field, `${field}: file:// datasets are disabled on this server; register an http(s) reference or use a builtin one`);
  }
  return parsed;
}

function describe(parsed: DatasetReference): { format: string; shapes: Record<string, unknown> } {
  if (parsed.kind === 'builtin') return { format: 'builtin', shapes: { ...KNOWN_SHAPES[parsed.name] } };
  const shapes: Record<string, unknown> = parsed.format ? { ...KNOWN_SHAPES[parsed.format] } : {};
  if (parsed.classes !== undefined) shapes.numClasses = parsed.classes;
  return { format: parsed.format ?? 'auto', shapes };
}

/** Registers a reference for `tenant` (registering it again returns the same row). */
export async function registerDataset(ctx: ServiceContext, tenant: string, reference: unknown): Promise<DatasetDto> {
  if (typeof reference !== 'string' || reference.trim() === '') throw invalid('reference', 'reference: a dataset reference string is required');
  const ref = reference.trim();
  if (ref.length > 2048) throw invalid('reference', 'reference: at most 2048 characters');
  const { format, shapes } = describe(checkReference(ctx, ref, 'reference'));
  const row = await ctx.prisma.dataset.upsert({
    where: { tenant_reference: { tenant, reference: ref } },
    create: { tenant, reference: ref, format, shapes: shapes as object },
    update: {},
  });
  return datasetDto(row);
}

export async function getDataset(ctx: ServiceContext, tenant: string, id: string): Promise<DatasetDto> {
  if (!isUuid(id)) throw notFound('dataset', id);
  const row = await ctx.prisma.dataset.findFirst({ where: { id, tenant } });
  if (!row) throw notFound('dataset', id);
  return datasetDto(row);
}

export async function listDatasets(ctx: ServiceContext, tenant: string): Promise<DatasetDto[]> {
  const rows = await ctx.prisma.dataset.findMany({ where: { tenant }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: 1000 });
  return rows.map(datasetDto);
}

/** A job's dataset field: `dataset:<id>` of this tenant, or a reference allowed by the policy. */
export async function resolveJobDataset(ctx: ServiceContext, tenant: string, value: string): Promise<{ datasetId: string | null }> {
  if (value.startsWith(DATASET_REF)) {
    const id = value.slice(DATASET_REF.length);
    const row = isUuid(id) ? await ctx.prisma.dataset.findFirst({ where: { id, tenant }, select: { id: true } }) : null;
    if (!row) throw new ServiceError('NOT_FOUND', `dataset: no registered dataset ${id}`, 'dataset');
    return { datasetId: row.id };
  }
  checkReference(ctx, value, 'dataset');
  return { datasetId: null };
}
