// Extension-host test entry: the `run()` module that @vscode/test-electron (runTest.ts) loads, and that
// scripts/e2e/exthost.mjs loads inside code-server's extension host. Runs every *.suite.js next to it with mocha.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

// mocha stays a runtime dependency of the test (not bundled): load it from the repository's node_modules.
const load = createRequire(__filename);

export function run(): Promise<void> {
  const Mocha = load('mocha');
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 240_000, reporter: 'spec' });
  const grep = process.env.OTFUSE_TEST_GREP;
  if (grep) mocha.grep(grep);
  for (const f of fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.suite.js'))
    .sort())
    mocha.addFile(path.join(__dirname, f));
  return new Promise((resolve, reject) => {
    const skipped: string[] = [];
    const failed: { title: string; error: string }[] = [];
    const runner = mocha.run((failures: number) => {
      const stats = runner.stats ?? { passes: 0, failures, pending: 0 };
      const summary = { passed: stats.passes, failed: failures, pending: stats.pending, skipped, failures: failed };
      if (process.env.OTFUSE_TEST_RESULTS) fs.writeFileSync(process.env.OTFUSE_TEST_RESULTS, JSON.stringify(summary));
      console.log(`${summary.passed} passed, ${summary.failed} failed${summary.pending ? ` (${summary.pending} skipped)` : ''}`);
      if (failures > 0) reject(new Error(`${failures} test(s) failed`));
      else resolve();
    });
    runner.on('fail', (t: { fullTitle(): string }, err: Error) => failed.push({ title: t.fullTitle(), error: String(err?.stack ?? err) }));
    runner.on('pending', (t: { fullTitle(): string }) => skipped.push(t.fullTitle()));
  });
}
