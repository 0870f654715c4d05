// OT core benchmark: EMD and Sinkhorn (reg 0.08) on random uniform-marginal costs (Euclidean distances between
// random 16-d points, divided by the max), median of 3, with POT 0.8.2 side by side when /usr/bin/python3 has
// `ot` (Debian python3-pot). Each size runs in its own child process so peak RSS is per size.
// Sinkhorn runs three ways: sinkhorn() (synchronous: the Knopp loop's O(n·m) passes in WebAssembly SIMD,
// ot/sinkhorn-wasm.ts), sinkhornAsync on ONNX Runtime (CPU, float64), and POT.
// Usage: node dist-bench/ot/ot.bench.js [--sizes 64,256,1024,3072,96x64] [--no-pot] [--no-emd] [--ort-threads N]
//          [--thp] [--reps N] [--out bench/ot/RESULTS.md]
//   --thp: run the size children with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (glibc ≥ 2.35), so large malloc'd buffers
//          (V8 ArrayBuffers, ORT's arena) get transparent huge pages, as NumPy asks for its own arrays.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeNpy } from '../../worker/data/npy';
import { emd, groundMetric, releaseSinkhornSessions, sinkhorn, sinkhornAsync, uniform } from '../../worker/ot';
import potTimings from './pot-timings.json';
import { seededRandom as rng } from '../../worker/random';

const REG = 0.08;
let REPS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  return s[s.length >> 1];
}

interface SizeResult {
  n: number;
  m: number;
  metric_ms: number;
  emd_ms: number;
  sinkhorn_ms: number;
  emd_method: string;
  emd_cost: number;
  sinkhorn_iters: number;
  /** sinkhornAsync backend 'ort': median of REPS after warm-up, the cold first call, its iterations, max |plan − JS plan|. */
  ort_ms: number;
  ort_first_ms: number;
  ort_iters: number;
  ort_backend: string;
  ort_vs_js: number;
  maxrss_mb: number;
  pot?: { emd_s: number | null; sinkhorn_s: number; emd_cost: number | null; maxrss_mb: number };
}

async function runOne(n: number, m: number, withPot: boolean, withEmd: boolean, ortThreads?: number): Promise<SizeResult> {
  const r = rng(1000 * n + m);
  const d = 16;
  const X = Float32Array.from({ length: n * d }, r),
    Y = Float32Array.from({ length: m * d }, r);
  const t = performance.now();
  const M = groundMetric(X, Y, n, m, d, { metric: 'euclidean', normalize: 'max' }).cost;
  const metric_ms = performance.now() - t;
  const a = uniform(n),
    b = uniform(m);
  // JIT warm-up (untimed): small square and rectangular problems through every path, then one run at this size
  for (const [wn, wm] of [
    [64, 64],
    [96, 64],
    [50, 70],
  ]) {
    const W = groundMetric(X.subarray(0, Math.min(n, wn) * d), Y.subarray(0, Math.min(m, wm) * d), Math.min(n, wn), Math.min(m, wm), d).cost;
    for (let k = 0; k < 20; k++) {
      if (withEmd) emd(uniform(Math.min(n, wn)), uniform(Math.min(m, wm)), W);
      sinkhorn(uniform(Math.min(n, wn)), uniform(Math.min(m, wm)), W, REG);
    }
  }
  if (n * m <= 1 << 20) {
    if (withEmd) emd(a, b, M);
    sinkhorn(a, b, M, REG);
  }
  const time = <T>(f: () => T): { ms: number; out: T } => {
    const ts: number[] = [];
    let out!: T;
    for (let k = 0; k < REPS; k++) {
      const t0 = performance.now();
      out = f();
      ts.push(performance.now() - t0);
    }
    return { ms: median(ts), out };
  };
  const e = withEmd ? time(() => emd(a, b, M)) : { ms: NaN, out: { method: '—', cost: NaN } };
  const s = time(() => sinkhorn(a, b, M, REG));
  // ONNX Runtime: the first call at this size is cold (session build on the very first call of the process, ORT's
  // memory arena grows to this size); later calls reuse both, as the layers of a fusion run do.
  const ortOpts = { backend: 'ort' as const, threads: ortThreads };
  let t0 = performance.now();
  await sinkhornAsync(a, b, M, REG, ortOpts);
  const ort_first_ms = performance.now() - t0;
  const ortTimes: number[] = [];
  let o = await sinkhornAsync(a, b, M, REG, ortOpts);
  for (let k = 0; k < REPS; k++) {
    t0 = performance.now();
    o = await sinkhornAsync(a, b, M, REG, ortOpts);
    ortTimes.push(performance.now() - t0);
  }
  let ortVsJs = 0;
  for (let k = 0; k < o.plan.length; k++) ortVsJs = Math.max(ortVsJs, Math.abs(o.plan[k] - s.out.plan[k]));
  await releaseSinkhornSessions();
  const res: SizeResult = {
    n,
    m,
    metric_ms,
    emd_ms: e.ms,
    sinkhorn_ms: s.ms,
    emd_method: e.out.method,
    emd_cost: e.out.cost,
    sinkhorn_iters: s.out.iterations,
    maxrss_mb: process.resourceUsage().maxRSS / 1024,
    ort_ms: median(ortTimes),
    ort_first_ms,
    ort_iters: o.iterations,
    ort_backend: o.backend,
    ort_vs_js: ortVsJs,
  };
  if (withPot) {
    const file = path.join(os.tmpdir(), `otfuse-bench-${process.pid}-${n}x${m}.npy`);
    fs.writeFileSync(file, encodeNpy(M, [n, m]));
    const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
    const py = spawnSync('/usr/bin/python3', [path.join(process.cwd(), 'bench/ot/pot_bench.py'), file, String(REG), String(REPS), withEmd ? 'emd' : 'no-emd'], {
      encoding: 'utf8',
      env,
    });
    fs.rmSync(file, { force: true });
    if (py.status === 0) res.pot = JSON.parse(py.stdout.trim().split('\n').pop()!);
    else console.error(`POT run failed for ${n}×${m}: ${py.stderr.slice(-500)}`);
  }
  return res;
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--help' || args[0] === '-h') {
    console.log(
      'Usage: node dist-bench/ot/ot.bench.js [--sizes 64,256,1024,3072,96x64] [--no-pot] [--no-emd] [--ort-threads N] [--thp] [--reps N] [--out FILE]',
    );
    return;
  }
  if (args[0] === '--child') {
    const [n, m] = args[1].split('x').map(Number);
    const threads = args[4] && args[4] !== 'default' ? Number(args[4]) : undefined;
    if (args[5]) REPS = Number(args[5]);
    console.log(JSON.stringify(await runOne(n, m, args[2] === 'pot', args[3] !== 'noemd', threads)));
    return;
  }
  const opt = (name: string): string | undefined => {
    const k = args.indexOf(name);
    return k >= 0 ? args[k + 1] : undefined;
  };
  const sizes = (opt('--sizes') ?? '64,256,1024,3072,96x64').split(',').map((s) => (s.includes('x') ? s : `${s}x${s}`));
  const havePot = !args.includes('--no-pot') && spawnSync('/usr/bin/python3', ['-c', 'import ot'], { encoding: 'utf8' }).status === 0;
  const withEmd = !args.includes('--no-emd');
  const thp = args.includes('--thp');
  const ortThreads = opt('--ort-threads') ?? 'default';
  REPS = Number(opt('--reps') ?? REPS);
  const childEnv = thp ? { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' } : process.env;
  const results: SizeResult[] = [];
  for (const size of sizes) {
    const child = spawnSync(process.execPath, [__filename, '--child', size, havePot ? 'pot' : 'nopot', withEmd ? 'emd' : 'noemd', ortThreads, String(REPS)], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
      env: childEnv,
    });
    if (child.status !== 0) {
      console.error(child.stderr);
      process.exit(1);
    }
    const r = JSON.parse(child.stdout.trim().split('\n').pop()!) as SizeResult;
    results.push(r);
    console.log(JSON.stringify(r));
  }
  const ref = (potTimings as { timings: Record<string, { median_s: number }> }).timings;
  const lines: string[] = [];
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  lines.push('# OT core benchmark (bench/ot/ot.bench.ts)', '');
  lines.push(`Machine: ${os.cpus().length} cores, ${cpu}; Node ${process.version}; ${os.platform()} ${os.release()}.`);
  lines.push(`Date: ${new Date().toISOString().slice(0, 10)}. Costs: Euclidean between random 16-d points / max, uniform marginals; median of ${REPS} runs;`);
  lines.push(
    `Sinkhorn reg ${REG} (Knopp, POT's stopping rule). "JS" is sinkhorn(), single-threaded float64 (its O(n·m) passes in WebAssembly SIMD), timed after`,
  );
  lines.push('a JIT warm-up (untimed runs on small problems, and one untimed run at the size itself up to 1024²) as in a fusion');
  lines.push('run, where the solvers are called once per layer. "ORT" is sinkhornAsync({ backend: \'ort\' }): the whole solve as one');
  lines.push(
    `float64 ONNX graph on onnxruntime-node's CPU provider (${ortThreads === 'default' ? 'default intra-op threads: 1 on ≤ 2 CPUs' : ortThreads === '0' ? "ONNX Runtime's default intra-op threads" : `${ortThreads} intra-op thread(s)`}), timed after one untimed call at the size`,
  );
  lines.push('(session and memory arena warm); "ORT first" is that first call at the size.');
  lines.push(
    thp
      ? 'Size processes ran with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (transparent huge pages for large malloc buffers).'
      : 'Default glibc malloc settings (4 KiB pages for the plan buffers).',
  );
  lines.push(
    havePot
      ? 'POT 0.8.2 (Debian python3-pot, NumPy, 1 BLAS thread) measured side by side on the same cost matrices.'
      : 'POT not installed: only the recorded timings.json are compared.',
  );
  lines.push('', '"POT (file)" = fixtures/pot/timings.json (another run on a busy machine of the same kind); "POT (here)" = measured in this run.', '');
  const ratio = (ours: number, theirs?: number | null): string => (theirs ? `${(ours / (theirs * 1000)).toFixed(2)}×` : '—');
  if (withEmd) {
    lines.push('| size | EMD otfuse | EMD POT (here) | EMD POT (file) | ratio vs here | ratio vs file | EMD path |');
    lines.push('|---|---|---|---|---|---|---|');
    for (const r of results) {
      const fe = ref[`emd_${r.n}x${r.m}`]?.median_s,
        pe = r.pot?.emd_s;
      lines.push(
        `| ${r.n}×${r.m} | ${fmtMs(r.emd_ms)} | ${pe ? fmtMs(pe * 1000) : '—'} | ${fe ? fmtMs(fe * 1000) : '—'} | ${ratio(r.emd_ms, pe)} | ${ratio(r.emd_ms, fe)} | ${r.emd_method} |`,
      );
    }
    lines.push('');
  }
  lines.push(
    '| size | iters JS / ORT | Sinkhorn JS | Sinkhorn ORT | ORT first | POT (here) | POT (file) | JS / POT here | ORT / POT here | ORT / POT file | max \\|plan ORT − JS\\| |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const fs0 = ref[`sinkhorn0.08_${r.n}x${r.m}`]?.median_s,
      ps = r.pot?.sinkhorn_s;
    lines.push(
      `| ${r.n}×${r.m} | ${r.sinkhorn_iters} / ${r.ort_iters}${r.ort_backend === 'ort' ? '' : ' (JS fallback)'} | ${fmtMs(r.sinkhorn_ms)} | ${fmtMs(r.ort_ms)} | ${fmtMs(r.ort_first_ms)} | ${ps ? fmtMs(ps * 1000) : '—'} | ${fs0 ? fmtMs(fs0 * 1000) : '—'} | ${ratio(r.sinkhorn_ms, ps)} | ${ratio(r.ort_ms, ps)} | ${ratio(r.ort_ms, fs0)} | ${r.ort_vs_js.toExponential(1)} |`,
    );
  }
  lines.push('', 'Ratio = otfuse time / POT time (below 1 = otfuse faster).', '');
  lines.push('| size | ground metric (16-d) | peak RSS otfuse (process) | peak RSS POT (process) | EMD cost otfuse | EMD cost POT |');
  lines.push('|---|---|---|---|---|---|');
  for (const r of results) {
    const ec = (x?: number | null): string => (x === undefined || x === null || Number.isNaN(x) ? '—' : x.toPrecision(12));
    lines.push(
      `| ${r.n}×${r.m} | ${fmtMs(r.metric_ms)} | ${r.maxrss_mb.toFixed(0)} MiB | ${r.pot ? r.pot.maxrss_mb.toFixed(0) + ' MiB' : '—'} | ${ec(r.emd_cost)} | ${ec(r.pot?.emd_cost)} |`,
    );
  }
  const out = opt('--out');
  if (out) {
    fs.writeFileSync(out, lines.join('\n') + '\n');
    console.log(`wrote ${out}`);
  } else console.log(lines.join('\n'));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
