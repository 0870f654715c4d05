// otfuse vs POT side by side: EMD and Sinkhorn (reg 0.08) on the shapes fusion solves (head-level 64×48,
// heterogeneous 384×256 and 2048×1536, square 1024² and 3072²), on the same cost matrices, in user CPU time of one
// thread. POT 0.8.2 runs from this script through /usr/bin/python3 (bench/ot/pot_side.py) with
// OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1; otfuse runs the synchronous solvers fusion calls
// (emd(), sinkhorn()) in a child process per shape. Both sides time `inner` calls in a row (so sub-millisecond
// solves are measurable) and take the median over `reps`; user CPU from getrusage on each side (process.cpuUsage in
// Node). Parity: EMD cost and marginals vs POT's exact plan, Sinkhorn max |plan − POT's plan|.
// Usage: node dist-bench/ot/side-by-side.js [--shapes 64x48,384x256,1024,2048x1536,3072] [--reps 5] [--out FILE] [--no-write]
//   writes bench/ot/side-by-side.json (or FILE; otfuse-bench/1, rendered into BENCHMARKS.md by
//   `node scripts/gen-benchmarks.mjs`, renderer "ot-side-by-side").
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeNpy, readNpy } from '../../worker/data/npy';
import { emd, groundMetric, sinkhorn, uniform } from '../../worker/ot';
import { seededRandom as rng } from '../../worker/random';
import { writeBenchResults } from '../common';

const REG = 0.08;
const DEFAULT_SHAPES = '64x48,384x256,1024x1024,2048x1536,3072x3072';

interface Timed {
  user_ms: number;
  wall_ms: number;
}
interface ShapeResult {
  n: number;
  m: number;
  inner: number;
  emd: Timed & { method: string; cost: number; iterations: number; marginal_err: number };
  sinkhorn: Timed & { iterations: number };
  pot: { emd_user_s: number; emd_wall_s: number; emd_cost: number; sinkhorn_user_s: number; sinkhorn_wall_s: number; maxrss_mb: number; pot: string };
  parity: { emd_cost_diff: number; emd_plan_diff: number; sinkhorn_plan_diff: number };
  maxrss_mb: number;
}

const median = (xs: number[]): number => [...xs].sort((p, q) => p - q)[xs.length >> 1];

function costMatrix(n: number, m: number): Float64Array {
  const r = rng(1000 * n + m);
  const d = 16;
  const X = Float32Array.from({ length: n * d }, r),
    Y = Float32Array.from({ length: m * d }, r);
  return groundMetric(X, Y, n, m, d, { metric: 'euclidean', normalize: 'max' }).cost;
}

function measure<T>(reps: number, inner: number, f: () => T): Timed & { out: T } {
  const us: number[] = [],
    ws: number[] = [];
  let out!: T;
  for (let r = 0; r < reps; r++) {
    const u = process.cpuUsage().user,
      w = performance.now();
    for (let k = 0; k < inner; k++) out = f();
    ws.push((performance.now() - w) / inner);
    us.push((process.cpuUsage().user - u) / 1000 / inner);
  }
  return { user_ms: median(us), wall_ms: median(ws), out };
}

function marginalError(plan: Float64Array, n: number, m: number): number {
  let err = 0;
  const col = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < m; j++) {
      s += plan[i * m + j];
      col[j] += plan[i * m + j];
    }
    err = Math.max(err, Math.abs(s - 1 / n));
  }
  for (let j = 0; j < m; j++) err = Math.max(err, Math.abs(col[j] - 1 / m));
  return err;
}

function maxAbsDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let d = 0;
  for (let k = 0; k < x.length; k++) d = Math.max(d, Math.abs(x[k] - y[k]));
  return d;
}

function runShape(n: number, m: number, reps: number): ShapeResult {
  const M = costMatrix(n, m);
  const a = uniform(n),
    b = uniform(m);
  const inner = Math.max(1, Math.min(500, Math.round(2e6 / (n * m))));
  // JIT warm-up (untimed): small problems through both solvers, then one solve at the shape itself
  for (const [wn, wm] of [
    [64, 48],
    [96, 64],
    [64, 64],
  ]) {
    const W = costMatrix(wn, wm);
    for (let k = 0; k < 20; k++) {
      emd(uniform(wn), uniform(wm), W);
      sinkhorn(uniform(wn), uniform(wm), W, REG);
    }
  }
  emd(a, b, M);
  sinkhorn(a, b, M, REG);
  const e = measure(reps, inner, () => emd(a, b, M));
  const s = measure(reps, inner, () => sinkhorn(a, b, M, REG));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `otfuse-side-${n}x${m}-`));
  try {
    const file = path.join(dir, 'M.npy');
    fs.writeFileSync(file, encodeNpy(M, [n, m]));
    const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
    const script = path.join(process.cwd(), 'bench/ot/pot_side.py');
    const py = spawnSync('/usr/bin/python3', [script, file, String(REG), String(reps), String(inner), dir], { encoding: 'utf8', env });
    if (py.status !== 0) throw new Error(`POT run failed for ${n}×${m}: ${py.stderr.slice(-800)}`);
    const pot = JSON.parse(py.stdout.trim().split('\n').pop()!) as ShapeResult['pot'];
    const potEmd = readNpy(path.join(dir, 'pot_emd.npy')).data as Float64Array;
    const potSk = readNpy(path.join(dir, 'pot_sinkhorn.npy')).data as Float64Array;
    return {
      n,
      m,
      inner,
      emd: {
        user_ms: e.user_ms,
        wall_ms: e.wall_ms,
        method: e.out.method,
        cost: e.out.cost,
        iterations: e.out.iterations,
        marginal_err: marginalError(e.out.plan, n, m),
      },
      sinkhorn: { user_ms: s.user_ms, wall_ms: s.wall_ms, iterations: s.out.iterations },
      pot,
      parity: {
        emd_cost_diff: Math.abs(e.out.cost - pot.emd_cost),
        emd_plan_diff: maxAbsDiff(e.out.plan, potEmd),
        sinkhorn_plan_diff: maxAbsDiff(s.out.plan, potSk),
      },
      maxrss_mb: process.resourceUsage().maxRSS / 1024,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(3)} ms`);
const ratio = (x: number, y: number): string => `${(x / y).toFixed(2)}×`;

function main(): void {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const k = args.indexOf(name);
    return k >= 0 ? args[k + 1] : undefined;
  };
  const reps = Number(opt('--reps') ?? 5);
  if (args[0] === '--child') {
    const [n, m] = args[1].split('x').map(Number);
    console.log(JSON.stringify(runShape(n, m, reps)));
    return;
  }
  const shapes = (opt('--shapes') ?? DEFAULT_SHAPES).split(',').map((s) => (s.includes('x') ? s : `${s}x${s}`));
  const results: ShapeResult[] = [];
  for (const shape of shapes) {
    const child = spawnSync(process.execPath, [__filename, '--child', shape, '--reps', String(reps)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (child.status !== 0) {
      console.error(child.stderr);
      process.exit(1);
    }
    const r = JSON.parse(child.stdout.trim().split('\n').pop()!) as ShapeResult;
    results.push(r);
    console.error(
      `${shape}: EMD ${fmt(r.emd.user_ms)} vs POT ${fmt(r.pot.emd_user_s * 1000)} (${ratio(r.emd.user_ms, r.pot.emd_user_s * 1000)}), ` +
        `Sinkhorn ${fmt(r.sinkhorn.user_ms)} vs ${fmt(r.pot.sinkhorn_user_s * 1000)} (${ratio(r.sinkhorn.user_ms, r.pot.sinkhorn_user_s * 1000)}); parity ${JSON.stringify(r.parity)}`,
    );
  }
  if (args.includes('--no-write')) return;
  const out = opt('--out') ?? 'bench/ot/side-by-side.json';
  writeBenchResults(out, { reps, reg: REG, results });
  console.error(`wrote ${out}; run \`node scripts/gen-benchmarks.mjs\` to regenerate BENCHMARKS.md`);
}

main();
