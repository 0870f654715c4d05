// Checks a built .vsix: lists its contents, requires the bundles and the ONNX Runtime linux-x64 binaries, installs it
// with code-server's `--install-extension` (as `code --install-extension` would) and loads onnxruntime-node from the
// installed copy to run one example model. Final line: `N passed, N failed`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listVsix } from './vsix.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PREFIX = path.resolve(process.env.OTFUSE_E2E_PREFIX ?? path.join(REPO, '.e2e'));
const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
const vsix = process.argv[2] ?? path.join(REPO, `otfuse-linux-x64-${pkg.version}.vsix`);
let passed = 0,
  failed = 0;
const check = (name, fn) => {
  try {
    fn();
    passed++;
    console.log(`✔ ${name}`);
  } catch (err) {
    failed++;
    console.log(`✘ ${name}: ${err.message}`);
  }
};

let entries = [];
check('the .vsix exists and is a zip', () => {
  entries = listVsix(vsix);
});
const names = new Set(entries.map((e) => e.name));
const required = [
  'extension/package.json',
  'extension/dist/extension.js',
  'extension/dist/host.js',
  'extension/dist/webview.js',
  'extension/dist/webview.css',
  'extension/media/webview.css',
  'extension/worker/fusion/recipe.schema.json',
  'extension/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
  'extension/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
  'extension/node_modules/onnxruntime-node/dist/index.js',
  'extension/node_modules/onnxruntime-common/dist/cjs/index.js',
];
for (const r of required)
  check(`contains ${r}`, () => {
    if (!names.has(r)) throw new Error('missing');
  });
check('no other platform binaries, no sources or maps', () => {
  const bad = [...names].filter((n) => /bin\/napi-v\d+\/(darwin|win32|linux\/arm64)|\.map$|^extension\/(worker|extension|webview|test)\/.*\.ts$/.test(n));
  if (bad.length) throw new Error(bad.join(', '));
});
check('target platform in the manifest is linux-x64', () => {
  const r = spawnSync('unzip', ['-p', vsix, 'extension.vsixmanifest'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  if (!/TargetPlatform="linux-x64"/.test(r.stdout)) throw new Error('no TargetPlatform="linux-x64"');
});
console.log(`${path.basename(vsix)}: ${(fs.statSync(vsix).size / 1e6).toFixed(1)} MB; ONNX Runtime entries:`);
for (const e of entries.filter((x) => /onnxruntime-node\/bin\//.test(x.name))) console.log(`  ${e.name} (${(e.size / 1e6).toFixed(1)} MB)`);

const cs = path.join(PREFIX, 'node_modules/code-server/out/node/entry.js');
if (fs.existsSync(cs)) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-vsix-'));
  let installed;
  check('installs with --install-extension', () => {
    const r = spawnSync(
      process.execPath,
      [
        cs,
        '--config',
        path.join(tmp, 'config.yaml'),
        '--user-data-dir',
        path.join(tmp, 'udd'),
        '--extensions-dir',
        path.join(tmp, 'ext'),
        '--install-extension',
        vsix,
      ],
      { encoding: 'utf8', env: { ...process.env, HOME: tmp, EXTENSIONS_GALLERY: '{}' } },
    );
    if (r.status !== 0) throw new Error(r.stdout + r.stderr);
    installed = fs
      .readdirSync(path.join(tmp, 'ext'))
      .map((d) => path.join(tmp, 'ext', d))
      .find((d) => path.basename(d).startsWith(`${pkg.publisher}.${pkg.name}-`));
    if (!installed) throw new Error(`not in ${path.join(tmp, 'ext')}`);
  });
  check('the installed copy loads ONNX Runtime and runs an example model', () => {
    const script = `const ort = require(${JSON.stringify(path.join(installed, 'node_modules/onnxruntime-node'))});
      ort.InferenceSession.create(${JSON.stringify(path.join(REPO, 'examples/vit48_s10.onnx'))}).then(async (s) => {
        const x = new ort.Tensor('float32', new Float32Array(28 * 28), [1, 1, 28, 28]);
        const out = await s.run({ [s.inputNames[0]]: x });
        console.log('logits', out[s.outputNames[0]].dims.join('x'));
      }).catch((e) => { console.error(e); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: tmp });
    if (r.status !== 0 || !/logits 1x10/.test(r.stdout)) throw new Error(r.stdout + r.stderr);
  });
  fs.rmSync(tmp, { recursive: true, force: true });
} else {
  console.log('(code-server not installed: install check skipped; run `npm run e2e:install`)');
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
