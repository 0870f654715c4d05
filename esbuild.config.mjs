// One build for every bundle: extension host, worker process, CLI, webview, and the test/bench entry points.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { watPlugin } from './scripts/esbuild-wat.mjs';

const watch = process.argv.includes('--watch');
const external = ['vscode', 'onnxruntime-node'];

const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', sourcemap: 'linked', external, logLevel: 'warning', plugins: [watPlugin] };

function findEntries(dir, suffix) {
  if (!fs.existsSync(dir)) return [];
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findEntries(p, suffix));
    else if (entry.name.endsWith(suffix)) found.push(p);
  }
  return found;
}

const builds = [
  { ...common, entryPoints: { cli: 'worker/cli.ts', host: 'worker/host.ts' }, outdir: 'dist' },
  { ...common, entryPoints: { extension: 'extension/extension.ts' }, outdir: 'dist', skip: !fs.existsSync('extension/extension.ts') },
  {
    ...common,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    entryPoints: { webview: 'webview/main.ts' },
    outdir: 'dist',
    skip: !fs.existsSync('webview/main.ts'),
  },
  // Engine tests (node:test) and benchmarks: each file its own bundle so they run without a TS loader.
  { ...common, entryPoints: findEntries('test', '.test.ts'), outdir: 'dist-test', outbase: 'test' },
  { ...common, entryPoints: findEntries('bench', '.ts'), outdir: 'dist-bench', outbase: 'bench' },
  // Extension-host suite (mocha), run by @vscode/test-electron or inside code-server.
  { ...common, entryPoints: findEntries('test/exthost', '.ts'), outdir: 'dist-test/exthost', outbase: 'test/exthost', skip: !fs.existsSync('test/exthost') },
].filter((b) => !b.skip && (!Array.isArray(b.entryPoints) || b.entryPoints.length > 0));

for (const { skip: _skip, ...options } of builds) {
  if (watch) await (await esbuild.context(options)).watch();
  else await esbuild.build(options);
}
