// Partial fusion in the editor (issue 28): Fuse Models with mergeLayers / pareto (the options the prompts set)
// records K and one curve point per K in run.json, fused.onnx is the chosen K's model (an independent evaluation
// gives the chosen point's accuracy), and Save as Hugging Face Folder refuses the run before any work, with the
// reason (UNSUPPORTED), writing nothing. The chart itself is checked in the browser: scripts/e2e/ui-pareto.mjs.
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { FuseResult } from '../../worker/types';
import { api, example, workspaceDir } from './helpers';

suite('otfuse extension: partial fusion', () => {
  test('Fuse Models with mergeLayers 1 + pareto: K and the curve in run.json; fused.onnx = the chosen point; HF export refused', async function () {
    const otfuse = await api();
    const a = vscode.Uri.file(example('vit48_s10.onnx'));
    const b = vscode.Uri.file(example('vit48_s11.onnx'));
    const evalData = example('data/fmnist-test-2k.json');
    const result = await vscode.commands.executeCommand<FuseResult>('otfuse.fuseModels', a, [a, b], {
      anchor: a.fsPath,
      data: example('calib200.npz'),
      evalData,
      preset: 'exact',
      mergeLayers: 1,
      pareto: true,
      evalLimit: 400,
      quiet: true,
    });
    assert.ok(result, 'the command returns the FuseResult');
    const r = result.record;
    assert.equal(r.recipe.mergeLayers, 1);
    assert.equal(r.recipe.pareto, true);
    const p = r.partial;
    assert.ok(p, 'run.json has a partial record');
    assert.equal(p.mergeLayers, 1);
    assert.equal(p.layers, 3);
    assert.deepEqual(
      p.points?.map((q) => q.mergeLayers),
      [0, 1, 2, 3],
    );
    for (const q of p.points!) assert.ok(q.accuracy !== undefined && q.accuracy > 0.1 && q.parameters > 0, JSON.stringify(q));
    // Sizes: K = 0 is both parents (2×), full fusion one parent, and the count falls with every shared block.
    assert.equal(p.points![0].parameters, 2 * p.parentParameters);
    assert.equal(p.points![3].parameters, p.parentParameters);
    for (let k = 1; k < 4; k++) assert.ok(p.points![k].parameters < p.points![k - 1].parameters, JSON.stringify(p.points));
    const chosen = p.points!.find((q) => q.mergeLayers === 1)!;
    assert.equal(p.parameters, chosen.parameters);
    const fused = path.isAbsolute(r.fusedModel) ? r.fusedModel : path.join(result.runDir, r.fusedModel);
    const direct = await otfuse.engines.engine.evaluate({ model: fused, data: evalData, limit: 400 });
    assert.ok(Math.abs(direct.accuracy - chosen.accuracy!) < 1e-9, `fused.onnx ${direct.accuracy} vs the chosen point ${chosen.accuracy}`);
    // Save as Hugging Face Folder: refused before any work (no --like folder needed to say so), nothing written.
    const out = path.join(workspaceDir(), 'partial-hf');
    await assert.rejects(
      Promise.resolve(vscode.commands.executeCommand('otfuse.saveRunAsHf', result.runDir, undefined, { output: out, model: 'fused' })),
      (err: { code?: string; message?: string }) =>
        err.code === 'UNSUPPORTED' && /partial fusion \(K = 1 of 3 blocks shared\).*no Hugging Face model class/.test(err.message ?? ''),
    );
    assert.ok(!fs.existsSync(out), 'no folder written');
  });
});
