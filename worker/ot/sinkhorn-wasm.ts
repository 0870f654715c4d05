// The Sinkhorn–Knopp loop of sinkhorn.ts with its three O(n·m) passes — K = exp(−M/reg), the fused sweep
// (K v, then Kᵀ u) and the final plan — in WebAssembly SIMD (kernels/sinkhorn.wat, float64 in two lanes).
// Same iterate, stopping rule and fall-backs as the scalar loop; only the order of floating-point additions
// differs (plans agree to ~1e-16 relative). The kernels work in one linear memory that is kept between solves
// (fresh memory costs a page fault per 4 KiB, ~30 ms for a 3072² kernel on this machine kind) and dropped after
// ARENA_IDLE_MS without a solve; the cost matrix comes in, and the plan goes out, through cache-sized staging
// blocks, so each solve reads M twice and writes the plan once outside the arena.
import v8 from 'node:v8';
import kernels from './kernels/sinkhorn.wat';
import kernels32 from './kernels/sinkhorn32.wat';
import { knoppIterate } from './knopp';
import type { KnoppProblem } from './validate';

interface Kernels {
  init(): void;
  expRows(C: number, K: number, ktu: number, rmax: number, cmax: number, rows: number, m: number, negInv: number, u0: number): number;
  sweep(K: number, a: number, v: number, u: number, ktu: number, n: number, m: number, tmp: number): number;
  finishRows(K: number, C: number, P: number, u: number, v: number, rs: number, col: number, i0: number, i1: number, m: number): number;
}

/** kernels/sinkhorn32.wat: the same passes with K stored in float32. */
interface Kernels32 {
  init32(): void;
  expRows32(C: number, K: number, col: number, range: number, rows: number, m: number, negInv: number): void;
  exp32(x: number, out: number, len: number): void;
  sweep32(K: number, a: number, v: number, u: number, ktu: number, n: number, m: number, tmp: number): number;
  finishRows32(K: number, C: number, P: number, u: number, v: number, rs: number, col: number, i0: number, i1: number, m: number): number;
}

export interface KnoppOutcome {
  plan: Float64Array;
  cost: number;
  rowError: number;
  colError: number;
  iterations: number;
  converged: boolean;
  marginalError: number;
  numericalError: boolean;
}

export const PAGE = 65536;
/** Linear memory is addressed with 32-bit offsets: problems needing more run the scalar loop. */
export const MAX_BYTES = 2 ** 32 - PAGE;
/** Rows of the cost matrix (in) and of the plan (out) are staged in blocks of about this many floats (256 KiB). */
export const STAGE_FLOATS = 1 << 15;
/** The arena is dropped (for the garbage collector) this long after the last solve. */
const ARENA_IDLE_MS = 2000;

/** Float64 slots before K: the exp kernel's table of 2^(j/32) (32 (hi, lo) pairs at address 0) and its constants. */
export const TABLE_SLOTS = 128;
export const K_OFF = TABLE_SLOTS * 8;

/**
 * 2^(j/32) for j = 0…31 as pairs (hi, lo) with hi + lo within 2^-106 of the exact value: from the integer 32nd root
 * of 2^(j + 32·120), i.e. 2^(j/32) to 120 binary places, by Newton's method in BigInt.
 */
function exp2Table(): Float64Array {
  const P = 120n,
    N = 32n;
  const out = new Float64Array(64);
  for (let j = 0; j < 32; j++) {
    const A = 1n << (BigInt(j) + P * N);
    let x = BigInt(Math.round(2 ** (j / 32) * 2 ** 52)) << (P - 52n); // within 2^-52 relative: Newton from above
    x += x >> 40n;
    for (;;) {
      const next = ((N - 1n) * x + A / x ** (N - 1n)) / N;
      if (next >= x) break;
      x = next;
    }
    const hi = Number(x) / 2 ** 120; // Number(bigint) rounds to nearest
    out[2 * j] = hi;
    out[2 * j + 1] = Number(x - BigInt(hi * 2 ** 120)) / 2 ** 120;
  }
  return out;
}

/** f32: the float32-K kernels, null where relaxed SIMD (their fused multiply–add) cannot be enabled. */
type Compiled = { f64: WebAssembly.Module; f32: WebAssembly.Module | null };
let compiled: Compiled | null | undefined;
let arena: { memory: WebAssembly.Memory; kernels: Kernels; kernels32: Kernels32 | undefined } | undefined;
let idle: ReturnType<typeof setTimeout> | undefined;

/** The kernels on a linear memory of at least `bytes` (the kept one, grown if needed); undefined if refused. */
export function arenaOf(mod: Compiled, bytes: number): { heap: Float64Array; k: Kernels; k32: Kernels32 | undefined } | undefined {
  const pages = Math.ceil(bytes / PAGE);
  try {
    if (!arena) {
      const memory = new WebAssembly.Memory({ initial: pages });
      const kernels = new WebAssembly.Instance(mod.f64, { env: { mem: memory } }).exports as unknown as Kernels;
      const kernels32 = mod.f32 ? (new WebAssembly.Instance(mod.f32, { env: { mem: memory } }).exports as unknown as Kernels32) : undefined;
      new Float64Array(memory.buffer).set(exp2Table());
      kernels.init();
      kernels32?.init32();
      arena = { memory, kernels, kernels32 };
    } else {
      const have = arena.memory.buffer.byteLength / PAGE;
      if (have < pages) arena.memory.grow(pages - have);
    }
  } catch {
    arena = undefined;
    return undefined; // address space refused: the scalar loop allocates as before
  }
  if (idle) clearTimeout(idle);
  idle = setTimeout(() => (arena = undefined), ARENA_IDLE_MS);
  idle.unref();
  return { heap: new Float64Array(arena.memory.buffer), k: arena.kernels, k32: arena.kernels32 };
}

/** The compiled kernels, or null where this runtime has no WebAssembly SIMD (the scalar loop then runs). */
export function wasmKernels(): Compiled | null {
  if (compiled === undefined) {
    // Straight to the optimising compiler: V8 would start the kernels in its baseline tier (3–4× slower here) and
    // swap in optimised code only for later calls, so the first solves of a process would run slow.
    // The float32-K kernels use relaxed SIMD's f64x2.relaxed_madd (one FMA instruction on x86 with FMA, a multiply
    // and an add elsewhere): shipped from Node 22 (V8 11.4), behind this flag in Node 20; enabling it is harmless.
    v8.setFlagsFromString('--no-liftoff');
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    try {
      compiled = { f64: new WebAssembly.Module(kernels), f32: null };
      compiled.f32 = new WebAssembly.Module(kernels32);
    } catch {
      compiled ??= null;
    } finally {
      v8.setFlagsFromString('--liftoff');
    }
  }
  return compiled;
}

/** exp(x) elementwise by the kernels' vectorised exp (for tests and benchmarks of the kernel itself). */
export function expKernel(x: Float64Array): Float64Array {
  const mod = wasmKernels();
  if (!mod) throw new Error('WebAssembly SIMD is unavailable');
  const m = x.length;
  const { heap, k } = arenaOf(mod, K_OFF + 40 * m + 8)!;
  const at = TABLE_SLOTS;
  heap.set(x, at);
  heap.fill(0, at + 2 * m, at + 4 * m);
  k.expRows(K_OFF, K_OFF + m * 8, K_OFF + 16 * m, K_OFF + 32 * m, K_OFF + 24 * m, 1, m, 1, 0);
  return heap.slice(at + m, at + 2 * m);
}

/**
 * Sinkhorn–Knopp (POT 0.8.2's loop, as sinkhorn.ts's knopp) on the WebAssembly kernels. M's finiteness is checked
 * here, in the pass that computes K (the caller may skip its own scan): 'non-finite' if an entry is not. With
 * `autoLimit` (sinkhorn's 'auto' method): 'stabilize' if some row or column of M has its minimum at or above
 * autoLimit·reg, i.e. its largest K entry is at most exp(−autoLimit). undefined when the kernels are unavailable or
 * the problem does not fit one linear memory (the caller runs the scalar loop).
 */
export function knoppWasm(p: KnoppProblem, autoLimit = Infinity): KnoppOutcome | 'non-finite' | 'stabilize' | undefined {
  const { a, b, M, n, m, reg, numItermax, stopThr } = p;
  const mod = wasmKernels();
  if (!mod) return undefined;
  const nm = n * m;
  const stageRows = Math.max(1, Math.floor(STAGE_FLOATS / m));
  // layout (float64 slots): exp table | K | a | u | uPrev | rs | v | vPrev | ktu | col | staged cost rows | staged plan rows | scratch
  const slots = TABLE_SLOTS + nm + 4 * n + 4 * m + 2 * stageRows * m + 6;
  const bytes = slots * 8;
  if (bytes > MAX_BYTES) return undefined;
  const got = arenaOf(mod, bytes);
  if (!got) return undefined;
  const { heap, k } = got;
  let at = TABLE_SLOTS + nm;
  const region = (len: number): { off: number; view: Float64Array } => {
    const r = { off: at * 8, view: heap.subarray(at, at + len) };
    at += len;
    return r;
  };
  const aR = region(n);
  const uR = region(n);
  const uPrevR = region(n);
  const rsR = region(n);
  const vR = region(m);
  const vPrevR = region(m);
  const ktuR = region(m);
  const colR = region(m);
  const stageC = region(stageRows * m);
  const stageP = region(stageRows * m);
  const tmpR = region(6);

  aR.view.set(a);
  uR.view.fill(1 / n);
  vR.view.fill(1 / m);
  const ktu = ktuR.view;
  ktu.fill(0);
  colR.view.fill(0);
  // K = exp(−M/reg) and ktu = Kᵀ u0, the cost matrix staged block by block; row maxima of K into rs, column
  // maxima into col
  for (let i0 = 0; i0 < n; i0 += stageRows) {
    const i1 = Math.min(n, i0 + stageRows);
    stageC.view.set(M.subarray(i0 * m, i1 * m));
    if (!k.expRows(stageC.off, K_OFF + i0 * m * 8, ktuR.off, rsR.off + i0 * 8, colR.off, i1 - i0, m, -1 / reg, 1 / n)) return 'non-finite';
  }
  if (autoLimit < Infinity) {
    const floor = Math.exp(-autoLimit);
    for (let i = 0; i < n; i++) if (!(rsR.view[i] > floor)) return 'stabilize';
    for (let j = 0; j < m; j++) if (!(colR.view[j] > floor)) return 'stabilize';
  }

  const r = knoppIterate({ u: uR, v: vR, uPrev: uPrevR, vPrev: vPrevR }, ktu, b, numItermax, stopThr, (v, u) => {
    return k.sweep(K_OFF, aR.off, v.off, u.off, ktuR.off, n, m, tmpR.off) === 1;
  });

  const out = stagePlanOut({ M, a, b, n, m, stageRows, stageC, stageP, rowSums: rsR, colSums: colR }, (i0, i1) =>
    k.finishRows(K_OFF, stageC.off, stageP.off, r.u.off, r.v.off, rsR.off, colR.off, i0, i1, m),
  );
  return { ...out, iterations: r.iterations, converged: r.converged, marginalError: r.marginalError, numericalError: r.numericalError };
}

/** A region of the kernels' memory: its byte offset and a float64 view of it. */
export interface Region {
  off: number;
  view: Float64Array;
}

/**
 * plan = diag(u) K diag(v), staged out block by block with the cost matrix's rows staged in beside it (`finish`
 * writes rows [i0, i1) of the plan into `stageP`, adds their row and column sums and returns their cost); then both
 * marginal errors. Shared by the float64 and the float32-K kernels.
 */
export function stagePlanOut(
  io: {
    M: Float64Array;
    a: Float64Array;
    b: Float64Array;
    n: number;
    m: number;
    stageRows: number;
    stageC: Region;
    stageP: Region;
    rowSums: Region;
    colSums: Region;
  },
  finish: (i0: number, i1: number) => number,
): { plan: Float64Array; cost: number; rowError: number; colError: number } {
  const { M, a, b, n, m, stageRows, stageC, stageP, rowSums, colSums } = io;
  const plan = new Float64Array(n * m);
  colSums.view.fill(0);
  let cost = 0;
  for (let i0 = 0; i0 < n; i0 += stageRows) {
    const i1 = Math.min(n, i0 + stageRows);
    stageC.view.set(M.subarray(i0 * m, i1 * m));
    cost += finish(i0, i1);
    plan.set(stageP.view.subarray(0, (i1 - i0) * m), i0 * m);
  }
  let rowError = 0,
    colError = 0;
  for (let i = 0; i < n; i++) rowError = Math.max(rowError, Math.abs(rowSums.view[i] - a[i]));
  for (let j = 0; j < m; j++) colError = Math.max(colError, Math.abs(colSums.view[j] - b[j]));
  return { plan, cost, rowError, colError };
}
