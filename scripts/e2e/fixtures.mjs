// Fixtures the UI tests make at run time (small, from the committed examples): a permuted copy of a ViT.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { REPO } from './lib.mjs';
import { watPlugin } from '../esbuild-wat.mjs';

/** Writes `output`: `input` with its neurons permuted (seeded), through the engine's own model code. */
export async function permutedCopy(input, output, seed = 7) {
  // .cache/ is git-ignored: a fresh clone has none yet.
  fs.mkdirSync(path.join(REPO, '.cache'), { recursive: true });
  const dir = fs.mkdtempSync(path.join(REPO, '.cache', 'e2e-fixture-'));
  const outfile = path.join(dir, 'permuted-copy.js');
  try {
    await esbuild.build({
      entryPoints: [path.join(REPO, 'test/fusion/permuted-copy-cli.ts')],
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      external: ['onnxruntime-node', 'vscode'],
      logLevel: 'warning',
      plugins: [watPlugin],
      outfile,
    });
    const r = spawnSync(process.execPath, [outfile, input, output, String(seed)], { encoding: 'utf8', cwd: REPO });
    if (r.status !== 0) throw new Error(`permuted copy failed: ${r.stderr}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
