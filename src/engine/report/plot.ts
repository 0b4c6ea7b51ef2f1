// Minimal SVG line charts for run reports (no plotting dependency): x is
// "% of weights remaining" on a reversed log axis, as in the LTH paper.

export interface Series {
  label: string;
  color: string;
  /** [x, y, optional error half-width] */
  points: Array<[number, number, number?]>;
  dashed?: boolean;
}

export interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

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
export function lineChartSvg(panels: Panel[], opts: { width?: number; height?: number; xLabel?: string } = {}): string {
  const W = opts.width ?? 460;
  const H = opts.height ?? 320;
  const m = { l: 60, r: 15, t: 30, b: 70 };
  const parts: string[] = [];
  panels.forEach((panel, pi) => {
    const ox = pi * W;
    const all = panel.series.flatMap((s) => s.points);
    if (all.length === 0) return;
    const xs = all.map((p) => p[0]);
    const ys = all.flatMap((p) => [p[1] - (p[2] ?? 0), p[1] + (p[2] ?? 0)]);
    const [xmin, xmax] = [Math.min(...xs), Math.max(...xs)];
    let [ymin, ymax] = [Math.min(...ys), Math.max(...ys)];
    const pad = (ymax - ymin) * 0.08 || 0.01;
    ymin -= pad;
    ymax += pad;
    const lx = (x: number) => Math.log10(x);
    const px = (x: number) => ox + m.l + ((lx(xmax) - lx(x)) / (lx(xmax) - lx(xmin) || 1)) * (W - m.l - m.r);
    const py = (y: number) => m.t + ((ymax - y) / (ymax - ymin)) * (H - m.t - m.b);
    parts.push(`<text x="${ox + W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(panel.title)}</text>`);
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
    panel.series.forEach((s, si) => {
      const pts = [...s.points].sort((a, b) => b[0] - a[0]);
      const d = pts.map((p, i) => `${i ? 'L' : 'M'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ''}/>`);
      for (const p of pts) {
        if (p[2]) parts.push(`<line x1="${px(p[0])}" x2="${px(p[0])}" y1="${py(p[1] - p[2])}" y2="${py(p[1] + p[2])}" stroke="${s.color}"/>`);
        parts.push(`<circle cx="${px(p[0])}" cy="${py(p[1])}" r="3" fill="${s.color}"/>`);
      }
      const ly = H - 22 + Math.floor(si / 3) * 14;
      const lxp = ox + m.l + (si % 3) * 130;
      parts.push(`<line x1="${lxp}" x2="${lxp + 20}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ''}/>`);
      parts.push(`<text x="${lxp + 25}" y="${ly + 4}" font-size="11">${esc(s.label)}</text>`);
    });
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W * panels.length}" height="${H}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}
