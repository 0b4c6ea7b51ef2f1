// STAND-IN, to be replaced at merge by the plots slice's endpoint and its
// renderer (src/engine/report/job-plots.ts). It exists only so the dashboard's
// browser test has GET /v1/jobs/:id/plots/:name on this branch; it follows the
// markup contract of contracts.md (a `<g class="series" data-series=SLUG>` per
// series holding one `<circle class="point" data-x data-y>` per point, the
// dense baseline as a line in `<g class="baseline" data-series="dense">`).
import { getJob, invalid, listRounds, notFound, type RoundDto } from '../../../service/index.js';
import { COMMON_ERRORS, pathParam, tagJob, type RouteDef } from '../route.js';

const NAMES = ['accuracy', 'early-stop', 'density', 'sensitivity'] as const;
const W = 480;
const H = 300;
const PAD = 40;

type Point = [x: number, y: number];

function lineChart(name: string, title: string, series: Array<[slug: string, points: Point[]]>, baseline: number | null): string {
  const all = series.flatMap(([, p]) => p);
  const ys = all.map(([, y]) => y).concat(baseline == null ? [] : [baseline]);
  const yMin = Math.min(...ys, 0);
  const yMax = Math.max(...ys, 1e-9);
  // x is % of weights remaining, drawn from 100 on the left down to the smallest.
  const xMin = Math.min(...all.map(([x]) => x), 100);
  const sx = (x: number) => PAD + ((100 - x) / Math.max(1e-9, 100 - xMin)) * (W - 2 * PAD);
  const sy = (y: number) => H - PAD - ((y - yMin) / Math.max(1e-9, yMax - yMin)) * (H - 2 * PAD);
  const colour: Record<string, string> = { ticket: '#0b57d0', 'random-reinit': '#b00020', 'random-structure': '#e37400' };
  const parts = series.map(([slug, points]) => {
    const c = colour[slug] ?? '#444';
    const path = points.map(([x, y], i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    const dots = points.map(([x, y]) => `<circle class="point" data-x="${x}" data-y="${y}" cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${c}"/>`).join('');
    return `<g class="series" data-series="${slug}"><path d="${path}" fill="none" stroke="${c}"/>${dots}</g>`;
  });
  if (baseline != null) parts.push(`<g class="baseline" data-series="dense"><line x1="${PAD}" x2="${W - PAD}" y1="${sy(baseline).toFixed(1)}" y2="${sy(baseline).toFixed(1)}" stroke="#777" stroke-dasharray="4 3"/></g>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" data-plot="${name}" viewBox="0 0 ${W} ${H}"><text x="${PAD}" y="20" font-size="13">${title}</text>` +
    `<line x1="${PAD}" y1="${H - PAD}" x2="${W - PAD}" y2="${H - PAD}" stroke="#999"/><line x1="${PAD}" y1="${PAD}" x2="${PAD}" y2="${H - PAD}" stroke="#999"/>${parts.join('')}</svg>`;
}

function controlValue(r: RoundDto, kind: string, key: string): number | null {
  const c = (r.controls as Record<string, Record<string, unknown> | undefined>)[kind];
  const v = c?.[key];
  return typeof v === 'number' ? v : null;
}

function impPlot(name: 'accuracy' | 'early-stop', rounds: RoundDto[]): string {
  const key = name === 'accuracy' ? 'finalTestAccuracy' : 'earlyStopIteration';
  const ticket = rounds.map((r): Point => [r.density * 100, name === 'accuracy' ? r.testAccuracy : r.earlyStopIteration]);
  const control = (kind: string) => rounds.flatMap((r): Point[] => {
    const v = controlValue(r, kind, key);
    return v == null ? [] : [[r.density * 100, v]];
  });
  const series: Array<[string, Point[]]> = [['ticket', ticket], ['random-reinit', control('reinit')], ['random-structure', control('shuffle')]];
  const dense = rounds.find((r) => r.index === 0);
  return lineChart(name, name === 'accuracy' ? 'Test accuracy vs % weights remaining' : 'Early-stop iteration vs % weights remaining',
    series.filter(([, p]) => p.length > 0), dense ? ticket[rounds.indexOf(dense)]![1] : null);
}

function densityPlot(rounds: RoundDto[]): string {
  const last = rounds.at(-1)!;
  const layers = Object.entries(last.layerDensity);
  const bw = (W - 2 * PAD) / Math.max(1, layers.length);
  const bars = layers.map(([layer, d], i) => {
    const h = d * (H - 2 * PAD);
    return `<rect class="bar" data-layer="${layer.replace(/[^\w./-]/g, '_')}" data-density="${d}" x="${(PAD + i * bw + 2).toFixed(1)}" y="${(H - PAD - h).toFixed(1)}" width="${Math.max(1, bw - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="#0b57d0"/>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" data-plot="density" viewBox="0 0 ${W} ${H}"><text x="${PAD}" y="20" font-size="13">Per-layer density, round ${last.index}</text>${bars.join('')}</svg>`;
}

export const plotStandInRoutes: RouteDef[] = [
  {
    method: 'get',
    path: '/v1/jobs/:id/plots/:name',
    operationId: 'getJobPlot',
    tag: 'jobs',
    summary: "A job's plot as SVG, from its committed rounds (stand-in until the plots endpoint lands)",
    params: [
      { name: 'id', description: 'Job id', schema: { type: 'string', format: 'uuid' } },
      { name: 'name', description: 'Plot name', schema: { type: 'string', enum: [...NAMES] } },
    ],
    responses: { 200: { description: 'The plot', content: { 'image/svg+xml': { type: 'string' } } } },
    errors: ['INVALID_ARGUMENT', 'NOT_FOUND', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      const id = pathParam(req, 'id');
      tagJob(res, id);
      const name = pathParam(req, 'name');
      const job = await getJob(ctx, tenant, id);
      if (!(NAMES as readonly string[]).includes(name)) throw invalid('name', `name: one of ${NAMES.join(', ')}`);
      const method = (job.spec.method as string | undefined) ?? 'imp';
      const rounds = await listRounds(ctx, tenant, id);
      if (rounds.length === 0) throw notFound('plot', name);
      let svg: string;
      if (name === 'density') svg = densityPlot(rounds);
      else if (method === 'imp' && (name === 'accuracy' || name === 'early-stop')) svg = impPlot(name, rounds);
      else throw notFound('plot', name);
      res.type('image/svg+xml').send(svg);
    },
  },
];
