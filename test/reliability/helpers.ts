// Helpers for the hostile-input tests: models with external data, CLI runs with a wall-clock and memory watch.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { loadModel } from '../../worker/onnx/model';
import { CLI, ROOT, VIT } from '../helpers';

/** Writes the fixture ViT into `dir` with one 2-D initializer moved to external data at `location`. */
export function modelWithExternal(dir: string, location: string, name = 'ext.onnx'): { file: string; tensor: string; bytes: number } {
  const model = loadModel(path.join(VIT, 'vit48_s10.onnx'));
  const target = model.graph.initializer!.find((t) => (t.dims ?? []).length === 2)!;
  const bytes = target.rawData!.length;
  target.externalData = [{ key: 'location', value: location }];
  target.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  target.rawData = new Uint8Array(0);
  const file = path.join(dir, name);
  fs.writeFileSync(file, onnx.ModelProto.encode(model.proto).finish());
  return { file, tensor: target.name!, bytes };
}

export interface WatchedRun { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; peakRssMiB: number; timedOut: boolean }

/** Runs the built CLI with a timeout; the child reports its own peak RSS (maxRSS) on exit through an env hook. */
export function runCliWatched(args: string[], options: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): WatchedRun {
  const r = spawnSync(process.execPath, ['--require', path.join(ROOT, 'test', 'reliability', 'maxrss.cjs'), CLI, ...args], {
    cwd: options.cwd ?? ROOT, encoding: 'utf8', timeout: options.timeoutMs ?? 60_000, killSignal: 'SIGKILL',
    env: { ...process.env, ...options.env },
  });
  const m = /OTFUSE_MAXRSS_KB=(\d+)/.exec(r.stderr ?? '');
  const stderr = (r.stderr ?? '').replace(/OTFUSE_MAXRSS_KB=\d+\n?/, '');
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr, peakRssMiB: m ? Number(m[1]) / 1024 : NaN, timedOut: r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' };
}

/** A stack trace in user-facing output ("    at fn (file:line:col)"). */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+:\d+:\d+\)?$/m.test(text);
}
