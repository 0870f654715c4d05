// Transport maps and the small dense linear algebra that applies them. Matrices are row-major Float64Arrays.
// A map keeps the raw OT plan P (other's neurons n × anchor's neurons m, total mass 1); the two ways to
// scale it are derived on use:
//   input side  (W·T, the next layer reads aligned neurons): T = n·P, rows sum to 1 — each other neuron's
//               contribution is sent, whole, to the anchor neurons it maps to;
//   output side (Tᵀ·W, b, LayerNorm vectors, embeddings: values living on anchor neurons): T = m·P, columns
//               sum to 1 — each anchor neuron gets a weighted average. The reference uses n·P here too
//               ('rows'); for equal widths both are the same, for a wider partner 'cols' avoids scaling
//               values up by n/m.

import { matmul as gemm, linalgOptions } from './linalg';

export interface TMap {
  plan: Float64Array;
  n: number;
  m: number;
}

export type OutNorm = 'rows' | 'cols';

export function identityMap(n: number): TMap {
  const plan = new Float64Array(n * n);
  for (let i = 0; i < n; i++) plan[i * n + i] = 1 / n;
  return { plan, n, m: n };
}

export function inputT(map: TMap): Float64Array {
  const out = new Float64Array(map.plan.length);
  for (let k = 0; k < out.length; k++) out[k] = map.plan[k] * map.n;
  return out;
}

export function outputT(map: TMap, norm: OutNorm): Float64Array {
  const s = norm === 'rows' ? map.n : map.m;
  const out = new Float64Array(map.plan.length);
  for (let k = 0; k < out.length; k++) out[k] = map.plan[k] * s;
  return out;
}

/** C[r×c] = A[r×k] · B[k×c] (ONNX Runtime GEMM for large products, see linalg.ts). */
export function matmul(A: Float64Array, B: Float64Array, r: number, k: number, c: number): Float64Array {
  return gemm(A, B, r, k, c);
}

export function transpose(A: ArrayLike<number>, r: number, c: number): Float64Array {
  const T = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) T[j * r + i] = A[i * c + j];
  return T;
}

/** W[out × n] · T(n × m): aligns the input side of a layer with an incoming map. */
export function alignInput(W: Float64Array, out: number, map: TMap | null, inDim: number): { W: Float64Array; inDim: number } {
  if (!map) return { W, inDim };
  if (map.n !== inDim) throw new Error(`input map has ${map.n} rows but the layer has ${inDim} inputs`);
  return { W: matmul(W, inputT(map), out, map.n, map.m), inDim: map.m };
}

/** Tᵀ(m×n) · W[n × cols]: moves a layer's output neurons onto the anchor's. */
export function alignOutput(W: Float64Array, cols: number, map: TMap, norm: OutNorm): Float64Array {
  if (map.n * map.m * cols >= linalgOptions().minMacs) {
    const s = norm === 'rows' ? map.n : map.m;
    const Tt = new Float64Array(map.m * map.n);
    for (let i = 0; i < map.n; i++) for (let j = 0; j < map.m; j++) Tt[j * map.n + i] = map.plan[i * map.m + j] * s;
    return gemm(Tt, W, map.m, map.n, cols);
  }
  const T = outputT(map, norm);
  const out = new Float64Array(map.m * cols);
  for (let i = 0; i < map.n; i++) {
    const wi = i * cols;
    for (let j = 0; j < map.m; j++) {
      const t = T[i * map.m + j];
      if (t === 0) continue;
      const oj = j * cols;
      for (let c = 0; c < cols; c++) out[oj + c] += t * W[wi + c];
    }
  }
  return out;
}

export function alignVector(v: Float64Array, map: TMap | null, norm: OutNorm): Float64Array {
  if (!map) return v;
  return alignOutput(v, 1, map, norm);
}

/** Residual combination: Σ w_k(j) · P_k[:, j] with per-anchor-neuron weights summing to 1. */
export function combineMaps(skip: TMap, branch: TMap, wSkip: ArrayLike<number>, wBranch: ArrayLike<number>): TMap {
  if (skip.n !== branch.n || skip.m !== branch.m) throw new Error('residual maps differ in shape');
  const plan = new Float64Array(skip.plan.length);
  const m = skip.m;
  for (let i = 0; i < skip.n; i++) {
    for (let j = 0; j < m; j++) {
      const s = wSkip.length === 1 ? wSkip[0] : wSkip[j];
      const b = wBranch.length === 1 ? wBranch[0] : wBranch[j];
      plan[i * m + j] = s * skip.plan[i * m + j] + b * branch.plan[i * m + j];
    }
  }
  return { plan, n: skip.n, m };
}

export function toF64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a);
}
