// OT core benchmark: EMD and Sinkhorn (reg 0.08) on random uniform-marginal costs (Euclidean distances between
// random 16-d points, divided by the max), median of 3, with POT 0.8.2 side by side when /usr/bin/python3 has
// `ot` (Debian python3-pot). Each size runs in its own child process so peak RSS is per size.
// Usage: node dist-bench/ot/ot.bench.js [--sizes 64,256,1024,3072,96x64] [--no-pot] [--out bench/ot/RESULTS.md]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeNpy } from '../../worker/data/npy';
import { emd, groundMetric, sinkhorn, uniform } from '../../worker/ot';
import potTimings from './pot-timings.json';

const REG = 0.08;
const REPS = 3;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  return s[s.length >> 1];
}

interface SizeResult {
  n: number; m: number;
  metric_ms: number; emd_ms: number; sinkhorn_ms: number;
  emd_method: string; emd_cost: number; sinkhorn_iters: number;
  maxrss_mb: number;
  pot?: { emd_s: number; sinkhorn_s: number; emd_cost: number; maxrss_mb: number };
}

function runOne(n: number, m: number, withPot: boolean): SizeResult {
  const r = rng(1000 * n + m);
  const d = 16;
  const X = Float32Array.from({ length: n * d }, r), Y = Float32Array.from({ length: m * d }, r);
  let t = performance.now();
  const M = groundMetric(X, Y, n, m, d, { metric: 'euclidean', normalize: 'max' }).cost;
  const metric_ms = performance.now() - t;
  const a = uniform(n), b = uniform(m);
  // JIT warm-up (untimed): small square and rectangular problems through every path, then one run at this size
  for (const [wn, wm] of [[64, 64], [96, 64], [50, 70]]) {
    const W = groundMetric(X.subarray(0, Math.min(n, wn) * d), Y.subarray(0, Math.min(m, wm) * d), Math.min(n, wn), Math.min(m, wm), d).cost;
    for (let k = 0; k < 20; k++) { emd(uniform(Math.min(n, wn)), uniform(Math.min(m, wm)), W); sinkhorn(uniform(Math.min(n, wn)), uniform(Math.min(m, wm)), W, REG); }
  }
  if (n * m <= 1 << 20) { emd(a, b, M); sinkhorn(a, b, M, REG); }
  const time = <T>(f: () => T): { ms: number; out: T } => {
    const ts: number[] = [];
    let out!: T;
    for (let k = 0; k < REPS; k++) { const t0 = performance.now(); out = f(); ts.push(performance.now() - t0); }
    return { ms: median(ts), out };
  };
  const e = time(() => emd(a, b, M));
  const s = time(() => sinkhorn(a, b, M, REG));
  const res: SizeResult = {
    n, m, metric_ms, emd_ms: e.ms, sinkhorn_ms: s.ms, emd_method: e.out.method, emd_cost: e.out.cost,
    sinkhorn_iters: s.out.iterations, maxrss_mb: process.resourceUsage().maxRSS / 1024,
  };
  if (withPot) {
    const file = path.join(os.tmpdir(), `otfuse-bench-${process.pid}-${n}x${m}.npy`);
    fs.writeFileSync(file, encodeNpy(M, [n, m]));
    const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
    const py = spawnSync('/usr/bin/python3', [path.join(process.cwd(), 'bench/ot/pot_bench.py'), file, String(REG), String(REPS)], { encoding: 'utf8', env });
    fs.rmSync(file, { force: true });
    if (py.status === 0) res.pot = JSON.parse(py.stdout.trim().split('\n').pop()!);
    else console.error(`POT run failed for ${n}×${m}: ${py.stderr.slice(-500)}`);
  }
  return res;
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`;
}

function main(): void {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    const [n, m] = args[1].split('x').map(Number);
    console.log(JSON.stringify(runOne(n, m, args[2] === 'pot')));
    return;
  }
  const opt = (name: string): string | undefined => { const k = args.indexOf(name); return k >= 0 ? args[k + 1] : undefined; };
  const sizes = (opt('--sizes') ?? '64,256,1024,3072,96x64').split(',').map((s) => (s.includes('x') ? s : `${s}x${s}`));
  const havePot = !args.includes('--no-pot') && spawnSync('/usr/bin/python3', ['-c', 'import ot'], { encoding: 'utf8' }).status === 0;
  const results: SizeResult[] = [];
  for (const size of sizes) {
    const child = spawnSync(process.execPath, [__filename, '--child', size, havePot ? 'pot' : 'nopot'], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (child.status !== 0) { console.error(child.stderr); process.exit(1); }
    const r = JSON.parse(child.stdout.trim().split('\n').pop()!) as SizeResult;
    results.push(r);
    console.log(JSON.stringify(r));
  }
  const ref = (potTimings as { timings: Record<string, { median_s: number }> }).timings;
  const lines: string[] = [];
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  lines.push('# OT core benchmark (bench/ot/ot.bench.ts)', '');
  lines.push(`Machine: ${os.cpus().length} cores, ${cpu}; Node ${process.version}; ${os.platform()} ${os.release()}.`);
  lines.push(`Date: 2026-11-27. Costs: Euclidean between random 16-d points / max, uniform marginals; median of ${REPS} runs;`);
  lines.push(`Sinkhorn reg ${REG} (Knopp, POT's stopping rule). otfuse is single-threaded JavaScript (float64), timed after`);
  lines.push('a JIT warm-up (untimed runs on small problems, and one untimed run at the size itself up to 1024²) as in a fusion');
  lines.push('run, where the solvers are called once per layer; cold first calls at small sizes are several ms slower.');
  lines.push(havePot ? 'POT 0.8.2 (Debian python3-pot, NumPy, 1 BLAS thread) measured side by side on the same cost matrices.' : 'POT not installed: only the recorded timings.json are compared.');
  lines.push('', '"POT (file)" = fixtures/pot/timings.json (another run on a busy machine of the same kind); "POT (here)" = measured in this run.', '');
  lines.push('| size | EMD otfuse | EMD POT (here) | EMD POT (file) | ratio vs here | ratio vs file | Sinkhorn otfuse | iters | Sinkhorn POT (here) | Sinkhorn POT (file) | ratio vs here | ratio vs file | EMD path |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const key = `${r.n}x${r.m}`;
    const fe = ref[`emd_${key}`]?.median_s, fs0 = ref[`sinkhorn0.08_${key}`]?.median_s;
    const pe = r.pot?.emd_s, ps = r.pot?.sinkhorn_s;
    const ratio = (ours: number, theirs?: number): string => (theirs ? `${(ours / (theirs * 1000)).toFixed(2)}×` : '—');
    lines.push(`| ${r.n}×${r.m} | ${fmtMs(r.emd_ms)} | ${pe ? fmtMs(pe * 1000) : '—'} | ${fe ? fmtMs(fe * 1000) : '—'} | ${ratio(r.emd_ms, pe)} | ${ratio(r.emd_ms, fe)} | ${fmtMs(r.sinkhorn_ms)} | ${r.sinkhorn_iters} | ${ps ? fmtMs(ps * 1000) : '—'} | ${fs0 ? fmtMs(fs0 * 1000) : '—'} | ${ratio(r.sinkhorn_ms, ps)} | ${ratio(r.sinkhorn_ms, fs0)} | ${r.emd_method} |`);
  }
  lines.push('', 'Ratio = otfuse time / POT time (below 1 = otfuse faster).', '');
  lines.push('| size | ground metric (16-d) | peak RSS otfuse (process) | peak RSS POT (process) | EMD cost otfuse | EMD cost POT |');
  lines.push('|---|---|---|---|---|---|');
  for (const r of results) {
    lines.push(`| ${r.n}×${r.m} | ${fmtMs(r.metric_ms)} | ${r.maxrss_mb.toFixed(0)} MiB | ${r.pot ? r.pot.maxrss_mb.toFixed(0) + ' MiB' : '—'} | ${r.emd_cost.toPrecision(12)} | ${r.pot ? r.pot.emd_cost.toPrecision(12) : '—'} |`);
  }
  const out = opt('--out');
  if (out) { fs.writeFileSync(out, lines.join('\n') + '\n'); console.log(`wrote ${out}`); }
  else console.log(lines.join('\n'));
}

main();
