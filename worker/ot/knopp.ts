// POT 0.8.2's Sinkhorn–Knopp iteration, over storage and a sweep that the caller provides (the scalar loops of
// sinkhorn.ts, the WebAssembly kernels of sinkhorn-wasm.ts): starting from u, v (1/n, 1/m) and ktu = Kᵀu, each
// iteration sets v = b / Kᵀu and then sweeps (u = a / K v, ktu = Kᵀu); every 10th iteration, counting from 0, it
// stops when ‖v ∘ Kᵀu − b‖₂ < stopThr; on a zero or non-finite scaling it keeps the previous iterate and stops.

/** A scaling vector: its values, plus whatever the sweep needs to find it (an address in linear memory). */
export interface KnoppVector {
  view: Float64Array;
}

export interface KnoppIterate<T extends KnoppVector> {
  u: T;
  v: T;
  /** Iterations run (POT's ii + 1). */
  iterations: number;
  converged: boolean;
  /** Last checked ‖v ∘ Kᵀu − b‖₂. */
  marginalError: number;
  numericalError: boolean;
}

/** ‖v ∘ ktu − b‖₂ (POT's stopping rule). */
export function colError2(v: Float64Array, ktu: Float64Array, b: Float64Array): number {
  let e = 0;
  for (let j = 0; j < b.length; j++) {
    const d = v[j] * ktu[j] - b[j];
    e += d * d;
  }
  return Math.sqrt(e);
}

/**
 * Runs the iteration. `vectors.u`, `.v` hold the start; `.uPrev`, `.vPrev` are scratch of the same sizes (they swap
 * roles each iteration). `sweep(v, u)` computes u = a / (K v) and ktu = Kᵀu, false if some u_i is not finite.
 */
export function knoppIterate<T extends KnoppVector>(
  vectors: { u: T; v: T; uPrev: T; vPrev: T },
  ktu: Float64Array,
  b: Float64Array,
  numItermax: number,
  stopThr: number,
  sweep: (v: T, u: T) => boolean,
): KnoppIterate<T> {
  let { u, v, uPrev, vPrev } = vectors;
  const m = b.length;
  let marginalError = Infinity;
  let iterations = 0,
    converged = false,
    numericalError = false;
  for (let ii = 0; ii < numItermax; ii++) {
    // keep the previous iterate to fall back to
    let t = uPrev;
    uPrev = u;
    u = t;
    t = vPrev;
    vPrev = v;
    v = t;
    const vv = v.view;
    let zero = false,
      bad = false;
    for (let j = 0; j < m; j++) {
      const k = ktu[j];
      if (k === 0) zero = true;
      const vj = b[j] / k;
      if (!Number.isFinite(vj)) bad = true;
      vv[j] = vj;
    }
    const ok = sweep(v, u);
    if (zero || bad || !ok) {
      u = uPrev;
      v = vPrev;
      numericalError = true;
      iterations = ii;
      break;
    }
    iterations = ii + 1;
    if (ii % 10 === 0) {
      marginalError = colError2(vv, ktu, b);
      if (marginalError < stopThr) {
        converged = true;
        break;
      }
    }
  }
  return { u, v, iterations, converged, marginalError, numericalError };
}
