// The linear assignment's shortest-path search (lap.ts augment: one row scan lowers the distances of every column and
// picks the next closest) in WebAssembly SIMD: kernels/lap.wat's scan and argmin, two float64 lanes at a time, with
// the same arithmetic and the same choice of column as lap.ts's scalar loops (so both give the same assignment).
// The cost matrix is copied into the kernel's linear memory once per solve; the column prices, distances and
// predecessors live there too (lap.ts works on views). The memory is kept between solves (fresh memory costs a page
// fault per 4 KiB) and dropped after 2 s without a solve (wasm-arena.ts). undefined where WebAssembly SIMD is missing or the
// problem does not fit: lap.ts then searches in plain JS.
import kernel from './kernels/lap.wat';
import { KernelArena } from './wasm-arena';

interface Exports {
  scan(c: number, v: number, d: number, pred: number, len: number, h: number, i: number): number;
  argmin(d: number, len: number): number;
}

/** One solve's views of the kernel's memory and its two entry points. Columns are padded to an even count (`len`);
 * the pad column's distance is NaN, so it is never lowered nor chosen. */
export interface LapKernel {
  /** The cost matrix (n² entries, row-major), a copy of the caller's. */
  C: Float64Array;
  /** Column prices, distances (len entries each) and predecessors (int64 lanes: row of column j at pred32[2j]). */
  v: Float64Array;
  d: Float64Array;
  pred32: Int32Array;
  len: number;
  /** Scans row i with offset h (see lap.wat); returns the next closest column. */
  scan(i: number, h: number): number;
  /** The closest column by d. */
  argmin(): number;
}

const arena = new KernelArena<Exports>(kernel);

/** The kernel over a memory holding a copy of the n×n matrix C, zero prices and NaN distances; undefined when
 * WebAssembly SIMD is unavailable or the problem does not fit one memory. */
export function lapKernelFor(C: Float64Array, n: number): LapKernel | undefined {
  const len = n + (n & 1);
  const cBytes = Math.ceil((n * n * 8) / 16) * 16;
  const held = arena.get(cBytes + len * 24);
  if (!held) return undefined;
  const { memory, exports } = held;
  const buffer = memory.buffer;
  const heapC = new Float64Array(buffer, 0, cBytes / 8);
  heapC.set(C);
  heapC.fill(0, n * n); // the pad read by the last row's pad column
  const vOff = cBytes,
    dOff = vOff + len * 8,
    pOff = dOff + len * 8;
  const v = new Float64Array(buffer, vOff, len).fill(0);
  const d = new Float64Array(buffer, dOff, len).fill(NaN);
  const pred32 = new Int32Array(buffer, pOff, 2 * len).fill(0);
  const rowBytes = n * 8;
  return {
    C: heapC.subarray(0, n * n),
    v,
    d,
    pred32,
    len,
    scan: (i, h) => exports.scan(i * rowBytes, vOff, dOff, pOff, len, h, i),
    argmin: () => exports.argmin(dOff, len),
  };
}
