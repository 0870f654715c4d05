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
import { autotuneRecipe, sliceDataset } from '../../worker/jobs/autotune';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import {
  estimateTrialCost,
  estimateTrialSeconds,
  FORWARD_FLOPS,
  linearShapes,
  NOMINAL_FLOPS,
  PASS_OVERHEAD_S,
  TRIAL_OVERHEAD_S,
} from '../../worker/jobs/trialcost';
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

test('autotune: the budget counts estimated seconds: a candidate runs when its estimate fits in what is left', async () => {
  const models = [loadModel(S11), loadModel(S10)];
  // estimates 1, 2, 0.5 against a budget of 2: a runs (1 left), b does not fit, c does (0.5 left)
  const est = (r: { solver: string; alignBy: string }) => (r.alignBy === 'wts' ? 0.5 : r.solver === 'emd' ? 1 : 2);
  const r = await autotuneRecipe(models, openDataset(CALIB), {
    fuse: fuseLoaded,
    budgetSeconds: 2,
    estimateSeconds: est,
    candidates: [
      { label: 'a', recipe: { solver: 'emd' } },
      { label: 'b', recipe: { solver: 'sinkhorn', reg: 0.08 } },
      { label: 'c', recipe: { preset: 'weights' } },
    ],
  });
  assert.ok(r.trials[0].loss! > 0, JSON.stringify(r.trials[0]));
  assert.match(r.trials[1].skipped ?? '', /over the 2 s budget \(estimated 2\.0 s, 1\.0 s left\)/);
  assert.ok(r.trials[2].loss! > 0, JSON.stringify(r.trials[2]));
  assert.deepEqual(
    r.trials.map((t) => t.estimate),
    [1, 2, 0.5],
  );
  assert.equal(r.estimatedSeconds, 1.5);
  assert.equal(r.guard, undefined);
  assert.equal(r.chosenLabel, r.trials[0].loss! < r.trials[2].loss! ? 'a' : 'c');
});

test('autotune: the same inputs give the same sweep however slow the machine is (no wall-time cut)', async () => {
  const models = [loadModel(S11), loadModel(S10)];
  const candidates = [
    { label: 'a', recipe: { solver: 'emd' as const, refit: 'none' as const } },
    { label: 'b', recipe: { preset: 'weights' as const } },
    { label: 'c', recipe: { solver: 'sinkhorn' as const, reg: 0.08, refit: 'none' as const } },
  ];
  const sweep = async (delayMs: number) =>
    autotuneRecipe(models, openDataset(CALIB), {
      // a loaded machine: every trial takes far longer than its estimate (and than the whole budget)
      fuse: async (input) => {
        await new Promise((ok) => setTimeout(ok, delayMs));
        return fuseLoaded(input);
      },
      budgetSeconds: 0.3,
      estimateSeconds: (r) => (r.alignBy === 'wts' ? 0.25 : 0.1),
      candidates,
    });
  const quiet = await sweep(0);
  const loaded = await sweep(700);
  const view = (r: Awaited<ReturnType<typeof sweep>>) => r.trials.map((t) => [t.label, t.loss, t.skipped]);
  assert.deepEqual(view(loaded), view(quiet));
  assert.equal(loaded.chosenLabel, quiet.chosenLabel);
  assert.deepEqual(
    quiet.trials.map((t) => !t.skipped),
    [true, false, true],
  );
  assert.ok(loaded.seconds > 1.4, `${loaded.seconds}`);
});

test('autotune: a model too large for the budget runs no trial and keeps the first candidate (estimate from its size)', async () => {
  const models = [loadModel(S11), loadModel(S10)];
  const estimate = estimateTrialCost(models, resolveRecipe({ solver: 'emd', samples: 150 }), { samples: 150, heldOut: 50, tokensPerSample: 50 });
  assert.ok(estimate > 0.5 && estimate < 3, `vit48 estimate ${estimate}`);
  const r = await autotuneRecipe(models, openDataset(CALIB), {
    fuse: fuseLoaded,
    budgetSeconds: estimate * 1.9, // not two trials
    candidates: [
      { label: 'a', recipe: { solver: 'emd' } },
      { label: 'b', recipe: { preset: 'weights' } },
    ],
  });
  assert.equal(r.chosenLabel, 'a');
  assert.deepEqual(r.chosen, { solver: 'emd' });
  for (const t of r.trials) {
    assert.equal(t.loss, undefined);
    assert.match(t.skipped ?? '', /estimated at .* from the model's size/);
  }
});

test('autotune: the wall-time guard (a safety stop) stops a trial, skips the rest, falls back to the first candidate and says so', async () => {
  const models = [loadModel(S11), loadModel(S10)];
  const r = await autotuneRecipe(models, openDataset(CALIB), {
    fuse: fuseLoaded,
    budgetSeconds: 30,
    stopAfterSeconds: 0.02,
    candidates: [
      { label: 'a', recipe: { solver: 'sinkhorn', reg: 0.08, refit: 'regmean' } },
      { label: 'b', recipe: { preset: 'exact' } },
    ],
  });
  assert.equal(r.chosenLabel, 'a');
  assert.match(r.trials[0].skipped ?? '', /stopped: the wall-time guard stopped the sweep after 0\.02 s/);
  assert.match(r.trials[1].skipped ?? '', /the wall-time guard had fired/);
  assert.match(r.guard ?? '', /wall-time guard stopped the sweep after 0\.02 s/);
  // the user's cancel is still a cancel, not a fallback
  const ctl = new AbortController();
  ctl.abort();
  await assert.rejects(autotuneRecipe(models, openDataset(CALIB), { fuse: fuseLoaded, signal: ctl.signal }), /cancelled/);
});

test('trial cost: MatMul/Gemm weights of the bundled ViT as (d_in, d_out); the estimate grows as width³', () => {
  const vit = loadModel(S11);
  const shapes = linearShapes(vit);
  // 3 blocks × (q, k, v, o 48→48, fc1 48→192, fc2 192→48) + the classifier 48→10
  assert.equal(shapes.filter(([i, o]) => i === 48 && o === 48).length, 12, JSON.stringify(shapes));
  assert.equal(shapes.filter(([i, o]) => i === 48 && o === 192).length, 3);
  assert.equal(shapes.filter(([i, o]) => i === 192 && o === 48).length, 3);
  assert.equal(shapes.length, 19);
  const recipe = resolveRecipe({ samples: 150 });
  const T = recipe.tokenBudget;
  let flops = 0;
  for (const [i, o] of shapes) flops += 2 * T * o * o + o ** 3 + 2 * T * i * i + i ** 3 / 3 + i * i * o;
  assert.ok(Math.abs(estimateTrialSeconds([vit, vit], recipe) - flops / NOMINAL_FLOPS) < 1e-12);
  assert.ok(estimateTrialSeconds([vit, vit], resolveRecipe({ samples: 150, refit: 'none' })) < estimateTrialSeconds([vit, vit], recipe));
  // the whole trial: overheads + forward passes (2 flops per weight per token) + the linear algebra
  const shape = { samples: 150, heldOut: 50, tokensPerSample: 50, refitLevels: 7 };
  const weights = shapes.reduce((s, [i, o]) => s + i * o, 0);
  const pass = (n: number) => PASS_OVERHEAD_S + (2 * weights * 50 * n) / FORWARD_FLOPS;
  const whole = TRIAL_OVERHEAD_S + 2 * pass(150) + pass(50) + estimateTrialSeconds([vit, vit], recipe);
  assert.ok(Math.abs(estimateTrialCost([vit, vit], recipe, shape) - whole) < 1e-12);
  const pp = estimateTrialCost([vit, vit], resolveRecipe({ samples: 150, refit: 'regmean++' }), shape);
  assert.ok(Math.abs(pp - whole - 2 * 7 * pass(150)) < 1e-12, `${pp} vs ${whole}`);
  const none = estimateTrialCost([vit, vit], resolveRecipe({ samples: 150, refit: 'none' }), shape);
  const wts = estimateTrialCost([vit, vit], resolveRecipe({ samples: 150, preset: 'weights' }), shape);
  assert.ok(wts < none && none < whole, `${wts} ${none} ${whole}`);
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
  // a budget below two estimated trials: no trial, the default recipe, and the reason printed
  const d = runCli(['fuse', S11, S10, '--data', CALIB, '--no-eval', '--autotune-budget', '0.2', '--runs-dir', runs]);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /recipe {6}Sinkhorn 0\.08 \+ regmean refit, not auto-tuned \(not tried: a trial is estimated at \d+\.\d s from the model's size/);
});
