// The panel's detail view of each large map, made while maps.safetensors is written (issue 31: a switch to a layer
// never shown paints without reading its map). For each float32 map larger than DETAIL_SIDE on a side, fuse stores
// right after the map:
//   detail/<key>   F32 [min(n, 384), min(m, 384)]  the block means the panel draws (mapthumbs.ts BlockMeans: the
//                                                   panel's arithmetic, extension/mapThread.ts blockMeans)
//   top/<key>      I32 [n, 3]  each row's 3 largest columns, best first (−1 where a row has fewer positive entries)
//   topmass/<key>  F64 [n, 3]  their share of the row's mass (the value over the row's sum of positive entries)
// The top-3 arithmetic is extension/mapOrder.ts topMatches' (float64 row sums in column order, the same ties), so the
// panel's table is the same whether it reads these or computes it from the map.
// Why float32 block means (not float16): the panel colours them on a 4096-step ramp and prints them on hover; float16
// (11 bits) would move a cell by up to two steps and flush the small entries of a soft map (below 6e-8) to zero, which
// the log scale cannot show. A ViT-B run's 52 details are 30 MB next to its 321 MiB of maps (9 %).
// Fed the map's values in row-major order in pieces of any length (the spool is streamed in chunks): the memory is
// one map's accumulators (384² float64 + n × 3), written and dropped when the map has passed.

import { DETAIL_SIDE, DETAIL_TOP_K as TOP_K } from '../../contracts/layers';

// The detail map's side and the top matches stored per row are the panel's own (contracts/layers.ts, which host and
// view share), so a stored detail is exactly what the view would ask for.
export { DETAIL_SIDE, TOP_K };
export const DETAIL_PREFIX = 'detail/';
export const TOP_PREFIX = 'top/';
export const TOP_MASS_PREFIX = 'topmass/';

/** Whether a rows × cols map gets a stored detail and top table. */
export function hasDetail(rows: number, cols: number): boolean {
  return rows > DETAIL_SIDE || cols > DETAIL_SIDE;
}

/** Each row's k best columns and their share of the row's mass, from values streamed in row-major order. */
export class TopMatchesStream {
  readonly k: number;
  readonly cols: Int32Array;
  readonly mass: Float64Array;
  private readonly bestJ: Int32Array;
  private readonly bestV: Float64Array;
  private i = 0;
  private j = 0;
  private sum = 0;

  constructor(
    readonly rows: number,
    readonly width: number,
    k = TOP_K,
  ) {
    this.k = Math.max(1, Math.min(k, width));
    this.cols = new Int32Array(rows * this.k).fill(-1);
    this.mass = new Float64Array(rows * this.k);
    this.bestJ = new Int32Array(this.k).fill(-1);
    this.bestV = new Float64Array(this.k).fill(-Infinity);
  }

  add(values: ArrayLike<number>): void {
    const { k, bestJ, bestV, width } = this;
    let { j, sum } = this;
    for (let q = 0; q < values.length; q++) {
      const v = values[q];
      if (Number.isFinite(v) && v > 0) {
        sum += v;
        if (v > bestV[k - 1]) {
          let p = k - 1;
          while (p > 0 && v > bestV[p - 1]) {
            bestV[p] = bestV[p - 1];
            bestJ[p] = bestJ[p - 1];
            p--;
          }
          bestV[p] = v;
          bestJ[p] = j;
        }
      }
      if (++j === width) {
        this.sum = sum;
        this.endRow();
        j = 0;
        sum = 0;
      }
    }
    this.j = j;
    this.sum = sum;
  }

  private endRow(): void {
    const { k, bestJ, bestV, sum, i } = this;
    for (let p = 0; p < k; p++) {
      if (bestJ[p] < 0) continue;
      this.cols[i * k + p] = bestJ[p];
      this.mass[i * k + p] = sum > 0 ? bestV[p] / sum : 0;
    }
    bestJ.fill(-1);
    bestV.fill(-Infinity);
    this.i++;
  }

  /** Throws unless exactly rows × width values were added. */
  result(): { k: number; cols: Int32Array; mass: Float64Array } {
    if (this.i !== this.rows || this.j !== 0) throw new Error(`top matches of a ${this.rows}×${this.width} map fed ${this.i * this.width + this.j} values`);
    return { k: this.k, cols: this.cols, mass: this.mass };
  }
}
