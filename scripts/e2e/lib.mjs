// Shared harness for the real-editor tests: starts code-server 4.100.3 (VS Code's real Node extension host) with
// this repository loaded as the extension under development, and drives it with Debian's headless chromium
// through playwright-core. Tools come from the cache that scripts/e2e/install.sh fills (default <repo>/.e2e).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PREFIX = path.resolve(process.env.OTFUSE_E2E_PREFIX ?? path.join(REPO, '.e2e'));
const CS_ENTRY = path.join(PREFIX, 'node_modules/code-server/out/node/entry.js');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const T0 = Date.now();
export const elapsed = () => `${((Date.now() - T0) / 1000).toFixed(1)}s`;
export const log = (...a) => console.log(`[${elapsed()}]`, ...a);

export function checkTools() {
  const missing = [];
  if (!fs.existsSync(CS_ENTRY)) missing.push(`code-server (${CS_ENTRY})`);
  if (!fs.existsSync(path.join(PREFIX, 'node_modules/playwright-core'))) missing.push('playwright-core');
  if (!fs.existsSync(CHROMIUM)) missing.push(`chromium (${CHROMIUM})`);
  if (!fs.existsSync(path.join(REPO, 'dist/extension.js'))) missing.push('dist/extension.js (npm run build)');
  if (missing.length) throw new Error(`missing: ${missing.join(', ')}; run \`npm run e2e:install\` first`);
}

/** The BERT fixtures (test/fixtures/bert) the BERT scenarios use: two 64-wide encoders, the 96-wide one (for
 * heterogeneous fusion), calibration tokens and the held-out test split. */
export const BERT_FILES = ['bertD_s20.onnx', 'bertD_s21.onnx', 'bertE_s24.onnx', 'calib.npz', 'test.npz'];

/** Where the BERT fixtures are: $OTFUSE_BERT_FIXTURES, the in-repo copy, or the shared fixtures folder next to the
 * checkout (the same places test/fusion/bert.test.ts looks). */
export function bertFixtures() {
  const candidates = [process.env.OTFUSE_BERT_FIXTURES, path.join(REPO, 'test/fixtures/bert'), path.resolve(REPO, '../shared/fixtures/bert-fortunes')].filter(
    Boolean,
  );
  const dir = candidates.find((d) => BERT_FILES.every((f) => fs.existsSync(path.join(d, f))));
  if (!dir) throw new Error(`BERT fixtures (${BERT_FILES.join(', ')}) not found in ${candidates.join(' or ')}`);
  return dir;
}

/** A scratch workspace with copies of the bundled example models and data, and the BERT fixtures in `bert/`. */
export function makeWorkspace(root) {
  const ws = path.join(root, 'workspace');
  fs.rmSync(ws, { recursive: true, force: true });
  fs.mkdirSync(ws, { recursive: true });
  fs.cpSync(path.join(REPO, 'examples'), path.join(ws, 'examples'), { recursive: true });
  // Without them the BERT tests fail on their own (with this message); the other tests still run.
  let bert;
  try {
    bert = bertFixtures();
  } catch (err) {
    console.error(`warning: ${err.message}`);
  }
  if (bert) {
    fs.mkdirSync(path.join(ws, 'bert'));
    for (const f of BERT_FILES) fs.copyFileSync(path.join(bert, f), path.join(ws, 'bert', f));
  }
  fs.writeFileSync(path.join(ws, 'README.txt'), 'otfuse e2e workspace\n');
  return ws;
}

export function scratchRoot(name) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `otfuse-${name}-`));
  return root;
}

/** Starts code-server; returns { port, stop(), url(payload) }. */
export async function startCodeServer(root, ws, { settings = {}, install } = {}) {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const udd = path.join(root, 'udd');
  fs.mkdirSync(path.join(udd, 'User'), { recursive: true });
  fs.writeFileSync(
    path.join(udd, 'User/settings.json'),
    JSON.stringify(
      {
        'workbench.startupEditor': 'none',
        'security.workspace.trust.enabled': false,
        'workbench.tips.enabled': false,
        'telemetry.telemetryLevel': 'off',
        'update.mode': 'none',
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'workbench.enableExperiments': false,
        'window.commandCenter': false,
        ...settings,
      },
      null,
      2,
    ),
  );
  const home = path.join(root, 'home');
  fs.mkdirSync(home, { recursive: true });
  const env = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_DATA_HOME: path.join(home, '.local/share'),
    XDG_CACHE_HOME: path.join(home, '.cache'),
    EXTENSIONS_GALLERY: '{}',
    OTFUSE_TEST_HOOKS: '1',
  };
  const baseArgs = ['--config', path.join(root, 'config.yaml'), '--user-data-dir', udd, '--extensions-dir', path.join(root, 'extensions')];
  if (install) {
    const r = spawnSync(process.execPath, [CS_ENTRY, ...baseArgs, '--install-extension', install], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`--install-extension ${install} failed: ${r.stdout}${r.stderr}`);
  }
  const out = fs.openSync(path.join(root, 'code-server.log'), 'w');
  const cs = spawn(
    process.execPath,
    [
      CS_ENTRY,
      ...baseArgs,
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      ws,
    ],
    { env, stdio: ['ignore', out, out], detached: true },
  );
  const stop = () => {
    try {
      process.kill(-cs.pid, 'SIGTERM');
    } catch {}
  };
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {}
    if (cs.exitCode !== null || i > 600) {
      stop();
      throw new Error(`code-server did not start (see ${root}/code-server.log)`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const remote = (p) => `vscode-remote://127.0.0.1:${port}${p}`;
  const url = (payload) => `http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  return { port, stop, remote, url, pid: cs.pid };
}

export async function launchBrowser() {
  const { chromium } = await import(path.join(PREFIX, 'node_modules/playwright-core/index.mjs'));
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Removes the bulky parts of a scratch folder after a passing run (kept on failure, or with OTFUSE_E2E_KEEP=1). */
export function tidy(root, ok) {
  if (!ok || process.env.OTFUSE_E2E_KEEP === '1') return;
  for (const d of ['workspace', 'udd', 'home', 'extensions']) fs.rmSync(path.join(root, d), { recursive: true, force: true });
}

/**
 * The end of a real-editor scenario, pass or fail: a harness error becomes a failed result (unless a check already
 * failed), results.json and each failure are written out, the browser and code-server stopped, the scratch folder
 * tidied after a clean pass, and the summary line printed.
 */
export async function endScenario(T, root, { browser, server, err }) {
  if (err !== undefined && !T.results.some((r) => !r.ok)) T.results.push({ name: 'harness', ok: false, error: String(err?.stack ?? err) });
  try {
    fs.writeFileSync(path.join(root, 'results.json'), JSON.stringify(T.results, null, 2));
  } catch {}
  for (const r of T.results.filter((x) => !x.ok)) console.error(`FAILED: ${r.name}\n${r.error}\n`);
  try {
    await browser?.close();
  } catch {}
  server?.stop();
  tidy(root, T.results.length > 0 && T.results.every((r) => r.ok));
  log(`done; screenshots in ${T.shots}`);
  finish(T.results.filter((r) => r.ok).length, T.results.filter((r) => !r.ok).length);
}

/** Prints the summary line CI reads and sets the exit code. */
export function finish(passed, failed) {
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
}
