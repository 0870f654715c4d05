// Decoder LMs at scale (issues 29 and 31 item 4): `otfuse fuse --no-eval` on the random-init GPT-2-small pair
// (124M) and the Llama-style GQA/SwiGLU pair (153M, untied) that bench/decoders/make_scale.py writes into
// .cache/decoders-scale/, one child process per run under /usr/bin/time -v: wall time, user and system CPU seconds
// (every thread), peak RSS, the load average before and after, and run.json's stage timings. The target: ≤ 3 min and
// ≤ 2.5 GB per pair on the 2-core machine. Compare user CPU seconds, not wall time, when the machine is shared.
// Usage: node $(node scripts/test-one.mjs bench/decoders/scale.bench.ts) [--cases gpt2,llama] [--max-length 128]
//          [--json bench/decoders/scale-results.json]   (after `npm run build`: it runs dist/cli.js)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTimed, writeBenchResults } from '../common';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const k = args.indexOf(name);
  return k >= 0 ? args[k + 1] : dflt;
};
const dir = '.cache/decoders-scale';
const PAIRS: Record<string, [string, string]> = { gpt2: ['gpt2-124m-s0', 'gpt2-124m-s1'], llama: ['llama-gqa-s0', 'llama-gqa-s1'] };

interface Row {
  case: string;
  params: number;
  max_length: number;
  wall_s: number;
  user_s: number;
  sys_s: number;
  peak_rss_mb: number;
  timings: Record<string, number>;
  load_avg_before: number[];
  load_avg_after: number[];
}

function runCase(name: string, maxLength: number): Row {
  const pair = PAIRS[name];
  if (!pair) throw new Error(`no case '${name}' (gpt2, llama)`);
  const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as { models: Record<string, { parameters: number }> };
  const runs = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-decscale-'));
  const load_avg_before = os.loadavg();
  const cli = ['dist/cli.js', 'fuse', ...pair.map((m) => path.join(dir, m)), '--data', path.join(dir, 'calib.txt'), '--max-length', String(maxLength)];
  const r = runTimed([...cli, '--no-eval', '--runs-dir', runs, '--json']);
  const load_avg_after = os.loadavg();
  fs.rmSync(runs, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`${name} failed: ${r.stderr.slice(-2000)}`);
  const rec = (JSON.parse(r.stdout) as { record: { timings: Record<string, number> } }).record;
  return {
    case: name,
    params: summary.models[pair[0]].parameters,
    max_length: maxLength,
    wall_s: r.wall_s,
    user_s: r.user_s,
    sys_s: r.sys_s,
    peak_rss_mb: r.peak_rss_mb,
    timings: rec.timings,
    load_avg_before,
    load_avg_after,
  };
}

function main(): void {
  const cases = opt('--cases', 'gpt2,llama').split(',');
  const maxLength = Number(opt('--max-length', '128'));
  const out = opt('--json', 'bench/decoders/scale-results.json');
  const rows: (Row & { cpu_s: number })[] = [];
  for (const c of cases) {
    const row = { ...runCase(c, maxLength), cpu_s: 0 };
    row.cpu_s = Math.round((row.user_s + row.sys_s) * 100) / 100;
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  writeBenchResults(out, {
    calibration: `${dir}/calib.txt, ${maxLength}-token blocks`,
    target: 'each pair ≤ 180 s wall and ≤ 2.5 GB peak RSS on the 2-core machine',
    columns: [
      { key: 'case', label: 'pair', format: 'text' },
      { key: 'params', label: 'parameters', format: 'int' },
      { key: 'wall_s', label: 'wall s', format: 'fixed', digits: 0 },
      { key: 'cpu_s', label: 'user+sys CPU s', format: 'fixed', digits: 0 },
      { key: 'peak_rss_mb', label: 'peak RSS MB', format: 'fixed', digits: 0 },
    ],
    rows,
  });
}

main();
