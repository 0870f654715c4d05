// The network simplex's pricing (the block search over reduced costs, most of a pivot's time) in WebAssembly SIMD:
// kernels/pricing.wat's segMin gives the minimum of C[o + j] − π_col[j] over a row segment, two lanes at a time;
// emd.ts adds the row potential and, only when that beats the best so far, asks segFind for its first position. The cost matrix
// is copied into the kernel's linear memory once per solve and the column potentials live there (emd.ts works on a
// view). The memory is kept between solves (fresh memory costs a page fault per 4 KiB) and dropped after
// IDLE_MS without a solve. undefined where WebAssembly SIMD is missing or the problem does not fit: emd.ts then
// prices in plain JS.
import v8 from 'node:v8';
import kernel from './kernels/pricing.wat';

const PAGE = 65536;
const MAX_BYTES = 2 ** 32 - PAGE;
const IDLE_MS = 2000;

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

let compiled: WebAssembly.Module | null | undefined;
let arena: { memory: WebAssembly.Memory; segMin: Pricing['segMin']; segFind: Pricing['segFind'] } | undefined;
let idle: ReturnType<typeof setTimeout> | undefined;

function compile(): WebAssembly.Module | null {
  if (compiled === undefined) {
    // straight to the optimising compiler (as sinkhorn-wasm.ts: the baseline tier would price 3–4× slower)
    v8.setFlagsFromString('--no-liftoff');
    try {
      compiled = new WebAssembly.Module(kernel);
    } catch {
      compiled = null;
    } finally {
      v8.setFlagsFromString('--liftoff');
    }
  }
  return compiled;
}

/** The kernel over a memory holding a copy of C (nm entries) and room for `nodes` potentials (zeroed). */
export function pricingFor(C: Float64Array, nodes: number): Pricing | undefined {
  const mod = compile();
  if (!mod) return undefined;
  const bytes = (C.length + nodes) * 8;
  if (bytes > MAX_BYTES) return undefined;
  const pages = Math.ceil(bytes / PAGE);
  try {
    if (!arena) {
      const memory = new WebAssembly.Memory({ initial: pages });
      const exports = new WebAssembly.Instance(mod, { env: { mem: memory } }).exports as Pick<Pricing, 'segMin' | 'segFind'>;
      arena = { memory, segMin: exports.segMin, segFind: exports.segFind };
    } else {
      const have = arena.memory.buffer.byteLength / PAGE;
      if (have < pages) arena.memory.grow(pages - have);
    }
  } catch {
    arena = undefined;
    return undefined;
  }
  if (idle) clearTimeout(idle);
  idle = setTimeout(() => (arena = undefined), IDLE_MS);
  idle.unref();
  const buffer = arena.memory.buffer;
  const heapC = new Float64Array(buffer, 0, C.length);
  heapC.set(C);
  const pi = new Float64Array(buffer, C.length * 8, nodes);
  pi.fill(0);
  return { C: heapC, pi, piOff: C.length * 8, segMin: arena.segMin, segFind: arena.segFind };
}
