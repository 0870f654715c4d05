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
