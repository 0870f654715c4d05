// BERT-style text encoders through the extension: three int64 inputs (input_ids, attention_mask,
// token_type_ids) fed from a token .npz, calibration on calib.npz and evaluation on the held-out test.npz.
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { FuseResult, RunRecord } from '../../worker/types';
import { MapsFile } from '../../extension/safetensors';
import { api, bert, example } from './helpers';

const readRecord = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as RunRecord;
const base = (p?: string) => (p ? path.basename(p) : '');

suite('otfuse extension: BERT encoders and token data', () => {
  let result: FuseResult | undefined;

  test('a BERT model: three int64 inputs and its alignment structure (what the model view shows)', async () => {
    const otfuse = await api();
    const inspect = await otfuse.engines.engine.inspect({ model: bert('bertD_s20.onnx'), alignment: true });
    assert.deepEqual(
      inspect.summary.inputs.map((i) => i.name),
      ['input_ids', 'attention_mask', 'token_type_ids'],
    );
    assert.ok(
      inspect.summary.inputs.every((i) => /int64/i.test(i.type)),
      JSON.stringify(inspect.summary.inputs),
    );
    const a = inspect.alignment!;
    assert.equal(a.hiddenSize, 64);
    assert.equal(a.layers, 2);
    const names = a.groups.map((g) => g.name);
    for (const n of ['embed.input_ids', 'embed.tokens', 'blocks.0.attn.q', 'blocks.1.mlp.fc1', 'head.pooler', 'head.classifier'])
      assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
  });

  test('incompatible models (a ViT and a BERT) are rejected before any prompt, naming both', async () => {
    const vit = vscode.Uri.file(example('vit48_s10.onnx'));
    const b = vscode.Uri.file(bert('bertD_s20.onnx'));
    await assert.rejects(Promise.resolve(vscode.commands.executeCommand('otfuse.fuseModels', vit, [vit, b], { quiet: true })), (err: any) => {
      assert.equal(err.code, 'MISMATCH');
      assert.match(err.message, /cannot be fused/);
      assert.match(err.message, /bertD_s20\.onnx/);
      return true;
    });
  });

  test('Fuse Models on two BERT encoders (calib.npz → activations, test.npz → evaluation): run.json = engine report, OT beats vanilla', async () => {
    const otfuse = await api();
    const a = vscode.Uri.file(bert('bertD_s20.onnx'));
    const b = vscode.Uri.file(bert('bertD_s21.onnx'));
    const data = bert('calib.npz');
    const evalData = bert('test.npz');
    result = await vscode.commands.executeCommand<FuseResult>('otfuse.fuseModels', a, [a, b], {
      anchor: a.fsPath,
      data,
      evalData,
      preset: 'recommended',
      quiet: true,
    });
    assert.ok(result, 'the command returns the FuseResult');
    const onDisk = readRecord(result.runDir);
    assert.equal(onDisk.status, 'done');
    assert.deepEqual(onDisk.metrics, JSON.parse(JSON.stringify(result.record.metrics)), 'run.json metrics = what the engine returned');
    assert.equal(onDisk.data, data, 'calibration data recorded');
    assert.equal(onDisk.evalData, evalData, 'evaluation data recorded');
    assert.equal(otfuse.alignment.currentRun, result.runDir, 'the Alignment view shows the new run');

    // Every aligned layer group has its map, of the recorded size.
    // "Recommended" is the engine's auto-tune: the sweep is recorded, and the attention maps are those of the recipe
    // it chose (separate Q and K maps, or head-aware: heads matched as units, one Q/K map).
    assert.ok(onDisk.autotune, 'the recommended preset auto-tunes the recipe (run.json records the sweep)');
    const names = onDisk.layers.map((l) => l.name);
    for (const n of ['embed.tokens', 'blocks.0.mlp.fc1', 'blocks.1.resid2', 'head.pooler']) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
    const qk = names.includes('blocks.0.attn.qk') ? ['blocks.0.attn.heads', 'blocks.0.attn.qk'] : ['blocks.0.attn.q', 'blocks.0.attn.k'];
    for (const n of qk) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
    const maps = MapsFile.open(path.join(result.runDir, onDisk.mapsFile ?? 'maps.safetensors'));
    for (const l of onDisk.layers) assert.deepEqual(maps.header[l.tensor]?.shape, [l.rows, l.cols], `map ${l.tensor}`);

    // The metrics are test-set numbers: each row equals an independent evaluation of its model on test.npz.
    const test = await otfuse.engines.engine.evaluate({ model: a.fsPath, data: evalData });
    assert.equal(test.samples, 662, 'the whole test split');
    const byLabel = new Map(onDisk.metrics.map((m) => [m.label, m]));
    const fused = path.resolve(result.runDir, onDisk.fusedModel);
    const ot = onDisk.metrics.find((m) => m.file && path.resolve(result!.runDir, m.file) === fused) ?? byLabel.get('ot');
    const vanilla = byLabel.get('vanilla');
    assert.ok(ot?.accuracy !== undefined && vanilla?.accuracy !== undefined, JSON.stringify(onDisk.metrics));
    const parents = onDisk.metrics.filter((m) => m.file && /bertD_s2[01]\.onnx$/.test(m.file));
    assert.equal(parents.length, 2, `parents in ${JSON.stringify(onDisk.metrics)}`);
    for (const [file, m] of [[fused, ot], ...parents.map((p) => [path.resolve(result!.runDir, p.file!), p] as const)] as const) {
      const direct = await otfuse.engines.engine.evaluate({ model: file, data: evalData });
      assert.ok(Math.abs(direct.accuracy - m!.accuracy!) < 1e-9, `${base(file)}: ${direct.accuracy} vs run.json ${m!.accuracy}`);
    }
    // The fixture README's test accuracies: bertD_s20 48.19 %, bertD_s21 49.40 %, their mean 17.22 %.
    assert.ok(Math.abs(test.accuracy - 0.4819) < 5e-4, `bertD_s20 ${test.accuracy}`);
    assert.ok(Math.abs(vanilla!.accuracy! - 0.1722) < 5e-4, `vanilla ${vanilla!.accuracy}`);
    assert.ok(ot!.accuracy! > vanilla!.accuracy! + 0.15, `OT ${ot!.accuracy} should beat vanilla ${vanilla!.accuracy} by a clear margin`);
  });

  test('Re-evaluate Run measures the BERT run again on its own test split (same numbers)', async function () {
    assert.ok(result, 'needs the run made by the fuse test above, which failed');
    const before = readRecord(result!.runDir);
    const results = await vscode.commands.executeCommand<any[]>('otfuse.reevaluateRun', result!.runDir, undefined, { quiet: true });
    assert.ok(results?.length >= 1);
    assert.equal(results[0].samples, 662, 're-evaluated on test.npz, not on calib.npz');
    assert.deepEqual(readRecord(result!.runDir).metrics, before.metrics);
  });

  test("Quick Finetune on the BERT run trains on token data and adds ot+finetune measured on the run's test split", async function () {
    assert.ok(result, 'needs the run made by the fuse test above, which failed');
    const otfuse = await api();
    // calib.npz (200 samples, 4 steps) keeps this a plumbing test: the finetune quality bar is the engine's.
    const ft = await vscode.commands.executeCommand<any>('otfuse.quickFinetune', result!.runDir, undefined, { data: bert('calib.npz'), quiet: true });
    assert.ok(ft && ft.steps > 0, 'finetune ran');
    const onDisk = readRecord(result!.runDir);
    const m = onDisk.metrics.find((x) => x.label === 'ot+finetune');
    assert.ok(m?.accuracy !== undefined, `ot+finetune metric in ${JSON.stringify(onDisk.metrics)}`);
    const direct = await otfuse.engines.engine.evaluate({ model: path.join(result!.runDir, 'finetuned.onnx'), data: bert('test.npz') });
    assert.equal(direct.samples, 662);
    assert.ok(Math.abs(direct.accuracy - m!.accuracy!) < 1e-9, `finetuned accuracy ${direct.accuracy} (test.npz) vs run.json ${m!.accuracy}`);
  });

  test('heterogeneous: the 96-wide bertE_s24 fused into the 64-wide bertD_s20 completes and reports accuracy', async () => {
    const a = vscode.Uri.file(bert('bertD_s20.onnx'));
    const e = vscode.Uri.file(bert('bertE_s24.onnx'));
    const r = await vscode.commands.executeCommand<FuseResult>('otfuse.fuseModels', a, [a, e], {
      anchor: a.fsPath,
      data: bert('calib.npz'),
      evalData: bert('test.npz'),
      preset: 'recommended',
      quiet: true,
    });
    const onDisk = readRecord(r.runDir);
    assert.equal(onDisk.status, 'done');
    assert.deepEqual(onDisk.metrics, JSON.parse(JSON.stringify(r.record.metrics)));
    const ot = onDisk.metrics.find((m) => m.label === 'ot');
    assert.ok(ot?.accuracy !== undefined && ot.accuracy > 0.125, `OT accuracy ${ot?.accuracy} (8 classes)`);
    const q = onDisk.layers.find((l) => l.name === 'blocks.0.attn.q');
    const fc1 = onDisk.layers.find((l) => l.name === 'blocks.0.mlp.fc1');
    assert.deepEqual([q?.rows, q?.cols], [96, 64], 'rows: the 96-wide model, cols: the 64-wide anchor');
    assert.deepEqual([fc1?.rows, fc1?.cols], [384, 256]);
    const ok = await vscode.commands.executeCommand<boolean>('otfuse.deleteRun', r.runDir, undefined, { confirm: false });
    assert.equal(ok, true);
  });
});
