// Thumbnails of the stored maps, made while maps.safetensors is written (issue 31: a run with 50 maps opens
// without reading them): each map larger than THUMB_SIDE on a side also gets `thumb/<key>`, its block means at most
// THUMB_SIDE² (float32), appended after the maps. The arithmetic is the panel's (extension/mapThread.ts blockMeans):
// block c of a row holds the columns j with ⌊j·outCols/cols⌋ = c, each row's block is summed in float64 and added to
// its cell; cells are divided by their entry count at the end. Fed the map's values in row-major order in pieces of
// any length (the spool is streamed in chunks).

/** The thumbnails' side: the panel's thumbnail size (extension/alignmentView.ts THUMB). */
export const THUMB_SIDE = 96;
export const THUMB_PREFIX = 'thumb/';

export class BlockMeans {
  readonly outRows: number;
  readonly outCols: number;
  private readonly start: Int32Array;
  private readonly rowOf: (i: number) => number;
  private readonly rowCount: Uint32Array;
  private readonly acc: Float64Array;
  /** Where the next value falls: row, column, the column block, its running sum. */
  private i = 0;
  private j = 0;
  private c = 0;
  private s = 0;

  constructor(
    readonly rows: number,
    readonly cols: number,
    side = THUMB_SIDE,
  ) {
    this.outRows = Math.min(rows, side);
    this.outCols = Math.min(cols, side);
    this.start = new Int32Array(this.outCols + 1);
    for (let c = 0; c <= this.outCols; c++) this.start[c] = c === this.outCols ? cols : Math.ceil((c * cols) / this.outCols);
    this.rowOf = (i) => Math.floor((i * this.outRows) / rows);
    this.rowCount = new Uint32Array(this.outRows);
    this.acc = new Float64Array(this.outRows * this.outCols);
  }

  /** The next values of the map (row-major). */
  add(values: ArrayLike<number>): void {
    const { cols, start, acc, outCols } = this;
    let { i, j, c, s } = this;
    for (let k = 0; k < values.length; k++) {
      s += values[k];
      j++;
      if (j === start[c + 1]) {
        acc[this.rowOf(i) * outCols + c] += s;
        s = 0;
        c++;
        if (j === cols) {
          this.rowCount[this.rowOf(i)]++;
          i++;
          j = 0;
          c = 0;
        }
      }
    }
    Object.assign(this, { i, j, c, s });
  }

  /** The block means (float32); throws unless exactly rows × cols values were added. */
  result(): Float32Array {
    if (this.i !== this.rows || this.j !== 0) throw new Error(`block means of a ${this.rows}×${this.cols} map fed ${this.i * this.cols + this.j} values`);
    const out = new Float32Array(this.outRows * this.outCols);
    for (let r = 0; r < this.outRows; r++)
      for (let c = 0; c < this.outCols; c++) {
        const n = this.rowCount[r] * (this.start[c + 1] - this.start[c]);
        out[r * this.outCols + c] = n ? this.acc[r * this.outCols + c] / n : 0;
      }
    return out;
  }
}
