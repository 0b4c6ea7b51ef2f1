// A job's plots as SVG, from its committed rounds (pure: rounds + method in,
// strings out). The REST door renders them on request while a job runs; the
// engine stores them as `plots/NAME.svg` artifacts when it ends. Both read the
// same round facts: the service's RoundDto and the engine's RoundMetrics map
// onto PlotRound.
import type { RoundMetrics } from '../metrics.js';
import { barChartSvg, lineChartSvg, slugOf, type Panel, type Series } from './plot.js';

export const PLOT_NAMES = Object.freeze(['accuracy', 'early-stop', 'density', 'sensitivity'] as const);
export type PlotName = (typeof PLOT_NAMES)[number];

export const isPlotName = (s: string): s is PlotName => (PLOT_NAMES as readonly string[]).includes(s);

/** What a plot reads of one committed round (RoundDto has these fields; plotRoundOf maps RoundMetrics). */
export interface PlotRound {
  index: number;
  /** Fraction of prunable weights left (1 = dense). */
  density: number;
  /** Final test accuracy, 0..1. */
  testAccuracy: number;
  earlyStopIteration: number;
  layerDensity: Record<string, number>;
  /** Control trials by kind (`reinit`, `shuffle`): their training metrics. */
  controls: Record<string, unknown>;
  /** Filter pruning's step facts (round 0 may hold the sensitivity analysis). */
  filter?: Record<string, unknown> | null;
}

export function plotRoundOf(m: RoundMetrics): PlotRound {
  return {
    index: m.round,
    density: m.density,
    testAccuracy: m.finalTestAccuracy,
    earlyStopIteration: m.earlyStopIteration,
    layerDensity: m.layerDensity,
    controls: m.controls,
    filter: (m.filter as unknown as Record<string, unknown> | undefined) ?? null,
  };
}

/** The plots a method's jobs have, in the order they are listed. */
export function plotsFor(method: string): PlotName[] {
  return method === 'filter' ? ['sensitivity', 'density'] : ['accuracy', 'early-stop', 'density'];
}

const COLORS = { ticket: '#1f77b4', reinit: '#d62728', shuffle: '#2ca02c', dense: '#555555', bar: '#4c78a8' };
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const record = (v: unknown): Record<string, unknown> | null => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);

/** One control's number in a round, if that control was trained. */
function controlValue(r: PlotRound, kind: string, field: 'finalTestAccuracy' | 'earlyStopIteration'): number | null {
  const v = record(r.controls[kind])?.[field];
  return finite(v) ? v : null;
}

/** Ticket, random-reinit and random-structure against % of weights left; the dense round as a baseline. */
function impPanel(rounds: PlotRound[], kind: 'accuracy' | 'early-stop'): Panel {
  const ticketValue = (r: PlotRound) => (kind === 'accuracy' ? r.testAccuracy * 100 : r.earlyStopIteration);
  const field = kind === 'accuracy' ? 'finalTestAccuracy' : 'earlyStopIteration';
  const scale = kind === 'accuracy' ? 100 : 1;
  const series = (label: string, slug: string, color: string, value: (r: PlotRound) => number | null, dashed = false): Series => ({
    label,
    slug,
    color,
    dashed,
    points: rounds.flatMap((r) => {
      const y = value(r);
      return finite(y) && finite(r.density) && r.density > 0 ? [[r.density * 100, y] as [number, number]] : [];
    }),
  });
  const controlSeries = (c: string) => (r: PlotRound) => {
    const v = controlValue(r, c, field);
    return v === null ? null : v * scale;
  };
  const dense = rounds.find((r) => r.index === 0);
  const denseY = dense ? ticketValue(dense) : null;
  return {
    title: kind === 'accuracy' ? 'Test accuracy (final)' : 'Early-stop iteration',
    yLabel: kind === 'accuracy' ? 'test accuracy (%)' : 'iteration of min. validation loss',
    series: [
      series('ticket (rewind)', 'ticket', COLORS.ticket, ticketValue),
      series('random reinit', 'random-reinit', COLORS.reinit, controlSeries('reinit'), true),
      series('random structure', 'random-structure', COLORS.shuffle, controlSeries('shuffle'), true),
    ],
    baselines: finite(denseY) ? [{ label: 'dense (round 0)', slug: 'dense', color: COLORS.dense, y: denseY }] : [],
  };
}

/** Per-layer density of the last committed round, in %. */
function densitySvg(rounds: PlotRound[]): string {
  const last = rounds.at(-1);
  const bars = Object.entries(last?.layerDensity ?? {}).map(([label, d]) => ({ label, value: d * 100 }));
  return barChartSvg(
    { title: last ? `Density per layer (round ${last.index})` : 'Density per layer', yLabel: '% of weights remaining', xLabel: 'layer', slug: 'density', color: COLORS.bar, bars, yMax: 100 },
    { plot: 'density' },
  );
}

/**
 * Filter jobs: accuracy without retraining against % of filters kept, one
 * line per layer group, from the sensitivity analysis round 0 records. A job
 * that ran none plots its steps instead: accuracy right after each cut and
 * after fine-tuning against % of all filters kept.
 */
function sensitivitySvg(rounds: PlotRound[]): string {
  const opts = { width: 460, height: 360, xLabel: '% of filters kept', plot: 'sensitivity' };
  const s = record(rounds.find((r) => record(r.filter)?.sensitivity !== undefined)?.filter?.sensitivity);
  const fractions = Array.isArray(s?.fractions) ? (s.fractions as unknown[]) : null;
  const groups = Array.isArray(s?.groups) ? (s.groups as unknown[]).map(record).filter((g) => g !== null) : [];
  if (s && fractions && groups.length > 0) {
    const base = finite(s.baselineAccuracy) ? s.baselineAccuracy * 100 : null;
    const used = new Set<string>();
    const series: Series[] = groups.map((g, i) => {
      const label = typeof g.group === 'string' ? g.group : `group ${i}`;
      let slug = slugOf(label);
      while (used.has(slug)) slug = `${slug}-${i}`;
      used.add(slug);
      const acc = Array.isArray(g.accuracy) ? (g.accuracy as unknown[]) : [];
      const points = fractions.flatMap((f, j): Array<[number, number]> => {
        const a = acc[j];
        return finite(f) && finite(a) && f < 1 ? [[100 * (1 - f), a * 100]] : [];
      });
      return { label, slug, color: PALETTE[i % PALETTE.length]!, dashed: i >= PALETTE.length, points };
    });
    const panels: Panel[] = [];
    for (let i = 0; i < series.length; i += 6) {
      const part = series.slice(i, i + 6);
      panels.push({
        title: `Filter-pruning sensitivity${series.length > 6 ? ` (${i / 6 + 1})` : ''}`,
        yLabel: 'accuracy without retraining (%)',
        series: part,
        baselines: base === null ? [] : [{ label: 'unpruned', slug: 'dense', color: COLORS.dense, y: base }],
      });
    }
    return lineChartSvg(panels, opts);
  }
  const steps = rounds.flatMap((r) => {
    const f = record(r.filter);
    const kept = record(f?.filtersKept);
    const total = record(f?.filtersTotal);
    if (!f || !kept || !total) return [];
    const sum = (o: Record<string, unknown>) => Object.values(o).reduce<number>((a, v) => a + (finite(v) ? v : 0), 0);
    const all = sum(total);
    return all > 0 ? [{ r, f, keptPct: (100 * sum(kept)) / all }] : [];
  });
  const pick = (key: string) => steps.flatMap(({ f, keptPct }): Array<[number, number]> => (finite(f[key]) ? [[keptPct, (f[key] as number) * 100]] : []));
  const dense = steps.find((s) => s.r.index === 0);
  return lineChartSvg(
    [{
      title: 'Accuracy per filter-pruning step',
      yLabel: 'test accuracy (%)',
      series: [
        { label: 'after the cut', slug: 'after-pruning', color: COLORS.reinit, dashed: true, points: pick('accuracyAfterPruning') },
        { label: 'after fine-tuning', slug: 'after-fine-tuning', color: COLORS.ticket, points: pick('accuracyAfterFineTuning') },
      ],
      baselines: dense && finite(dense.r.testAccuracy) ? [{ label: 'unpruned', slug: 'dense', color: COLORS.dense, y: dense.r.testAccuracy * 100 }] : [],
    }],
    opts,
  );
}

/** One plot of a job, or null when the plot does not apply to the method (`plotsFor`). */
export function jobPlotSvg(name: PlotName, method: string, rounds: PlotRound[]): string | null {
  if (!plotsFor(method).includes(name)) return null;
  const sorted = [...rounds].sort((a, b) => a.index - b.index);
  switch (name) {
    case 'accuracy':
    case 'early-stop':
      return lineChartSvg([impPanel(sorted, name)], { plot: name });
    case 'density':
      return densitySvg(sorted);
    case 'sensitivity':
      return sensitivitySvg(sorted);
  }
}

/** Every plot of a finished job, as artifact files `plots/NAME.svg`. */
export function jobPlotFiles(method: string, rounds: PlotRound[]): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const name of plotsFor(method)) {
    const svg = jobPlotSvg(name, method, rounds);
    if (svg !== null) out[`plots/${name}.svg`] = new TextEncoder().encode(svg);
  }
  return out;
}
