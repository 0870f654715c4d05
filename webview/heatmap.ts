// Canvas heatmaps of transport maps (already down-sampled by the extension), with hover read-out.
import type { MapPayload } from './protocol';

/** A perceptual colour ramp (viridis anchors), t in [0, 1] → rgb. */
const RAMP: [number, number, number][] = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
export function colour(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (RAMP.length - 1);
  const k = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - k;
  const a = RAMP[k], b = RAMP[k + 1];
  return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])];
}

export function drawMap(canvas: HTMLCanvasElement, map: MapPayload, cssSize: number): void {
  const aspect = map.outRows / Math.max(1, map.outCols);
  const w = cssSize;
  const h = Math.max(8, Math.round(cssSize * Math.min(aspect, 2)));
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const img = new ImageData(map.outCols, map.outRows);
  const span = map.max - map.min || 1;
  for (let k = 0; k < map.data.length; k++) {
    const [r, g, b] = colour((map.data[k] - map.min) / span);
    img.data[4 * k] = r; img.data[4 * k + 1] = g; img.data[4 * k + 2] = b; img.data[4 * k + 3] = 255;
  }
  const off = document.createElement('canvas');
  off.width = map.outCols; off.height = map.outRows;
  off.getContext('2d')!.putImageData(img, 0, 0);
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
}

/** The map cell under a mouse position, with the full-map index ranges it covers. */
export function cellAt(canvas: HTMLCanvasElement, map: MapPayload, clientX: number, clientY: number) {
  const rect = canvas.getBoundingClientRect();
  const oj = Math.min(map.outCols - 1, Math.max(0, Math.floor(((clientX - rect.left) / rect.width) * map.outCols)));
  const oi = Math.min(map.outRows - 1, Math.max(0, Math.floor(((clientY - rect.top) / rect.height) * map.outRows)));
  const i0 = Math.floor((oi * map.rows) / map.outRows), i1 = Math.max(i0, Math.floor(((oi + 1) * map.rows) / map.outRows) - 1);
  const j0 = Math.floor((oj * map.cols) / map.outCols), j1 = Math.max(j0, Math.floor(((oj + 1) * map.cols) / map.outCols) - 1);
  return { i0, i1, j0, j1, value: map.data[oi * map.outCols + oj] };
}

export function describeCell(c: ReturnType<typeof cellAt>): string {
  const range = (a: number, b: number) => (a === b ? `${a}` : `${a}–${b}`);
  const exact = c.i0 === c.i1 && c.j0 === c.j1;
  return `i ${range(c.i0, c.i1)}, j ${range(c.j0, c.j1)}: ${exact ? '' : 'mean '}${formatValue(c.value)}`;
}

export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  return Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? v.toFixed(4) : v.toExponential(3);
}

/** Draws a simple line chart (loss curve). */
export function drawLine(canvas: HTMLCanvasElement, points: { x: number; y: number }[], cssWidth: number, cssHeight: number, colourVar = '--vscode-charts-blue'): void {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = cssWidth * dpr; canvas.height = cssHeight * dpr;
  canvas.style.width = `${cssWidth}px`; canvas.style.height = `${cssHeight}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.scale(dpr, dpr);
  const style = getComputedStyle(document.body);
  const fg = style.getPropertyValue('--vscode-foreground').trim() || '#ccc';
  const line = style.getPropertyValue(colourVar).trim() || '#3794ff';
  ctx.clearRect(0, 0, cssWidth, cssHeight);
  if (points.length === 0) return;
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const pad = 24;
  const sx = (x: number) => pad + ((x - x0) / (x1 - x0 || 1)) * (cssWidth - pad - 6);
  const sy = (y: number) => 6 + (1 - (y - y0) / (y1 - y0 || 1)) * (cssHeight - pad - 6);
  ctx.strokeStyle = fg; ctx.globalAlpha = 0.4; ctx.beginPath();
  ctx.moveTo(pad, 6); ctx.lineTo(pad, cssHeight - pad); ctx.lineTo(cssWidth - 6, cssHeight - pad); ctx.stroke();
  ctx.globalAlpha = 1; ctx.fillStyle = fg; ctx.font = '10px sans-serif';
  ctx.fillText(y1.toPrecision(3), 0, 12); ctx.fillText(y0.toPrecision(3), 0, cssHeight - pad);
  ctx.strokeStyle = line; ctx.lineWidth = 1.5; ctx.beginPath();
  points.forEach((p, k) => (k ? ctx.lineTo(sx(p.x), sy(p.y)) : ctx.moveTo(sx(p.x), sy(p.y))));
  ctx.stroke();
}
