// Runs the extension-host test suite (dist-test/exthost/index.js, the run() module @vscode/test-electron would
// run) inside code-server's real extension host, with this repository as the extension under development.
// Prints the mocha results and a final `N passed, N failed` line; exits non-zero on any failure.
import fs from 'node:fs';
import path from 'node:path';
import { format } from 'node:util';
import { checkTools, finish, tidy, launchBrowser, log, makeWorkspace, REPO, scratchRoot, startCodeServer } from './lib.mjs';

const TIMEOUT_S = Number(process.env.OTFUSE_EXTHOST_TIMEOUT ?? 600);
let passed = 0,
  failed = 0;
// mocha's spec reporter lines arrive in the browser console as ('%c INFO', 'color: …', format, ...args).
let server, browser;
const root = scratchRoot('exthost');
try {
  checkTools();
  const suite = path.join(REPO, 'dist-test/exthost/index.js');
  if (!fs.existsSync(suite)) throw new Error(`${suite} missing: npm run build`);
  const ws = makeWorkspace(root);
  const results = path.join(root, 'results.json');
  // The suite reads these (the extension host inherits code-server's environment).
  process.env.OTFUSE_TEST_RESULTS = results;
  process.env.OTFUSE_TEST_WORKSPACE = ws;
  server = await startCodeServer(root, ws);
  log(`code-server on :${server.port} (scratch ${root})`);
  browser = await launchBrowser();
  const page = await browser.newPage();
  page.on('console', async (m) => {
    const t = m.text();
    fs.appendFileSync(path.join(root, 'browser-console.log'), `${m.type()}: ${t}\n`);
    if (!t.startsWith('%c INFO')) return;
    const args = await Promise.all(m.args().map((a) => a.jsonValue().catch(() => '')));
    const line = format(...args.slice(2));
    if (/^\s*(✔|\d+\)|\d+ (passing|failing|pending)|otfuse extension)/.test(line)) console.log('  ' + line.trimEnd());
  });
  const exit = new Promise((resolve) => page.exposeFunction('codeAutomationExit', (code) => resolve(code)));
  await page.exposeFunction('codeAutomationLog', () => {});
  await page.goto(
    server.url([
      ['extensionDevelopmentPath', server.remote(REPO)],
      ['extensionTestsPath', server.remote(suite)],
    ]),
  );
  const code = await Promise.race([exit, new Promise((r) => setTimeout(() => r('timeout'), TIMEOUT_S * 1000).unref())]);
  log(`extension host tests exited: ${code}`);
  if (fs.existsSync(results)) {
    const r = JSON.parse(fs.readFileSync(results, 'utf8'));
    passed = r.passed;
    failed = r.failed;
    for (const f of r.failures ?? []) console.error(`FAILED: ${f.title}\n${f.error}\n`);
    if (r.pending) log(`${r.pending} skipped: ${r.skipped.join('; ')}`);
    if (code !== 0 && failed === 0) failed = 1;
  } else {
    failed = 1;
    console.error(`no results from the suite (${code}); code-server log: ${root}/code-server.log`);
  }
} catch (err) {
  console.error(err?.stack ?? err);
  failed = Math.max(failed, 1);
} finally {
  try {
    await browser?.close();
  } catch {}
  server?.stop();
  tidy(root, failed === 0 && passed > 0);
  log(`done (scratch folder ${root})`);
  finish(passed, failed);
}
