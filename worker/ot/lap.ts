// Dense linear assignment (square), Jonker–Volgenant style: column reduction, reduction transfer,
// augmenting row reduction, then shortest augmenting paths (Dijkstra on reduced costs). O(n³) worst case.
// Written from the 1987 paper's outline; no third-party code.

export interface AssignmentResult {
  /** rowToCol[i] = column assigned to row i */
  rowToCol: Int32Array;
  /** colToRow[j] = row assigned to column j */
  colToRow: Int32Array;
  /** Σ_i C[i, rowToCol[i]] */
  cost: number;
  /** column dual prices (reduced cost C[i,j] − v[j] is minimal on the assignment) */
  v: Float64Array;
}

/** The solver's state: the cost matrix, the assignment both ways, the column prices and the free rows. */
interface Lap {
  C: Float64Array;
  n: number;
  rowsol: Int32Array;
  colsol: Int32Array;
  v: Float64Array;
  free: Int32Array;
  /** The augmentation's scratch: distances, predecessors and the column list of one shortest-path search. */
  d: Float64Array;
  pred: Int32Array;
  collist: Int32Array;
}

/** Minimum-cost perfect matching for a dense n×n cost matrix C (row-major, finite). */
export function linearAssignment(C: Float64Array, n: number): AssignmentResult {
  const rowsol = new Int32Array(n).fill(-1);
  const colsol = new Int32Array(n).fill(-1);
  const v = new Float64Array(n);
  if (n === 0) return { rowToCol: rowsol, colToRow: colsol, cost: 0, v };
  if (n === 1) {
    rowsol[0] = 0;
    colsol[0] = 0;
    v[0] = C[0];
    return { rowToCol: rowsol, colToRow: colsol, cost: C[0], v };
  }
  const lap: Lap = { C, n, rowsol, colsol, v, free: new Int32Array(n), d: new Float64Array(n), pred: new Int32Array(n), collist: new Int32Array(n) };
  const matches = new Int32Array(n);
  columnReduction(lap, matches);
  let numfree = reductionTransfer(lap, matches);
  numfree = augmentingRowReduction(lap, numfree);
  for (let f = 0; f < numfree; f++) augment(lap, lap.free[f]);

  let cost = 0;
  for (let i = 0; i < n; i++) cost += C[i * n + rowsol[i]];
  return { rowToCol: rowsol, colToRow: colsol, cost, v };
}

/** 1. Column reduction: each column goes to its cheapest row, last columns first. */
function columnReduction({ C, n, rowsol, colsol, v }: Lap, matches: Int32Array): void {
  for (let j = n - 1; j >= 0; j--) {
    let min = C[j],
      imin = 0;
    for (let i = 1, p = n + j; i < n; i++, p += n) {
      const c = C[p];
      if (c < min) {
        min = c;
        imin = i;
      }
    }
    v[j] = min;
    if (++matches[imin] === 1) {
      rowsol[imin] = j;
      colsol[j] = imin;
    } else if (v[j] < v[rowsol[imin]]) {
      const j1 = rowsol[imin];
      rowsol[imin] = j;
      colsol[j] = imin;
      colsol[j1] = -1;
    } else colsol[j] = -1;
  }
}

/** 2. Reduction transfer from rows holding exactly one column; returns the number of free rows (listed in `free`). */
function reductionTransfer({ C, n, rowsol, v, free }: Lap, matches: Int32Array): number {
  let numfree = 0;
  for (let i = 0; i < n; i++) {
    if (matches[i] === 0) free[numfree++] = i;
    else if (matches[i] === 1) {
      const j1 = rowsol[i];
      let min = Infinity;
      const o = i * n;
      for (let j = 0; j < n; j++)
        if (j !== j1) {
          const h = C[o + j] - v[j];
          if (h < min) min = h;
        }
      v[j1] -= min;
    }
  }
  return numfree;
}

/** 3. Augmenting row reduction (two passes). Re-queueing a displaced row at once is capped so that ties or rounding
 * can never make this phase spin; rows left over go to the augmentation phase. Returns the number still free. */
function augmentingRowReduction({ C, n, rowsol, colsol, v, free }: Lap, numfree: number): number {
  let budget = 8 * n + 64;
  for (let pass = 0; pass < 2 && numfree > 0; pass++) {
    let k = 0;
    const prvnumfree = numfree;
    numfree = 0;
    while (k < prvnumfree) {
      const i = free[k++];
      const o = i * n;
      let umin = C[o] - v[0],
        j1 = 0,
        usubmin = Infinity,
        j2 = -1;
      for (let j = 1; j < n; j++) {
        const h = C[o + j] - v[j];
        if (h < usubmin) {
          if (h >= umin) {
            usubmin = h;
            j2 = j;
          } else {
            usubmin = umin;
            umin = h;
            j2 = j1;
            j1 = j;
          }
        }
      }
      let i0 = colsol[j1];
      const strict = umin < usubmin;
      if (strict) v[j1] -= usubmin - umin;
      else if (i0 > -1) {
        j1 = j2;
        i0 = colsol[j2];
      }
      rowsol[i] = j1;
      colsol[j1] = i;
      if (i0 > -1) {
        if (i0 === i) continue; // cannot happen with a consistent assignment; guard anyway
        rowsol[i0] = -1;
        if (strict && budget-- > 0) free[--k] = i0;
        else free[numfree++] = i0;
      }
    }
  }
  return numfree;
}

/** 4. Augments one free row along a shortest alternating path (Dijkstra on reduced costs), then updates the prices of
 * the columns finished in the search and flips the path. */
function augment({ C, n, rowsol, colsol, v, d, pred, collist }: Lap, freerow: number): void {
  const fo = freerow * n;
  for (let j = 0; j < n; j++) {
    d[j] = C[fo + j] - v[j];
    pred[j] = freerow;
    collist[j] = j;
  }
  let low = 0,
    up = 0,
    last = 0,
    min = 0,
    endofpath = -1;
  let found = false;
  while (!found) {
    if (up === low) {
      // next set of columns at the minimum distance
      last = low - 1;
      min = d[collist[up++]];
      for (let k = up; k < n; k++) {
        const j = collist[k];
        const h = d[j];
        if (h <= min) {
          if (h < min) {
            up = low;
            min = h;
          }
          collist[k] = collist[up];
          collist[up++] = j;
        }
      }
      for (let k = low; k < up; k++) {
        if (colsol[collist[k]] < 0) {
          endofpath = collist[k];
          found = true;
          break;
        }
      }
    }
    if (!found) {
      // scan one row reached at distance min
      const j1 = collist[low++];
      const i = colsol[j1];
      const o = i * n;
      const h = C[o + j1] - v[j1] - min;
      for (let k = up; k < n; k++) {
        const j = collist[k];
        const v2 = C[o + j] - v[j] - h;
        if (v2 < d[j]) {
          pred[j] = i;
          if (v2 === min) {
            if (colsol[j] < 0) {
              endofpath = j;
              found = true;
              break;
            }
            collist[k] = collist[up];
            collist[up++] = j;
          }
          d[j] = v2;
        }
      }
    }
  }
  // update prices of the columns finished in this search
  for (let k = 0; k <= last; k++) {
    const j1 = collist[k];
    v[j1] += d[j1] - min;
  }
  // flip the alternating path
  for (;;) {
    const i = pred[endofpath];
    colsol[endofpath] = i;
    const j1 = endofpath;
    endofpath = rowsol[i];
    rowsol[i] = j1;
    if (i === freerow) break;
  }
}
