// The Sinkhorn–Knopp loop on kernels/sinkhorn32.wat: K = exp(−M/reg) stored in float32 (half the bytes each sweep
// streams), the scalings, sums, plan and cost in float64. Every use of K (the first Kᵀu, the sweeps, the plan) reads
// the same float32 values, so the result is an exact float64 Sinkhorn–Knopp solve for the cost −reg·log K32, which
// differs from M by at most reg·2^-24 per entry: the plan is POT's to ~1e-7 relative (≪ 1e-8 absolute for plans of
// a few hundred entries or more, see bench/ot/NOTES-sinkhorn.md). Same iterate, stopping rule and fall-backs as
// sinkhorn-wasm.ts; used only where every exponent −M_ij/reg lies in [−87, 88] (K a normal float32), otherwise
// 'range' and the caller runs the float64 kernels. Needs WebAssembly relaxed SIMD (fused multiply–add): where it
// cannot be enabled, undefined and the caller runs the float64 kernels.
import { knoppIterate } from './knopp';
import { arenaOf, K_OFF, MAX_BYTES, STAGE_FLOATS, stagePlanOut, TABLE_SLOTS, wasmKernels, type KnoppOutcome } from './sinkhorn-wasm';
import type { KnoppProblem } from './validate';

/** Exponents −M/reg allowed on this path: every K entry a normal float32 (> 2^-126 ≈ e^-87.3, < 2^128 ≈ e^88.7). */
export const K32_RANGE = { lo: -87, hi: 88 } as const;

/** float32(exp(x)) elementwise by the float32 kernels' exp (for tests and benchmarks of the kernel itself). */
export function expKernel32(x: Float64Array): Float32Array {
  const mod = wasmKernels();
  if (!mod?.f32) throw new Error('WebAssembly relaxed SIMD is unavailable');
  const len = x.length;
  const { heap, k32 } = arenaOf(mod, K_OFF + 12 * len + 16)!;
  if (!k32) throw new Error('WebAssembly relaxed SIMD is unavailable');
  heap.set(x, TABLE_SLOTS);
  const out = K_OFF + 8 * len;
  k32.exp32(K_OFF, out, len);
  return new Float32Array(heap.buffer, out, len).slice();
}

/**
 * Sinkhorn–Knopp with K in float32 (POT 0.8.2's loop, as knoppWasm). 'range' when some exponent −M_ij/reg is
 * outside K32_RANGE, is not finite, or reaches −autoLimit ('auto''s limit; the float64 kernels then decide),
 * undefined when the kernels are unavailable or the problem does not fit one linear memory.
 */
export function knoppWasm32(p: KnoppProblem, autoLimit = Infinity): KnoppOutcome | 'range' | undefined {
  const { a, b, M, n, m, reg, numItermax, stopThr } = p;
  const mod = wasmKernels();
  if (!mod?.f32) return undefined;
  const nPad = (n + 3) & ~3; // the sweep takes rows four at a time: up to 3 padding rows (K = 1, a = 0, so u = 0)
  const stageRows = Math.max(1, Math.floor(STAGE_FLOATS / m));
  // layout (float64 slots): exp table | K (float32, nPad rows) | a, u, uPrev (nPad) | rs (n) | v, vPrev, ktu, col | staged rows | scratch
  const kSlots = Math.ceil((nPad * m) / 2);
  const slots = TABLE_SLOTS + kSlots + 3 * nPad + n + 4 * m + 2 * stageRows * m + 8;
  if (slots * 8 > MAX_BYTES) return undefined;
  const got = arenaOf(mod, slots * 8);
  if (!got) return undefined;
  const { heap, k32 } = got;
  if (!k32) return undefined;
  let at = TABLE_SLOTS + kSlots;
  const region = (len: number, used = len): { off: number; view: Float64Array } => {
    const r = { off: at * 8, view: heap.subarray(at, at + used) };
    at += len;
    return r;
  };
  const aR = region(nPad);
  const uR = region(nPad, n);
  const uPrevR = region(nPad, n);
  const rsR = region(n);
  const vR = region(m);
  const vPrevR = region(m);
  const ktuR = region(m);
  const colR = region(m);
  const stageC = region(stageRows * m);
  const stageP = region(stageRows * m);
  const tmpR = region(6);
  const rangeR = region(2);

  heap.fill(0, aR.off / 8, aR.off / 8 + nPad);
  aR.view.set(a);
  heap.fill(0, uR.off / 8 + n, uR.off / 8 + nPad);
  heap.fill(0, uPrevR.off / 8 + n, uPrevR.off / 8 + nPad);
  uR.view.fill(1 / n);
  vR.view.fill(1 / m);
  colR.view.fill(0);
  rangeR.view[0] = Infinity;
  rangeR.view[1] = -Infinity;
  // K = float32(exp(−M/reg)) and its column sums, the cost matrix staged block by block; the exponents' range
  for (let i0 = 0; i0 < n; i0 += stageRows) {
    const i1 = Math.min(n, i0 + stageRows);
    stageC.view.set(M.subarray(i0 * m, i1 * m));
    k32.expRows32(stageC.off, K_OFF + i0 * m * 4, colR.off, rangeR.off, i1 - i0, m, -1 / reg);
  }
  const lo = rangeR.view[0],
    hi = rangeR.view[1];
  if (!(lo >= K32_RANGE.lo && hi <= K32_RANGE.hi && lo > -autoLimit)) return 'range';
  new Float32Array(heap.buffer, K_OFF + n * m * 4, (nPad - n) * m).fill(1);
  const ktu = ktuR.view;
  const u0 = 1 / n;
  for (let j = 0; j < m; j++) ktu[j] = colR.view[j] * u0; // Kᵀu for u = 1/n

  const r = knoppIterate({ u: uR, v: vR, uPrev: uPrevR, vPrev: vPrevR }, ktu, b, numItermax, stopThr, (v, u) => {
    return k32.sweep32(K_OFF, aR.off, v.off, u.off, ktuR.off, nPad, m, tmpR.off) === 1;
  });

  // plan = diag(u) K diag(v) in float64
  const out = stagePlanOut({ M, a, b, n, m, stageRows, stageC, stageP, rowSums: rsR, colSums: colR }, (i0, i1) =>
    k32.finishRows32(K_OFF, stageC.off, stageP.off, r.u.off, r.v.off, rsR.off, colR.off, i0, i1, m),
  );
  return { ...out, iterations: r.iterations, converged: r.converged, marginalError: r.marginalError, numericalError: r.numericalError };
}
