// Ground-metric cost matrices for fusion. The semantics are worker/ot's groundMetric (Euclidean / squared /
// cosine, negatives clamped, normalised by max / median / mean); what differs is where the big Gram product
// runs: activation costs are n×m×(samples·tokens) (192×192×3400 for an MLP layer), which dominates a fusion
// run in plain JS, so large products go to ONNX Runtime (one float32 Gemm, SIMD + threads) and only the O(n·m)
// finishing work stays here. Small problems use the float64 reference implementation directly.
import * as ort from 'onnxruntime-node';
import { createOrtSession } from '../runtime/session';
import { OtfuseError } from '../errors';
import { groundMetric, median } from '../ot/index';
import type { ProviderChoice } from '../runtime/providers';
import { intAttr, productModel } from '../runtime/opmodel';
import type { CostCache } from './share';

export interface CostOptions {
  metric: 'euclidean' | 'sqeuclidean' | 'cosine';
  normalize: 'max' | 'median' | 'mean' | 'none';
}

/** Below this many multiply-adds the float64 JS path is as fast as a session call. */
const ORT_THRESHOLD = 2_000_000;

function gemmModel(): Uint8Array {
  const gram = { opType: 'Gemm', name: 'gram', input: ['X', 'Y'], output: ['G'], attribute: [intAttr('transB', 1)] };
  return productModel('gram', [gram], { X: ['n', 'd'], Y: ['m', 'd'] }, { G: ['n', 'm'] });
}

export class CostEngine {
  /** Costs of features that stay unchanged while the cache lives (a shared capture's, share.ts), reused. */
  private cache?: CostCache;

  private constructor(private readonly session: ort.InferenceSession | undefined) {}

  /** Reads and fills `cache` from now on (only for features the cache's owner keeps unchanged). */
  useCache(cache: CostCache | undefined): this {
    this.cache = cache;
    return this;
  }

  /**
   * useOrt=false keeps every product in float64 JS (bit-for-bit worker/ot groundMetric). `provider` 'cuda' or
   * 'webgpu' runs the Gram product there (falling back to CPU inside ONNX Runtime, then to JS).
   */
  static async create(useOrt = true, provider: ProviderChoice = 'cpu'): Promise<CostEngine> {
    if (!useOrt) return new CostEngine(undefined);
    const eps = provider === 'cuda' || provider === 'webgpu' ? [provider, 'cpu'] : ['cpu'];
    for (const executionProviders of [eps, ['cpu']]) {
      try {
        const session = await createOrtSession(gemmModel(), { providers: executionProviders, memArena: false });
        return new CostEngine(session);
      } catch {
        // next choice
      }
    }
    return new CostEngine(undefined); // the JS path is always available
  }

  async cost(
    X: Float32Array | Float64Array,
    Y: Float32Array | Float64Array,
    n: number,
    m: number,
    d: number,
    options: CostOptions,
  ): Promise<{ cost: Float64Array; scale: number }> {
    if (!this.cache?.covers(X, Y)) return this.compute(X, Y, n, m, d, options);
    // The same two matrices, settings and engine path give the same bytes: computed once per cache.
    const key = `${n}x${m}x${d}/${options.metric}/${options.normalize}/${this.session && n * m * d >= ORT_THRESHOLD ? 'ort' : 'js'}`;
    const hit = this.cache.get(X, Y, key);
    if (hit) return hit;
    const value = await this.compute(X, Y, n, m, d, options);
    this.cache.put(X, Y, key, value);
    return value;
  }

  private async compute(
    X: Float32Array | Float64Array,
    Y: Float32Array | Float64Array,
    n: number,
    m: number,
    d: number,
    options: CostOptions,
  ): Promise<{ cost: Float64Array; scale: number }> {
    if (!this.session || n * m * d < ORT_THRESHOLD) {
      const r = groundMetric(X, Y, n, m, d, { metric: options.metric, normalize: options.normalize });
      return { cost: r.cost, scale: r.scale };
    }
    const x32 = X instanceof Float32Array ? X : Float32Array.from(X);
    const y32 = Y instanceof Float32Array ? Y : Float32Array.from(Y);
    for (const [name, A] of [
      ['X', x32],
      ['Y', y32],
    ] as const) {
      for (let k = 0; k < A.length; k++)
        if (!Number.isFinite(A[k])) throw new OtfuseError('NUMERIC', `cost: ${name} has a non-finite value at row ${Math.floor(k / d)}`);
    }
    const out = await this.session.run({ X: new ort.Tensor('float32', x32, [n, d]), Y: new ort.Tensor('float32', y32, [m, d]) });
    const G = out.G.data as Float32Array;
    const nx = sqNorms(x32, n, d),
      ny = sqNorms(y32, m, d);
    const C = new Float64Array(n * m);
    for (let i = 0; i < n; i++) {
      const o = i * m,
        xi = nx[i];
      if (options.metric === 'cosine') {
        const rx = xi > 0 ? 1 / Math.sqrt(xi) : 0;
        for (let j = 0; j < m; j++) {
          const c = ny[j] > 0 ? (G[o + j] * rx) / Math.sqrt(ny[j]) : 0;
          C[o + j] = Math.min(2, Math.max(0, 1 - c));
        }
      } else {
        for (let j = 0; j < m; j++) {
          const v = Math.max(0, xi + ny[j] - 2 * G[o + j]);
          C[o + j] = options.metric === 'euclidean' ? Math.sqrt(v) : v;
        }
      }
    }
    let scale = 1;
    if (options.normalize !== 'none') {
      let s = 0;
      if (options.normalize === 'max') for (let k = 0; k < C.length; k++) s = C[k] > s ? C[k] : s;
      else if (options.normalize === 'mean') {
        for (let k = 0; k < C.length; k++) s += C[k];
        s /= C.length;
      } else s = median(C);
      if (s > 0 && Number.isFinite(s)) {
        scale = s;
        for (let k = 0; k < C.length; k++) C[k] /= s;
      }
    }
    return { cost: C, scale };
  }

  async release(): Promise<void> {
    await this.session?.release();
  }
}

function sqNorms(A: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) {
      const v = A[r * cols + c];
      s += v * v;
    }
    out[r] = s;
  }
  return out;
}
