// Launcher for machines that have (or can download) VS Code: runs the suite with @vscode/test-electron.
// Here (offline) use `npm run test:exthost`, which runs the same suite inside code-server.
import path from 'node:path';
import { runTests } from '@vscode/test-electron';

async function main(): Promise<void> {
  const repo = path.resolve(__dirname, '../..');
  const workspace = process.env.OTFUSE_TEST_WORKSPACE ?? path.join(repo, 'examples');
  try {
    await runTests({
      extensionDevelopmentPath: repo,
      extensionTestsPath: path.join(__dirname, 'index.js'),
      launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust'],
      extensionTestsEnv: { OTFUSE_TEST_HOOKS: '1', OTFUSE_TEST_WORKSPACE: workspace },
    });
  } catch (err) {
    console.error('extension-host tests failed:', err);
    process.exit(1);
  }
}

void main();
