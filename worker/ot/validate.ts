// Input checks shared by the OT solvers: marginals, cost matrices, regularisation.
import { OtfuseError } from '../errors';

/** Marginal weights: plain arrays are accepted and copied into float64. */
export type Weights = Float64Array | Float32Array | readonly number[];

/** What every solver returns; each adds its own details. */
export interface PlanResult {
  plan: Float64Array; // n×m row-major
  n: number;
  m: number;
  cost: number; // Σ plan ⊙ M
  iterations: number;
  converged: boolean;
}

/** Relative tolerance on sum(a) vs sum(b) (POT checks 6 decimals). */
export const MARGINAL_SUM_RTOL = 1e-6;

export function toFloat64(x: Weights): Float64Array {
  return x instanceof Float64Array ? x : Float64Array.from(x as ArrayLike<number>);
}

export function sum(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s;
}

/** Uniform marginal of length n (each entry 1/n). */
export function uniform(n: number): Float64Array {
  if (!Number.isInteger(n) || n <= 0) throw new OtfuseError('BAD_DATA', `uniform(n): n must be a positive integer, got ${n}`);
  return new Float64Array(n).fill(1 / n);
}

function checkWeights(x: Float64Array, name: string): number {
  if (x.length === 0) throw new OtfuseError('BAD_DATA', `OT marginal '${name}' is empty`);
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!Number.isFinite(v)) throw new OtfuseError('NUMERIC', `OT marginal '${name}' has a non-finite entry (${v}) at index ${i}`);
    if (v < 0) throw new OtfuseError('BAD_DATA', `OT marginal '${name}' has a negative entry (${v}) at index ${i}`);
    s += v;
  }
  if (!(s > 0)) throw new OtfuseError('BAD_DATA', `OT marginal '${name}' sums to 0`);
  return s;
}

/** A checked Sinkhorn problem with its solve's settings: what every Knopp kernel (JS, WebAssembly float64/float32, ONNX
 * Runtime) and the stabilised solver take. */
export interface KnoppProblem {
  a: Float64Array;
  b: Float64Array;
  M: Float64Array;
  n: number;
  m: number;
  reg: number;
  numItermax: number;
  stopThr: number;
}

export interface CheckedProblem {
  a: Float64Array;
  b: Float64Array;
  M: Float64Array;
  n: number;
  m: number;
  sumA: number;
  sumB: number;
}

/**
 * Validates (a, b, M): non-empty, finite, non-negative marginals with equal sums (relative tolerance 1e-6),
 * M of length n*m (row-major, n = a.length rows) and finite. Throws OtfuseError ('BAD_DATA' or 'NUMERIC').
 */
export function checkProblem(aIn: Weights, bIn: Weights, M: Float64Array | Float32Array, label = 'OT', options: { scanCost?: boolean } = {}): CheckedProblem {
  if (!aIn || !bIn) throw new OtfuseError('BAD_DATA', `${label}: marginals a and b are required`);
  const a = toFloat64(aIn);
  const b = toFloat64(bIn);
  const sumA = checkWeights(a, 'a');
  const sumB = checkWeights(b, 'b');
  const n = a.length;
  const m = b.length;
  if (Math.abs(sumA - sumB) > MARGINAL_SUM_RTOL * Math.max(sumA, sumB)) {
    throw new OtfuseError('BAD_DATA', `${label}: marginals must have the same total mass: sum(a)=${sumA} but sum(b)=${sumB}`);
  }
  if (!M || M.length !== n * m) {
    throw new OtfuseError('BAD_DATA', `${label}: cost matrix has ${M ? M.length : 0} entries but a (${n}) × b (${m}) needs ${n * m}`);
  }
  // scanCost false: the caller checks M's entries in its own pass (and calls checkCostFinite to report one)
  if (options.scanCost !== false) checkCostFinite(M, m, label);
  const M64 = M instanceof Float64Array ? M : Float64Array.from(M);
  return { a, b, M: M64, n, m, sumA, sumB };
}

/** Throws ('NUMERIC', naming row and column) at the first non-finite entry of a row-major cost matrix with m columns. */
export function checkCostFinite(M: Float64Array | Float32Array, m: number, label = 'OT'): void {
  for (let k = 0; k < M.length; k++) {
    const v = M[k];
    if (!Number.isFinite(v)) {
      throw new OtfuseError('NUMERIC', `${label}: cost matrix has a non-finite entry (${v}) at row ${Math.floor(k / m)}, column ${k % m}`);
    }
  }
}

export function checkReg(reg: number): void {
  if (typeof reg !== 'number' || !Number.isFinite(reg) || reg <= 0) {
    throw new OtfuseError('BAD_DATA', `Sinkhorn regularisation must be a finite positive number, got ${reg}`);
  }
}

export type SinkhornMethod = 'auto' | 'knopp' | 'stabilized';

export interface SinkhornOptions {
  method?: SinkhornMethod;
  numItermax?: number; // default 1000
  stopThr?: number; // default 1e-9
  /** Absorption threshold for 'stabilized' (default 1e3). */
  tau?: number;
}

export interface SinkhornResult extends PlanResult {
  method: 'knopp' | 'stabilized';
  reg: number;
  /** Iterations run (POT's ii + 1); `converged`: the stopping rule was met before numItermax. */
  iterations: number;
  /** Last checked error: ‖colsum(plan) − b‖₂ (POT's rule). */
  marginalError: number;
  /** Of the returned plan: max |rowsum − a| and max |colsum − b|. */
  rowError: number;
  colError: number;
  /** Knopp stopped on NaN/Inf/zero (POT's "numerical errors" warning) and fell back or returned the previous iterate. */
  numericalError: boolean;
  /** Where the Knopp loop ran: WebAssembly kernels with K in float32 or float64, or the scalar loops (unset: ONNX Runtime). */
  kernel?: 'wasm-f32' | 'wasm-f64' | 'scalar';
}
