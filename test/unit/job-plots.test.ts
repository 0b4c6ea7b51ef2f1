// A job's plots (engine/report/job-plots.ts) on the renderer (plot.ts): one
// point per round per series with the round's numbers in data-x/data-y, the
// dense baseline as a line, per-layer bars, filter sensitivity, which plots a
// method has, and escaping of tenant-chosen labels (layer names).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jobPlotFiles, jobPlotSvg, plotRoundOf, plotsFor, type PlotRound } from '../../src/engine/report/job-plots.js';
import { barChartSvg, lineChartSvg } from '../../src/engine/report/plot.js';
import type { RoundMetrics } from '../../src/engine/sink.js';
import { seriesPoints } from '../fixtures/svg-points.js';

const control = (acc: number, es: number) => ({ finalTestAccuracy: acc, earlyStopIteration: es, finalTestLoss: 0.5 });

const rounds: PlotRound[] = [
  { index: 0, density: 1, testAccuracy: 0.9, earlyStopIteration: 300, layerDensity: { d1: 1, d2: 1 }, controls: {} },
  { index: 1, density: 0.8, testAccuracy: 0.91, earlyStopIteration: 250, layerDensity: { d1: 0.8, d2: 0.9 }, controls: { reinit: control(0.85, 400), shuffle: control(0.84, 420) } },
  { index: 2, density: 0.64, testAccuracy: 0.92, earlyStopIteration: 200, layerDensity: { d1: 0.64, d2: 0.81 }, controls: { reinit: control(0.8, 450), shuffle: control(0.79, 460) } },
];

test('accuracy: one point per round per series, the numbers in data-x/data-y, the dense round as a baseline', () => {
  const svg = jobPlotSvg('accuracy', 'imp', rounds)!;
  assert.match(svg, /^<svg [^>]*data-plot="accuracy"/);
  const s = seriesPoints(svg);
  assert.deepEqual([...s.keys()], ['ticket', 'random-reinit', 'random-structure']);
  assert.deepEqual(s.get('ticket'), [['100', '90'], ['80', '91'], ['64', '92']]);
  // Controls are trained from round 1 on: one point per round that has them.
  assert.deepEqual(s.get('random-reinit'), [['80', '85'], ['64', '80']]);
  assert.deepEqual(s.get('random-structure'), [['80', '84'], ['64', '79']]);
  const baseline = /<g class="baseline" data-series="dense" data-y="([^"]*)">([\s\S]*?)<\/g>/.exec(svg);
  assert.ok(baseline, 'the dense baseline is drawn');
  assert.equal(baseline[1], '90');
  assert.doesNotMatch(baseline[2]!, /circle/, 'a baseline has no points');
});

test('early-stop: the iterations of the ticket and its controls', () => {
  const s = seriesPoints(jobPlotSvg('early-stop', 'imp', rounds)!);
  assert.deepEqual(s.get('ticket'), [['100', '300'], ['80', '250'], ['64', '200']]);
  assert.deepEqual(s.get('random-reinit'), [['80', '400'], ['64', '450']]);
  assert.deepEqual(s.get('random-structure'), [['80', '420'], ['64', '460']]);
});

test('density: one bar per layer of the last round, in %', () => {
  const svg = jobPlotSvg('density', 'imp', rounds)!;
  assert.match(svg, /data-plot="density"/);
  assert.deepEqual(seriesPoints(svg).get('density'), [['d1', '64'], ['d2', '81']]);
  assert.match(svg, /round 2/);
});

test('labels from a tenant model are escaped in text and attributes', () => {
  const evil = '<script>alert("x")</script>&';
  const svg = jobPlotSvg('density', 'imp', [{ ...rounds[0]!, layerDensity: { [evil]: 0.5 } }])!;
  assert.doesNotMatch(svg, /<script/);
  assert.ok(svg.includes('data-x="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;"'));
  const line = lineChartSvg([{ title: 'a "b" <c>', yLabel: 'y', series: [{ label: evil, color: '#000', points: [[100, 1]] }] }], { plot: 'x"y' });
  assert.doesNotMatch(line, /<script|<c>/);
  assert.match(line, /data-plot="x&quot;y"/);
  const bars = barChartSvg({ title: evil, yLabel: 'y', xLabel: 'x', slug: 's"', color: '#000', bars: [{ label: 'a', value: 1 }] });
  assert.match(bars, /data-series="s&quot;"/);
  assert.doesNotMatch(bars, /<script/);
});

test('which plots a method has: IMP has no sensitivity, filter has no accuracy', () => {
  assert.deepEqual(plotsFor('imp'), ['accuracy', 'early-stop', 'density']);
  assert.deepEqual(plotsFor('filter'), ['sensitivity', 'density']);
  assert.equal(jobPlotSvg('sensitivity', 'imp', rounds), null);
  assert.equal(jobPlotSvg('accuracy', 'filter', rounds), null);
  assert.deepEqual(Object.keys(jobPlotFiles('imp', rounds)), ['plots/accuracy.svg', 'plots/early-stop.svg', 'plots/density.svg']);
});

test('no rounds yet: an empty chart that says so, with no points', () => {
  const svg = jobPlotSvg('accuracy', 'imp', [])!;
  assert.match(svg, /no data yet/);
  assert.doesNotMatch(svg, /class="point"/);
  assert.match(jobPlotSvg('density', 'imp', [])!, /no data yet/);
});

test('sensitivity: one line per layer group from round 0, x = % of filters kept; without an analysis, the steps', () => {
  const filterRound0: PlotRound = {
    index: 0, density: 1, testAccuracy: 0.9, earlyStopIteration: 0, layerDensity: { c1: 1 }, controls: {},
    filter: {
      accuracyAfterPruning: 0.9, accuracyAfterFineTuning: 0.9, filtersKept: { c1: 8, c2: 8 }, filtersTotal: { c1: 8, c2: 8 },
      sensitivity: { fractions: [0.25, 0.5], baselineAccuracy: 0.9, examples: 100, groups: [{ group: 'c1', accuracy: [0.88, 0.7] }, { group: 'c2', accuracy: [0.89, 0.8] }] },
    },
  };
  const step1: PlotRound = {
    index: 1, density: 0.5, testAccuracy: 0.87, earlyStopIteration: 0, layerDensity: { c1: 0.5 }, controls: {},
    filter: { accuracyAfterPruning: 0.6, accuracyAfterFineTuning: 0.87, filtersKept: { c1: 4, c2: 4 }, filtersTotal: { c1: 8, c2: 8 } },
  };
  const svg = jobPlotSvg('sensitivity', 'filter', [filterRound0, step1])!;
  assert.match(svg, /data-plot="sensitivity"/);
  const s = seriesPoints(svg);
  assert.deepEqual(s.get('c1'), [['75', '88'], ['50', '70']]);
  assert.deepEqual(s.get('c2'), [['75', '89'], ['50', '80']]);
  const { sensitivity: _, ...noAnalysis } = filterRound0.filter!;
  const steps = seriesPoints(jobPlotSvg('sensitivity', 'filter', [{ ...filterRound0, filter: noAnalysis }, step1])!);
  assert.deepEqual(steps.get('after-pruning'), [['100', '90'], ['50', '60']]);
  assert.deepEqual(steps.get('after-fine-tuning'), [['100', '90'], ['50', '87']]);
});

test('plotRoundOf: an engine round plots like its stored DTO', () => {
  const m = {
    round: 1, density: 0.8, finalTestAccuracy: 0.91, earlyStopIteration: 250, layerDensity: { d1: 0.8 },
    controls: { reinit: { finalTestAccuracy: 0.85, earlyStopIteration: 400 } },
  } as unknown as RoundMetrics;
  const r = plotRoundOf(m);
  assert.equal(r.index, 1);
  assert.deepEqual(seriesPoints(jobPlotSvg('accuracy', 'imp', [r])!).get('random-reinit'), [['80', '85']]);
});
