// Builds the platform-specific .vsix (linux-x64) offline. The extension, worker and webview are bundled by esbuild
// (dist/); the only runtime module left outside the bundles is onnxruntime-node (native), so a clean staging folder
// gets dist/, media/, the README, the recipe schema and node_modules/onnxruntime-node with only its linux/x64
// binaries plus what `require('onnxruntime-node')` loads at runtime (its dist/ and onnxruntime-common's cjs build).
// Then `vsce package --target linux-x64` runs there. Usage: node scripts/e2e/package.mjs [--target linux-x64]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listVsix } from './vsix.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PREFIX = path.resolve(process.env.OTFUSE_E2E_PREFIX ?? path.join(REPO, '.e2e'));
const argTarget = process.argv.indexOf('--target');
const TARGET = argTarget > 0 ? process.argv[argTarget + 1] : 'linux-x64';
const [platform, arch] = TARGET.split('-');
const t0 = Date.now();

const vsce = path.join(PREFIX, 'node_modules/@vscode/vsce/vsce');
if (!fs.existsSync(vsce)) {
  console.error(`@vscode/vsce not found in ${PREFIX}: run \`npm run e2e:install\``);
  process.exit(1);
}
for (const f of ['dist/extension.js', 'dist/host.js', 'dist/webview.js', 'dist/webview.css']) {
  if (!fs.existsSync(path.join(REPO, f))) {
    console.error(`${f} missing: run \`npm run build\``);
    process.exit(1);
  }
}

const stage = path.join(PREFIX, `vsix-stage-${TARGET}`);
fs.rmSync(stage, { recursive: true, force: true });
fs.mkdirSync(stage, { recursive: true });
const copy = (from, to = from) => {
  const src = path.join(REPO, from);
  if (!fs.existsSync(src)) return false;
  fs.mkdirSync(path.dirname(path.join(stage, to)), { recursive: true });
  fs.cpSync(src, path.join(stage, to), { recursive: true });
  return true;
};

// package.json: the manifest without build-time fields; the one runtime dependency that ships in node_modules.
const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
const ortVersion = JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules/onnxruntime-node/package.json'), 'utf8')).version;
delete pkg.devDependencies;
delete pkg.scripts;
delete pkg.bin;
pkg.dependencies = { 'onnxruntime-node': ortVersion };
fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(pkg, null, 2));

for (const f of ['extension.js', 'host.js', 'webview.js', 'webview.css']) copy(`dist/${f}`); // webview.css: the CSS the webview bundle imports (uPlot)
for (const f of fs.readdirSync(path.join(REPO, 'media'))) if (!/^screenshot/.test(f)) copy(`media/${f}`);
if (!copy('extension/README-extension.md', 'README.md')) copy('README.md');
const hasLicense = copy('LICENSE') || copy('LICENSE.md');
copy('CHANGELOG.md');
if (!copy('worker/fusion/recipe.schema.json')) console.warn('warning: worker/fusion/recipe.schema.json not found (jsonValidation points to it)');

// onnxruntime-node: JS + only this platform's native binaries; onnxruntime-common: its CommonJS build.
const ort = 'node_modules/onnxruntime-node';
// Its package.json without the install-time parts: adm-zip/global-agent serve only its download script.
const ortPkg = JSON.parse(fs.readFileSync(path.join(REPO, ort, 'package.json'), 'utf8'));
ortPkg.dependencies = { 'onnxruntime-common': ortPkg.dependencies['onnxruntime-common'] };
delete ortPkg.scripts;
delete ortPkg.devDependencies;
fs.mkdirSync(path.join(stage, ort), { recursive: true });
fs.writeFileSync(path.join(stage, ort, 'package.json'), JSON.stringify(ortPkg, null, 2));
copy(`${ort}/dist`);
for (const lic of ['LICENSE', 'README.md']) copy(`${ort}/${lic}`);
const napi = fs.readdirSync(path.join(REPO, ort, 'bin')).filter((d) => d.startsWith('napi-'));
let natives = 0;
for (const n of napi) if (copy(`${ort}/bin/${n}/${platform}/${arch}`)) natives++;
if (!natives) {
  console.error(`no ONNX Runtime binaries for ${TARGET} in ${ort}/bin`);
  process.exit(1);
}
copy('node_modules/onnxruntime-common/package.json');
copy('node_modules/onnxruntime-common/dist/cjs');
for (const lic of ['LICENSE', 'README.md']) copy(`node_modules/onnxruntime-common/${lic}`);
fs.writeFileSync(path.join(stage, '.vscodeignore'), ['**/*.map', '**/*.ts', '!**/*.d.ts', '.vscodeignore'].join('\n') + '\n');

const out = path.join(REPO, `otfuse-${TARGET}-${pkg.version}.vsix`);
// vsce collects node_modules with `npm ls --production` (offline: it only reads the staged node_modules).
const args = [vsce, 'package', '--target', TARGET, '--out', out, '--no-update-package-json', '--allow-missing-repository', '--no-rewrite-relative-links'];
if (!hasLicense) args.push('--skip-license');
const r = spawnSync(process.execPath, args, { cwd: stage, stdio: 'inherit', env: { ...process.env, VSCE_TELEMETRY: 'false' } });
if (r.status !== 0) {
  console.error(`vsce package failed (${r.status})`);
  process.exit(1);
}

const entries = listVsix(out);
const size = fs.statSync(out).size;
console.log(`${path.relative(REPO, out)}: ${(size / 1e6).toFixed(1)} MB, ${entries.length} files, built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
