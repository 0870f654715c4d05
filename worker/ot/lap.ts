// Dense linear assignment (square), Jonker–Volgenant style: column reduction, reduction transfer,
// augmenting row reduction, then shortest augmenting paths (Dijkstra on reduced costs). O(n³) worst case.
// Written from the 1987 paper's outline; no third-party code. The shortest-path search is dense (every step scans the
// whole row of the closest column's row, contiguous), in WebAssembly SIMD from lapEngine.wasmMin columns (lap-wasm.ts).
import { lapKernelFor, type LapKernel } from './lap-wasm';

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
  /** The augmentation's column operations (WebAssembly or JS) and its list of scanned columns with their distances. */
  search: Search;
  scanned: Int32Array;
  scannedD: Float64Array;
}

/** From this size up the search runs in WebAssembly SIMD (lap-wasm.ts; below, plain JS: same arithmetic, same
 * assignment). Tests set it to Infinity to compare both. */
export const lapEngine = { wasmMin: 32 };

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
  // the kernel works on its own copy of C and keeps the prices in its memory (copied out at the end)
  const kernel = n >= lapEngine.wasmMin && allFinite(C, n) ? lapKernelFor(C, n) : undefined;
  const Cs = kernel ? kernel.C : C;
  const vs = kernel ? kernel.v : v;
  const search = kernel ? wasmSearch(kernel) : jsSearch(C, n, v);
  const lap: Lap = { C: Cs, n, rowsol, colsol, v: vs, free: new Int32Array(n), search, scanned: new Int32Array(n), scannedD: new Float64Array(n) };
  const matches = new Int32Array(n);
  columnReduction(lap, matches);
  let numfree = reductionTransfer(lap, matches);
  numfree = augmentingRowReduction(lap, numfree);
  for (let f = 0; f < numfree; f++) augment(lap, lap.free[f]);
  if (kernel) v.set(vs.subarray(0, n));

  let cost = 0;
  for (let i = 0; i < n; i++) cost += C[i * n + rowsol[i]];
  return { rowToCol: rowsol, colToRow: colsol, cost, v };
}

function allFinite(C: Float64Array, n: number): boolean {
  for (let k = 0, nn = n * n; k < nn; k++) if (!Number.isFinite(C[k])) return false;
  return true;
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

/** The search's column operations: scan row i with offset h (lower every unscanned column's distance to
 * (C[i, j] − v[j]) − h where that is smaller, recording i as its predecessor) and return the first closest unscanned
 * column; argmin alone. Scanned columns have distance NaN. lap-wasm.ts does the same in WebAssembly SIMD. */
interface Search {
  d: Float64Array;
  scan(i: number, h: number): number;
  argmin(): number;
  pred(j: number): number;
  setPred(j: number, i: number): void;
}

function jsSearch(C: Float64Array, n: number, v: Float64Array): Search {
  const d = new Float64Array(n).fill(NaN);
  const pred = new Int32Array(n);
  const argmin = (): number => {
    let best = Infinity,
      jb = -1;
    for (let j = 0; j < n; j++)
      if (d[j] < best) {
        best = d[j];
        jb = j;
      }
    return jb;
  };
  return {
    d,
    scan(i, h) {
      const o = i * n;
      let best = Infinity,
        jb = -1;
      for (let j = 0; j < n; j++) {
        const r = C[o + j] - v[j] - h;
        if (r < d[j]) {
          d[j] = r;
          pred[j] = i;
        }
        if (d[j] < best) {
          best = d[j];
          jb = j;
        }
      }
      return jb;
    },
    argmin,
    pred: (j) => pred[j],
    setPred: (j, i) => (pred[j] = i),
  };
}

function wasmSearch(k: LapKernel): Search {
  const p = k.pred32;
  return {
    d: k.d,
    scan: k.scan,
    argmin: k.argmin,
    pred: (j) => p[2 * j],
    setPred: (j, i) => {
      p[2 * j] = i;
      p[2 * j + 1] = 0;
    },
  };
}

/** 4. Augments one free row along a shortest alternating path (Dijkstra on reduced costs, dense: each step scans the
 * row matched to the closest unscanned column), then updates the prices of the scanned columns and flips the path. */
function augment({ C, n, rowsol, colsol, v, search, scanned, scannedD }: Lap, freerow: number): void {
  const { d } = search;
  const fo = freerow * n;
  for (let j = 0; j < n; j++) {
    d[j] = C[fo + j] - v[j];
    search.setPred(j, freerow);
  }
  let count = 0;
  let j = search.argmin();
  let min = d[j];
  while (colsol[j] >= 0) {
    scanned[count] = j;
    scannedD[count++] = min;
    d[j] = NaN;
    const i = colsol[j];
    const h = C[i * n + j] - v[j] - min;
    j = search.scan(i, h);
    if (j < 0) throw new Error('linearAssignment: no free column reached (non-finite costs?)');
    min = d[j];
  }
  // update the prices of the scanned columns
  for (let k = 0; k < count; k++) v[scanned[k]] += scannedD[k] - min;
  // flip the alternating path
  let endofpath = j;
  for (;;) {
    const i = search.pred(endofpath);
    colsol[endofpath] = i;
    const j1 = endofpath;
    endofpath = rowsol[i];
    rowsol[i] = j1;
    if (i === freerow) break;
  }
}
