// Diagnostics of a transport plan (n×m row-major): pure functions, no solver state.
import { OtfuseError } from '../errors';
import { linearAssignment } from './lap';

function checkPlan(plan: ArrayLike<number>, n: number, m: number): void {
  if (!Number.isInteger(n) || !Number.isInteger(m) || n <= 0 || m <= 0) throw new OtfuseError('BAD_DATA', `plan shape must be positive, got ${n}×${m}`);
  if (plan.length !== n * m) throw new OtfuseError('BAD_DATA', `plan has ${plan.length} entries, expected ${n}×${m}`);
}

function total(plan: ArrayLike<number>): number {
  let s = 0;
  for (let k = 0; k < plan.length; k++) s += plan[k];
  return s;
}

/** Σ plan ⊙ M. */
export function transportCost(plan: ArrayLike<number>, M: ArrayLike<number>, n: number, m: number): number {
  checkPlan(plan, n, m);
  if (M.length !== n * m) throw new OtfuseError('BAD_DATA', `cost has ${M.length} entries, expected ${n}×${m}`);
  let c = 0;
  for (let k = 0; k < plan.length; k++) c += plan[k] * M[k];
  return c;
}

/**
 * Shannon entropy (nats) of the plan normalised to total mass 1: −Σ p log p. A permutation plan of n rows gives
 * log n; the independent (uniform) plan gives log(n·m).
 */
export function planEntropy(plan: ArrayLike<number>, n: number, m: number): number {
  checkPlan(plan, n, m);
  const s = total(plan);
  if (!(s > 0)) return 0;
  let h = 0;
  for (let k = 0; k < plan.length; k++) {
    const p = plan[k] / s;
    if (p > 0) h -= p * Math.log(p);
  }
  return h;
}

/** Mean over rows (with mass) of the largest entry of the row-normalised plan: 1 for a hard map, 1/m for uniform. */
export function meanBestMatchMass(plan: ArrayLike<number>, n: number, m: number): number {
  checkPlan(plan, n, m);
  let acc = 0,
    rows = 0;
  for (let i = 0; i < n; i++) {
    let rs = 0,
      mx = 0;
    for (let j = 0; j < m; j++) {
      const p = plan[i * m + j];
      rs += p;
      if (p > mx) mx = p;
    }
    if (rs > 0) {
      acc += mx / rs;
      rows++;
    }
  }
  return rows ? acc / rows : 0;
}

export interface PermutationDistance {
  /** 1 − (mass on the best permutation / total mass): 0 for a permutation, 1 − 1/n for the uniform plan. */
  hardness: number;
  /** For square plans: the permutation carrying the most mass (rowToCol); else each row's argmax column. */
  match: Int32Array;
  /** ‖P/mass·n − Π‖_F / √(2n), in [0, 1]: 0 for a permutation (square plans only; else NaN). */
  frobenius: number;
}

/** Above this many units a square plan whose rows' best columns collide is not solved exactly (see below). */
export const EXACT_ASSIGNMENT_MAX = 1024;

/**
 * Distance of the plan to its nearest (hard) assignment. Square plans: the permutation maximising carried mass —
 * each row's best column when those are all different (then no permutation carries more), else an assignment
 * problem on −plan up to EXACT_ASSIGNMENT_MAX units (a 3072-unit soft map took ~1.4 s, more than its OT solve);
 * rectangular plans and larger square ones with collisions: each row's best column (for the latter, hardness is
 * then a lower bound and frobenius NaN).
 */
export function permutationDistance(plan: ArrayLike<number>, n: number, m: number): PermutationDistance {
  checkPlan(plan, n, m);
  const s = total(plan);
  if (!(s > 0)) throw new OtfuseError('NUMERIC', 'plan has no mass');
  const match = new Int32Array(n);
  let onMatch = 0;
  const argmax = n === m ? rowArgmax(plan, n, m) : undefined;
  if (argmax && (argmax.distinct || n <= EXACT_ASSIGNMENT_MAX)) {
    if (argmax.distinct) match.set(argmax.match);
    else {
      const neg = new Float64Array(n * m);
      for (let k = 0; k < neg.length; k++) neg[k] = -plan[k] / s;
      match.set(linearAssignment(neg, n).rowToCol);
    }
    for (let i = 0; i < n; i++) onMatch += plan[i * m + match[i]];
    // ‖nP/s − Π‖² = Σ (nP/s)² − 2 Σ_i nP_iσ(i)/s + n
    let sq = 0;
    for (let k = 0; k < plan.length; k++) {
      const q = (n * plan[k]) / s;
      sq += q * q;
    }
    const f2 = Math.max(0, sq - (2 * n * onMatch) / s + n);
    return { hardness: 1 - onMatch / s, match, frobenius: Math.sqrt(f2 / (2 * n)) };
  }
  match.set((argmax ?? rowArgmax(plan, n, m)).match);
  for (let i = 0; i < n; i++) onMatch += plan[i * m + match[i]];
  return { hardness: 1 - onMatch / s, match, frobenius: NaN };
}

export interface Preview {
  data: Float64Array; // rows×cols row-major, block means
  rows: number;
  cols: number;
}

/** Block-mean down-sampling to at most maxSize×maxSize (default 256) for heatmaps. */
export function planPreview(plan: ArrayLike<number>, n: number, m: number, maxSize = 256): Preview {
  checkPlan(plan, n, m);
  if (!Number.isInteger(maxSize) || maxSize <= 0) throw new OtfuseError('BAD_DATA', `preview size must be a positive integer, got ${maxSize}`);
  const rows = Math.min(n, maxSize),
    cols = Math.min(m, maxSize);
  const data = new Float64Array(rows * cols);
  const count = new Float64Array(rows * cols);
  const colBin = new Int32Array(m);
  for (let j = 0; j < m; j++) colBin[j] = Math.floor((j * cols) / m);
  for (let i = 0; i < n; i++) {
    const r = Math.floor((i * rows) / n);
    const o = r * cols;
    for (let j = 0; j < m; j++) {
      data[o + colBin[j]] += plan[i * m + j];
      count[o + colBin[j]]++;
    }
  }
  for (let k = 0; k < data.length; k++) data[k] /= count[k];
  return { data, rows, cols };
}

export interface PlanDiagnostics {
  cost?: number;
  entropy: number;
  meanBestMatch: number;
  hardness: number;
  frobeniusToPermutation: number;
  preview: Preview;
}

/** Each row's best column, and whether no two rows share one. */
function rowArgmax(plan: ArrayLike<number>, n: number, m: number): { match: Int32Array; distinct: boolean } {
  const match = new Int32Array(n);
  const taken = new Uint8Array(m);
  let distinct = true;
  for (let i = 0; i < n; i++) {
    let best = 0,
      mx = -Infinity;
    for (let j = 0; j < m; j++) {
      const p = plan[i * m + j];
      if (p > mx) {
        mx = p;
        best = j;
      }
    }
    match[i] = best;
    if (taken[best]) distinct = false;
    taken[best] = 1;
  }
  return { match, distinct };
}

/** All diagnostics at once (cost only when M is given). */
export function diagnose(plan: ArrayLike<number>, n: number, m: number, M?: ArrayLike<number>, previewSize = 256): PlanDiagnostics {
  const pd = permutationDistance(plan, n, m);
  return {
    cost: M ? transportCost(plan, M, n, m) : undefined,
    entropy: planEntropy(plan, n, m),
    meanBestMatch: meanBestMatchMass(plan, n, m),
    hardness: pd.hardness,
    frobeniusToPermutation: pd.frobenius,
    preview: planPreview(plan, n, m, previewSize),
  };
}
