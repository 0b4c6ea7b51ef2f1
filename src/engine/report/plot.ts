// Minimal SVG charts for run reports and job plots (no plotting dependency):
// line charts whose x is "% of weights remaining" on a reversed log axis, as
// in the LTH paper, and bar charts (per-layer density). One renderer for
// scripts/reproduce-lth.ts and the jobs' plots (job-plots.ts).
//
// Markup other code reads (the dashboard, tests): the root <svg> carries
// data-plot="NAME" when given; each series is <g class="series"
// data-series="SLUG"> holding one <circle class="point" data-x data-y> per
// point (bars: one <rect class="bar" data-x data-y>); a baseline is
// <g class="baseline" data-series="SLUG"> with a line and no points.

export interface Series {
  label: string;
  /** data-series of its group; defaults to the label made a slug. */
  slug?: string;
  color: string;
  /** [x, y, optional error half-width] */
  points: Array<[number, number, number?]>;
  dashed?: boolean;
}

/** A horizontal reference line (the dense model's value), drawn without points. */
export interface Baseline {
  label: string;
  slug: string;
  color: string;
  y: number;
}

export interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
  baselines?: Baseline[];
}

export interface ChartOptions {
  width?: number;
  height?: number;
  xLabel?: string;
  /** data-plot of the root element. */
  plot?: string;
}

/** Text and attribute values: labels come from tenants' models (layer names). */
export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export const slugOf = (label: string) => label.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'series';

/** A number as an attribute: short, and never "NaN" in the markup (callers drop non-finite points). */
const num = (x: number) => String(Number(x.toPrecision(6)));

function svgRoot(width: number, height: number, plot: string | undefined, body: string[]): string {
  const tag = plot === undefined ? '' : ` data-plot="${esc(plot)}"`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif"${tag}>\n<rect width="100%" height="100%" fill="white"/>\n${body.join('\n')}\n</svg>\n`;
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Panels side by side; x values are percentages (100 … 1). */
export function lineChartSvg(panels: Panel[], opts: ChartOptions = {}): string {
  const W = opts.width ?? 460;
  const H = opts.height ?? 320;
  const m = { l: 60, r: 15, t: 30, b: 70 };
  const parts: string[] = [];
  panels.forEach((panel, pi) => {
    const ox = pi * W;
    const all = panel.series.flatMap((s) => s.points);
    parts.push(`<text x="${ox + W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(panel.title)}</text>`);
    if (all.length === 0) {
      parts.push(`<text x="${ox + W / 2}" y="${H / 2}" text-anchor="middle" font-size="12" fill="#888">no data yet</text>`);
      return;
    }
    const baselines = panel.baselines ?? [];
    const xs = all.map((p) => p[0]);
    const ys = [...all.flatMap((p) => [p[1] - (p[2] ?? 0), p[1] + (p[2] ?? 0)]), ...baselines.map((b) => b.y)];
    const [xmin, xmax] = [Math.min(...xs), Math.max(...xs)];
    let [ymin, ymax] = [Math.min(...ys), Math.max(...ys)];
    const pad = (ymax - ymin) * 0.08 || 0.01;
    ymin -= pad;
    ymax += pad;
    const lx = (x: number) => Math.log10(x);
    const px = (x: number) => ox + m.l + ((lx(xmax) - lx(x)) / (lx(xmax) - lx(xmin) || 1)) * (W - m.l - m.r);
    const py = (y: number) => m.t + ((ymax - y) / (ymax - ymin)) * (H - m.t - m.b);
    parts.push(`<rect x="${ox + m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#888"/>`);
    for (const t of niceTicks(ymin, ymax)) {
      parts.push(`<line x1="${ox + m.l}" x2="${ox + W - m.r}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/>`);
      parts.push(`<text x="${ox + m.l - 5}" y="${py(t) + 4}" text-anchor="end" font-size="11">${t}</text>`);
    }
    const xticks = [...new Set(xs.map((x) => Number(x.toPrecision(2))))].sort((a, b) => b - a);
    const shown = xticks.filter((_, i) => i % Math.ceil(xticks.length / 8) === 0);
    for (const t of shown) parts.push(`<text x="${px(t)}" y="${H - m.b + 15}" text-anchor="middle" font-size="11">${t}</text>`);
    parts.push(`<text x="${ox + W / 2}" y="${H - m.b + 32}" text-anchor="middle" font-size="12">${esc(opts.xLabel ?? '% of weights remaining')}</text>`);
    parts.push(`<text transform="translate(${ox + 15},${(H - m.b + m.t) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(panel.yLabel)}</text>`);
    const legend = (i: number, color: string, dashed: boolean | undefined, label: string) => {
      const ly = H - 22 + Math.floor(i / 3) * 14;
      const lxp = ox + m.l + (i % 3) * 130;
      parts.push(`<line x1="${lxp}" x2="${lxp + 20}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dashed ? ' stroke-dasharray="5,4"' : ''}/>`);
      parts.push(`<text x="${lxp + 25}" y="${ly + 4}" font-size="11">${esc(label)}</text>`);
    };
    panel.series.forEach((s, si) => {
      const pts = [...s.points].sort((a, b) => b[0] - a[0]);
      parts.push(`<g class="series" data-series="${esc(s.slug ?? slugOf(s.label))}">`);
      if (pts.length > 0) {
        const d = pts.map((p, i) => `${i ? 'L' : 'M'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ');
        parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ''}/>`);
      }
      for (const p of pts) {
        if (p[2]) parts.push(`<line x1="${px(p[0])}" x2="${px(p[0])}" y1="${py(p[1] - p[2])}" y2="${py(p[1] + p[2])}" stroke="${s.color}"/>`);
        parts.push(`<circle class="point" cx="${px(p[0])}" cy="${py(p[1])}" r="3" fill="${s.color}" data-x="${num(p[0])}" data-y="${num(p[1])}"/>`);
      }
      parts.push('</g>');
      legend(si, s.color, s.dashed, s.label);
    });
    baselines.forEach((b, bi) => {
      const y = py(b.y).toFixed(1);
      parts.push(`<g class="baseline" data-series="${esc(b.slug)}" data-y="${num(b.y)}">`);
      parts.push(`<line x1="${ox + m.l}" x2="${ox + W - m.r}" y1="${y}" y2="${y}" stroke="${b.color}" stroke-width="1.5" stroke-dasharray="2,3"/>`);
      parts.push('</g>');
      legend(panel.series.length + bi, b.color, true, b.label);
    });
  });
  return svgRoot(W * panels.length, H, opts.plot, parts);
}

export interface Bar {
  label: string;
  value: number;
}

/** One bar per label (e.g. layer), y from 0 to max(yMax, the largest value). */
export function barChartSvg(
  chart: { title: string; yLabel: string; xLabel: string; slug: string; color: string; bars: Bar[]; yMax?: number },
  opts: ChartOptions = {},
): string {
  const bars = chart.bars.filter((b) => Number.isFinite(b.value));
  const W = opts.width ?? Math.max(460, 90 + bars.length * 48);
  const H = opts.height ?? 340;
  const m = { l: 60, r: 15, t: 30, b: 90 };
  const parts: string[] = [`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(chart.title)}</text>`];
  if (bars.length === 0) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="12" fill="#888">no data yet</text>`);
    return svgRoot(W, H, opts.plot, parts);
  }
  const ymax = Math.max(chart.yMax ?? 0, ...bars.map((b) => b.value)) || 1;
  const plotW = W - m.l - m.r;
  const plotH = H - m.t - m.b;
  const py = (y: number) => m.t + ((ymax - y) / ymax) * plotH;
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  for (const t of niceTicks(0, ymax)) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 5}" y="${py(t) + 4}" text-anchor="end" font-size="11">${t}</text>`);
  }
  const slot = plotW / bars.length;
  const bw = Math.min(40, slot * 0.7);
  parts.push(`<g class="series" data-series="${esc(chart.slug)}">`);
  bars.forEach((b, i) => {
    const x = m.l + slot * i + (slot - bw) / 2;
    const y = py(b.value);
    parts.push(`<rect class="bar" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${bw.toFixed(1)}" height="${(m.t + plotH - y).toFixed(1)}" fill="${chart.color}" data-x="${esc(b.label)}" data-y="${num(b.value)}"><title>${esc(b.label)}: ${num(b.value)}</title></rect>`);
  });
  parts.push('</g>');
  bars.forEach((b, i) => {
    const cx = m.l + slot * i + slot / 2;
    parts.push(`<text transform="translate(${cx.toFixed(1)},${m.t + plotH + 12}) rotate(35)" font-size="10">${esc(b.label.length > 18 ? `${b.label.slice(0, 17)}…` : b.label)}</text>`);
  });
  parts.push(`<text x="${W / 2}" y="${H - 8}" text-anchor="middle" font-size="12">${esc(chart.xLabel)}</text>`);
  parts.push(`<text transform="translate(15,${(H - m.b + m.t) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(chart.yLabel)}</text>`);
  return svgRoot(W, H, opts.plot, parts);
}
