// Refit linear algebra at ViT-B/BERT-base widths: one layer's dense float64 work (regmean, two parents), with the
// code before this change ('before': both parents' Grams moved, six error traces, the SPD solve unblocked in JS)
// or now ('after': the anchor's identity move skipped, four traces, the blocked solve with ONNX Runtime products).
// Synthetic SPD Grams of the right size (the time does not depend on the values). Prints process CPU seconds
// (all threads, incl. ONNX Runtime's) and wall seconds per stage.
// Usage: node dist-bench/fusion/refit-scale.js [d,o ...] [--before]   e.g. 768,3072 3072,768 (after; --before: both, interleaved)
import { mm, mmT, releaseRefitSessions } from '../../worker/fusion/refit';
import { solveSpd } from '../../worker/fusion/dense';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

async function timed<T>(f: () => Promise<T> | T): Promise<{ v: T; cpu: number; wall: number }> {
  const c0 = process.cpuUsage(),
    t0 = performance.now();
  const v = await f();
  const c = process.cpuUsage(c0);
  return { v, cpu: (c.user + c.system) / 1e6, wall: (performance.now() - t0) / 1000 };
}

async function layer(d: number, o: number, version: 'before' | 'after'): Promise<void> {
  const engine = version === 'before' ? 'direct' : 'auto';
  const n = d + 1,
    r = rng(d + o);
  // Gram of 2n random rows (SPD, moderately conditioned), a permutation map and two weight stacks.
  const rows = 2 * n,
    A = Float64Array.from({ length: rows * n }, r);
  const G = await mmT(A, A, rows, n, n);
  const T = new Float64Array(n * n);
  T.fill(0);
  for (let i = 0; i < n; i++) T[i * n + (i < d ? (i * 7 + 3) % d : d)] = 1; // a permutation (7 ∤ d)
  const Ws = [0, 1].map(() => Float64Array.from({ length: n * o }, r));
  const stages: Record<string, { cpu: number; wall: number }> = {};
  const gkk: Float64Array[] = [];
  const move = await timed(async () => {
    for (let k = 0; k < 2; k++) gkk.push(k === 0 && version === 'after' ? G : await mmT(T, await mm(G, T, n, n, n), n, n, n));
  });
  stages.move = move;
  const lhs = new Float64Array(n * n),
    rhs = new Float64Array(n * o);
  stages.rhs = await timed(async () => {
    for (let k = 0; k < 2; k++) {
      for (let i = 0; i < lhs.length; i++) lhs[i] += 0.5 * gkk[k][i];
      const GW = await mm(gkk[k], Ws[k], n, n, o);
      for (let i = 0; i < rhs.length; i++) rhs[i] += 0.5 * GW[i];
    }
  });
  let diag = 0;
  for (let i = 0; i < n; i++) diag += lhs[i * n + i];
  const lambda = (1e-4 * diag) / n;
  const solve = await timed(() => solveSpd(lhs, n, rhs, o, lambda, engine));
  stages.solve = solve;
  stages.errors = await timed(async () => {
    for (let t = 0; t < (version === 'after' ? 4 : 6); t++) await mm(gkk[t % 2], solve.v, n, n, o);
  }); // tr(XᵀGY) forms
  let res = 0,
    nrm = 0; // residual of the solve on a few entries
  for (const [i, j] of [
    [0, 0],
    [n - 1, o - 1],
    [n >> 1, o >> 1],
  ]) {
    let s = lambda * solve.v[i * o + j];
    for (let k = 0; k < n; k++) s += lhs[i * n + k] * solve.v[k * o + j];
    res = Math.max(res, Math.abs(s - rhs[i * o + j]));
    nrm = Math.max(nrm, Math.abs(rhs[i * o + j]));
  }
  const tot = Object.values(stages).reduce((s, x) => ({ cpu: s.cpu + x.cpu, wall: s.wall + x.wall }), { cpu: 0, wall: 0 });
  console.log(
    JSON.stringify({
      d,
      o,
      version,
      ...Object.fromEntries(Object.entries({ ...stages, total: tot }).map(([k, v]) => [k, `${v.cpu.toFixed(2)} cpu / ${v.wall.toFixed(2)} wall`])),
      relResidual: +(res / nrm).toExponential(2),
    }),
  );
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const before = args.includes('--before');
  const shapes = args.filter((a) => a.includes(',')).map((a) => a.split(',').map(Number) as [number, number]);
  for (const [d, o] of shapes.length
    ? shapes
    : ([
        [768, 3072],
        [3072, 768],
      ] as [number, number][])) {
    if (before) await layer(d, o, 'before');
    await layer(d, o, 'after');
  }
  await releaseRefitSessions();
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
