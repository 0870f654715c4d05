// glibc's malloc settings per kind of job. GLIBC_TUNABLES is read once, when a process starts, so a process is
// started with the settings of the job it will run: the CLI runs itself again in a child process
// (`rerunWithTunables`), the extension's client restarts an idle worker whose settings differ (client.ts).
import { spawn } from 'node:child_process';
import os from 'node:os';
import type { EngineMethod } from '../ipc';

/**
 * Finetuning frees and reallocates every step's activations inside ONNX Runtime: with glibc's defaults (an mmap
 * threshold that rises to 32 MiB after the first large free) the freed buffers stay in malloc's heaps, ~1.3 GiB for
 * ViT-B/16 at batch 8 (peak 5.3–5.6 GiB); a fixed 4 MiB threshold returns every large buffer to the system on free
 * (peak 4.1–4.3 GiB) at 5–10 % of the step's speed. The same setting makes a ViT-B fuse ~20 % slower (211 s vs
 * 175 s) for 0.2 GiB less, so every other job keeps glibc's defaults. (BENCHMARKS.md, "Finetune at ViT-B/16 scale".)
 */
const TUNABLES: Partial<Record<EngineMethod, string>> = {
  finetune: 'glibc.malloc.mmap_threshold=4194304',
  finetuneRun: 'glibc.malloc.mmap_threshold=4194304',
};

/** The GLIBC_TUNABLES a process running `method` should start with ('' = glibc's defaults). A user's own setting wins. */
export function mallocTunables(method: EngineMethod, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.GLIBC_TUNABLES !== undefined) return env.GLIBC_TUNABLES;
  return platform === 'linux' ? (TUNABLES[method] ?? '') : '';
}

/** Set in the child `rerunWithTunables` starts: the parent's pid (the child cancels its job if that parent dies). */
export const RERUN_PARENT_ENV = 'OTFUSE_RERUN_PARENT';

/**
 * Runs this CLI invocation again in a child process whose GLIBC_TUNABLES is `tunables`; resolves to the child's
 * exit code. The child has its own process group, so a terminal's Ctrl-C reaches this process only and is passed on
 * once per press (the child's first cancels cleanly, a second quits), as are SIGTERM and SIGHUP.
 */
export function rerunWithTunables(tunables: string): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    detached: true,
    env: { ...process.env, GLIBC_TUNABLES: tunables, [RERUN_PARENT_ENV]: String(process.pid) },
  });
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const s of signals) process.on(s, forward);
  return new Promise((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`otfuse: cannot start the job's process: ${err.message}\n`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      for (const s of signals) process.off(s, forward);
      resolve(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0));
    });
  });
}

/** In a child started by rerunWithTunables: calls `onOrphaned` once if the parent process goes away. */
export function watchRerunParent(onOrphaned: () => void): void {
  const parent = Number(process.env[RERUN_PARENT_ENV]);
  if (!parent) return;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      onOrphaned();
    }
  }, 1000);
  timer.unref();
}
