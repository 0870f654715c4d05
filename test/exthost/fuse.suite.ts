import * as assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { FuseResult, RunRecord } from '../../worker/types';
import { api, example, waitFor, workspaceDir } from './helpers';
import { patchRun } from '../../worker/runs/store';

suite('otfuse extension: Fuse Models', () => {
  let result: FuseResult | undefined;

  test('Fuse Models on the two examples writes a run folder whose run.json matches the engine', async function () {
    const otfuse = await api();
    const a = vscode.Uri.file(example('vit48_s10.onnx'));
    const b = vscode.Uri.file(example('vit48_s11.onnx'));
    const data = example('calib200.npz');
    result = await vscode.commands.executeCommand<FuseResult>('otfuse.fuseModels', a, [a, b], { anchor: a.fsPath, data, preset: 'recommended', quiet: true });
    assert.ok(result, 'the command returns the FuseResult');
    const runsRoot = path.join(workspaceDir(), '.otfuse', 'runs');
    assert.equal(path.dirname(result.runDir), runsRoot, 'run folder inside the default runs folder');
    const onDisk = JSON.parse(fs.readFileSync(path.join(result.runDir, 'run.json'), 'utf8')) as RunRecord;
    assert.equal(onDisk.status, 'done');
    assert.deepEqual(onDisk.metrics, JSON.parse(JSON.stringify(result.record.metrics)), 'run.json metrics = what the engine returned');
    assert.ok(onDisk.layers.length > 0, 'aligned layers recorded');
    const fused = path.isAbsolute(onDisk.fusedModel) ? onDisk.fusedModel : path.join(result.runDir, onDisk.fusedModel);
    assert.ok(fs.existsSync(fused), 'fused model written');
    // An independent evaluation of the fused model gives the number run.json reports for it.
    const ot =
      onDisk.metrics.find((m) => m.file && path.resolve(result!.runDir, m.file) === path.resolve(fused)) ?? onDisk.metrics.find((m) => /^ot$/i.test(m.label));
    assert.ok(ot?.accuracy !== undefined, `an OT metric in ${JSON.stringify(onDisk.metrics)}`);
    const direct = await otfuse.engines.engine.evaluate({ model: fused, data });
    assert.ok(Math.abs(direct.accuracy - ot!.accuracy!) < 1e-9, `fused accuracy ${direct.accuracy} vs run.json ${ot!.accuracy}`);
    // The maps file has every layer's map.
    const maps = path.join(result.runDir, onDisk.mapsFile ?? 'maps.safetensors');
    assert.ok(fs.existsSync(maps), 'maps.safetensors written');
  });

  test('the new run shows in the Runs tree and opens in the Alignment view', async function () {
    assert.ok(result, 'needs the run made by the fuse test above, which failed');
    const otfuse = await api();
    await otfuse.store.listAsync(); // the store reads the runs folder off the host thread
    const children = otfuse.runs.getChildren() as { entry?: { dir: string } }[];
    assert.ok(
      children.some((c) => c.entry?.dir === result!.runDir),
      'run listed',
    );
    const dir = await vscode.commands.executeCommand<string>('otfuse.openRun', result!.runDir);
    assert.equal(dir, result!.runDir);
    assert.equal(otfuse.alignment.currentRun, result!.runDir);
    // The view subscribes to the run store: a run.json rewritten outside the extension (e.g. by the CLI) is shown
    // again without any refresh call.
    const shown = waitFor(otfuse.alignment.onShown, (d) => d === result!.runDir, 15_000, 'the Alignment view to re-show the changed run');
    const rewrite = () =>
      patchRun(result!.runDir, (r) => {
        r.name = `${r.name}`;
      });
    rewrite();
    // VS Code's file watcher dropped this one event once in a clean-clone CI run (the view never re-showed in 15 s;
    // the suite alone passes in 0.2 s): a second rewrite 5 s on gives it another event; no refresh call either way.
    const again = setTimeout(rewrite, 5_000);
    try {
      await shown;
    } finally {
      clearTimeout(again);
    }
  });

  test("Quick Finetune on the run writes finetuned.onnx and an ot+finetune metric measured on the run's data", async function () {
    assert.ok(result, 'needs the run made by the fuse test above, which failed');
    const otfuse = await api();
    const ft = await vscode.commands.executeCommand<any>('otfuse.quickFinetune', result!.runDir, undefined, {
      data: example('data/fmnist-train-5k.json'),
      quiet: true,
    });
    assert.ok(ft && ft.steps > 0, 'finetune ran');
    const onDisk = JSON.parse(fs.readFileSync(path.join(result!.runDir, 'run.json'), 'utf8')) as RunRecord;
    assert.ok(onDisk.finetune, 'run.json has the finetune result');
    assert.ok(onDisk.finetune!.history.length > 0, 'loss history recorded');
    const m = onDisk.metrics.find((x) => x.label === 'ot+finetune');
    assert.ok(m?.accuracy !== undefined, 'ot+finetune metric');
    const finetuned = path.join(result!.runDir, 'finetuned.onnx');
    assert.ok(fs.existsSync(finetuned));
    const direct = await otfuse.engines.engine.evaluate({ model: finetuned, data: example('calib200.npz') });
    assert.ok(Math.abs(direct.accuracy - m!.accuracy!) < 1e-9, `finetuned accuracy ${direct.accuracy} vs run.json ${m!.accuracy}`);
    assert.equal(otfuse.alignment.currentRun, result!.runDir);
    // The baseline that gives the row its meaning: the anchor finetuned with the same data and settings.
    const baseline = onDisk.metrics.find((x) => x.label === 'anchor+finetune');
    assert.ok(baseline?.accuracy !== undefined, `anchor+finetune row in ${JSON.stringify(onDisk.metrics.map((x) => x.label))}`);
    const directBase = await otfuse.engines.engine.evaluate({ model: path.join(result!.runDir, 'anchor-finetuned.onnx'), data: example('calib200.npz') });
    assert.ok(Math.abs(directBase.accuracy - baseline!.accuracy!) < 1e-9);
    assert.equal(onDisk.baselineFinetune?.steps, onDisk.finetune!.steps, 'same finetune for both');
    // Measured on the calibration data (no evaluation data was given): run.json says so.
    assert.equal(onDisk.evalIsCalibration, true);
  });

  test('one job per run: a second finetune of the same run is refused while the first runs', async function () {
    assert.ok(result, 'needs the run made by the fuse test above, which failed');
    const otfuse = await api();
    const first = vscode.commands.executeCommand<any>('otfuse.quickFinetune', result!.runDir, undefined, {
      data: example('data/fmnist-train-5k.json'),
      quiet: true,
      baseline: false,
    });
    // (a command of this extension host may start synchronously, before a listener could see the event)
    if (!otfuse.jobs.isRunBusy(result!.runDir)) await waitFor(otfuse.jobs.onBusyRuns, (dirs) => dirs.includes(result!.runDir), 30_000, 'the run to be busy');
    assert.equal(otfuse.jobs.isRunBusy(result!.runDir), true);
    const second = await vscode.commands.executeCommand<any>('otfuse.quickFinetune', result!.runDir, undefined, {
      data: example('data/fmnist-train-5k.json'),
      quiet: true,
    });
    assert.equal(second, undefined, 'the second job did not start');
    await vscode.commands.executeCommand('otfuse.cancelRun');
    await assert.rejects(Promise.resolve(first), (err: any) => err.code === 'CANCELLED');
    assert.equal(otfuse.jobs.isRunBusy(result!.runDir), false);
    // Cancelled: run.json still has the earlier finetune (nothing half-written).
    const onDisk = JSON.parse(fs.readFileSync(path.join(result!.runDir, 'run.json'), 'utf8')) as RunRecord;
    assert.ok(onDisk.metrics.some((m) => m.label === 'ot+finetune'));
  });

  test("Re-evaluate Run measures ot and ot+finetune again on the run's data (same numbers)", async function () {
    assert.ok(result, 'needs the run made by the fuse test above, which failed');
    const before = JSON.parse(fs.readFileSync(path.join(result!.runDir, 'run.json'), 'utf8')) as RunRecord;
    const results = await vscode.commands.executeCommand<any[]>('otfuse.reevaluateRun', result!.runDir, undefined, { quiet: true });
    assert.deepEqual(
      results.map((r) => r.label).sort(),
      before.metrics
        .filter((m) => /^(ot|anchor\+)/.test(m.label))
        .map((m) => m.label)
        .sort(),
    );
    const after = JSON.parse(fs.readFileSync(path.join(result!.runDir, 'run.json'), 'utf8')) as RunRecord;
    assert.deepEqual(after.metrics, before.metrics);
  });

  test('Cancel Run stops a fusion in progress and leaves no run folder', async () => {
    const otfuse = await api();
    const runsRoot = path.join(workspaceDir(), '.otfuse', 'runs');
    const before = fs.existsSync(runsRoot) ? fs.readdirSync(runsRoot).sort() : [];
    const a = vscode.Uri.file(example('vit48_s10.onnx'));
    const b = vscode.Uri.file(example('vit48_s11.onnx'));
    const started = new Promise<void>((resolve) => {
      const sub = otfuse.jobs.onLive((l) => {
        if (l?.state === 'running' && l.stage !== 'start') {
          sub.dispose();
          resolve();
        }
      });
    });
    const job = vscode.commands.executeCommand('otfuse.fuseModels', a, [a, b], {
      anchor: a.fsPath,
      data: example('calib200.npz'),
      preset: 'recommended',
      quiet: true,
    });
    await started;
    const n = await vscode.commands.executeCommand<number>('otfuse.cancelRun');
    assert.equal(n, 1);
    await assert.rejects(Promise.resolve(job), (err: any) => err.code === 'CANCELLED');
    const after = fs.existsSync(runsRoot) ? fs.readdirSync(runsRoot).sort() : [];
    assert.deepEqual(after, before, 'nothing half-written');
  });

  test('Delete Run refuses a folder that is not an otfuse run', async () => {
    const fake = path.join(workspaceDir(), 'not-a-run');
    fs.mkdirSync(fake, { recursive: true });
    fs.writeFileSync(path.join(fake, 'run.json'), '{"id":"x"}');
    fs.writeFileSync(path.join(fake, 'notes.txt'), 'keep me');
    const ok = await vscode.commands.executeCommand<boolean>('otfuse.deleteRun', fake, undefined, { confirm: false });
    assert.equal(ok, false);
    assert.ok(fs.existsSync(path.join(fake, 'notes.txt')));
    fs.rmSync(fake, { recursive: true });
  });

  test('Delete Run removes the run folder', async function () {
    assert.ok(result, 'needs the run made by the fuse test above, which failed');
    const ok = await vscode.commands.executeCommand<boolean>('otfuse.deleteRun', result!.runDir, undefined, { confirm: false });
    assert.equal(ok, true);
    assert.ok(!fs.existsSync(result!.runDir));
  });
});
