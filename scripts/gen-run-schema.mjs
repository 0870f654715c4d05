// Writes worker/runs/run.schema.json (run.json's JSON Schema) from worker/runs/schema.ts, for editors and other
// tools; the engine validates with the same object.
// Usage: node scripts/gen-run-schema.mjs [--check]   (--check: exit 1 when the committed file is stale)
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-run-schema-'));
const out = path.join(tmp, 'schema.cjs');
await esbuild.build({
  entryPoints: [path.join(root, 'worker/runs/schema.ts')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  outfile: out,
  logLevel: 'warning',
  absWorkingDir: root,
});
const { runSchemaText } = createRequire(import.meta.url)(out);
fs.rmSync(tmp, { recursive: true, force: true });
const file = path.join(root, 'worker/runs/run.schema.json');
const text = runSchemaText();
if (process.argv.includes('--check')) {
  if (!(fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text)) {
    console.error(`${file} is stale: run node scripts/gen-run-schema.mjs`);
    process.exit(1);
  }
} else {
  fs.writeFileSync(file, text);
  console.log(`wrote ${path.relative(root, file)}`);
}
