// Heatmap arithmetic without the DOM (unit-tested in node): the colour ramp, the cell under a pointer, value text.
import type { MapPayload } from '../contracts/protocol';

/** A perceptual colour ramp (viridis anchors), t in [0, 1] → rgb. */
const RAMP: [number, number, number][] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];
export function colour(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (RAMP.length - 1);
  const k = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - k;
  const a = RAMP[k],
    b = RAMP[k + 1];
  return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])];
}

/** The map cell under a mouse position, with the full-map index ranges it covers. */
export function cellAt(rect: { left: number; top: number; width: number; height: number }, map: MapPayload, clientX: number, clientY: number) {
  const oj = Math.min(map.outCols - 1, Math.max(0, Math.floor(((clientX - rect.left) / rect.width) * map.outCols)));
  const oi = Math.min(map.outRows - 1, Math.max(0, Math.floor(((clientY - rect.top) / rect.height) * map.outRows)));
  const i0 = Math.floor((oi * map.rows) / map.outRows),
    i1 = Math.max(i0, Math.floor(((oi + 1) * map.rows) / map.outRows) - 1);
  const j0 = Math.floor((oj * map.cols) / map.outCols),
    j1 = Math.max(j0, Math.floor(((oj + 1) * map.cols) / map.outCols) - 1);
  return { i0, i1, j0, j1, value: map.data[oi * map.outCols + oj] };
}

/** "i a–b, j c–d": the full-map rows and columns a cell covers. */
function cellSpan(c: ReturnType<typeof cellAt>): string {
  const range = (a: number, b: number) => (a === b ? `${a}` : `${a}–${b}`);
  return `i ${range(c.i0, c.i1)}, j ${range(c.j0, c.j1)}`;
}

export function describeCell(c: ReturnType<typeof cellAt>): string {
  const exact = c.i0 === c.i1 && c.j0 === c.j1;
  return `${cellSpan(c)}: ${exact ? '' : 'mean '}${formatValue(c.value)}`;
}

/** The hover read-out over a thumbnail standing in for a detail map not here yet: its block's mean over the rows and
 * columns it covers, labelled as a thumbnail's (never shown as an exact cell value). */
export function describeThumbnailCell(c: ReturnType<typeof cellAt>): string {
  return `${cellSpan(c)}: thumbnail block mean ${formatValue(c.value)} (the detail map is loading)`;
}

export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  return Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? v.toFixed(4) : v.toExponential(3);
}

/** How values become colours: linear from min to max, or logarithmic (soft maps: most mass sits on a few cells,
 * the rest spans decades) from `lo` (the smallest positive value shown, at most `LOG_DECADES` below max) to max. */
export interface ColourScale {
  min: number;
  max: number;
  log: boolean;
  /** Lower end of a log scale (values at or below it get the first colour). */
  lo: number;
}
export const LOG_DECADES = 4;

export function colourScale(min: number, max: number, log = false, smallestPositive?: number): ColourScale {
  const floor = max > 0 ? max * 10 ** -LOG_DECADES : 0;
  const pos = smallestPositive !== undefined && smallestPositive > 0 ? smallestPositive : min > 0 ? min : floor;
  const lo = max > 0 ? Math.min(max, Math.max(floor, pos)) : 0;
  // A log scale needs a positive maximum; otherwise it falls back to linear.
  return { min, max, log: log && max > 0 && lo > 0 && lo < max, lo };
}

/** The position of `v` on the scale, in [0, 1]. */
export function scaleT(v: number, s: ColourScale): number {
  if (!Number.isFinite(v)) return 0;
  if (s.log) return v <= s.lo ? 0 : Math.min(1, Math.log(v / s.lo) / Math.log(s.max / s.lo));
  const span = s.max - s.min || 1;
  return Math.min(1, Math.max(0, (v - s.min) / span));
}

/** The value at position t of the scale (the colour bar's ticks). */
export function scaleValue(t: number, s: ColourScale): number {
  return s.log ? s.lo * (s.max / s.lo) ** t : s.min + t * (s.max - s.min);
}

/** The smallest positive finite value of `data` (undefined when none). */
export function smallestPositive(data: ArrayLike<number>): number | undefined {
  let m = Infinity;
  for (let k = 0; k < data.length; k++) {
    const v = data[k];
    if (v > 0 && v < m) m = v;
  }
  return Number.isFinite(m) ? m : undefined;
}

/** One scale for several maps (Compare): min and max over all, smallest positive over all. */
export function sharedScale(maps: { min: number; max: number; data: ArrayLike<number> }[], log = false): ColourScale {
  const min = Math.min(...maps.map((m) => m.min));
  const max = Math.max(...maps.map((m) => m.max));
  const pos = maps.map((m) => smallestPositive(m.data)).filter((v): v is number => v !== undefined);
  return colourScale(min, max, log, pos.length ? Math.min(...pos) : undefined);
}
