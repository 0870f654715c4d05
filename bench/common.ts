// Bench helpers: timing, machine description, peak RSS of a child process.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
}

export async function medianSeconds(fn: () => Promise<unknown> | unknown, repeats = 3): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const RSS_HOOK = `process.on('exit', () => { process.stderr.write('\\n@@maxrss ' + process.resourceUsage().maxRSS + '\\n'); });`;

/** Runs `node script args` and returns its wall time and peak resident memory (MiB). */
export function runWithPeakRss(script: string, args: string[]): { seconds: number; peakMiB: number; code: number | null; stdout: string } {
  const hook = path.join(os.tmpdir(), 'otfuse-rss-hook.js');
  fs.writeFileSync(hook, RSS_HOOK);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['-r', hook, script, ...args], { encoding: 'utf8' });
  const seconds = (performance.now() - t0) / 1000;
  const m = /@@maxrss (\d+)/.exec(r.stderr);
  return { seconds, peakMiB: m ? Number(m[1]) / 1024 : NaN, code: r.status, stdout: r.stdout };
}

/** Runs `node args` under GNU time (`/usr/bin/time -v`): its stdout and exit status, and what time measured (wall,
 * user and system seconds, peak RSS in MiB). */
export function runTimed(args: string[]): {
  status: number | null;
  stdout: string;
  stderr: string;
  wall_s: number;
  user_s: number;
  sys_s: number;
  peak_rss_mb: number;
} {
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const field = (label: string) =>
    Number(
      new RegExp(`${label}: ([\\d.:]+)`)
        .exec(r.stderr)?.[1]
        .split(':')
        .reduce((s, x) => s * 60 + Number(x), 0),
    );
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    wall_s: field('Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)'),
    user_s: field('User time \\(seconds\\)'),
    sys_s: field('System time \\(seconds\\)'),
    peak_rss_mb: field('Maximum resident set size \\(kbytes\\)') / 1024,
  };
}

/** The mean of a list. */
export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (n − 1), 0 for fewer than two values: how the benches report a spread over seeds. */
export function sampleSd(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

export function markdownTable(header: string[], rows: (string | number)[][]): string {
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** The value after `--name` on the command line, else `fallback`. */
export function cliArg(name: string, fallback: string): string;
export function cliArg(name: string, fallback?: string): string | undefined;
export function cliArg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`, 2);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** Whether `--name` is on the command line. */
export function cliFlag(name: string): boolean {
  return process.argv.includes(`--${name}`, 2);
}

/** The results format scripts/gen-benchmarks.mjs reads (ARCHITECTURE.md, "How to add a benchmark section"). */
export const BENCH_FORMAT = 'otfuse-bench/1';
/** 1-minute load average when this bench process started (read at import, before the bench's own work). */
const LOAD_AT_START = os.loadavg()[0];

/** The envelope every results file carries: format, command line, machine, date, load at the start. */
export function benchEnvelope(): { format: string; command: string; machine: string; date: string; load: number } {
  const script = path.relative(process.cwd(), process.argv[1] ?? '?');
  const quote = (a: string): string => (/^[\w./=,:@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return {
    format: BENCH_FORMAT,
    command: ['node', script, ...process.argv.slice(2)].map(quote).join(' '),
    machine: machine(),
    date: new Date().toISOString(),
    load: Number(LOAD_AT_START.toFixed(2)),
  };
}

/**
 * Writes a results file for BENCHMARKS.md: the envelope, then `data` (the fields its renderer reads), through a
 * temp file + rename so an interrupted bench leaves the previous results whole. Then run
 * `node scripts/gen-benchmarks.mjs` to regenerate BENCHMARKS.md.
 */
export function writeBenchResults(file: string, data: Record<string, unknown>): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify({ ...benchEnvelope(), ...data }, null, 1) + '\n');
  fs.renameSync(tmp, file);
}
