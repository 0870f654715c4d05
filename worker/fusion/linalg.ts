// Large dense products for weight alignment at GEMM speed, called synchronously. ONNX Runtime's MatMul (MLAS:
// SIMD, every core) runs in a worker thread that owns two tiny sessions (float64 and float32 MatMul); the caller
// copies its operands into shared memory, posts the job and blocks on an Atomics.wait until the product is
// there, so maps.ts keeps its synchronous signatures. float64 is the default: the same numbers as the JS loops up
// to summation order (~1e-15 relative). float32 (the only choice on WebGPU) is opt-in. Small products, or any
// failure to start the worker, use the JS loops.
import { Worker } from 'node:worker_threads';
import { onnx } from 'onnx-proto';
import type { ProviderChoice } from '../runtime/providers';

const DataType = onnx.TensorProto.DataType;

function matmulModel(elemType: number): Uint8Array {
  const vi = (name: string, dims: string[]) => onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimParam: d })) } } } });
  const graph = onnx.GraphProto.create({
    name: 'mm', node: [onnx.NodeProto.create({ opType: 'MatMul', input: ['A', 'B'], output: ['C'] })],
    input: [vi('A', ['r', 'k']), vi('B', ['k', 'c'])], output: [vi('C', ['r', 'c'])],
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph, producerName: 'otfuse' })).finish();
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
  minMacs: 4_000_000,
  provider: 'cpu',
};

/** Changes how products run from now on (returns the previous settings). */
export function configureLinalg(change: Partial<LinalgOptions>): LinalgOptions {
  const previous = { ...options };
  Object.assign(options, change);
  if (change.provider && change.provider !== previous.provider) shutdown();
  return previous;
}

export function linalgOptions(): Readonly<LinalgOptions> {
  return options;
}

/** Seconds spent in products and how many ran where (for benchmarks). */
export const linalgStats = { ortCalls: 0, jsCalls: 0, seconds: 0 };

// The worker: CommonJS source evaluated in a worker thread; onnxruntime-node is required by its resolved path.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const sessions = {};
async function session(type) {
  if (!sessions[type]) {
    const eps = type === 'float64' ? ['cpu'] : [workerData.provider === 'auto' ? 'cpu' : workerData.provider, 'cpu'];
    sessions[type] = await ort.InferenceSession.create(workerData.models[type], { executionProviders: [...new Set(eps)], logSeverityLevel: 3 });
  }
  return sessions[type];
}
parentPort.on('message', async (job) => {
  const ctl = new Int32Array(job.ctl);
  try {
    const Arr = job.type === 'float64' ? Float64Array : Float32Array;
    const a = new Arr(job.r * job.k), b = new Arr(job.k * job.c);
    a.set(new Arr(job.a, 0, a.length)); b.set(new Arr(job.b, 0, b.length));
    const s = await session(job.type);
    const out = await s.run({ A: new ort.Tensor(job.type, a, [job.r, job.k]), B: new ort.Tensor(job.type, b, [job.k, job.c]) });
    new Arr(job.out, 0, job.r * job.c).set(out.C.data);
    Atomics.store(ctl, 0, 1);
  } catch (err) {
    Atomics.store(ctl, 0, 2);
    console.error('otfuse linalg worker: ' + (err && err.message ? err.message : err));
  }
  Atomics.notify(ctl, 0);
});
`;

let worker: Worker | undefined;
let broken = false;

function shutdown(): void {
  void worker?.terminate();
  worker = undefined;
}

function getWorker(): Worker | undefined {
  if (broken) return undefined;
  if (!worker) {
    try {
      worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { ortPath: require.resolve('onnxruntime-node'), provider: options.provider, models: { float64: matmulModel(DataType.DOUBLE), float32: matmulModel(DataType.FLOAT) } },
      });
      worker.unref();
      worker.on('error', () => { broken = true; worker = undefined; });
    } catch {
      broken = true;
      return undefined;
    }
  }
  return worker;
}

/** C[r×c] = A[r×k]·B[k×c] on ONNX Runtime, or undefined when it is not available (the caller falls back). */
function ortMatmul(A: ArrayLike<number>, B: ArrayLike<number>, r: number, k: number, c: number): Float64Array | undefined {
  const w = getWorker();
  if (!w) return undefined;
  const f64 = options.precision === 'f64' && (options.provider === 'cpu' || options.provider === 'auto');
  const Arr = f64 ? Float64Array : Float32Array;
  const bytes = Arr.BYTES_PER_ELEMENT;
  const a = new SharedArrayBuffer(r * k * bytes), b = new SharedArrayBuffer(k * c * bytes), out = new SharedArrayBuffer(r * c * bytes);
  new Arr(a).set(A);
  new Arr(b).set(B);
  const ctl = new SharedArrayBuffer(4);
  w.postMessage({ type: f64 ? 'float64' : 'float32', a, b, out, ctl, r, k, c });
  const flag = new Int32Array(ctl);
  // A product of 3072³ takes well under a minute on one core; a minute without an answer means a dead worker.
  const res = Atomics.wait(flag, 0, 0, 120_000);
  if (res === 'timed-out' || Atomics.load(flag, 0) !== 1) {
    broken = true;
    shutdown();
    return undefined;
  }
  return Float64Array.from(new Arr(out));
}

/** C[r×c] = A[r×k] · B[k×c], row-major. */
export function matmul(A: Float64Array, B: Float64Array, r: number, k: number, c: number): Float64Array {
  const t0 = performance.now();
  try {
    if (options.engine === 'ort' && r * k * c >= options.minMacs) {
      const C = ortMatmul(A, B, r, k, c);
      if (C) { linalgStats.ortCalls++; return C; }
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
