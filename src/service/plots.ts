// A job's plots, rendered now from its committed rounds (so they work while
// the job runs); the same renderer writes the `plots/*.svg` artifacts when a
// job ends (engine/run.ts).
import { isPlotName, jobPlotSvg, PLOT_NAMES, plotsFor, type PlotName } from '../engine/report/job-plots.js';
import { findJob, listRoundRows } from '../store/jobs.js';
import type { ServiceContext } from './context.js';
import { roundDto } from './dto.js';
import { invalid, notFound, ServiceError } from './errors.js';
import { isUuid } from './ids.js';

export { PLOT_NAMES, type PlotName };

/**
 * The SVG of plot `name` of a tenant's job. Unknown name: INVALID_ARGUMENT
 * naming `name`; a job that is not the tenant's, or a plot its method does
 * not have (accuracy of a filter job): NOT_FOUND.
 */
export async function getJobPlot(ctx: ServiceContext, tenant: string, jobId: string, name: string): Promise<string> {
  if (!isPlotName(name)) throw invalid('name', `name: one of ${PLOT_NAMES.join(', ')}`);
  if (!isUuid(jobId)) throw notFound('job', jobId);
  const job = await findJob(ctx.prisma, tenant, jobId);
  if (!job) throw notFound('job', jobId);
  const spec = job.spec as { method?: unknown } | null;
  const method = typeof spec?.method === 'string' ? spec.method : 'imp';
  const svg = jobPlotSvg(name, method, (await listRoundRows(ctx.prisma, jobId)).map(roundDto));
  if (svg === null) throw new ServiceError('NOT_FOUND', `a ${method} job has no ${name} plot; it has ${plotsFor(method).join(', ')}`, 'name');
  return svg;
}
