// Canvas heatmaps of transport maps (already down-sampled by the extension), with hover read-out.
import type { MapPayload } from '../contracts/protocol';
import { colour, colourScale, formatValue, scaleT, scaleValue, type ColourScale } from './mapMath';

export { cellAt, colour, describeCell, formatValue } from './mapMath';

/** The colour ramp sampled at RAMP_STEPS points (rgb bytes): a map's cells are looked up, not computed one by one.
 * Steps of 1/4095 of the scale: at most one unit of one channel away from colour(t) itself. */
const RAMP_STEPS = 4096;
let rampTable: Uint8ClampedArray | undefined;
function ramp(): Uint8ClampedArray {
  if (rampTable) return rampTable;
  rampTable = new Uint8ClampedArray(3 * RAMP_STEPS);
  for (let q = 0; q < RAMP_STEPS; q++) rampTable.set(colour(q / (RAMP_STEPS - 1)), 3 * q);
  return rampTable;
}

/** Each map's cells coloured once per scale, at the map's own size (the canvas is drawn from it: a redraw, a zoom,
 * a switch back to a layer shown before cost one drawImage). */
const coloured = new WeakMap<MapPayload, { key: string; canvas: HTMLCanvasElement }>();

function colouredCells(map: MapPayload, scale: ColourScale): HTMLCanvasElement {
  const key = `${scale.min}|${scale.max}|${scale.log}|${scale.lo}`;
  const hit = coloured.get(map);
  if (hit?.key === key) return hit.canvas;
  const img = new ImageData(map.outCols, map.outRows);
  const lut = ramp();
  const px = img.data;
  for (let k = 0; k < map.data.length; k++) {
    const q = 3 * Math.round(scaleT(map.data[k], scale) * (RAMP_STEPS - 1));
    px[4 * k] = lut[q];
    px[4 * k + 1] = lut[q + 1];
    px[4 * k + 2] = lut[q + 2];
    px[4 * k + 3] = 255;
  }
  const off = document.createElement('canvas');
  off.width = map.outCols;
  off.height = map.outRows;
  off.getContext('2d')!.putImageData(img, 0, 0);
  coloured.set(map, { key, canvas: off });
  return off;
}

/** Colours the map's cells ahead of its first draw (a map fetched ahead, in idle time): its first draw is then one
 * drawImage, as a switch back. */
export function prepareColours(map: MapPayload, scale: ColourScale): void {
  colouredCells(map, scale);
}

/** Draws the map with `scale` (its own linear min–max unless given: Compare passes one shared scale). */
export function drawMap(canvas: HTMLCanvasElement, map: MapPayload, cssSize: number, scale: ColourScale = colourScale(map.min, map.max)): void {
  const aspect = map.outRows / Math.max(1, map.outCols);
  const w = cssSize;
  const h = Math.max(8, Math.round(cssSize * Math.min(aspect, 2)));
  const dpr = window.devicePixelRatio || 1;
  const cw = Math.round(w * dpr);
  const ch = Math.round(h * dpr);
  // Setting a canvas's size clears it (and reallocates it): only when the size changes.
  if (canvas.width !== cw) canvas.width = cw;
  if (canvas.height !== ch) canvas.height = ch;
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, cw, ch);
  ctx.drawImage(colouredCells(map, scale), 0, 0, cw, ch);
}

/** Draws a simple line chart (loss curve). */
export function drawLine(
  canvas: HTMLCanvasElement,
  points: { x: number; y: number }[],
  cssWidth: number,
  cssHeight: number,
  colourVar = '--vscode-charts-blue',
): void {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = cssWidth * dpr;
  canvas.height = cssHeight * dpr;
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.scale(dpr, dpr);
  const style = getComputedStyle(document.body);
  const fg = style.getPropertyValue('--vscode-foreground').trim() || '#ccc';
  const line = style.getPropertyValue(colourVar).trim() || '#3794ff';
  ctx.clearRect(0, 0, cssWidth, cssHeight);
  if (points.length === 0) return;
  const xs = points.map((p) => p.x),
    ys = points.map((p) => p.y);
  const x0 = Math.min(...xs),
    x1 = Math.max(...xs),
    y0 = Math.min(...ys),
    y1 = Math.max(...ys);
  const pad = 24;
  const sx = (x: number) => pad + ((x - x0) / (x1 - x0 || 1)) * (cssWidth - pad - 6);
  const sy = (y: number) => 6 + (1 - (y - y0) / (y1 - y0 || 1)) * (cssHeight - pad - 6);
  ctx.strokeStyle = fg;
  ctx.globalAlpha = 0.4;
  ctx.beginPath();
  ctx.moveTo(pad, 6);
  ctx.lineTo(pad, cssHeight - pad);
  ctx.lineTo(cssWidth - 6, cssHeight - pad);
  ctx.stroke();
  ctx.globalAlpha = 1;
  ctx.fillStyle = fg;
  ctx.font = '10px sans-serif';
  ctx.fillText(y1.toPrecision(3), 0, 12);
  ctx.fillText(y0.toPrecision(3), 0, cssHeight - pad);
  ctx.strokeStyle = line;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  points.forEach((p, k) => (k ? ctx.lineTo(sx(p.x), sy(p.y)) : ctx.moveTo(sx(p.x), sy(p.y))));
  ctx.stroke();
}

/** A vertical colour bar for [min, max] (or `scale`: log, shared) with three tick labels (top, middle, bottom). */
export function drawColourBar(
  canvas: HTMLCanvasElement,
  min: number,
  max: number,
  cssHeight: number,
  cssWidth = 58,
  scale: ColourScale = colourScale(min, max),
): void {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(cssWidth * dpr);
  canvas.height = Math.round(cssHeight * dpr);
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssWidth, cssHeight);
  const barW = 12;
  for (let y = 0; y < cssHeight; y++) {
    const [r, g, b] = colour(1 - y / Math.max(1, cssHeight - 1));
    ctx.fillStyle = `rgb(${r | 0},${g | 0},${b | 0})`;
    ctx.fillRect(0, y, barW, 1);
  }
  const fg = getComputedStyle(document.body).getPropertyValue('--vscode-foreground').trim() || '#888';
  ctx.fillStyle = fg;
  ctx.strokeStyle = fg;
  ctx.font = '10px sans-serif';
  ctx.textBaseline = 'middle';
  const ticks: [number, number][] = [
    [scaleValue(1, scale), 5],
    [scaleValue(0.5, scale), cssHeight / 2],
    [scaleValue(0, scale), cssHeight - 5],
  ];
  for (const [v, y] of ticks) {
    ctx.beginPath();
    ctx.moveTo(barW, y);
    ctx.lineTo(barW + 3, y);
    ctx.stroke();
    ctx.fillText(formatValue(v), barW + 5, y);
  }
}

/** One image of a map with its colour bar, a title, axis labels and a legend line (for "Export PNG"). */
export function composeHeatmapImage(
  map: MapPayload,
  title: string,
  size = 512,
  scale: ColourScale = colourScale(map.min, map.max),
  legend = '',
  footer = '',
): HTMLCanvasElement {
  const heat = document.createElement('canvas');
  drawMap(heat, map, size, scale);
  const bar = document.createElement('canvas');
  const h = parseFloat(heat.style.height);
  drawColourBar(bar, map.min, map.max, h, 58, scale);
  const pad = 8,
    top = 24,
    left = 20,
    bottom = footer ? 56 : 40;
  const out = document.createElement('canvas');
  out.width = left + size + bar.width / (window.devicePixelRatio || 1) + 3 * pad;
  out.height = h + top + bottom;
  const ctx = out.getContext('2d')!;
  ctx.fillStyle = getComputedStyle(document.body).getPropertyValue('--vscode-editor-background').trim() || '#fff';
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.fillStyle = getComputedStyle(document.body).getPropertyValue('--vscode-foreground').trim() || '#000';
  ctx.font = '12px sans-serif';
  ctx.fillText(title, pad, 16);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(heat, left + pad, top, size, h);
  ctx.drawImage(bar, left + size + 2 * pad, top, bar.width / (window.devicePixelRatio || 1), h);
  // Axis labels: columns are the anchor's neurons, rows the other model's (sorted by match when so drawn).
  ctx.font = '11px sans-serif';
  ctx.fillText(`columns j: anchor neurons 0–${map.cols - 1}`, left + pad, top + h + 14);
  ctx.save();
  ctx.translate(12, top + h);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(`rows i: other model's neurons${map.rowOrder ? ' (sorted by match)' : ''}`, 0, 0);
  ctx.restore();
  ctx.fillText(legend || `colour: ${scale.log ? 'log scale' : 'linear scale'} of n·P`, left + pad, top + h + 30);
  if (footer) ctx.fillText(footer, left + pad, top + h + 46);
  return out;
}
