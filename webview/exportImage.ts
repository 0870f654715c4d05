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
  const series = plot.series.slice(1).filter((s) => s.show !== false && typeof s.label === 'string');
  const pad = 8,
    top = 22,
    row = 16;
  const out = document.createElement('canvas');
  const legendRows = Math.max(1, series.length);
  out.width = Math.round((w + 2 * pad) * dpr);
  out.height = Math.round((top + h + pad + legendRows * row + 4 * row) * dpr);
  const ctx = out.getContext('2d')!;
  ctx.scale(dpr, dpr);
  ctx.fillStyle = themeColour('--vscode-editor-background', '#fff');
  ctx.fillRect(0, 0, out.width, out.height);
  const fg = themeColour('--vscode-foreground', '#000');
  ctx.fillStyle = fg;
  ctx.font = '12px sans-serif';
  ctx.fillText(title, pad, 15);
  ctx.drawImage(src, pad, top, w, h);
  ctx.font = '11px sans-serif';
  let y = top + h + pad + 10;
  for (const s of series) {
    const colour = typeof s.stroke === 'function' ? fg : String(s.stroke ?? fg);
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
  wrapText(ctx, footer, pad, y + 2, w, row);
  return out;
}

function wrapText(ctx: CanvasRenderingContext2D, text: string, x: number, y: number, width: number, line: number): void {
  let cur = '';
  for (const word of text.split(' ')) {
    const next = cur ? `${cur} ${word}` : word;
    if (ctx.measureText(next).width > width && cur) {
      ctx.fillText(cur, x, y);
      y += line;
      cur = word;
    } else cur = next;
  }
  if (cur) ctx.fillText(cur, x, y);
}
