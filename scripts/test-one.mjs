// Builds the given engine test files (test/**/*.test.ts) with the project's esbuild options (the .wat plugin
// included) into one temp folder inside the repo, so bundles resolve node_modules. Prints the bundles' paths.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { watPlugin } from './esbuild-wat.mjs';

const files = process.argv.slice(2);
fs.mkdirSync('.cache/test-one', { recursive: true });
const out = fs.mkdtempSync('.cache/test-one/run.');
const outs = [];
for (const f of files) {
  const outfile = path.join(out, `${path.basename(f, '.ts')}.js`);
  await esbuild.build({
    entryPoints: [f],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['onnxruntime-node', 'vscode'],
    sourcemap: true,
    logLevel: 'warning',
    plugins: [watPlugin],
    outfile,
  });
  outs.push(outfile);
}
console.log(outs.join('\n'));
