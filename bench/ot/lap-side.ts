// The exact linear assignment (worker/ot/lap.ts, what decoder fusion solves its MLP and residual maps with) vs
// scipy's linear_sum_assignment (bench/ot/lap_side.py, Debian's /usr/bin/python3, one thread), on the same cost
// matrices, in user+system CPU seconds of one thread per solve (median over --reps; process.cpuUsage / getrusage).
// Costs: iid uniform [0, 1) at 768², 2048², 3072², and real ones: the squared-distance costs decoder fusion builds
// between two random-init parents' activations (bench/ot/lap-costs.ts writes them from .cache/decoders-scale:
// GPT-2's residual stream 768², the Llama pair's SwiGLU MLP 2048², GPT-2's MLPs 3072² at layers 0, 6, 11). Also
// the same solver with its shortest-path search in plain JS (lapEngine.wasmMin = Infinity) for the kernel's share.
// Parity: |cost − scipy's cost| / |scipy's cost| (both optimal: equal up to rounding; assignments may differ on ties).
// Usage: node $(node scripts/test-one.mjs bench/ot/lap-side.ts) [--real .cache/lap-costs] [--reps 1] [--out bench/ot/lap-side.json]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { linearAssignment } from '../../worker/ot';
import { lapEngine } from '../../worker/ot/lap';
import { seededRandom } from '../../worker/random';
import { writeBenchResults } from '../common';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const k = args.indexOf(name);
  return k >= 0 ? args[k + 1] : dflt;
};

const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const median = (xs: number[]): number => [...xs].sort((p, q) => p - q)[xs.length >> 1];

interface Case {
  name: string;
  n: number;
  C: Float64Array;
}

function cases(realDir: string): Case[] {
  const out: Case[] = [];
  for (const n of [768, 2048, 3072]) {
    const r = seededRandom(n);
    out.push({ name: `uniform ${n}²`, n, C: Float64Array.from({ length: n * n }, r) });
  }
  const real: [string, string, number][] = [
    ['GPT-2 residual', 'gpt2-resid.f64', 768],
    ['Llama MLP layer 0', 'llama-mlp.0.f64', 2048],
    ['GPT-2 MLP layer 0', 'gpt2-mlp.0.f64', 3072],
    ['GPT-2 MLP layer 6', 'gpt2-mlp.6.f64', 3072],
    ['GPT-2 MLP layer 11', 'gpt2-mlp.11.f64', 3072],
  ];
  for (const [label, file, n] of real) {
    const f = path.join(realDir, file);
    if (!fs.existsSync(f)) {
      console.error(`(no ${f}: run bench/ot/lap-costs.ts first; skipped)`);
      continue;
    }
    const raw = fs.readFileSync(f);
    out.push({ name: `${label} ${n}²`, n, C: new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) });
  }
  return out;
}

function timeSolve(C: Float64Array, n: number, reps: number, wasmMin: number): { cpu_s: number; cost: number } {
  const before = lapEngine.wasmMin;
  lapEngine.wasmMin = wasmMin;
  try {
    const ts: number[] = [];
    let cost = NaN;
    for (let r = 0; r < reps; r++) {
      const t = cpu();
      cost = linearAssignment(C, n).cost;
      ts.push(cpu() - t);
    }
    return { cpu_s: median(ts), cost };
  } finally {
    lapEngine.wasmMin = before;
  }
}

function main(): void {
  const reps = Number(opt('--reps', '1'));
  const out = opt('--out', 'bench/ot/lap-side.json');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-lap-side-'));
  const rows = [];
  // JIT / kernel warm-up
  timeSolve(Float64Array.from({ length: 256 * 256 }, seededRandom(1)), 256, 3, 32);
  timeSolve(Float64Array.from({ length: 256 * 256 }, seededRandom(1)), 256, 3, Infinity);
  try {
    for (const c of cases(opt('--real', '.cache/lap-costs'))) {
      const wasm = timeSolve(c.C, c.n, reps, 32);
      const js = timeSolve(c.C, c.n, reps, Infinity);
      const file = path.join(tmp, 'C.f64');
      fs.writeFileSync(file, c.C);
      const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
      const py = spawnSync('/usr/bin/python3', [path.join(process.cwd(), 'bench/ot/lap_side.py'), file, String(c.n), String(reps)], { encoding: 'utf8', env });
      if (py.status !== 0) throw new Error(`scipy run failed for ${c.name}: ${py.stderr.slice(-800)}`);
      const sp = JSON.parse(py.stdout.trim().split('\n').pop()!) as { cpu_s: number; cost: number; scipy: string };
      const row = {
        case: c.name,
        otfuse_s: wasm.cpu_s,
        js_s: js.cpu_s,
        scipy_s: sp.cpu_s,
        ratio: wasm.cpu_s / sp.cpu_s,
        cost_rel_diff: Math.abs(wasm.cost - sp.cost) / Math.abs(sp.cost),
        cost_rel_diff_text: (Math.abs(wasm.cost - sp.cost) / Math.abs(sp.cost)).toExponential(1),
        js_equal: js.cost === wasm.cost,
        scipy: sp.scipy,
      };
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  writeBenchResults(out, {
    command: `node .cache/test-one/run.*/lap-side.js --reps ${reps} (bench/ot/lap-side.ts)`,
    load: os.loadavg()[0],
    columns: [
      { key: 'case', label: 'cost matrix', format: 'text' },
      { key: 'otfuse_s', label: 'otfuse CPU s', format: 'fixed', digits: 2 },
      { key: 'js_s', label: 'same, JS search CPU s', format: 'fixed', digits: 2 },
      { key: 'scipy_s', label: 'scipy CPU s', format: 'fixed', digits: 2 },
      { key: 'ratio', label: 'otfuse / scipy', format: 'fixed', digits: 2 },
      { key: 'cost_rel_diff_text', label: '|Δ cost| / cost', format: 'text' },
    ],
    rows,
  });
}

main();
