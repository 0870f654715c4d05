// Merge Models (shared base) in the real extension host: the command runs the engine's merge through the worker and
// the run appears in the store; the method list and parameter domains come from the engine's registry.
import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { MergeResult, RunRecord } from '../../worker/types';
import { api, example } from './helpers';

/** The repository's merge fixture (two fine-tunes of vit48_s10), read in place. */
function fixture(rel: string): string {
  for (const root of [path.resolve(__dirname, '..', '..'), process.cwd()]) {
    const p = path.join(root, 'test', 'fixtures', rel);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`fixture ${rel} not found`);
}

suite('otfuse extension: Merge Models (shared base)', () => {
  test('the engine says the fine-tunes share a base and lists the registry methods with their domains', async () => {
    const otfuse = await api();
    const [a, b] = ['merge/vit48_s10_ft_a.onnx', 'merge/vit48_s10_ft_b.onnx'].map(fixture);
    const report = await otfuse.engines.engine.sharedBase({ models: [a, b] });
    assert.equal(report.shared, true, report.message);
    const independent = await otfuse.engines.engine.sharedBase({ models: [example('vit48_s10.onnx'), example('vit48_s11.onnx')] });
    assert.equal(independent.shared, false);
    const methods = await otfuse.engines.engine.mergeMethods();
    assert.deepEqual(
      methods.map((m) => m.name),
      ['linear', 'task_arithmetic', 'ties', 'dare_linear', 'dare_ties', 'slerp'],
    );
    const density = methods.find((m) => m.name === 'ties')!.params.find((p) => p.name === 'density')!;
    assert.equal(density.domain, '(0, 1]');
  });

  test('otfuse.mergeModels writes a run (run.json with the method and parameters) that the run store lists', async () => {
    const otfuse = await api();
    const [a, b, base] = ['merge/vit48_s10_ft_a.onnx', 'merge/vit48_s10_ft_b.onnx', 'vit/vit48_s10.onnx'].map(fixture);
    const result = await vscode.commands.executeCommand<MergeResult>('otfuse.mergeModels', undefined, undefined, {
      models: [a, b],
      base,
      method: 'ties',
      params: { density: 0.5 },
      evalData: example('calib200.npz'),
      quiet: true,
    });
    assert.ok(result, 'the command returns the MergeResult');
    const onDisk = JSON.parse(fs.readFileSync(path.join(result.runDir, 'run.json'), 'utf8')) as RunRecord;
    assert.equal(onDisk.merge?.method, 'ties');
    assert.equal(onDisk.merge?.params.density, 0.5);
    assert.deepEqual(
      onDisk.metrics.map((m) => m.label),
      ['vit48_s10_ft_a.onnx', 'vit48_s10_ft_b.onnx', 'vit48_s10.onnx (base)', 'merged (ties)', 'ensemble (mean logits)'],
    );
    assert.ok(fs.existsSync(path.join(result.runDir, 'merged.onnx')));
    const listed = await new Promise<boolean>((resolve) => {
      const t0 = Date.now();
      const poll = () => (otfuse.store.get(result.runDir).record ? resolve(true) : Date.now() - t0 > 10_000 ? resolve(false) : setTimeout(poll, 200));
      poll();
    });
    assert.ok(listed, 'the run store reads the merge run');
  });
});
