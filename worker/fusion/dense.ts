// Dense float64 SPD solves for the alignment refit at GEMM speed. The refit solves (G + λI) X = B with G the
// (d+1)² input Gram of a linear layer (d = 3072 for a ViT-B/BERT-base fc2) and B its (d+1)×o right-hand side.
// Plain JS Cholesky + substitution is O(n³/3 + 2n²c) scalar operations (tens of seconds per fc2 layer); here the
// factorisation is blocked and right-looking: each diagonal block (at most 256 wide by default) is factorised and inverted in JS,
// the panel below it is L21 = A21·L11⁻ᵀ and the trailing update A22 −= L21·L21ᵀ is one product, and the two
// triangular solves are blocked the same way (diagonal-block inverses times panels, off-diagonal updates as
// products). Every product goes through linalg.ts's `matmul` (ONNX Runtime MatMul in float64 on the CPU provider,
// JS loops below its size threshold), so the numbers agree with the unblocked solver to float64 rounding.
import { OtfuseError } from '../errors';
import { configureLinalg, matmul } from './linalg';

/** Diagonal block width of the blocked factorisation (JS work per block is O(block³)); matrices up to one block are solved unblocked. */
const settings = { block: 256 };

/** Changes the block width from now on (tests use a small one to run the blocked path on small models); returns the previous one. */
export function setDenseBlock(block: number): number {
  if (!(Number.isInteger(block) && block >= 1)) throw new OtfuseError('INTERNAL', `dense: block width must be a positive integer, got ${block}`);
  const previous = settings.block;
  settings.block = block;
  return previous;
}

/** In-place unblocked Cholesky of the n×n matrix A (lower triangle read, L written there); false if not PD. */
function cholJs(A: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let s = A[rj + j];
    for (let k = 0; k < j; k++) s -= A[rj + k] * A[rj + k];
    if (!(s > 0)) return false;
    const d = Math.sqrt(s);
    A[rj + j] = d;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let t = A[ri + j];
      for (let k = 0; k < j; k++) t -= A[ri + k] * A[rj + k];
      A[ri + j] = t / d;
    }
  }
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) A[i * n + j] = 0;
  return true;
}

/** Inverse of a lower-triangular n×n matrix (lower triangular). */
function invLower(L: Float64Array, n: number): Float64Array {
  const X = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    X[j * n + j] = 1 / L[j * n + j];
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s += L[i * n + k] * X[k * n + j];
      X[i * n + j] = -s / L[i * n + i];
    }
  }
  return X;
}

/** Copy of the rows×cols block at (r0, c0) of a row-major matrix with `ld` columns. */
function block(A: Float64Array, ld: number, r0: number, c0: number, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) out.set(A.subarray((r0 + i) * ld + c0, (r0 + i) * ld + c0 + cols), i * cols);
  return out;
}

function putBlock(A: Float64Array, ld: number, r0: number, c0: number, src: Float64Array, rows: number, cols: number): void {
  for (let i = 0; i < rows; i++) A.set(src.subarray(i * cols, (i + 1) * cols), (r0 + i) * ld + c0);
}

function transpose(A: Float64Array, rows: number, cols: number): Float64Array {
  const T = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) T[j * rows + i] = A[i * cols + j];
  return T;
}

/** A blocked Cholesky factor: L (n×n, lower) and the inverses of its diagonal blocks. */
export interface Factor {
  n: number;
  L: Float64Array;
  blocks: { k: number; b: number; inv: Float64Array }[];
}

/** Cholesky factor of G + shift·I (G symmetric n×n; only its lower triangle is read), or null if not positive definite. */
export function choleskyBlocked(G: Float64Array, n: number, shift: number, nb = settings.block): Factor | null {
  const A = Float64Array.from(G);
  for (let i = 0; i < n; i++) A[i * n + i] += shift;
  const blocks: Factor['blocks'] = [];
  for (let k = 0; k < n; k += nb) {
    const b = Math.min(nb, n - k);
    const L11 = block(A, n, k, k, b, b);
    if (!cholJs(L11, b)) return null;
    putBlock(A, n, k, k, L11, b, b);
    const inv = invLower(L11, b);
    blocks.push({ k, b, inv });
    const m = n - k - b;
    if (m === 0) break;
    const L21 = matmul(block(A, n, k + b, k, m, b), transpose(inv, b, b), m, b, b); // A21·L11⁻ᵀ
    putBlock(A, n, k + b, k, L21, m, b);
    const P = matmul(L21, transpose(L21, m, b), m, b, m); // trailing update L21·L21ᵀ
    for (let i = 0; i < m; i++) {
      const ri = (k + b + i) * n + k + b;
      for (let j = 0; j <= i; j++) A[ri + j] -= P[i * m + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) A[i * n + j] = 0;
  return { n, L: A, blocks };
}

/** X (n×c) with L Lᵀ X = B, by blocked forward and backward substitution. */
export function solveFactor(f: Factor, B: Float64Array, c: number): Float64Array {
  const { n, L, blocks } = f;
  const Y = Float64Array.from(B);
  for (const { k, b, inv } of blocks) {
    // L Y = B
    const Yk = matmul(inv, block(Y, c, k, 0, b, c), b, b, c);
    putBlock(Y, c, k, 0, Yk, b, c);
    const m = n - k - b;
    if (m === 0) continue;
    const U = matmul(block(L, n, k + b, k, m, b), Yk, m, b, c);
    for (let i = 0; i < m * c; i++) Y[(k + b) * c + i] -= U[i];
  }
  for (let bi = blocks.length - 1; bi >= 0; bi--) {
    // Lᵀ X = Y
    const { k, b, inv } = blocks[bi];
    const Xk = matmul(transpose(inv, b, b), block(Y, c, k, 0, b, c), b, b, c);
    putBlock(Y, c, k, 0, Xk, b, c);
    if (k === 0) continue;
    const U = matmul(transpose(block(L, n, k, 0, b, k), b, k), Xk, k, b, c); // (L[k:k+b, 0:k])ᵀ X_k
    for (let i = 0; i < k * c; i++) Y[i] -= U[i];
  }
  return Y;
}

/** The unblocked reference: Cholesky and substitution column by column, all in JS. */
export function solveSpdDirect(G: Float64Array, n: number, B: Float64Array, c: number, shift: number): Float64Array | null {
  const L = Float64Array.from(G);
  for (let i = 0; i < n; i++) L[i * n + i] += shift;
  if (!cholJs(L, n)) return null;
  const X = Float64Array.from(B);
  for (let col = 0; col < c; col++) {
    for (let i = 0; i < n; i++) {
      let s = X[i * c + col];
      for (let k = 0; k < i; k++) s -= L[i * n + k] * X[k * c + col];
      X[i * c + col] = s / L[i * n + i];
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = X[i * c + col];
      for (let k = i + 1; k < n; k++) s -= L[k * n + i] * X[k * c + col];
      X[i * c + col] = s / L[i * n + i];
    }
  }
  return X;
}

/** Blocked solve of (G + shift·I) X = B, or null if not positive definite. Products in float64 on the CPU whatever linalg is set to. */
export function solveSpdBlocked(G: Float64Array, n: number, B: Float64Array, c: number, shift: number, nb = settings.block): Float64Array | null {
  const previous = configureLinalg({ precision: 'f64', provider: 'cpu' });
  try {
    const f = choleskyBlocked(G, n, shift, nb);
    return f ? solveFactor(f, B, c) : null;
  } finally {
    configureLinalg(previous);
  }
}

/**
 * Solves (G + λI) X = B for SPD G (n×n); B is n×c. Blocked above one block, unblocked below. If the matrix is
 * numerically not positive definite, retries with a growing jitter on the diagonal (from 1e-10 of its mean).
 */
export function solveSpd(G: Float64Array, n: number, B: Float64Array, c: number, lambda: number, engine: 'auto' | 'direct' = 'auto'): Float64Array {
  let jitter = 0;
  let md = 0;
  for (let i = 0; i < n; i++) md += Math.abs(G[i * n + i]);
  for (let attempt = 0; attempt < 6; attempt++) {
    const X = engine === 'direct' || n <= settings.block ? solveSpdDirect(G, n, B, c, lambda + jitter) : solveSpdBlocked(G, n, B, c, lambda + jitter);
    if (X) return X;
    jitter = Math.max(jitter * 100, (md / n || 1) * 1e-10);
  }
  throw new OtfuseError('NUMERIC', 'refit: the input Gram matrix is not positive definite (give refitRidge > 0)');
}
