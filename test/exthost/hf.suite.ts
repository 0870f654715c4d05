// Hugging Face folders in the editor: Fuse Models on two selected HF folders (one picked by its
// model.safetensors), then Save as Hugging Face Folder on the run; the saved folder evaluates to the run's number.
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { FuseResult } from '../../worker/types';
import { api, example, EXTENSION_ID, workspaceDir } from './helpers';

suite('otfuse extension: Hugging Face folders', () => {
  test('Fuse Models on two HF folders, then Save as Hugging Face Folder on the run', async function () {
    const otfuse = await api();
    // The HF fixtures ship with the repository (the extension's folder); copy two into the workspace.
    const src = path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'test', 'fixtures', 'hf');
    const ws = path.join(workspaceDir(), 'hf');
    for (const name of ['vit-fmnist-s11', 'vit-fmnist-s10-f16']) fs.cpSync(path.join(src, name), path.join(ws, name), { recursive: true });
    const a = vscode.Uri.file(path.join(ws, 'vit-fmnist-s11'));
    const b = vscode.Uri.file(path.join(ws, 'vit-fmnist-s10-f16', 'model.safetensors'));
    const data = example('calib200.npz');
    const result = await vscode.commands.executeCommand<FuseResult>('otfuse.fuseHfModels', a, [a, b], {
      anchor: a.fsPath,
      data,
      preset: 'recommended',
      quiet: true,
    });
    assert.ok(result, 'Fuse Models returns the FuseResult');
    assert.deepEqual(result.record.models.map((m) => path.basename(m)).sort(), ['vit-fmnist-s10-f16', 'vit-fmnist-s11']);
    const ot = result.record.metrics.find((m) => m.label === 'ot');
    assert.ok(ot?.accuracy !== undefined, JSON.stringify(result.record.metrics));
    const out = path.join(workspaceDir(), 'fused-hf');
    const saved = await vscode.commands.executeCommand<string>('otfuse.saveRunAsHf', result.runDir, undefined, { output: out, model: 'fused' });
    assert.equal(saved, out);
    for (const f of ['model.safetensors', 'config.json', 'preprocessor_config.json', 'README.md']) assert.ok(fs.existsSync(path.join(out, f)), f);
    const back = await otfuse.engines.engine.evaluate({ model: out, data });
    assert.ok(Math.abs(back.accuracy - ot!.accuracy!) < 1e-9, `saved folder ${back.accuracy} vs run ${ot!.accuracy}`);
  });
});
