// Large dense products for weight alignment at GEMM speed, called synchronously. ONNX Runtime's MatMul (MLAS:
// SIMD, every core) runs in the worker thread of runtime/syncrun.ts (the caller blocks until the product is
// there), so maps.ts keeps its synchronous signatures. float64 is the default: the same numbers as the JS loops up
// to summation order (~1e-15 relative). float32 (the only choice on WebGPU) is opt-in. Small products, or any
// failure to start the worker, use the JS loops.
import { onnx } from 'onnx-proto';
import type { ProviderChoice } from '../runtime/providers';
import { productModel } from '../runtime/opmodel';
import { runSync } from '../runtime/syncrun';

const DataType = onnx.TensorProto.DataType;

function matmulModel(elemType: number): Uint8Array {
  return productModel('mm', [{ opType: 'MatMul', input: ['A', 'B'], output: ['C'] }], { A: ['r', 'k'], B: ['k', 'c'] }, { C: ['r', 'c'] }, elemType);
}

export interface LinalgOptions {
  /** 'js': always the float64 JS loops; 'ort': ONNX Runtime above `minMacs` multiply-adds. */
  engine: 'ort' | 'js';
  precision: 'f64' | 'f32';
  /** Below this many multiply-adds the JS loops are as fast as a round trip to the worker. */
  minMacs: number;
  provider: ProviderChoice;
}

const options: LinalgOptions = {
  engine: process.env.OTFUSE_LINALG === 'js' ? 'js' : 'ort',
  precision: process.env.OTFUSE_LINALG_PRECISION === 'f32' ? 'f32' : 'f64',
  minMacs: Number(process.env.OTFUSE_LINALG_MIN_MACS ?? 4_000_000),
  provider: 'cpu',
};

/** Changes how products run from now on (returns the previous settings). */
export function configureLinalg(change: Partial<LinalgOptions>): LinalgOptions {
  const previous = { ...options };
  Object.assign(options, change);
  return previous;
}

export function linalgOptions(): Readonly<LinalgOptions> {
  return options;
}

/** Seconds spent in products and how many ran where (for benchmarks). */
export const linalgStats = { ortCalls: 0, jsCalls: 0, seconds: 0 };

let models: { float64: Uint8Array; float32: Uint8Array } | undefined;

/** C[r×c] = A[r×k]·B[k×c] on ONNX Runtime (synchronous worker call), or undefined (the caller falls back). */
function ortMatmul(A: ArrayLike<number>, B: ArrayLike<number>, r: number, k: number, c: number): Float64Array | undefined {
  models ??= { float64: matmulModel(DataType.DOUBLE), float32: matmulModel(DataType.FLOAT) };
  const onCpu = options.provider === 'cpu' || options.provider === 'auto';
  const f64 = options.precision === 'f64' && onCpu; // no float64 kernels on WebGPU
  const type = f64 ? 'float64' : 'float32';
  const Arr = f64 ? Float64Array : Float32Array;
  const out = runSync(
    `matmul-${type}-${options.provider}`,
    f64 ? models.float64 : models.float32,
    {
      A: { type, data: Arr.from(A), dims: [r, k] },
      B: { type, data: Arr.from(B), dims: [k, c] },
    },
    { providers: onCpu ? ['cpu'] : [options.provider, 'cpu'], transferFeeds: true },
  ); // the copies above move, not copied again
  if (!out) return undefined;
  const C = out.C.data as Float64Array | Float32Array;
  return C instanceof Float64Array ? C : Float64Array.from(C);
}

/** C[r×c] = A[r×k] · B[k×c], row-major. */
export function matmul(A: Float64Array, B: Float64Array, r: number, k: number, c: number): Float64Array {
  const t0 = performance.now();
  try {
    if (options.engine === 'ort' && r * k * c >= options.minMacs) {
      const C = ortMatmul(A, B, r, k, c);
      if (C) {
        linalgStats.ortCalls++;
        return C;
      }
    }
    linalgStats.jsCalls++;
    return matmulJs(A, B, r, k, c);
  } finally {
    linalgStats.seconds += (performance.now() - t0) / 1000;
  }
}

/** The float64 reference loops (i-p-j order, zero rows of A skipped). */
export function matmulJs(A: Float64Array, B: Float64Array, r: number, k: number, c: number): Float64Array {
  const C = new Float64Array(r * c);
  for (let i = 0; i < r; i++) {
    const ci = i * c;
    for (let p = 0; p < k; p++) {
      const a = A[i * k + p];
      if (a === 0) continue;
      const bp = p * c;
      for (let j = 0; j < c; j++) C[ci + j] += a * B[bp + j];
    }
  }
  return C;
}
