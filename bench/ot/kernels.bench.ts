// Where a Sinkhorn–Knopp solve spends its time on the WebAssembly kernels (ot/sinkhorn-wasm.ts) vs the scalar loop:
// the exp pass alone, one iteration (exp + one sweep + plan), and the whole solve; per size, median of --reps.
// node dist-bench/ot/kernels.bench.js [--sizes 1024,3072] [--reps 7]
import { performance } from 'node:perf_hooks';
import { expKernel, knoppWasm } from '../../worker/ot/sinkhorn-wasm';
import { sinkhorn, uniform } from '../../worker/ot';
import { configureSinkhornEngine } from '../../worker/ot/sinkhorn';
import { seededRandom } from '../../worker/random';
import { cliArg } from '../common';

const sizes = (cliArg('--sizes') ?? '1024,3072').split(',').map(Number);
const reps = Number(cliArg('--reps') ?? 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
function time(fn: () => void): number {
  fn(); // warm
  const t: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  return median(t);
}

for (const n of sizes) {
  const r = seededRandom(n);
  const d = 16;
  const X = Float64Array.from({ length: n * d }, r),
    Y = Float64Array.from({ length: n * d }, r);
  const M = new Float64Array(n * n);
  let mx = 0;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += (X[i * d + k] - Y[j * d + k]) ** 2;
      M[i * n + j] = s;
      if (s > mx) mx = s;
    }
  for (let k = 0; k < M.length; k++) M[k] /= mx;
  const a = uniform(n),
    b = uniform(n);
  const x = M.map((v) => -v / 0.08);
  const row: Record<string, string | number> = { n };
  row.exp_wasm_ms = time(() => void expKernel(x));
  row.exp_math_ms = time(() => {
    const y = new Float64Array(x.length);
    for (let k = 0; k < x.length; k++) y[k] = Math.exp(x[k]);
  });
  row.one_iter_wasm_ms = time(() => void knoppWasm({ a, b, M, n, m: n, reg: 0.08, numItermax: 1, stopThr: 0 }));
  row.two_iter_wasm_ms = time(() => void knoppWasm({ a, b, M, n, m: n, reg: 0.08, numItermax: 2, stopThr: 0 }));
  row.solve_wasm_ms = time(() => void sinkhorn(a, b, M, 0.08));
  const prev = configureSinkhornEngine({ wasm: false });
  row.solve_scalar_ms = time(() => void sinkhorn(a, b, M, 0.08));
  configureSinkhornEngine(prev);
  for (const k of Object.keys(row)) if (typeof row[k] === 'number' && k !== 'n') row[k] = Number((row[k] as number).toFixed(2));
  console.log(JSON.stringify(row));
}
