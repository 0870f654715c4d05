// The network simplex's pricing (the block search over reduced costs, most of a pivot's time) in WebAssembly SIMD:
// kernels/pricing.wat's segMin gives the minimum of C[o + j] − π_col[j] over a row segment, two lanes at a time;
// emd.ts adds the row potential and, only when that beats the best so far, asks segFind for its first position. The cost matrix
// is copied into the kernel's linear memory once per solve and the column potentials live there (emd.ts works on a
// view). The memory is kept between solves (fresh memory costs a page fault per 4 KiB) and dropped after
// 2 s without a solve (wasm-arena.ts). undefined where WebAssembly SIMD is missing or the problem does not fit: emd.ts then
// prices in plain JS.
import kernel from './kernels/pricing.wat';
import { KernelArena } from './wasm-arena';

export interface Pricing {
  /** The cost matrix inside the kernel's memory (byte offset 0) and the node potentials after it. */
  C: Float64Array;
  pi: Float64Array;
  /** Byte offset of pi in the memory. */
  piOff: number;
  segMin(c: number, p: number, len: number): number;
  /** The first k < len with C[k] − π[k] = low (len if none). */
  segFind(c: number, p: number, len: number, low: number): number;
}

const arena = new KernelArena<Pick<Pricing, 'segMin' | 'segFind'>>(kernel);

/** The kernel over a memory holding a copy of C (nm entries) and room for `nodes` potentials (zeroed). */
export function pricingFor(C: Float64Array, nodes: number): Pricing | undefined {
  const held = arena.get((C.length + nodes) * 8);
  if (!held) return undefined;
  const buffer = held.memory.buffer;
  const heapC = new Float64Array(buffer, 0, C.length);
  heapC.set(C);
  const pi = new Float64Array(buffer, C.length * 8, nodes);
  pi.fill(0);
  return { C: heapC, pi, piOff: C.length * 8, segMin: held.exports.segMin, segFind: held.exports.segFind };
}
