// Which neurons matched: the row order that shows a transport map's matches as a diagonal, and each neuron's
// top-k matches with their share of its mass. Pure arithmetic on the full map (no vscode), unit-tested in node.
import type { MapPayload } from '../contracts/protocol';
import { downsample } from './safetensors';

/** Row order for "sort by match": rows (the other model's neurons) sorted by the anchor column holding most of
 * their mass (ties: the larger share first, then the original index). Column j of a permutation map's row σ⁻¹(j)
 * holds its match, so the sorted map is the identity; a soft map shows its matches as a band along the diagonal.
 * For rows ≠ cols (models of different widths) the matches form a monotone staircase. */
export function matchOrder(rows: number, cols: number, data: ArrayLike<number>): number[] {
  const best = new Int32Array(rows);
  const share = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let bj = 0;
    let bv = -Infinity;
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      const v = data[i * cols + j];
      if (!Number.isFinite(v)) continue;
      sum += Math.abs(v);
      if (v > bv) {
        bv = v;
        bj = j;
      }
    }
    best[i] = bj;
    share[i] = sum > 0 && Number.isFinite(bv) ? bv / sum : 0;
  }
  return Array.from({ length: rows }, (_, i) => i).sort((a, b) => best[a] - best[b] || share[b] - share[a] || a - b);
}

/** The map with its rows in `order` (order[k] = the original row shown at position k). */
export function permuteRows(rows: number, cols: number, data: Float32Array, order: readonly number[]): Float32Array {
  if (order.length !== rows) throw new Error(`a row order of ${order.length} for ${rows} rows`);
  const out = new Float32Array(rows * cols);
  for (let k = 0; k < rows; k++) out.set(data.subarray(order[k] * cols, order[k] * cols + cols), k * cols);
  return out;
}

export interface TopMatches {
  k: number;
  /** rows × k anchor columns, best first (−1 where a row has fewer than k non-zero entries). */
  cols: number[];
  /** rows × k shares of the row's mass in [0, 1] (the matching column's value over the row's total). */
  mass: number[];
}

/** Each row's k best columns with their share of the row's mass (for "top-k matches per neuron"). */
export function topMatches(rows: number, cols: number, data: ArrayLike<number>, k = 3): TopMatches {
  const kk = Math.max(1, Math.min(k, cols));
  const outCols = new Array<number>(rows * kk).fill(-1);
  const outMass = new Array<number>(rows * kk).fill(0);
  const bestJ = new Int32Array(kk);
  const bestV = new Float64Array(kk);
  for (let i = 0; i < rows; i++) {
    bestJ.fill(-1);
    bestV.fill(-Infinity);
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      const v = data[i * cols + j];
      if (!Number.isFinite(v) || v <= 0) continue;
      sum += v;
      if (v <= bestV[kk - 1]) continue;
      let p = kk - 1;
      while (p > 0 && v > bestV[p - 1]) {
        bestV[p] = bestV[p - 1];
        bestJ[p] = bestJ[p - 1];
        p--;
      }
      bestV[p] = v;
      bestJ[p] = j;
    }
    for (let p = 0; p < kk; p++) {
      if (bestJ[p] < 0) continue;
      outCols[i * kk + p] = bestJ[p];
      outMass[i * kk + p] = sum > 0 ? bestV[p] / sum : 0;
    }
  }
  return { k: kk, cols: outCols, mass: outMass };
}

/** How many rows put at least `threshold` of their mass on one column (a hard match). */
export function hardMatches(top: TopMatches, threshold = 0.9): number {
  let n = 0;
  for (let i = 0; i < top.mass.length; i += top.k) if (top.mass[i] >= threshold) n++;
  return n;
}

/** The map with its rows sorted by match and/or each row's top-k matches (computed on the full map). */
export function orderedMap(
  tensor: string,
  full: { rows: number; cols: number; data: Float32Array },
  side: number,
  options: { sort?: boolean; top?: number },
): MapPayload {
  const { rows, cols, data } = full;
  const rowOrder = options.sort ? matchOrder(rows, cols, data) : undefined;
  const shown = rowOrder ? permuteRows(rows, cols, data, rowOrder) : data;
  const payload = downsample(tensor, rows, cols, shown, side);
  if (rowOrder) payload.rowOrder = rowOrder;
  if (options.top) payload.top = topMatches(rows, cols, data, options.top);
  return payload;
}
