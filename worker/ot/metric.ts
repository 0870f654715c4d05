// Ground metrics between two sets of row vectors: X (n×d) and Y (m×d), row-major, out: cost (n×m) float64.
// Distances use ‖x‖² + ‖y‖² − 2·x·y with a cache-blocked float64 dot product (no n×m×d intermediate).
import { OtfuseError } from '../errors';

/** Ground metrics and cost normalisations by name (the registry the recipe schema and CLI derive from). */
export const GROUND_METRICS = {
  euclidean: 'Euclidean distance',
  sqeuclidean: 'squared Euclidean distance',
  cosine: 'cosine distance 1 − cos, in [0, 2]',
} as const;
export const COST_NORMS = {
  max: 'divide by the largest entry',
  median: 'divide by the median entry',
  mean: 'divide by the mean entry',
  none: 'leave the cost as it is',
} as const;
export type MetricKind = keyof typeof GROUND_METRICS;
export type Normalisation = keyof typeof COST_NORMS;

export interface GroundMetricOptions {
  metric?: MetricKind; // default 'euclidean'
  normalize?: Normalisation; // default 'max'
}

export interface GroundMetricResult {
  cost: Float64Array; // n×m row-major
  n: number;
  m: number;
  /** The divisor applied by the normalisation (1 for 'none' or when it was 0). */
  scale: number;
}

type Vecs = Float32Array | Float64Array;

function toF64(x: Vecs): Float64Array {
  return x instanceof Float64Array ? x : Float64Array.from(x);
}

function rowSquaredNorms(X: Float64Array, n: number, d: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * d;
    for (let k = 0; k < d; k++) {
      const v = X[o + k];
      s += v * v;
    }
    out[i] = s;
  }
  return out;
}

/**
 * G[i*m + j] = Σ_k X[i,k]·Y[j,k], float64. Blocked over columns of G (tiles of Y rows) and over k, with a
 * 2×2 register kernel, so each tile of Y stays in cache while every row of X streams past it.
 */
export function gram(X: Float64Array, Y: Float64Array, n: number, m: number, d: number): Float64Array {
  const G = new Float64Array(n * m);
  if (d === 0) return G;
  const KC = Math.min(d, 256); // k-chunk
  const JT = Math.max(2, Math.min(m, Math.floor(16384 / KC))); // Y rows per tile (≈128 KiB of Y per tile-chunk)
  for (let j0 = 0; j0 < m; j0 += JT) {
    const j1 = Math.min(m, j0 + JT);
    for (let k0 = 0; k0 < d; k0 += KC) {
      const k1 = Math.min(d, k0 + KC);
      let i = 0;
      for (; i + 1 < n; i += 2) {
        const xa = i * d,
          xb = xa + d;
        const ga = i * m,
          gb = ga + m;
        let j = j0;
        for (; j + 1 < j1; j += 2) {
          const ya = j * d,
            yb = ya + d;
          let s00 = 0,
            s01 = 0,
            s10 = 0,
            s11 = 0;
          for (let k = k0; k < k1; k++) {
            const x0 = X[xa + k],
              x1 = X[xb + k],
              y0 = Y[ya + k],
              y1 = Y[yb + k];
            s00 += x0 * y0;
            s01 += x0 * y1;
            s10 += x1 * y0;
            s11 += x1 * y1;
          }
          G[ga + j] += s00;
          G[ga + j + 1] += s01;
          G[gb + j] += s10;
          G[gb + j + 1] += s11;
        }
        if (j < j1) {
          const ya = j * d;
          let s0 = 0,
            s1 = 0;
          for (let k = k0; k < k1; k++) {
            const y = Y[ya + k];
            s0 += X[xa + k] * y;
            s1 += X[xb + k] * y;
          }
          G[ga + j] += s0;
          G[gb + j] += s1;
        }
      }
      if (i < n) {
        const xa = i * d,
          ga = i * m;
        for (let j = j0; j < j1; j++) {
          const ya = j * d;
          let s = 0;
          for (let k = k0; k < k1; k++) s += X[xa + k] * Y[ya + k];
          G[ga + j] += s;
        }
      }
    }
  }
  return G;
}

/** Median of the values (does not modify the input). */
export function median(values: Float64Array): number {
  const n = values.length;
  if (n === 0) return NaN;
  const w = Float64Array.from(values);
  const kth = (k: number): number => {
    let lo = 0,
      hi = n - 1;
    while (lo < hi) {
      const pivot = w[(lo + hi) >>> 1];
      let i = lo,
        j = hi;
      while (i <= j) {
        while (w[i] < pivot) i++;
        while (w[j] > pivot) j--;
        if (i <= j) {
          const t = w[i];
          w[i] = w[j];
          w[j] = t;
          i++;
          j--;
        }
      }
      if (k <= j) hi = j;
      else if (k >= i) lo = i;
      else return w[k];
    }
    return w[k];
  };
  if (n % 2 === 1) return kth((n - 1) >> 1);
  const hi = kth(n >> 1);
  // after selecting n/2, all of w[0..n/2) are ≤ hi: the lower median is their max
  let lo = -Infinity;
  for (let i = 0; i < n >> 1; i++) if (w[i] > lo) lo = w[i];
  return (lo + hi) / 2;
}

/**
 * Cost matrix between the rows of X (n×d) and Y (m×d). Euclidean (plain or squared) or cosine distance
 * (1 − cos; a zero vector has cosine similarity 0 to everything), negatives from rounding clamped to 0,
 * then divided by the max / median / mean of all entries (skipped when that is 0).
 */
export function groundMetric(X: Vecs, Y: Vecs, n: number, m: number, d: number, options: GroundMetricOptions = {}): GroundMetricResult {
  const metric = options.metric ?? 'euclidean';
  const normalize = options.normalize ?? 'max';
  if (!Object.prototype.hasOwnProperty.call(GROUND_METRICS, metric)) throw new OtfuseError('BAD_DATA', `unknown ground metric '${metric}'`);
  if (!Object.prototype.hasOwnProperty.call(COST_NORMS, normalize)) throw new OtfuseError('BAD_DATA', `unknown cost normalisation '${normalize}'`);
  for (const [name, v] of [
    ['n', n],
    ['m', m],
    ['d', d],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new OtfuseError('BAD_DATA', `ground metric: ${name} must be a positive integer, got ${v}`);
  }
  if (X.length !== n * d) throw new OtfuseError('BAD_DATA', `ground metric: X has ${X.length} values, expected n×d = ${n}×${d}`);
  if (Y.length !== m * d) throw new OtfuseError('BAD_DATA', `ground metric: Y has ${Y.length} values, expected m×d = ${m}×${d}`);
  const X64 = toF64(X),
    Y64 = toF64(Y);
  for (const [name, A] of [
    ['X', X64],
    ['Y', Y64],
  ] as const) {
    for (let k = 0; k < A.length; k++)
      if (!Number.isFinite(A[k]))
        throw new OtfuseError('NUMERIC', `ground metric: ${name} has a non-finite value at row ${Math.floor(k / d)}, column ${k % d}`);
  }
  const nx = rowSquaredNorms(X64, n, d);
  const ny = rowSquaredNorms(Y64, m, d);
  const C = gram(X64, Y64, n, m, d);
  for (let i = 0; i < n; i++) {
    const o = i * m,
      xi = nx[i];
    if (metric === 'cosine') {
      const rx = xi > 0 ? 1 / Math.sqrt(xi) : 0;
      for (let j = 0; j < m; j++) {
        const yj = ny[j];
        const c = yj > 0 ? (C[o + j] * rx) / Math.sqrt(yj) : 0;
        let v = 1 - c;
        if (v < 0) v = 0;
        else if (v > 2) v = 2;
        C[o + j] = v;
      }
    } else {
      for (let j = 0; j < m; j++) {
        let v = xi + ny[j] - 2 * C[o + j];
        if (v < 0) v = 0;
        C[o + j] = metric === 'euclidean' ? Math.sqrt(v) : v;
      }
    }
  }
  let scale = 1;
  if (normalize !== 'none') {
    let s: number;
    if (normalize === 'max') {
      s = 0;
      for (let k = 0; k < C.length; k++) if (C[k] > s) s = C[k];
    } else if (normalize === 'mean') {
      s = 0;
      for (let k = 0; k < C.length; k++) s += C[k];
      s /= C.length;
    } else s = median(C);
    if (s > 0 && Number.isFinite(s)) {
      scale = s;
      const inv = 1 / s;
      for (let k = 0; k < C.length; k++) C[k] *= inv;
    }
  }
  return { cost: C, n, m, scale };
}
