// What a transport cost compares: each neuron of the other model and of the anchor described by a feature
// vector. The align-by strategies (ALIGN_BY in registry.ts names them) say where the features come from:
// activations on the calibration data, or the (input-aligned) weight rows.
import type { AlignBy } from '../registry';

/** Neurons × features of the other model (X, n × d) and of the anchor (Y, m × d). */
export interface Features {
  X: Float64Array | Float32Array;
  Y: Float64Array | Float32Array;
  n: number;
  m: number;
  d: number;
}

/** Weight rows of the other model (n × d) and of the anchor (m × d), in canonical [out, in] layout. */
export interface WeightRows {
  B: Float64Array;
  n: number;
  A: Float64Array;
  m: number;
  d: number;
}

/**
 * The neurons one OT problem aligns, as both strategies can describe them. `acts`: the activation tensors (other,
 * anchor) of each part; `stack`: how several parts combine, side by side ('features': one neuron described by
 * both, e.g. Q|K of one map) or one after the other ('neurons': the Q and K neurons stacked); `weights`: the
 * same neurons' weight rows (parts already combined the same way).
 */
export interface NeuronSource {
  acts: [other: string, anchor: string][];
  stack?: 'features' | 'neurons';
  weights(): WeightRows;
}

/** Activations of one tensor in each model as features (Aligner.actFeatures). */
export type ActFeatures = (other: string, anchor: string) => Features;

export interface AlignByStrategy {
  features(acts: ActFeatures, source: NeuronSource): Features;
}

/** One strategy per ALIGN_BY entry (the compiler asks for a new entry's strategy here). */
export const ALIGN_BY_STRATEGIES: Record<AlignBy, AlignByStrategy> = {
  acts: {
    features(acts, source) {
      const parts = source.acts.map(([other, anchor]) => acts(other, anchor));
      if (parts.length === 1) return parts[0];
      const [p, q] = parts;
      if (source.stack === 'neurons') return { X: concatRows(p.X, q.X), Y: concatRows(p.Y, q.Y), n: p.n + q.n, m: p.m + q.m, d: p.d };
      return { X: concatCols(p.X, q.X, p.n, p.d, q.d), Y: concatCols(p.Y, q.Y, p.m, p.d, q.d), n: p.n, m: p.m, d: p.d + q.d };
    },
  },
  wts: {
    features(_acts, source) {
      const w = source.weights();
      return wtsFeatures(w.B, w.n, w.A, w.m, w.d);
    },
  },
};

/** Weight rows as features: each row scaled to unit L2 norm (the reference's weight-based cost). */
export function wtsFeatures(Wb: Float64Array, nb: number, Wa: Float64Array, na: number, d: number): Features {
  return { X: rowNormalized(Wb, nb, d), Y: rowNormalized(Wa, na, d), n: nb, m: na, d };
}

/** Rows scaled to unit L2 norm, in float64. */
function rowNormalized(W: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(W.length);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += W[r * cols + c] ** 2;
    const inv = 1 / (Math.sqrt(s) + 1e-9);
    for (let c = 0; c < cols; c++) out[r * cols + c] = W[r * cols + c] * inv;
  }
  return out;
}

/** [A | B] row by row: rows × (ca + cb). */
export function concatCols(A: ArrayLike<number>, B: ArrayLike<number>, rows: number, ca: number, cb: number): Float64Array {
  const out = new Float64Array(rows * (ca + cb));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < ca; c++) out[r * (ca + cb) + c] = A[r * ca + c];
    for (let c = 0; c < cb; c++) out[r * (ca + cb) + ca + c] = B[r * cb + c];
  }
  return out;
}

/** The parts one after the other. */
export function concatRows(...parts: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
