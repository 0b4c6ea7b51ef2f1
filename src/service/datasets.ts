// Dataset references a tenant registers (and jobs name as `dataset:<id>`), and
// the reference policy shared with job submission and the worker: builtin
// references for everyone; http(s) ones whose hosts resolve to public
// addresses (the outbound guard, src/runtime/outbound.ts, with the operator's
// TICKETSMITH_OUTBOUND_ALLOW); file:// only where the operator allows reading
// the server's disk (TICKETSMITH_ALLOW_FILE_DATASETS) and only inside
// TICKETSMITH_FILE_ROOTS. The door checks names and paths (DNS, realpath)
// first; then registration probes the reference (engine/data/probe.ts:
// headers, sizes, labels and counts read by streaming through the same guard
// and file policy, under the configured caps) and stores the summary in
// `shapes`; submit fits a model against that summary. The worker checks again
// when it fetches (DNS may change).
import { confineFile, FILES_DISABLED } from '../engine/data/access.js';
import { DatasetError } from '../engine/data/errors.js';
import { probeDataset, type DatasetProbe } from '../engine/data/probe.js';
import { parseReference, type DatasetReference } from '../engine/data/reference.js';
import { childLocation, refusedUrl } from '../engine/data/source.js';
import { OutboundRefusedError } from '../runtime/outbound.js';
import { findDataset, findDatasetShapes, listDatasetRows, upsertDataset } from '../store/datasets.js';
import type { ServiceContext } from './context.js';
import { outboundGuard, tenantDataAccess } from './data-access.js';
import { datasetDto, type DatasetDto, type Page } from './dto.js';
import { invalid, notFound, ServiceError } from './errors.js';
import { decodeCursor, encodeCursor, isUuid, pageLimit, toPage, type PageQuery } from './ids.js';

export { DATASET_REF } from '../queue/inputs.js';
export { outboundGuard, tenantDataAccess } from './data-access.js';
import { DATASET_REF } from '../queue/inputs.js';

const hasDotDot = (path: string) => path.split(/[\\/]/).includes('..');

/** The raw path of a file: URL as written, before URL parsing folds `..` away. */
function rawFilePath(reference: string): string {
  const path = reference.trim().replace(/^file:/i, '').split(/[?#]/)[0] ?? '';
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** The names a reference's options give for its files (cifar10 `train` lists several). */
function optionNames(parsed: Extract<DatasetReference, { kind: 'location' }>): string[] {
  return Object.entries(parsed.files).flatMap(([role, value]) =>
    value === undefined ? [] : role === 'train' ? value.split(',').map((s) => s.trim()).filter((s) => s !== '') : [value],
  );
}

/**
 * Parses and vets a reference; `field` names the request field for errors.
 * http(s): the host and every file URL must resolve to public addresses (or
 * allowed ones). file://: switched on, no `..`, and inside a file root after
 * symlinks are resolved. Nothing is read.
 */
export async function checkReference(ctx: ServiceContext, reference: string, field: string): Promise<DatasetReference> {
  let parsed: DatasetReference;
  try {
    parsed = parseReference(reference);
  } catch (e) {
    if (e instanceof DatasetError) throw invalid(field, e.message);
    throw e;
  }
  if (parsed.kind !== 'location') return parsed;
  const { location } = parsed;
  const names = optionNames(parsed);
  if (location.kind === 'file') {
    if (!ctx.config.allowFileDatasets) throw invalid(field, `${field}: ${FILES_DISABLED}`);
    if (hasDotDot(rawFilePath(reference)) || names.some(hasDotDot)) {
      throw invalid(field, `${field}: '..' is not allowed in a file:// dataset path`);
    }
    const policy = { kind: 'roots', roots: ctx.config.fileRoots } as const;
    try {
      await confineFile(location.path, policy, field);
      for (const name of names) {
        const child = childLocation(location, name, field);
        if (child.kind === 'file') await confineFile(child.path, policy, field);
      }
    } catch (e) {
      if (e instanceof DatasetError) throw invalid(field, `${field}: ${e.message}`);
      throw e;
    }
    return parsed;
  }
  const guard = outboundGuard(ctx.config);
  try {
    await guard.check(location.url);
    for (const name of names) {
      const child = childLocation(location, name, field);
      if (child.kind === 'http') await guard.check(child.url);
    }
  } catch (e) {
    if (e instanceof OutboundRefusedError) throw invalid(field, `${field}: ${refusedUrl(field).message}`);
    if (e instanceof DatasetError) throw invalid(field, e.message);
    throw e;
  }
  return parsed;
}

/** Reads the reference's files under the configured caps; any problem is a 400 on `field`. */
export async function probeReference(ctx: ServiceContext, parsed: DatasetReference, field: string): Promise<DatasetProbe> {
  const { maxBytes, maxRatio, probeSeconds } = ctx.config.datasets;
  try {
    const access = { ...tenantDataAccess(ctx.config), ...(ctx.config.engine.images ? { images: ctx.config.engine.images } : {}) };
    const probe = await probeDataset(parsed, { maxBytes, maxRatio, timeoutMs: probeSeconds * 1000 }, access);
    if (probe.numClasses < 2) {
      throw invalid(field, `${field}: the dataset has a single class (every label is ${probe.labels.max}); training needs at least 2`);
    }
    return probe;
  } catch (e) {
    if (e instanceof DatasetError) throw invalid(field, `${field}: ${e.message}`);
    throw e;
  }
}

/** A stored `shapes` value as a probe summary, or null for rows registered before the probe existed. */
export function storedProbe(shapes: unknown): DatasetProbe | null {
  const s = shapes as Partial<DatasetProbe> | null;
  if (s === null || typeof s !== 'object' || !Array.isArray(s.inputShape) || typeof s.numClasses !== 'number' || typeof s.labels?.max !== 'number') return null;
  return s as DatasetProbe;
}

/** Registers a reference for `tenant` after probing it (registering it again returns the same row, re-probed). */
export async function registerDataset(ctx: ServiceContext, tenant: string, reference: unknown): Promise<DatasetDto> {
  if (typeof reference !== 'string' || reference.trim() === '') throw invalid('reference', 'reference: a dataset reference string is required');
  const ref = reference.trim();
  if (ref.length > 2048) throw invalid('reference', 'reference: at most 2048 characters');
  const probe = await probeReference(ctx, await checkReference(ctx, ref, 'reference'), 'reference');
  const { sha256, ...shapes } = probe;
  const data = { format: probe.format, shapes: shapes as object, sha256: sha256 ?? null };
  const row = await upsertDataset(ctx.prisma, tenant, ref, data);
  return datasetDto(row);
}

export async function getDataset(ctx: ServiceContext, tenant: string, id: string): Promise<DatasetDto> {
  if (!isUuid(id)) throw notFound('dataset', id);
  const row = await findDataset(ctx.prisma, tenant, id);
  if (!row) throw notFound('dataset', id);
  return datasetDto(row);
}

export async function listDatasets(ctx: ServiceContext, tenant: string): Promise<DatasetDto[]> {
  const rows = await listDatasetRows(ctx.prisma, tenant);
  return rows.map(datasetDto);
}

/** One page of the tenant's datasets, newest first (keyset cursor). */
export async function listDatasetsPage(ctx: ServiceContext, tenant: string, query: PageQuery = {}): Promise<Page<DatasetDto>> {
  const limit = pageLimit(query.limit);
  const after = query.cursor ? decodeCursor(query.cursor) : null;
  const rows = await listDatasetRows(ctx.prisma, tenant, { after, take: limit + 1 });
  return toPage(rows, limit, datasetDto, (r) => encodeCursor({ createdAt: r.createdAt, id: r.id }));
}

/**
 * A job's dataset field: `dataset:<id>` of this tenant (its stored probe), or
 * a reference allowed by the policy (probed now). `probe` is null for a row
 * registered before probes were stored: the worker still checks the fit.
 */
export async function resolveJobDataset(
  ctx: ServiceContext,
  tenant: string,
  value: string,
): Promise<{ datasetId: string | null; probe: DatasetProbe | null }> {
  if (value.startsWith(DATASET_REF)) {
    const id = value.slice(DATASET_REF.length);
    const row = isUuid(id) ? await findDatasetShapes(ctx.prisma, tenant, id) : null;
    if (!row) throw new ServiceError('NOT_FOUND', `dataset: no registered dataset ${id}`, 'dataset');
    return { datasetId: row.id, probe: storedProbe(row.shapes) };
  }
  const parsed = await checkReference(ctx, value, 'dataset');
  return { datasetId: null, probe: await probeReference(ctx, parsed, 'dataset') };
}
