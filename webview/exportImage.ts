// Charts as PNG files that explain themselves: the plot (with its axis labels) under a title, a legend of every
// series with its colour, and a line saying which run and which data (name and N) the numbers come from.
import type uPlot from 'uplot';
import type { DataArg, RunRecord } from '../contracts/protocol';
import { basename, themeColour } from './dom';

type Provenanced = { data?: { path: string; n?: number } };

const dataText = (d: DataArg | undefined, n?: number) => {
  const p = typeof d === 'string' ? d : d?.path;
  return p ? `${basename(p)}${n !== undefined ? ` (N ${n})` : ''}` : undefined;
};

/** "run X · calibration data calib200.npz · evaluated on test.npz (N 2000)" from what run.json records. */
export function provenanceLine(r: RunRecord, extra = ''): string {
  const n = (r.metrics as Provenanced[]).find((m) => m.data?.n !== undefined)?.data?.n;
  const calib = dataText(r.data);
  const evaluated = r.evalIsCalibration ? `${dataText(r.data, n)} (the calibration data)` : dataText(r.evalData, n);
  return [`run ${r.name}`, calib && `calibration data ${calib}`, evaluated && `evaluated on ${evaluated}`, extra].filter(Boolean).join(' · ');
}

/** The plot's canvas with a title above and, below it, the legend and the provenance line. */
export function composeChart(plot: uPlot, title: string, footer: string): HTMLCanvasElement {
  const src = plot.ctx.canvas;
  const dpr = window.devicePixelRatio || 1;
  const w = src.width / dpr,
    h = src.height / dpr;
  const series = plot.series.map((s, i) => ({ s, i })).filter(({ s, i }) => i > 0 && s.show !== false && typeof s.label === 'string');
  const pad = 8,
    row = 16;
  const measure = document.createElement('canvas').getContext('2d')!;
  measure.font = '12px sans-serif';
  const titleLines = lines(measure, title, w);
  measure.font = '11px sans-serif';
  const footerLines = lines(measure, footer, w);
  const top = 8 + titleLines.length * row;
  const out = document.createElement('canvas');
  out.width = Math.round((w + 2 * pad) * dpr);
  out.height = Math.round((top + h + pad + (series.length + footerLines.length) * row + pad) * dpr);
  const ctx = out.getContext('2d')!;
  ctx.scale(dpr, dpr);
  ctx.fillStyle = themeColour('--vscode-editor-background', '#fff');
  ctx.fillRect(0, 0, out.width, out.height);
  const fg = themeColour('--vscode-foreground', '#000');
  ctx.fillStyle = fg;
  ctx.font = '12px sans-serif';
  titleLines.forEach((t, k) => ctx.fillText(t, pad, 4 + (k + 1) * row - 4));
  ctx.drawImage(src, pad, top, w, h);
  ctx.font = '11px sans-serif';
  let y = top + h + pad + 10;
  for (const { s, i } of series) {
    // uPlot keeps a series' stroke as a function of (plot, index) once the plot is built.
    const stroke = s.stroke as unknown;
    const colour = typeof stroke === 'function' ? String((stroke as (u: uPlot, i: number) => unknown)(plot, i)) : String(stroke ?? fg);
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.setLineDash(Array.isArray(s.dash) ? s.dash : []);
    ctx.beginPath();
    ctx.moveTo(pad, y - 4);
    ctx.lineTo(pad + 22, y - 4);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = fg;
    ctx.fillText(String(s.label), pad + 28, y);
    y += row;
  }
  ctx.fillStyle = themeColour('--vscode-descriptionForeground', fg);
  footerLines.forEach((t, k) => ctx.fillText(t, pad, y + 2 + k * row));
  return out;
}

/** `text` in lines no wider than `width` (broken between words). */
function lines(ctx: CanvasRenderingContext2D, text: string, width: number): string[] {
  const out: string[] = [];
  let cur = '';
  for (const word of text.split(' ')) {
    const next = cur ? `${cur} ${word}` : word;
    if (ctx.measureText(next).width > width && cur) {
      out.push(cur);
      cur = word;
    } else cur = next;
  }
  if (cur) out.push(cur);
  return out;
}
