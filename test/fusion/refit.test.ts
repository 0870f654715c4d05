// Alignment refit (RegMean / RegMean++ after OT alignment): exact on a permuted copy, never worse than plain
// averaging per layer on the calibration set, and better than averaging on a real pair.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { solveSpd, mm, mmT, releaseRefitSessions } from '../../worker/fusion/refit';
import { VIT, maxAbsDiff } from '../helpers';
import { permutedCopy, logitsOf } from './vit-helpers';
import { CaptureGrams, configureGramBlocks } from '../../worker/fusion/refitgrams';

const calib = openDataset({ path: path.join(VIT, 'calib200.npz'), limit: 64 });
const s10 = loadModel(path.join(VIT, 'vit48_s10.onnx'));
const s11 = loadModel(path.join(VIT, 'vit48_s11.onnx'));
const BATCH = 32;

test('solveSpd solves (G + λI) X = B', () => {
  const G = Float64Array.from([4, 1, 1, 3]);
  const X = solveSpd(G, 2, Float64Array.from([1, 2, 2, 1]), 2, 1); // (G + I) = [[5,1],[1,4]]
  const back = [5 * X[0] + 1 * X[2], 5 * X[1] + 1 * X[3], 1 * X[0] + 4 * X[2], 1 * X[1] + 4 * X[3]];
  assert.ok(maxAbsDiff(back, [1, 2, 2, 1]) < 1e-12);
});

test('large float64 products (ONNX Runtime) equal the JS products', async () => {
  const n = 300,
    rand = (i: number) => (Math.sin(i * 12.9898) * 43758.5453) % 1;
  const A = Float64Array.from({ length: n * n }, (_, i) => rand(i)),
    B = Float64Array.from({ length: n * n }, (_, i) => rand(i + 7));
  const C = await mm(A, B, n, n, n),
    Ct = await mmT(A, B, n, n, n);
  let e = 0,
    et = 0;
  for (const [i, j] of [
    [0, 0],
    [17, 250],
    [299, 3],
    [150, 150],
  ]) {
    let s = 0,
      st = 0;
    for (let k = 0; k < n; k++) {
      s += A[i * n + k] * B[k * n + j];
      st += A[k * n + i] * B[k * n + j];
    }
    e = Math.max(e, Math.abs(s - C[i * n + j]));
    et = Math.max(et, Math.abs(st - Ct[i * n + j]));
  }
  await releaseRefitSessions();
  assert.ok(e < 1e-10 && et < 1e-10, `${e} ${et}`);
});

for (const refit of ['regmean', 'regmean++'] as const) {
  test(`refit ${refit} on a permuted copy is still exact`, async () => {
    const r = await fuseLoaded({
      models: [s10, permutedCopy(s10, 7).model],
      recipe: resolveRecipe({ solver: 'emd', qk: 'eq_t_map', samples: 64, refit, refitRidge: 0 }),
      calib,
    });
    const err = maxAbsDiff(await logitsOf(s10, calib, BATCH), await logitsOf(r.fused, calib, BATCH));
    assert.ok(err < 1e-3, `max abs logit error ${err}`);
    assert.equal(r.refit!.length, 3 * 6 + 1);
    for (const l of r.refit!) assert.ok(l.errorAverage < 1e-6 && l.errorRefit < 1e-6, `${l.name}: ${l.errorAverage} / ${l.errorRefit}`);
  });

  test(`refit ${refit} never makes a layer's reconstruction error worse than plain averaging (real pair)`, async () => {
    for (const refitRidge of [0, 0.01, 1]) {
      const r = await fuseLoaded({ models: [s11, s10], recipe: resolveRecipe({ samples: 64, refit, refitRidge }), calib });
      let before = 0,
        after = 0;
      for (const l of r.refit!) {
        assert.ok(l.errorRefit <= l.errorAverage + 1e-12, `${refit} ridge ${refitRidge} ${l.name}: ${l.errorRefit} > ${l.errorAverage}`);
        before += l.errorAverage;
        after += l.errorRefit;
      }
      // With a small ridge the refit really changes the layers (not a no-op that passes trivially). RegMean fits
      // each parent's layer on its own inputs (errors drop ~10×); RegMean++ fits both parents' outputs from the
      // fused model's inputs, where the parents' disagreement stays (errors drop ~15 %).
      if (refitRidge <= 0.01) assert.ok(after < (refit === 'regmean' ? 0.3 : 0.95) * before, `summed error ${before} → ${after}`);
      const rec = r.maps[1].find((m) => m.name === 'blocks.0.mlp.fc1')!;
      assert.equal(typeof rec.diagnostics.refitError, 'number');
    }
  });
}

test('the refit honours the token budget: a seeded share of the input rows, the same for every model', async () => {
  // 64 images × 17 tokens = 1,088 candidate rows per token-level input; a budget of 300 keeps ~28 % of them.
  const full = await fuseLoaded({ models: [s11, s10], recipe: resolveRecipe({ samples: 64, tokenBudget: 0 }), calib });
  const capped = await fuseLoaded({ models: [s11, s10], recipe: resolveRecipe({ samples: 64, tokenBudget: 300 }), calib });
  const again = await fuseLoaded({ models: [s11, s10], recipe: resolveRecipe({ samples: 64, tokenBudget: 300 }), calib });
  const fc1 = (r: typeof full) => r.refit!.find((l) => l.name === 'blocks.0.mlp.fc1')!;
  assert.equal(fc1(full).rows, 64 * 17);
  assert.ok(Math.abs(fc1(capped).rows - 300) < 80, `kept ${fc1(capped).rows} rows for a budget of 300`);
  // The capture passes only the images the budget can use, the first ⌈2 × 300 / 16⌉ = 38 (calibinputs.ts; 16 patch
  // tokens, the fewest of the captured tensors), and the classifier sees one row per image passed (38 < 300).
  assert.equal(full.capture!.samples, 64);
  assert.equal(capped.capture!.samples, 38);
  const head = (r: typeof full) => r.refit!.find((l) => l.name.startsWith('head'))!;
  assert.equal(head(full).rows, 64);
  assert.equal(head(capped).rows, 38);
  // Seeded: the same rows again, so the same fused model.
  assert.equal(maxAbsDiff(await logitsOf(capped.fused, calib, BATCH), await logitsOf(again.fused, calib, BATCH)), 0);
  // A subsample changes the fit, but the refit still beats plain averaging on every layer's (kept) rows.
  for (const l of capped.refit!) assert.ok(l.errorRefit <= l.errorAverage + 1e-12, `${l.name}`);
});

/** Largest |x − y| over every initializer of two models with the same graph, relative to the tensor's largest |x|. */
function largestWeightDifference(a: OnnxModel, b: OnnxModel): number {
  let worst = 0;
  for (const name of a.initializerNames()) {
    const x = a.getInitializer(name).data,
      y = b.getInitializer(name).data;
    let scale = 0;
    for (let i = 0; i < x.length; i++) scale = Math.max(scale, Math.abs(x[i]));
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (scale || 1));
  }
  return worst;
}

test('regmean takes its Grams from the capture (staged or all at once) and matches a pass of its own', async () => {
  const recipe = resolveRecipe({ samples: 64, tokenBudget: 600 });
  const own = await fuseLoaded({ models: [s11, s10], recipe: { ...recipe, capture: 'all' }, calib, refitOwnPass: true });
  for (const capture of ['all', 'staged'] as const) {
    const tapped = await fuseLoaded({ models: [s11, s10], recipe: { ...recipe, capture }, calib });
    assert.equal(tapped.refit!.length, own.refit!.length);
    for (let i = 0; i < own.refit!.length; i++) {
      const a = own.refit![i],
        b = tapped.refit![i];
      assert.equal(b.name, a.name);
      // The same rows (the budget's seeded share), summed over other batch splits: float32 partials differ slightly.
      assert.equal(b.rows, a.rows, `${capture} ${a.name}`);
      assert.ok(Math.abs(b.errorRefit - a.errorRefit) <= 1e-4 * a.errorAverage + 1e-9, `${capture} ${a.name}: ${b.errorRefit} vs ${a.errorRefit}`);
    }
    const worst = largestWeightDifference(own.fused, tapped.fused);
    assert.ok(worst < 1e-3, `${capture}: largest weight difference ${worst} (relative to the tensor's largest)`);
    // And the refit really ran (differs from the plain OT average).
    assert.ok(tapped.refit!.some((l) => l.errorRefit < 0.5 * l.errorAverage));
  }
});

test('Grams by column blocks (2 and 4 blocks, upper triangle, rows scattered by block) give the refit of full products', async () => {
  const recipe = resolveRecipe({ samples: 64, tokenBudget: 600 });
  const previous = configureGramBlocks(Infinity);
  let full: Awaited<ReturnType<typeof fuseLoaded>>;
  try {
    full = await fuseLoaded({ models: [s11, s10], recipe: { ...recipe, capture: 'staged' }, calib });
  } finally {
    configureGramBlocks(previous);
  }
  configureGramBlocks(16); // widths 49 → 2 blocks, 193 → 4 blocks
  try {
    for (const refitOwnPass of [false, true]) {
      const blocked = await fuseLoaded({ models: [s11, s10], recipe: { ...recipe, capture: 'staged' }, calib, refitOwnPass });
      for (let i = 0; i < full.refit!.length; i++) {
        const a = full.refit![i],
          b = blocked.refit![i];
        assert.equal(b.rows, a.rows);
        assert.ok(
          Math.abs(b.errorRefit - a.errorRefit) <= 1e-4 * a.errorAverage + 1e-9,
          `${a.name} (own pass ${refitOwnPass}): ${b.errorRefit} vs ${a.errorRefit}`,
        );
      }
      const worst = largestWeightDifference(full.fused, blocked.fused);
      assert.ok(worst < 1e-3, `own pass ${refitOwnPass}: largest weight difference ${worst}`);
    }
  } finally {
    configureGramBlocks(previous);
  }
});

test('large input maps wait in the Gram spool during alignment and come back as float32', async () => {
  const grams = new CaptureGrams([s10], [], { samples: 1, datasetSize: 1, tokenBudget: 0, tokenSeed: 0 });
  try {
    const n = 600;
    const big = { n, m: n, plan: Float64Array.from({ length: n * n }, (_, i) => Math.sin(i) / (n * n)) };
    const small = { n: 4, m: 4, plan: new Float64Array(16).fill(1 / 16) };
    const stub = grams.holdMap(big);
    assert.equal(stub.plan.length, 0, 'nothing of the plan stays in memory');
    assert.equal(grams.holdMap(big), stub, 'a map shared by several layers is set aside once');
    assert.equal(grams.holdMap(small), small);
    const back = grams.resolveMap(stub);
    assert.equal(back.n, n);
    let worst = 0;
    for (let i = 0; i < big.plan.length; i++) worst = Math.max(worst, Math.abs(back.plan[i] - big.plan[i]) / (Math.abs(big.plan[i]) || 1));
    assert.ok(worst < 1e-7, `relative error ${worst}`);
    assert.equal(grams.resolveMap(small), small);
  } finally {
    await grams.release();
  }
});
