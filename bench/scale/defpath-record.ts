// Writes bench/scale/defpath-results.json (the "default path" section of BENCHMARKS.md) from the JSON lines that
// bench/scale/default-path.sh prints: per case the default-path fuse (wall, CPU = user + sys, peak RSS, load), its
// run.json stage seconds, and the 400 plain forward passes of the same run (two `otfuse eval` of 200 samples);
// the ratio fuse / 400 passes is computed here from those numbers (CPU and wall). Earlier measurements kept in the
// file (memory probes, the demo sweep) are carried over unchanged under their own keys.
// Usage: nice -n 5 bash bench/scale/default-path.sh vitB bertB | tee /tmp/defpath.log
//        node dist-bench/scale/defpath-record.js --log /tmp/defpath.log [--log more.log] [--extra more.json]
//          [--out bench/scale/defpath-results.json]
// --extra: a JSON object of further measurements (e.g. an A/B of the demo's sweep), merged in under its keys.
import fs from 'node:fs';
import { writeBenchResults } from '../common';

interface Step {
  step: string;
  wall_s: number;
  cpu_s: number;
  peak_rss_mb: number;
  load_1min_at_end: number;
}
interface RunLine {
  run: string;
  timings?: Record<string, number>;
  capture?: { mode?: string; passes?: number; cpuSeconds?: number; seconds?: number; samples?: number };
  autotune?: { chosenLabel?: string; trials?: { label: string; estimate?: number; skipped?: string }[] };
}

const CASES: Record<string, string> = {
  vitB: 'ViT-B/16 (86 M params, 200 images × 197 tokens)',
  bertB: 'BERT-base (109 M params, 200 sentences × 128 tokens)',
};

function argsOf(name: string): string[] {
  const out: string[] = [];
  for (let i = 2; i < process.argv.length - 1; i++) if (process.argv[i] === `--${name}`) out.push(process.argv[i + 1]);
  return out;
}

/** One row per case from the script's lines (the last fuse of a case wins when a log holds several). */
export function rowsFromLines(lines: string[]): Record<string, unknown>[] {
  const rows = new Map<string, Record<string, unknown>>();
  let evals: Step[] = [];
  let current: string | undefined;
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    const j = JSON.parse(line) as Step & RunLine;
    if (j.step) {
      const name = j.step.split(' ')[0];
      if (/ fuse /.test(j.step)) {
        current = name;
        evals = [];
        rows.set(name, {
          case: CASES[name] ?? name,
          fuse_cpu_s: j.cpu_s,
          fuse_wall_s: j.wall_s,
          peak_rss_mb: j.peak_rss_mb,
          load_fuse_end: j.load_1min_at_end,
        });
      } else if (/ eval /.test(j.step) && current === name) {
        evals.push(j);
        const row = rows.get(name)!;
        row.passes400_cpu_s = Number(evals.reduce((s, e) => s + e.cpu_s, 0).toFixed(1));
        row.passes400_wall_s = Number(evals.reduce((s, e) => s + e.wall_s, 0).toFixed(1));
        row.passes_measured = evals.length * 200;
        if (evals.length === 2) {
          row.ratio_cpu = `${((row.fuse_cpu_s as number) / (row.passes400_cpu_s as number)).toFixed(2)}×`;
          row.ratio_wall = `${((row.fuse_wall_s as number) / (row.passes400_wall_s as number)).toFixed(2)}×`;
        }
        row.load = `${Math.min(...evals.map((e) => e.load_1min_at_end), row.load_fuse_end as number).toFixed(0)}–${Math.max(...evals.map((e) => e.load_1min_at_end), row.load_fuse_end as number).toFixed(0)}`;
      }
    } else if (j.run && current) {
      const row = rows.get(current)!;
      const t = j.timings ?? {};
      const s = (k: string) => (typeof t[k] === 'number' ? t[k].toFixed(0) : '–');
      row.stages_wall_s = `analyze ${s('analyze')}, capture ${s('activations')}, align ${s('align')}, refit ${s('refit')}, write ${s('write')}`;
      row.capture_cpu_s = j.capture?.cpuSeconds !== undefined ? Number(j.capture.cpuSeconds.toFixed(1)) : undefined;
      // calibration samples each capture passed (run.json capture.samples; absent before the token budget capped them: 200)
      row.capture_samples = j.capture?.samples ?? 200;
      row.timings = t;
      const ran = (j.autotune?.trials ?? []).filter((x) => !x.skipped).length;
      row.autotune = j.autotune
        ? `${ran} trials run; ${j.autotune.chosenLabel}${ran ? '' : ` (untuned: first estimate ${j.autotune.trials?.[0]?.estimate?.toFixed(0)} s)`}`
        : 'no auto-tune';
    }
  }
  return [...rows.values()];
}

function main(): void {
  const out = argsOf('out')[0] ?? 'bench/scale/defpath-results.json';
  const logs = argsOf('log');
  if (!logs.length) throw new Error('give --log FILE (the output of bench/scale/default-path.sh)');
  const rows = rowsFromLines(logs.flatMap((f) => fs.readFileSync(f, 'utf8').split('\n')));
  const previous = fs.existsSync(out) ? (JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, unknown>) : {};
  const carried: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(previous))
    if (!['format', 'command', 'machine', 'date', 'load', 'caption', 'columns', 'rows'].includes(k)) carried[k] = v;
  // the earlier file's table (BERT-base memory before/after the graph-analysis fix) stays as data
  if (previous.rows && !carried.bertB_memory_table) carried.bertB_memory_table = { caption: previous.caption, rows: previous.rows };
  for (const f of argsOf('extra')) Object.assign(carried, JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, unknown>);
  writeBenchResults(out, {
    caption:
      'The default path (`otfuse fuse A B --data CALIB --no-eval`, auto-tune at its default budget) next to 400 plain forward passes of the same model in the same run (`bench/scale/default-path.sh`); CPU = user + sys of every thread (`/usr/bin/time -v`)',
    columns: [
      { key: 'case', label: 'pair' },
      { key: 'autotune', label: 'auto-tune' },
      { key: 'fuse_cpu_s', label: 'fuse CPU s', format: 'fixed', digits: 1 },
      { key: 'fuse_wall_s', label: 'fuse wall s', format: 'fixed', digits: 0 },
      { key: 'peak_rss_mb', label: 'peak RSS MiB', format: 'int' },
      { key: 'capture_samples', label: 'samples passed', format: 'int' },
      { key: 'passes400_cpu_s', label: '400 passes CPU s', format: 'fixed', digits: 1 },
      { key: 'ratio_cpu', label: 'fuse / 400 passes (CPU)' },
      { key: 'ratio_wall', label: '(wall)' },
      { key: 'stages_wall_s', label: 'run.json stages (wall s)' },
      { key: 'load', label: 'load (1 min)' },
    ],
    rows,
    ...carried,
  });
}

if (process.argv[1]?.endsWith('defpath-record.js')) main();
