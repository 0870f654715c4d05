// Scale benchmark (issue 16): `otfuse fuse --no-eval` on the random-init ViT-S/16, ViT-B/16 and BERT-base pairs
// written by scripts/fixtures/make_scale.py into .cache/scale/, one child process per run under /usr/bin/time -v:
// wall time, process CPU time (user + sys, every thread), peak RSS, and run.json's stage timings and capture record.
// The cases run interleaved (round-robin over --repeats) so a busy machine slows every case alike; CPU seconds
// are the comparable number when the machine is shared.
// Usage: node dist-bench/scale/scale.bench.js [--cases vitS@64,vitS@200,vitB@200,bertB@200] [--repeats 1]
//          [--out bench/scale/RESULTS.md] [--json .cache/scale/scale-results.json] [-- extra fuse flags]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { machine, markdownTable, runTimed } from '../common';

const args = process.argv.slice(2);
const dashes = args.indexOf('--');
const extra = dashes >= 0 ? args.slice(dashes + 1) : [];
const opt = (name: string, dflt: string) => {
  const k = args.indexOf(name);
  return k >= 0 && (dashes < 0 || k < dashes) ? args[k + 1] : dflt;
};
const cases = opt('--cases', 'vitS@64,vitS@200,vitB@200,bertB@200').split(',');
const repeats = Number(opt('--repeats', '1'));
const outMd = opt('--out', 'bench/scale/RESULTS.md');
const outJson = opt('--json', '.cache/scale/scale-results.json');
const dir = '.cache/scale';

interface Row {
  case: string;
  model: string;
  params: number;
  width: number;
  samples: number;
  wall_s: number;
  cpu_s: number;
  peak_rss_mb: number;
  timings: Record<string, number>;
  capture?: Record<string, unknown>;
  peak_rss_run_json_mb?: number;
  load_avg: number[];
}

function runCase(c: string): Row {
  const [name, samplesText] = c.split('@');
  const samples = Number(samplesText ?? 200);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Record<
    string,
    { config: { hidden: number }; calib: string; models: { file: string; params: number }[] }
  >;
  const m = manifest[name];
  if (!m) throw new Error(`no ${name} in ${dir}/manifest.json: run /usr/bin/python3 scripts/fixtures/make_scale.py`);
  const runs = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-scale-'));
  const load_avg = os.loadavg();
  const cli = [
    'dist/cli.js',
    'fuse',
    ...m.models.map((x) => path.join(dir, x.file)),
    '--data',
    path.join(dir, m.calib),
    '--samples',
    String(samples),
    '--no-eval',
    '--runs-dir',
    runs,
    '--json',
    ...extra,
  ];
  const r = runTimed(cli);
  fs.rmSync(runs, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`${c} failed: ${r.stderr.slice(-2000)}`);
  const rec = (JSON.parse(r.stdout) as { record: { timings: Record<string, number>; capture?: Record<string, unknown>; peakRssBytes?: number } }).record;
  return {
    case: c,
    model: name,
    params: m.models[0].params,
    width: m.config.hidden,
    samples,
    wall_s: r.wall_s,
    cpu_s: r.user_s + r.sys_s,
    peak_rss_mb: r.peak_rss_mb,
    timings: rec.timings,
    capture: rec.capture,
    peak_rss_run_json_mb: rec.peakRssBytes ? rec.peakRssBytes / 2 ** 20 : undefined,
    load_avg,
  };
}

function main(): void {
  const rows: Row[] = [];
  for (let rep = 0; rep < repeats; rep++) {
    for (const c of cases) {
      const row = runCase(c);
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
  fs.mkdirSync(path.dirname(outJson), { recursive: true });
  fs.writeFileSync(outJson, JSON.stringify({ machine: machine(), extra, rows }, null, 1));
  const f = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));
  const table = markdownTable(
    [
      'model',
      'params',
      'samples',
      'tokens kept / candidates',
      'wall s',
      'CPU s',
      'peak RSS GB',
      'capture s (CPU s)',
      'align s',
      'average + write s',
      'load avg',
    ],
    rows.map((r) => {
      const cap = r.capture as { tokens?: { candidates: number; kept: number }[]; cpuSeconds?: number } | undefined;
      const tok = cap?.tokens?.reduce((best, t) => (t.candidates > best.candidates ? t : best), cap.tokens[0]); // the token tensors, not a pooler
      return [
        r.model,
        `${(r.params / 1e6).toFixed(1)} M`,
        r.samples,
        tok ? `${tok.kept} / ${tok.candidates}` : '—',
        f(r.wall_s, 0),
        f(r.cpu_s, 0),
        f(r.peak_rss_mb / 1024, 2),
        `${f(r.timings.activations, 0)} (${f(cap?.cpuSeconds, 0)})`,
        f(r.timings.align, 0),
        f((r.timings.average ?? 0) + (r.timings.write ?? 0), 1),
        r.load_avg.map((x) => x.toFixed(0)).join('/'),
      ];
    }),
  );
  const md = `# Scale benchmark (bench/scale/scale.bench.ts)\n\n${machine()}. \`otfuse fuse --no-eval\` ${extra.join(' ')}, default recipe.\n\n${table}\n`;
  fs.writeFileSync(outMd, md);
  console.log(md);
}

main();
