// The run panel's "Partial fusion" section (issue 28): the accuracy-vs-size curve over K from run.json `partial`,
// drawn with uPlot like the other charts (canvas only: fits the webview's strict CSP), every point labelled on the
// canvas, a live read-out under the cursor, and a table of the same numbers (the accessible fallback).
import uPlot from 'uplot';
import type { RunRecord } from '../contracts/protocol';
import { h, basename, section, themeColour } from './dom';
import { formatRatio, formatValue, paretoData, paretoFront, pointDescription, type ParetoData, type ParetoPoint } from './paretoData';

const compact = (n: number) =>
  n >= 1e9 ? `${(n / 1e9).toFixed(2)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
/** "; trunk: fitted (refit for every parent)", chosen per K on held-out calibration rows (run.json partial.trunk). */
const TRUNKS: Record<string, string> = {
  fused: "the fused model's blocks",
  anchor: "the anchor's own blocks",
  fitted: "residual-stream layers refit for every parent's upper blocks",
};
const trunkText = (t?: string) => (t ? `; trunk: ${t} (${TRUNKS[t] ?? t}), chosen` : '');
const metricName = (d: ParetoData) => (d.metric === 'accuracy' ? 'Accuracy' : 'Perplexity ↓');

/** The section, or null when the run is no partial fusion and measured no curve. */
export function partialSection(r: RunRecord, width: number): HTMLElement | null {
  const p = r.partial;
  if (!p) return null;
  const summary = h(
    'div',
    { class: 'muted small', id: 'partial-summary' },
    `fused model: ${p.mergeLayers} of ${p.layers} blocks shared, ${p.parameters.toLocaleString('en-US')} parameters (${formatRatio(p.parameters / p.parentParameters)} one parent)` +
      (p.trunk ? `${trunkText(p.trunk)}${p.heldOut ? ` on ${p.heldOut.heldOut} held-out calibration samples` : ''}` : ''),
  );
  const hf =
    p.mergeLayers < p.layers
      ? h(
          'div',
          { class: 'muted small', id: 'partial-hf' },
          'Hugging Face export: not available — each parent keeps its own upper blocks as a branch, which no Hugging Face model class computes. The ONNX file (fused.onnx) runs as it is.',
        )
      : null;
  const d = paretoData(r);
  if (!d) return section('Partial fusion', 'partial', summary, hf);
  const measured = d.points.some((q) => q.value !== undefined);
  const holder = h('div', { id: 'pareto-chart', class: 'chart', 'data-points': String(d.points.length) });
  if (measured)
    requestAnimationFrame(() => {
      const plot = paretoChart(holder, d, Math.max(160, width - 24));
      (holder as HTMLElement & { plot?: uPlot }).plot = plot;
      holder.dataset.drawn = '1';
    });
  return section(
    'Partial fusion',
    'partial',
    summary,
    measured ? holder : h('p', { class: 'muted' }, 'The curve was not evaluated (no evaluation data): sizes only.'),
    h('div', { class: 'table-scroll' }, paretoTable(r, d)),
    hf,
  );
}

/** What the numbers were measured on, as the accuracy table says it. */
function caption(r: RunRecord, d: ParetoData): HTMLElement {
  const data = r.evalData ?? r.data;
  const on = data ? basename(typeof data === 'string' ? data : data.path) : undefined;
  const onCalibration = r.evalIsCalibration || (r.evalData === undefined && r.data !== undefined);
  const what = `${metricName(d)} vs size for every K (the embeddings and the first K blocks fused, each parent's other blocks and head as branches, logits averaged)`;
  const lower = d.lowerIsBetter ? ' · perplexity: lower is better' : '';
  return onCalibration
    ? h('caption', { class: 'warning' }, `${what}, measured on the calibration data (${on}) — not a held-out result${lower}`)
    : h('caption', {}, `${what}${on ? `, measured on ${on}` : ''}${lower}`);
}

/** A column header with a short form for narrow side bars (CSS shows one). */
const headerText = (wide: string, narrow: string) => [
  h('span', { class: 'wide-text' }, wide),
  h('span', { class: 'narrow-text', 'aria-hidden': 'true' }, narrow),
];

function paretoTable(r: RunRecord, d: ParetoData): HTMLElement {
  const front = paretoFront(d);
  const row = (q: ParetoPoint) =>
    h(
      'tr',
      {
        'data-kind': q.kind,
        'data-k': q.k ?? '',
        'data-parameters': q.parameters,
        'data-value': q.value ?? '',
        'data-chosen': q.chosen ? 'true' : 'false',
        'data-trunk': q.trunk ?? '',
        class: q.chosen ? 'pareto-chosen' : undefined,
        'aria-current': q.chosen ? 'true' : undefined,
      },
      h(
        'th',
        { scope: 'row', title: q.k === undefined ? `${q.label}: a parent (its own size)` : pointDescription(q.k, d.layers) + trunkText(q.trunk) },
        q.label,
        q.chosen ? h('span', { class: 'chosen-tag' }, ' · chosen') : null,
      ),
      h('td', { class: 'num', title: `${formatRatio(q.ratio)} one parent` }, q.parameters.toLocaleString('en-US')),
      h('td', { class: 'num ratio' }, formatRatio(q.ratio)),
      h(
        'td',
        { class: 'num', title: front.has(q) ? 'on the Pareto front: no other model is as small and at least as good' : '' },
        formatValue(d, q.value),
        front.has(q) ? ' ◆' : '',
      ),
    );
  return h(
    'table',
    { id: 'pareto-table', class: 'grid' },
    caption(r, d),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col', title: 'K: blocks shared (merge layers)' }, 'Model'),
        h('th', { scope: 'col', class: 'num', title: 'parameters of the ONNX graph' }, ...headerText('Parameters', 'Params')),
        h('th', { scope: 'col', class: 'num ratio', title: "parameters / one parent's (the anchor's)" }, '× parent'),
        h(
          'th',
          { scope: 'col', class: 'num', title: `${metricName(d)}; ◆ on the Pareto front` },
          ...headerText(metricName(d), d.metric === 'accuracy' ? 'Acc.' : 'PPL ↓'),
        ),
      ),
    ),
    h('tbody', {}, ...d.points.map(row), ...d.parents.map(row)),
  );
}

/** The chart: x = parameters, y = accuracy (or perplexity); the curve over K, the parents, the chosen K ringed. */
function paretoChart(target: HTMLElement, d: ParetoData, width: number): uPlot {
  const all = [...d.points, ...d.parents];
  const xs = [...new Set(all.map((q) => q.parameters))].sort((a, b) => a - b);
  const at = (qs: ParetoPoint[]) => xs.map((x) => qs.find((q) => q.parameters === x)?.value ?? null);
  const fg = themeColour('--vscode-foreground', '#888');
  const grid = themeColour('--vscode-widget-border', 'rgba(128,128,128,.25)');
  const ax = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: '10px sans-serif', labelFont: '10px sans-serif' };
  const curve = themeColour('--vscode-charts-blue', '#3794ff');
  const chosenColour = themeColour('--vscode-charts-orange', '#d18616');
  const parentColours = [
    themeColour('--vscode-charts-foreground', '#888'),
    themeColour('--vscode-charts-purple', '#b180d7'),
    themeColour('--vscode-charts-green', '#89d185'),
  ];
  const noLine = () => null;
  const chosen = d.points.filter((q) => q.chosen);
  const value = (_u: uPlot, v: number | null) => (v === null || v === undefined ? '—' : formatValue(d, v));
  const data: uPlot.AlignedData = [xs, at(d.points), at(chosen), ...d.parents.map((q) => at([q]))];
  const plot = new uPlot(
    {
      width,
      height: 200,
      cursor: { drag: { x: false, y: false }, points: { size: 7 } },
      legend: { show: true, live: true },
      scales: { x: { time: false, range: (_u, lo, hi) => [lo - 0.08 * (hi - lo || lo), hi + 0.08 * (hi - lo || lo)] }, y: {} },
      series: [
        {
          label: 'parameters',
          value: (_u, v) => (v === null || v === undefined ? '—' : `${Math.round(v).toLocaleString('en-US')} (${formatRatio(v / d.parentParameters)})`),
        },
        { label: `partial fusion, K = 0 … ${d.layers}`, stroke: curve, width: 1.5, spanGaps: true, points: { show: true, size: 6, fill: curve }, value },
        {
          label: `chosen (K = ${d.chosenK})`,
          stroke: chosenColour,
          width: 2.5,
          paths: noLine,
          points: { show: true, size: 14, fill: 'transparent', width: 2.5 },
          value,
        },
        ...d.parents.map((q, i) => ({
          label: q.label,
          stroke: parentColours[i % parentColours.length],
          paths: noLine,
          points: { show: true, size: 8, fill: parentColours[i % parentColours.length] },
          value,
        })),
      ],
      axes: [
        { ...ax, size: 30, values: (_u: uPlot, vals: number[]) => vals.map(compact), label: 'parameters', labelSize: 14 },
        {
          ...ax,
          size: 44,
          values: (_u: uPlot, vals: number[]) => vals.map((v) => (d.metric === 'accuracy' ? `${(100 * v).toFixed(0)}%` : v.toFixed(1))),
          label: d.lowerIsBetter ? 'perplexity (lower is better)' : 'accuracy',
          labelSize: 14,
        },
      ],
      hooks: { draw: [(u) => labelPoints(u, d, fg)] },
    },
    data,
    target,
  );
  target.setAttribute('role', 'img');
  target.setAttribute(
    'aria-label',
    `${metricName(d)} vs parameters: ${all.map((q) => `${q.label}${q.chosen ? ' (chosen)' : ''} ${q.parameters} parameters ${formatValue(d, q.value)}`).join('; ')}`,
  );
  return plot;
}

/** Short labels next to the curve's points on the canvas ("K=2 ★" for the chosen one, "ensemble", "full"). */
function labelPoints(u: uPlot, d: ParetoData, colour: string): void {
  const ctx = u.ctx;
  const dpr = devicePixelRatio || 1;
  ctx.save();
  ctx.fillStyle = colour;
  ctx.font = `${10 * dpr}px sans-serif`;
  const middle = u.bbox.left + u.bbox.width / 2;
  for (const q of d.points) {
    if (q.value === undefined) continue;
    const x = u.valToPos(q.parameters, 'x', true);
    const y = u.valToPos(q.value, 'y', true);
    const name = q.kind === 'ensemble' ? 'K=0 ensemble' : q.kind === 'full' ? `K=${q.k} full` : `K=${q.k}`;
    // Right of the point in the left half, left of it in the right half: labels stay inside the canvas.
    ctx.textAlign = x < middle ? 'left' : 'right';
    ctx.fillText(`${name}${q.chosen ? ' ★' : ''}`, x < middle ? x + 7 * dpr : x - 7 * dpr, y - 5 * dpr);
  }
  ctx.restore();
}
