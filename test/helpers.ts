// Shared test helpers: fixture paths, temp folders, running the built CLI.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = process.cwd();
export const VIT = path.join(ROOT, 'test', 'fixtures', 'vit');
export const EXAMPLES = path.join(ROOT, 'examples');
export const CLI = path.join(ROOT, 'dist', 'cli.js');
export const FMNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FMNIST_TEST = {
  path: path.join(FMNIST_DIR, 't10k-images-idx3-ubyte.gz'),
  labels: path.join(FMNIST_DIR, 't10k-labels-idx1-ubyte.gz'),
  mean: [0.286],
  std: [0.353],
};
export const hasFullFmnist = fs.existsSync(FMNIST_TEST.path) && fs.existsSync(FMNIST_TEST.labels);

export function tempDir(prefix = 'otfuse-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    timeout: 600_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
