// Sinkhorn–Knopp through ONNX Runtime: the whole solve (K = exp(−M/reg), the scaling loop with POT's stopping
// rule, the plan and its cost) is one small float64 ONNX graph, so MLAS/Eigen do the exp and the matrix–vector
// products (multithreaded) and a GPU execution provider can take it later.
//
// The graph reproduces POT 0.8.2's `sinkhorn_knopp` (and `sinkhorn()`'s 'knopp' path) iterate for iterate:
//   u = 1/n, v = 1/m; ktu = Kᵀu
//   loop ii = 0 … numItermax−1:  v = b / ktu;  u = a / (K v);  ktu = Kᵀu
//       every 10th iteration (ii % 10 == 0): err = ‖v ⊙ ktu − b‖₂ (= colsum(plan) − b); stop when err < stopThr
//   plan = diag(u) K diag(v)
// An ONNX `Loop` carries (u, v, ktu, err, …) and its condition is the stopping rule, so nothing but the inputs and
// the plan crosses the JS boundary, once per solve. Two matrix–vector products per iteration, as in POT (Kᵀu in two
// phases, see buildSinkhornModel). float64 throughout: same iterate and iteration count as POT and sinkhorn().
// Providers: 'cpu' is the tested path. 'cuda'/'webgpu' are passed to ONNX Runtime with the CPU as fallback for
// nodes they do not take (WebGPU has no float64 kernels, so there it all runs on the CPU); untested here (no GPU).
//
// Anything unusual is handed to the JS solver, which then decides and reports exactly as `sinkhorn()` does:
// non-finite costs (it raises the error), numerical trouble in the iterate (NaN/Inf/zero: it reverts or switches
// to the stabilised solver), and — for method 'auto' — costs whose exp(−M/reg) would underflow a whole row or
// column (tested inside the graph before the loop starts). method 'stabilized' always runs in JS.
// onnxruntime-node (native) and onnx-proto load on the first ORT solve, so importing worker/ot stays cheap.
import os from 'node:os';
import type * as Ort from 'onnxruntime-node';
import { OtfuseError } from '../errors';
import { createOrtSession, ortTensor } from '../runtime/session';
import { sinkhorn } from './sinkhorn';
import { buildSinkhornModel, readSinkhornOutputs, sinkhornFeeds } from './sinkhorn-graph';
import { checkReg, MARGINAL_SUM_RTOL, toFloat64, type SinkhornOptions, type SinkhornResult, type Weights } from './validate';

export type SinkhornBackend = 'js' | 'ort' | 'auto';
export type SinkhornProvider = 'cpu' | 'cuda' | 'webgpu';

export interface SinkhornAsyncOptions extends SinkhornOptions {
  /** 'js': the synchronous solver; 'ort': ONNX Runtime; 'auto' (default): ORT from ORT_AUTO_MIN_ENTRIES entries. */
  backend?: SinkhornBackend;
  /** ONNX Runtime execution provider (default 'cpu'); nodes a provider cannot run fall back to the CPU. */
  provider?: SinkhornProvider;
  /**
   * intra-op threads for the ORT session; 0 = ONNX Runtime's choice (one per physical core). Default: 1 on machines
   * with ≤ 2 CPUs (measured faster on the shared 2-core bench machine: 24.6 vs 28.9 ms at 1024², 326 vs 392 ms at
   * 3072², interleaved runs), else 0.
   */
  threads?: number;
  /** Iterations before the ORT graph switches from Gemm(transA) on K to MatMul on an explicit Kᵀ (default 31). */
  phase1Iters?: number;
}

export interface SinkhornAsyncResult extends SinkhornResult {
  /** Which solver produced the result ('js' also when the ORT path handed an unusual case to JS). */
  backend: 'js' | 'ort';
}

/**
 * 'auto' uses ORT from this many cost entries (n·m) up. On the 2-core bench machine ORT and the JIT-warm JS solver
 * are even at 64² (≈ 0.5 ms at reg 0.08; 16–18 ms for 1000 iterations at reg 0.01: ORT's per-iteration node
 * overhead against JS's per-iteration work) and ORT is ahead from 128² (0.8–1.4 ms vs 2.9 ms; 44–54 ms vs 80 ms).
 */
export const ORT_AUTO_MIN_ENTRIES = 128 * 128;

const sessions = new Map<string, Promise<Ort.InferenceSession>>();

/** One session per (provider, threads): the graph has symbolic dims, so every problem size reuses it. */
function getSession(provider: SinkhornProvider, threads: number | undefined): Promise<Ort.InferenceSession> {
  const key = `${provider}/${threads ?? 0}`;
  let s = sessions.get(key);
  if (!s) {
    // pool threads do not busy-wait between the loop's many small nodes: session.ts's default
    const settings = { providers: provider === 'cpu' ? ['cpu'] : [provider, 'cpu'], threads };
    s = createOrtSession(buildSinkhornModel(), settings).catch((err: Error) => {
      throw new OtfuseError(
        'PROVIDER',
        `Sinkhorn: ONNX Runtime could not start a session on provider '${provider}': ${String(err.message).split('\n')[0].slice(0, 240)}`,
      );
    });
    sessions.set(key, s);
    s.catch(() => sessions.delete(key));
  }
  return s;
}

/** Releases the cached ORT sessions (they are rebuilt on the next call). */
export async function releaseSinkhornSessions(): Promise<void> {
  const all = [...sessions.values()];
  sessions.clear();
  for (const s of all) {
    try {
      await (await s).release();
    } catch {
      /* already gone */
    }
  }
}

/** Cheap checks of everything but M's entries (those are checked inside the graph); false → let the JS solver raise. */
function inputsLookValid(a: Float64Array, b: Float64Array, M: ArrayLike<number> | undefined, reg: number, options: SinkhornOptions): boolean {
  try {
    checkReg(reg);
  } catch {
    return false;
  }
  const numItermax = options.numItermax ?? 1000;
  const stopThr = options.stopThr ?? 1e-9;
  if (!Number.isInteger(numItermax) || numItermax < 1 || !(stopThr >= 0)) return false;
  if (!['auto', 'knopp', 'stabilized', undefined].includes(options.method)) return false;
  const weights = (x: Float64Array): number => {
    let s = 0;
    for (let i = 0; i < x.length; i++) {
      const w = x[i];
      if (!(w >= 0 && w < Infinity)) return NaN;
      s += w;
    }
    return s;
  };
  const sa = weights(a),
    sb = weights(b);
  if (!(a.length > 0 && b.length > 0 && sa > 0 && sb > 0)) return false;
  if (Math.abs(sa - sb) > MARGINAL_SUM_RTOL * Math.max(sa, sb)) return false;
  return !!M && M.length === a.length * b.length;
}

function viaJs(a: Weights, b: Weights, M: Float64Array | Float32Array, reg: number, options: SinkhornAsyncOptions): SinkhornAsyncResult {
  const { backend: _b, provider: _p, threads: _t, phase1Iters: _i, ...rest } = options;
  return { ...sinkhorn(a, b, M, reg, rest), backend: 'js' };
}

/**
 * Sinkhorn with a choice of backend; same result as sinkhorn() (plus `backend`). 'ort' and 'auto' above
 * ORT_AUTO_MIN_ENTRIES run the Knopp iteration in ONNX Runtime (float64); method 'stabilized', invalid input and
 * numerically hard cases go to the JS solver, so errors and fallbacks are the same as sinkhorn()'s.
 */
export async function sinkhornAsync(
  aIn: Weights,
  bIn: Weights,
  MIn: Float64Array | Float32Array,
  reg: number,
  options: SinkhornAsyncOptions = {},
): Promise<SinkhornAsyncResult> {
  const backend = options.backend ?? 'auto';
  if (!['js', 'ort', 'auto'].includes(backend)) throw new OtfuseError('BAD_DATA', `unknown Sinkhorn backend '${backend}' (expected js, ort or auto)`);
  const provider = options.provider ?? 'cpu';
  if (!['cpu', 'cuda', 'webgpu'].includes(provider))
    throw new OtfuseError('BAD_DATA', `unknown Sinkhorn provider '${provider}' (expected cpu, cuda or webgpu)`);
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 0)) {
    throw new OtfuseError('BAD_DATA', `Sinkhorn threads must be an integer ≥ 0, got ${options.threads}`);
  }
  const phase1 = options.phase1Iters;
  if (phase1 !== undefined && !(Number.isInteger(phase1) && phase1 >= 0))
    throw new OtfuseError('BAD_DATA', `Sinkhorn phase1Iters must be an integer ≥ 0, got ${phase1}`);
  if (!aIn || !bIn) return viaJs(aIn, bIn, MIn, reg, options);
  const a = toFloat64(aIn),
    b = toFloat64(bIn);
  const n = a.length,
    m = b.length;
  const method = options.method ?? 'auto';
  const useOrt = backend === 'ort' || (backend === 'auto' && n * m >= ORT_AUTO_MIN_ENTRIES);
  if (!useOrt || method === 'stabilized' || !inputsLookValid(a, b, MIn, reg, options)) return viaJs(a, b, MIn, reg, options);

  const M = MIn instanceof Float64Array ? MIn : Float64Array.from(MIn);
  const numItermax = options.numItermax ?? 1000;
  const stopThr = options.stopThr ?? 1e-9;
  const session = await getSession(provider, options.threads ?? (os.cpus().length <= 2 ? 1 : 0));
  const feeds = sinkhornFeeds(a, b, M, reg, { auto: method === 'auto', stopThr, numItermax, phase1Iters: options.phase1Iters });
  const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, ortTensor(f.type, f.data as never, f.dims)])));
  const result = readSinkhornOutputs(out, n, m, reg, stopThr);
  return result ? { ...result, backend: 'ort' } : viaJs(a, b, M, reg, options);
}
