// Charts drawn with uPlot (bundled by esbuild, canvas only: fits the webview's strict CSP): the per-layer
// overview across depth, and the finetuning loss curve. Colours and text follow the VS Code theme.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { LayerMapInfo } from '../contracts/protocol';
import { DIAGNOSTICS } from './labels';
import { themeColour } from './dom';

const SERIES: { key: string; label: string; colourVar: string; fallback: string; scale: string; transform?: (v: number, l: LayerMapInfo) => number }[] = [
  { key: 'hardness', label: 'distance to a permutation', colourVar: '--vscode-charts-orange', fallback: '#d18616', scale: 'share' },
  { key: 'meanBestMatch', label: 'row confidence', colourVar: '--vscode-charts-green', fallback: '#89d185', scale: 'share' },
  {
    key: 'entropy',
    label: 'entropy / max',
    colourVar: '--vscode-charts-purple',
    fallback: '#b180d7',
    scale: 'share',
    transform: (v, l) => v / Math.log(Math.max(2, l.rows * l.cols)),
  },
  { key: 'moved', label: 'units moved', colourVar: '--vscode-charts-red', fallback: '#f14c4c', scale: 'share' },
  { key: 'cost', label: 'OT cost', colourVar: '--vscode-charts-blue', fallback: '#3794ff', scale: 'cost' },
];

function axisStyle() {
  const fg = themeColour('--vscode-foreground', '#888');
  const grid = themeColour('--vscode-widget-border', 'rgba(128,128,128,.25)');
  return { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
}

/** Which series the layers carry (only diagnostics present in at least one layer). */
export function overviewSeries(layers: LayerMapInfo[]) {
  return SERIES.filter((s) => layers.some((l) => Number.isFinite(l.diagnostics?.[s.key])));
}

/** The overview: one point per aligned map (in depth order), each diagnostic a line. Click selects the layer. */
export function overviewChart(target: HTMLElement, layers: LayerMapInfo[], width: number, onPick: (index: number) => void): uPlot | null {
  const series = overviewSeries(layers);
  if (!series.length || layers.length < 2) return null;
  const xs = layers.map((_, k) => k);
  const data: uPlot.AlignedData = [
    xs,
    ...series.map((s) =>
      layers.map((l) => {
        const v = l.diagnostics?.[s.key];
        return v === undefined || !Number.isFinite(v) ? null : s.transform ? s.transform(v, l) : v;
      }),
    ),
  ];
  const ax = axisStyle();
  const opts: uPlot.Options = {
    width,
    height: 170,
    cursor: { drag: { x: false, y: false }, points: { size: 5 } },
    legend: { show: true, live: true },
    scales: { x: { time: false }, share: { range: [0, 1] }, cost: {} },
    series: [
      { label: 'layer', value: (_u, v) => (v === null || v === undefined ? '—' : (layers[Math.round(v)]?.name ?? '')) },
      ...series.map((s) => ({
        label: s.label,
        scale: s.scale,
        stroke: themeColour(s.colourVar, s.fallback),
        width: 1.5,
        points: { show: layers.length <= 60, size: 4 },
        value: (_u: uPlot, v: number | null) => (v === null ? '—' : s.scale === 'share' ? `${(100 * v).toFixed(1)} %` : v.toFixed(3)),
      })),
    ],
    axes: [
      {
        ...ax,
        size: 28,
        values: (_u, vals) => vals.map((v) => (Number.isInteger(v) ? String(v) : '')),
        label: 'aligned map (input → output)',
        labelSize: 14,
        font: '10px sans-serif',
        labelFont: '10px sans-serif',
      },
      {
        ...ax,
        scale: 'share',
        size: 40,
        values: (_u, vals) => vals.map((v) => `${Math.round(100 * v)}%`),
        font: '10px sans-serif',
        label: 'share (%)',
        labelSize: 12,
        labelFont: '10px sans-serif',
      },
      ...(series.some((s) => s.scale === 'cost')
        ? [
            {
              ...ax,
              scale: 'cost',
              side: 1 as const,
              size: 40,
              grid: { show: false },
              font: '10px sans-serif',
              label: 'OT cost',
              labelSize: 12,
              labelFont: '10px sans-serif',
            },
          ]
        : []),
    ],
    hooks: {
      ready: [
        (u) =>
          u.over.addEventListener('click', () => {
            const i = u.cursor.idx;
            if (i !== null && i !== undefined) onPick(i);
          }),
      ],
    },
  };
  const plot = new uPlot(opts, data, target);
  target.setAttribute('role', 'img');
  target.setAttribute('aria-label', `per-layer overview across depth: ${series.map((s) => s.label).join(', ')}`);
  target.title = series.map((s) => `${s.label}: ${DIAGNOSTICS[s.key]?.help ?? ''}`).join('\n');
  return plot;
}

/** Loss curve (steps → loss). */
export function lossChart(
  target: HTMLElement,
  points: { step: number; loss: number }[],
  width: number,
  extra?: { label: string; points: { step: number; loss: number }[] },
): uPlot {
  const ax = axisStyle();
  const steps = [...new Set([...points.map((p) => p.step), ...(extra?.points ?? []).map((p) => p.step)])].sort((a, b) => a - b);
  const at = (ps: { step: number; loss: number }[]) => {
    const m = new Map(ps.map((p) => [p.step, p.loss]));
    return steps.map((s) => m.get(s) ?? null);
  };
  const data: uPlot.AlignedData = [steps, at(points), ...(extra ? [at(extra.points)] : [])];
  return new uPlot(
    {
      width,
      height: 130,
      cursor: { drag: { x: false, y: false } },
      legend: { show: !!extra },
      scales: { x: { time: false } },
      series: [
        { label: 'step' },
        { label: 'fused model', stroke: themeColour('--vscode-charts-blue', '#3794ff'), width: 1.5, spanGaps: true },
        ...(extra ? [{ label: extra.label, stroke: themeColour('--vscode-charts-foreground', '#888'), width: 1, dash: [4, 3], spanGaps: true }] : []),
      ],
      axes: [
        { ...ax, size: 26, font: '10px sans-serif', label: 'step', labelSize: 12, labelFont: '10px sans-serif' },
        { ...ax, size: 40, font: '10px sans-serif', label: 'loss', labelSize: 12, labelFont: '10px sans-serif' },
      ],
    },
    data,
    target,
  );
}
