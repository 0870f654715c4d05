// Regenerates worker/fusion/recipe.schema.json from the option registries (RECIPE_FIELDS in worker/fusion/recipe.ts).
// Usage: node scripts/gen-recipe-schema.mjs [--check]   (--check: exit 1 when the committed file is stale)
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { watPlugin } from './esbuild-wat.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-schema-'));
const out = path.join(tmp, 'recipe.cjs');
await esbuild.build({
  entryPoints: [path.join(root, 'worker/fusion/recipe.ts')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  outfile: out,
  external: ['onnxruntime-node'],
  logLevel: 'warning',
  absWorkingDir: root,
  plugins: [watPlugin],
});
const { recipeSchemaText } = createRequire(import.meta.url)(out);
fs.rmSync(tmp, { recursive: true, force: true });
const file = path.join(root, 'worker/fusion/recipe.schema.json');
const text = recipeSchemaText();
if (process.argv.includes('--check')) {
  const same = fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text;
  if (!same) {
    console.error(`${file} is stale: run node scripts/gen-recipe-schema.mjs`);
    process.exit(1);
  }
} else {
  fs.writeFileSync(file, text);
  console.log(`wrote ${path.relative(root, file)}`);
}
