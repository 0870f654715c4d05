// The auto-tuned default recipe: candidates fused from the first part of the calibration data and scored on its
// held-out tail; the lowest held-out loss wins; unimplemented options are skipped, not fatal; the budget cuts
// the tail of the sweep; the CLI auto-tunes only when no recipe flag is given.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { autotuneRecipe, sliceDataset } from '../../worker/fusion/autotune';
import { fuseLoaded } from '../../worker/fusion/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { EXAMPLES, runCli, tempDir } from '../helpers';

const S10 = path.join(EXAMPLES, 'vit48_s10.onnx');
const S11 = path.join(EXAMPLES, 'vit48_s11.onnx');
const CALIB = path.join(EXAMPLES, 'calib200.npz');

test('autotune: scores each candidate on the held-out calibration tail and keeps the lowest loss', async () => {
  const models = [loadModel(S11), loadModel(S10)];
  const calib = openDataset(CALIB);
  const candidates = [
    { label: 'sinkhorn', recipe: { solver: 'sinkhorn' as const, reg: 0.08 } },
    { label: 'not implemented', recipe: { refit: 'regmean++' as const, qk: 'separate' as const } },
    { label: 'exact', recipe: { preset: 'exact' as const } },
  ];
  const r = await autotuneRecipe(models, calib, { fuse: fuseLoaded, candidates, budgetSeconds: 600 });
  assert.equal(r.fitSamples, 150);
  assert.equal(r.heldOutSamples, 50);
  const scored = r.trials.filter((t) => !t.skipped);
  assert.ok(scored.length >= 2, JSON.stringify(r.trials));
  const best = scored.reduce((a, b) => (b.loss! < a.loss! ? b : a));
  assert.equal(r.chosenLabel, best.label);
  // The recorded score is reproducible: the same candidate fused from samples 0..149, evaluated on 150..199.
  const again = await fuseLoaded({ models, recipe: resolveRecipe({ ...candidates[0].recipe, samples: 150 }), calib: sliceDataset(calib, 0, 150) });
  const ev = await evaluateModel(again.fused, sliceDataset(calib, 150, 50));
  const first = r.trials.find((t) => t.label === 'sinkhorn')!;
  assert.ok(Math.abs(ev.loss - first.loss!) < 1e-6, `${ev.loss} vs ${first.loss}`);
  assert.equal(ev.samples, 50);
  // An option the engine does not implement is skipped with its reason (and never chosen).
  const ni = r.trials.find((t) => t.label === 'not implemented')!;
  if (ni.skipped) assert.match(ni.skipped, /refit/);
});

test('autotune: the budget cuts the tail of the sweep but always scores the first candidate', async () => {
  const models = [loadModel(S11), loadModel(S10)];
  const r = await autotuneRecipe(models, openDataset(CALIB), {
    fuse: fuseLoaded,
    budgetSeconds: 0.001,
    candidates: [
      { label: 'a', recipe: { solver: 'emd' } },
      { label: 'b', recipe: { preset: 'weights' } },
    ],
  });
  assert.equal(r.chosenLabel, 'a');
  assert.match(r.trials[1].skipped ?? '', /budget/);
});

test('CLI: fuse without recipe flags auto-tunes and records the sweep; with a recipe flag it does not', () => {
  const dir = tempDir();
  const runs = path.join(dir, 'runs');
  const a = runCli(['fuse', S11, S10, '--data', CALIB, '--no-eval', '--autotune-budget', '8', '--runs-dir', runs, '--json']);
  assert.equal(a.code, 0, a.stderr);
  const ra = JSON.parse(a.stdout);
  const rec = JSON.parse(fs.readFileSync(path.join(ra.runDir, 'run.json'), 'utf8'));
  assert.ok(rec.autotune, 'run.json records the sweep');
  assert.equal(rec.autotune.budgetSeconds, 8);
  assert.ok(rec.autotune.trials.length >= 2);
  assert.ok(rec.timings.autotune > 0);
  const b = runCli(['fuse', S11, S10, '--data', CALIB, '--no-eval', '--solver', 'emd', '--runs-dir', runs, '--json']);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(JSON.parse(b.stdout).record.autotune, undefined);
  const c = runCli(['fuse', S11, S10, '--data', CALIB, '--no-eval', '--solver', 'emd', '--autotune-budget', '5', '--runs-dir', runs]);
  assert.equal(c.code, 2, c.stderr);
});
