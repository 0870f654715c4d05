// Entropic optimal transport (Sinkhorn).
// 'knopp': Sinkhorn–Knopp with POT 0.8.2's loop (u, v start at 1/n, 1/m; v = b / Kᵀu; u = a / (K v); every 10th
//          iteration, counting from 0, stop when ‖colsum(plan) − b‖₂ < stopThr; numerical trouble → keep the
//          previous iterate and stop).
// 'stabilized': the same iteration on a kernel with absorbed dual potentials (log-domain stabilisation):
//          K̃ = exp((α_i + β_j − M_ij)/reg), (α, β) start at the c-transforms of M so no row or column of K̃
//          underflows, and u, v are folded into (α, β) whenever they leave [1/τ, τ]. Works for tiny reg.
// 'auto' (default): 'knopp' unless exp(−M/reg) would underflow a whole row or column (or Knopp hits numerical
//          trouble), then 'stabilized'.
import os from 'node:os';
import { OtfuseError } from '../errors';
import { checkCostFinite, checkProblem, checkReg, type KnoppProblem, type SinkhornOptions, type SinkhornResult, type Weights } from './validate';
import { buildSinkhornModel, readSinkhornOutputs, sinkhornFeeds, type SinkhornFeed } from './sinkhorn-graph';
import { colError2, knoppIterate } from './knopp';
import { knoppWasm } from './sinkhorn-wasm';
import { knoppWasm32 } from './sinkhorn-wasm32';

/**
 * Where sinkhorn() runs the Knopp loop for large problems. 'js' (default): this file's loops. 'ort': ONNX
 * Runtime's float64 graph (sinkhorn-ort.ts: MLAS exp and matrix–vector products, POT's iterate) through a
 * synchronous worker-thread call, from `minEntries` cost entries up; any failure or unusual case falls back to
 * the JS loops, which then decide exactly as before. Not the default: measured in CPU seconds on the 2-core
 * machine it is no faster than the JS loops (1024²: 53 vs 48 ms; 3072²: 461 vs 382 ms; POT 10 / 257 ms), see
 * BENCHMARKS.md "Scale". Kept as the hook for a GPU provider.
 */
/** A synchronous ONNX Runtime call (runtime/syncrun.ts's runSync), injected so that ot/ stays below runtime/. */
export type SyncRunner = (
  key: string,
  model: Uint8Array,
  feeds: Record<string, SinkhornFeed>,
  options: { threads?: number },
) => Record<string, { data: ArrayLike<unknown> }> | undefined;
/**
 * `wasm` (default on): the 'js' engine's Knopp loop runs its O(n·m) passes in WebAssembly SIMD (sinkhorn-wasm.ts)
 * from `wasmMinEntries` cost entries up; off, or where WebAssembly SIMD is missing, the scalar loops below run.
 * `k32` (default on): from `k32MinEntries` entries up, and where every exponent −M/reg is in [−87, 88], the kernels
 * keep K in float32 (sinkhorn-wasm32.ts; plans within ~1e-7 relative of the float64 kernels'); elsewhere float64.
 */
const engine: {
  kind: 'js' | 'ort';
  minEntries: number;
  runner?: SyncRunner;
  wasm: boolean;
  wasmMinEntries: number;
  k32: boolean;
  k32MinEntries: number;
} = {
  kind: 'js',
  minEntries: 256 * 256,
  wasm: true,
  wasmMinEntries: 32 * 32,
  k32: true,
  k32MinEntries: 128 * 128,
};

export function configureSinkhornEngine(change: Partial<typeof engine>): typeof engine {
  const prev = { ...engine };
  Object.assign(engine, change);
  return prev;
}

let sinkhornModel: Uint8Array | undefined;

/** The Knopp solve on ONNX Runtime, synchronously; undefined when it cannot answer (the caller runs JS). */
function knoppOrtSync(p: KnoppProblem, auto: boolean): SinkhornResult | undefined {
  const { a, b, M, n, m, reg, numItermax, stopThr } = p;
  if (!engine.runner) return undefined;
  sinkhornModel ??= buildSinkhornModel();
  const out = engine.runner('sinkhorn-knopp', sinkhornModel, sinkhornFeeds(a, b, M, reg, { auto, stopThr, numItermax }), {
    threads: os.cpus().length <= 2 ? 1 : 0,
  });
  return out ? readSinkhornOutputs(out, n, m, reg, stopThr) : undefined;
}

export type { SinkhornMethod, SinkhornOptions, SinkhornResult } from './validate';

/** Largest exponent (−M/reg, after the row/column minimum) for which plain Knopp is used in 'auto'. */
const AUTO_LIMIT = 200;

export function sinkhorn(aIn: Weights, bIn: Weights, MIn: Float64Array | Float32Array, reg: number, options: SinkhornOptions = {}): SinkhornResult {
  checkReg(reg);
  const numItermax = options.numItermax ?? 1000;
  const stopThr = options.stopThr ?? 1e-9;
  if (!Number.isInteger(numItermax) || numItermax < 1) throw new OtfuseError('BAD_DATA', `Sinkhorn numItermax must be a positive integer, got ${numItermax}`);
  if (!(stopThr >= 0)) throw new OtfuseError('BAD_DATA', `Sinkhorn stopThr must be ≥ 0, got ${stopThr}`);
  const method = options.method ?? 'auto';
  if (!['auto', 'knopp', 'stabilized'].includes(method)) throw new OtfuseError('BAD_DATA', `unknown Sinkhorn method '${method}'`);
  const tau = options.tau ?? 1e3;

  // The WebAssembly kernels check M's entries and make the 'auto' decision in the pass that builds K.
  const kernels = engine.kind === 'js' && engine.wasm && method !== 'stabilized' && (aIn?.length ?? 0) * (bIn?.length ?? 0) >= engine.wasmMinEntries;
  const { a, b, M, n, m } = checkProblem(aIn, bIn, MIn, 'Sinkhorn', { scanCost: !kernels });
  const p: KnoppProblem = { a, b, M, n, m, reg, numItermax, stopThr };
  if (kernels) {
    const limit = method === 'auto' ? AUTO_LIMIT : Infinity;
    const r32 = engine.k32 && n * m >= engine.k32MinEntries ? knoppWasm32(p, limit) : undefined;
    const r = r32 && r32 !== 'range' ? r32 : knoppWasm(p, limit);
    if (r === 'stabilize') return stabilized(p, tau);
    if (r && r !== 'non-finite') {
      if (r.numericalError && method === 'auto') return stabilized(p, tau);
      return { ...r, n, m, method: 'knopp', reg, kernel: r === r32 ? 'wasm-f32' : 'wasm-f64' };
    }
    // a non-finite entry (this throws, naming it), or no kernels here: the scalar loops below need M checked
    checkCostFinite(M, m, 'Sinkhorn');
  }

  if (engine.kind === 'ort' && method !== 'stabilized' && n * m >= engine.minEntries) {
    const r = knoppOrtSync(p, method === 'auto');
    if (r) return r;
  }
  let useKnopp = method === 'knopp';
  if (method === 'auto') {
    const { rowMin, colMin } = rowColMin(M, n, m);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, rowMin[i] / reg);
    for (let j = 0; j < m; j++) worst = Math.max(worst, colMin[j] / reg);
    useKnopp = worst < AUTO_LIMIT;
  }
  if (useKnopp) {
    const r = knopp(p);
    if (!(r.numericalError && method === 'auto')) return r;
  }
  return stabilized(p, tau);
}

function rowColMin(M: Float64Array, n: number, m: number): { rowMin: Float64Array; colMin: Float64Array } {
  const rowMin = new Float64Array(n).fill(Infinity);
  const colMin = new Float64Array(m).fill(Infinity);
  for (let i = 0; i < n; i++) {
    const o = i * m;
    let r = Infinity;
    for (let j = 0; j < m; j++) {
      const c = M[o + j];
      if (c < r) r = c;
      if (c < colMin[j]) colMin[j] = c;
    }
    rowMin[i] = r;
  }
  return { rowMin, colMin };
}

/**
 * One fused sweep: s_i = Σ_j K_ij v_j, u_i = a_i / s_i, then ktu_j = Σ_i K_ij u_i — a single pass over K.
 * Returns false if some u_i is not finite.
 */
function sweep(K: Float64Array, n: number, m: number, a: Float64Array, v: Float64Array, u: Float64Array, ktu: Float64Array): boolean {
  ktu.fill(0);
  let ok = true;
  for (let i = 0; i < n; i++) {
    const o = i * m;
    let s0 = 0,
      s1 = 0,
      s2 = 0,
      s3 = 0;
    let j = 0;
    for (; j + 3 < m; j += 4) {
      s0 += K[o + j] * v[j];
      s1 += K[o + j + 1] * v[j + 1];
      s2 += K[o + j + 2] * v[j + 2];
      s3 += K[o + j + 3] * v[j + 3];
    }
    for (; j < m; j++) s0 += K[o + j] * v[j];
    const ui = a[i] / (s0 + s1 + s2 + s3);
    u[i] = ui;
    if (!Number.isFinite(ui)) {
      ok = false;
      continue;
    }
    if (ui === 0) continue;
    for (j = 0; j < m; j++) ktu[j] += K[o + j] * ui;
  }
  return ok;
}

function finish(K: Float64Array, M: Float64Array, u: Float64Array, v: Float64Array, a: Float64Array, b: Float64Array, n: number, m: number) {
  // plan = diag(u) K diag(v), computed in place over K
  const plan = K;
  const colSum = new Float64Array(m);
  let cost = 0,
    rowError = 0;
  for (let i = 0; i < n; i++) {
    const o = i * m,
      ui = u[i];
    let rs = 0;
    for (let j = 0; j < m; j++) {
      const p = ui * K[o + j] * v[j];
      plan[o + j] = p;
      rs += p;
      colSum[j] += p;
      cost += p * M[o + j];
    }
    rowError = Math.max(rowError, Math.abs(rs - a[i]));
  }
  let colError = 0;
  for (let j = 0; j < m; j++) colError = Math.max(colError, Math.abs(colSum[j] - b[j]));
  return { plan, cost, rowError, colError };
}

function knopp(p: KnoppProblem): SinkhornResult {
  const { a, b, M, n, m, reg, numItermax, stopThr } = p;
  const nm = n * m;
  const K = new Float64Array(nm);
  const vec = (len: number, fill = 0) => ({ view: new Float64Array(len).fill(fill) });
  const ktu = new Float64Array(m);
  // K = exp(−M/reg), fused with ktu = Kᵀ u0
  const u0 = 1 / n,
    negInv = -1 / reg;
  for (let k = 0; k < nm; k++) K[k] = Math.exp(M[k] * negInv);
  for (let i = 0; i < n; i++) {
    const o = i * m;
    for (let j = 0; j < m; j++) ktu[j] += K[o + j] * u0;
  }
  const r = knoppIterate({ u: vec(n, 1 / n), v: vec(m, 1 / m), uPrev: vec(n), vPrev: vec(m) }, ktu, b, numItermax, stopThr, (v, u) =>
    sweep(K, n, m, a, v.view, u.view, ktu),
  );
  const f = finish(K, M, r.u.view, r.v.view, a, b, n, m);
  return {
    ...f,
    n,
    m,
    method: 'knopp',
    reg,
    iterations: r.iterations,
    converged: r.converged,
    marginalError: r.marginalError,
    numericalError: r.numericalError,
    kernel: 'scalar',
  };
}

function stabilized(p: KnoppProblem, tau: number): SinkhornResult {
  const { a, b, M, n, m, reg, numItermax, stopThr } = p;
  const nm = n * m;
  const { rowMin } = rowColMin(M, n, m);
  const alpha = rowMin; // α_i = min_j M_ij
  const beta = new Float64Array(m).fill(Infinity); // β_j = min_i (M_ij − α_i)
  for (let i = 0; i < n; i++) {
    const o = i * m,
      ai = alpha[i];
    for (let j = 0; j < m; j++) {
      const c = M[o + j] - ai;
      if (c < beta[j]) beta[j] = c;
    }
  }
  const K = new Float64Array(nm);
  const u = new Float64Array(n).fill(1);
  const v = new Float64Array(m).fill(1);
  const ktu = new Float64Array(m);
  const inv = -1 / reg;
  /** K̃ = exp((M − α − β)·(−1/reg)) and ktu = K̃ᵀ u. */
  const rebuild = (): void => {
    ktu.fill(0);
    for (let i = 0; i < n; i++) {
      const o = i * m,
        ai = alpha[i],
        ui = u[i];
      for (let j = 0; j < m; j++) {
        const k = Math.exp((M[o + j] - ai - beta[j]) * inv);
        K[o + j] = k;
        ktu[j] += k * ui;
      }
    }
  };
  rebuild();
  const lo = 1 / tau;
  let err = Infinity,
    iterations = 0,
    converged = false;
  const numericalError = false;
  for (let ii = 0; ii < numItermax; ii++) {
    for (let j = 0; j < m; j++) v[j] = b[j] / ktu[j];
    const ok = sweep(K, n, m, a, v, u, ktu);
    let vok = true;
    for (let j = 0; j < m; j++) if (!(v[j] >= 0 && v[j] < Infinity)) vok = false;
    if (!ok || !vok) {
      throw new OtfuseError('NUMERIC', `Sinkhorn (stabilized) hit a non-finite scaling at iteration ${ii} (reg ${reg}); try a larger reg`);
    }
    iterations = ii + 1;
    let absorb = false;
    // (zero-mass rows/columns keep u = 0 / v = 0 and are never absorbed)
    for (let i = 0; i < n && !absorb; i++) if (u[i] > tau || (u[i] < lo && u[i] > 0)) absorb = true;
    for (let j = 0; j < m && !absorb; j++) if (v[j] > tau || (v[j] < lo && v[j] > 0)) absorb = true;
    if (absorb) {
      for (let i = 0; i < n; i++)
        if (u[i] > 0) {
          alpha[i] += reg * Math.log(u[i]);
          u[i] = 1;
        }
      for (let j = 0; j < m; j++)
        if (v[j] > 0) {
          beta[j] += reg * Math.log(v[j]);
          v[j] = 1;
        }
      rebuild();
    }
    if (ii % 10 === 0) {
      err = colError2(v, ktu, b);
      if (err < stopThr) {
        converged = true;
        break;
      }
    }
  }
  const f = finish(K, M, u, v, a, b, n, m);
  return { ...f, n, m, method: 'stabilized', reg, iterations, converged, marginalError: err, numericalError, kernel: 'scalar' };
}
