// Hugging Face folders in the editor: Fuse Models on two selected HF folders (one picked by its
// model.safetensors), then Save as Hugging Face Folder on the run; the saved folder evaluates to the run's number.
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { readMap } from '../../extension/alignmentView';
import { accuracyTable } from '../../extension/exports';
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

  // Causal LMs (issue 29 item 6): two GPT-2 folders, .txt text as calibration and evaluation data; every row of the
  // run carries a perplexity equal to e^loss (the results table's "Perplexity ↓" column reads it).
  test('Fuse Models on two GPT-2 folders with .txt text: rows carry perplexity', async function () {
    const src = path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'test', 'fixtures', 'decoders');
    const ws = path.join(workspaceDir(), 'lm');
    for (const name of ['gpt2-s0', 'gpt2-s1', 'calib.txt', 'heldout.txt']) fs.cpSync(path.join(src, name), path.join(ws, name), { recursive: true });
    const a = vscode.Uri.file(path.join(ws, 'gpt2-s0'));
    const b = vscode.Uri.file(path.join(ws, 'gpt2-s1'));
    const result = await vscode.commands.executeCommand<FuseResult>('otfuse.fuseHfModels', a, [a, b], {
      anchor: a.fsPath,
      data: path.join(ws, 'calib.txt'),
      evalData: path.join(ws, 'heldout.txt'),
      preset: 'recommended',
      quiet: true,
    });
    assert.ok(result, 'Fuse Models returns the FuseResult');
    const rows = result.record.metrics;
    for (const label of ['ot', 'vanilla'])
      assert.ok(
        rows.some((m) => m.label === label),
        `${label} row in ${JSON.stringify(rows.map((m) => m.label))}`,
      );
    assert.ok(rows.filter((m) => m.role === 'parent' || m.role === 'anchor').length === 2, JSON.stringify(rows));
    for (const m of rows) {
      if (m.loss === undefined) continue;
      assert.ok(m.perplexity !== undefined && Number.isFinite(m.perplexity) && m.perplexity > 1, `${m.label}: perplexity ${m.perplexity}`);
      assert.ok(Math.abs(m.perplexity - Math.exp(m.loss)) < 1e-6 * m.perplexity, `${m.label}: ${m.perplexity} vs e^${m.loss}`);
    }
    // The exported results table carries the perplexity too (CSV: a last column; Markdown: "lower is better").
    const csv = accuracyTable(result.record, 'csv').trim().split('\n');
    assert.ok(csv[0].endsWith(',perplexity'), csv[0]);
    const ot = rows.find((m) => m.label === 'ot')!;
    assert.ok(csv.find((l) => l.startsWith('ot,'))!.endsWith(`,${ot.perplexity!.toFixed(4)}`), csv.join('\n'));
    assert.match(accuracyTable(result.record, 'markdown'), /\| next-token accuracy \| loss \| perplexity \(lower is better\) \|/);
    // The Alignment view's maps (issue 29 item 6): per layer a heads×heads attention map (4 heads) and an MLP
    // neuron map (128), read by the view's own reader; a head map is an assignment (one 1 per row: n·P).
    for (const l of [0, 1]) {
      const heads = result.record.layers.find((m) => m.name === `layer${l}.attn.heads`);
      const mlp = result.record.layers.find((m) => m.name === `layer${l}.mlp`);
      assert.ok(heads && heads.kind === 'heads' && heads.rows === 4 && heads.cols === 4, JSON.stringify(heads));
      assert.ok(mlp && mlp.kind === 'mlp' && mlp.rows === 128 && mlp.cols === 128, JSON.stringify(mlp));
      const map = await readMap({ dir: result.runDir, record: result.record }, heads.tensor, 384);
      assert.ok(map && map.outRows === 4 && map.outCols === 4, `head map payload ${map?.outRows}×${map?.outCols}`);
      for (let i = 0; i < 4; i++) {
        const row: number[] = Array.from(map!.data.subarray(i * 4, i * 4 + 4));
        assert.deepEqual(
          row.map((v) => Math.round(v)),
          row.map((v) => (v === Math.max(...row) ? 1 : 0)),
          `head map row ${i}: ${row}`,
        );
      }
    }
  });
});
