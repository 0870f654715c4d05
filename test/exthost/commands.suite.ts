import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { api, example, EXTENSION_ID } from './helpers';

suite('otfuse extension: activation and commands', () => {
  test('activates and registers every contributed command', async () => {
    const otfuse = await api();
    assert.ok(otfuse.engines, 'activate() returns the API');
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const contributed: string[] = ext.packageJSON.contributes.commands.map((c: { command: string }) => c.command);
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const id of ['otfuse.fuseModels', 'otfuse.evaluateModel', 'otfuse.inspectAlignment', 'otfuse.quickFinetune', 'otfuse.openRun', 'otfuse.cancelRun']) {
      assert.ok(contributed.includes(id), `${id} contributed in package.json`);
    }
    const missing = contributed.filter((id) => !registered.has(id));
    assert.deepEqual(missing, [], 'every contributed command is registered');
  });

  test('package.json: menus, custom editor, views, settings, workspace kind', () => {
    const pkg = vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON;
    const explorer = pkg.contributes.menus['explorer/context'];
    const fuse = explorer.find((m: { command: string }) => m.command === 'otfuse.fuseModels');
    assert.match(fuse.when, /listMultiSelection/);
    assert.match(fuse.when, /resourceExtname == \.onnx/);
    assert.equal(pkg.contributes.customEditors[0].viewType, 'otfuse.modelEditor');
    assert.deepEqual(pkg.extensionKind, ['workspace']);
    assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
    for (const key of ['otfuse.executionProvider', 'otfuse.runsFolder', 'otfuse.defaultRecipe']) assert.ok(pkg.contributes.configuration.properties[key], key);
    assert.ok(fs.existsSync(path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'dist', 'host.js')), 'worker bundle present');
  });

  test('Evaluate Model returns what the engine reports', async () => {
    const otfuse = await api();
    const model = example('vit48_s10.onnx');
    const data = example('calib200.npz');
    const result = await vscode.commands.executeCommand<any>('otfuse.evaluateModel', vscode.Uri.file(model), undefined, { data, quiet: true });
    assert.ok(result, 'the command returns the evaluation');
    assert.equal(result.samples, 200);
    assert.ok(result.accuracy > 0.5 && result.accuracy <= 1, `accuracy ${result.accuracy}`);
    const direct = await otfuse.engines.engine.evaluate({ model, data });
    assert.equal(result.accuracy, direct.accuracy);
    assert.ok(Math.abs(result.loss - direct.loss) < 1e-9);
  });

  test('the .onnx model editor opens (custom editor, read-only)', async () => {
    const uri = vscode.Uri.file(example('vit48_s11.onnx'));
    await vscode.commands.executeCommand('vscode.openWith', uri, 'otfuse.modelEditor');
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    assert.ok(tab?.input instanceof vscode.TabInputCustom, 'a custom editor tab');
    assert.equal((tab!.input as vscode.TabInputCustom).viewType, 'otfuse.modelEditor');
    assert.equal((tab!.input as vscode.TabInputCustom).uri.fsPath, uri.fsPath);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  test('Inspect Alignment Structure opens the derived structure as text', async () => {
    const text = await vscode.commands.executeCommand<string>('otfuse.inspectAlignment', vscode.Uri.file(example('vit48_s10.onnx')));
    assert.ok(text, 'the command returns the text');
    assert.match(text, /hidden 48/);
    assert.match(text, /aligned groups/);
    const doc = vscode.window.activeTextEditor?.document;
    assert.equal(doc?.uri.scheme, 'otfuse-alignment');
    assert.equal(doc?.getText(), text);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  test('Cancel Run with nothing running is harmless', async () => {
    const n = await vscode.commands.executeCommand<number>('otfuse.cancelRun');
    assert.equal(n, 0);
  });
});
