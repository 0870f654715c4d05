// Fitted unmerge maps for partial fusion (worker/fusion/unmerge.ts): the least-squares map from the fused trunk's
// stream to a parent's own recovers that parent exactly when its stream is an invertible linear function of the
// trunk's (even with the ridge pulling towards a wrong prior), and on a real pair it never reconstructs a parent's
// stream worse than the transport map's unmerge.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { buildPartial } from '../../worker/fusion/partial';
import { fitLinear, fitUnmerges } from '../../worker/fusion/unmerge';
import { fitPartialTrunk } from '../../worker/fusion/trunkfit';
import { VIT, maxAbsDiff } from '../helpers';
import { permutedCopy, logitsOf } from './vit-helpers';

const CALIB = path.join(VIT, 'calib200.npz');
const calib = openDataset({ path: CALIB, limit: 64 });
const a = loadModel(path.join(VIT, 'vit48_s10.onnx'));
const b = loadModel(path.join(VIT, 'vit48_s11.onnx'));

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

test('fitLinear recovers X = H·A + c exactly (A invertible, not a permutation), whatever the prior', () => {
  const rand = lcg(3);
  const m = 6,
    rows = 50;
  const H = Float32Array.from({ length: rows * m }, rand);
  const A = Float64Array.from({ length: m * m }, (_, i) => rand() + (i % (m + 1) === 0 ? 2 : 0));
  const c = Float64Array.from({ length: m }, rand);
  const X = new Float32Array(rows * m);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < m; j++) {
      let y = c[j];
      for (let i = 0; i < m; i++) y += H[r * m + i] * A[i * m + j];
      X[r * m + j] = y;
    }
  const wrongPrior = new Float64Array((m + 1) * m); // zeros: far from A
  const { W, err0, err } = fitLinear(H, X, m, m, wrongPrior, 1e-6);
  assert.ok(err0 > 0.5, `the zero prior should be a bad fit (${err0})`);
  assert.ok(err < 1e-9, `residual ${err}`);
  assert.ok(maxAbsDiff(W.subarray(0, m * m), A) < 1e-5, `weights off by ${maxAbsDiff(W.subarray(0, m * m), A)}`);
  assert.ok(maxAbsDiff(W.subarray(m * m), c) < 1e-5, 'bias');
});

test('a permuted copy: the fitted unmerge is the permutation, and the partial model reproduces the original at every K', async () => {
  const { model: permuted } = permutedCopy(a, 5);
  // The defaults (Sinkhorn maps): the fitted maps must not depend on the transport maps being exact.
  const r = await fuseLoaded({ models: [a, permuted], recipe: resolveRecipe({ samples: 64, pareto: true }), calib, vanilla: false });
  const exact = await fuseLoaded({
    models: [a, permuted],
    recipe: resolveRecipe({ solver: 'emd', qk: 'eq_t_map', samples: 64, pareto: true }),
    calib,
    vanilla: false,
  });
  const fitted = await fitUnmerges({ models: [a, permuted], plans: exact.plans, fused: exact.fused, cutMaps: r.cutMaps!, calib, samples: 64 });
  const want = await logitsOf(a, calib, 64);
  for (const k of [1, 2]) {
    for (const f of fitted[k]) assert.ok(f.errorFit < 1e-8, `K = ${k}: residual ${f.errorFit}`);
    const p = buildPartial({ models: [a, permuted], plans: exact.plans, fused: exact.fused, cutMaps: r.cutMaps!, k, fitted: fitted[k] });
    const err = maxAbsDiff(want, await logitsOf(p, calib, 64));
    assert.ok(err < 1e-4, `K = ${k}: max abs logit error ${err}`);
    // Two unmerge maps (weights + bias) on top of the transport-map version's parameters.
    const plain = buildPartial({ models: [a, permuted], plans: exact.plans, fused: exact.fused, cutMaps: r.cutMaps!, k });
    assert.equal(p.summary().parameterCount, plain.summary().parameterCount + 48 * 48 + 2 * 48);
  }
});

test("two different parents: the fitted map reconstructs each parent's stream at the cut better than the transport map", async () => {
  const r = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({ samples: 64, pareto: true }), calib, vanilla: false });
  const fitted = await fitUnmerges({ models: [a, b], plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, calib, samples: 64 });
  for (const k of [1, 2])
    fitted[k].forEach((f, m) => {
      assert.ok(f.errorFit < f.errorMap, `K = ${k}, model ${m}: ${f.errorFit} ≥ ${f.errorMap}`);
      assert.ok(f.errorFit > 1e-4, `K = ${k}, model ${m}: a fused trunk is not an exact linear function of a parent (${f.errorFit})`);
    });
});

test('the trunk fit (block K − 1 fc2 refit with the maps) lowers the stacked residual; a permuted copy stays exact', async () => {
  const r = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({ samples: 64, pareto: true }), calib, vanilla: false });
  const tf = await fitPartialTrunk({ models: [a, b], plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, calib, samples: 64, k: 2, rounds: 2 });
  assert.ok(tf.residuals.length >= 2, `no round kept: ${tf.residuals}`);
  assert.ok(tf.residuals.at(-1)! < 0.9 * tf.residuals[0], `residuals ${tf.residuals}`);
  assert.notEqual(tf.trunk, r.fused);
  // The partial model computes what the fit says: its branch inputs are h·U + c for the refit h.
  const p = buildPartial({ models: [a, b], plans: r.plans, fused: tf.trunk, cutMaps: r.cutMaps!, k: 2, fitted: tf.fitted });
  const l = await logitsOf(p, calib, 64);
  assert.ok(l.every(Number.isFinite));
  const { model: permuted } = permutedCopy(a, 9);
  const e = await fuseLoaded({
    models: [a, permuted],
    recipe: resolveRecipe({ solver: 'emd', qk: 'eq_t_map', samples: 64, pareto: true }),
    calib,
    vanilla: false,
  });
  const same = await fitPartialTrunk({ models: [a, permuted], plans: e.plans, fused: e.fused, cutMaps: e.cutMaps!, calib, samples: 64, k: 1 });
  const q = buildPartial({ models: [a, permuted], plans: e.plans, fused: same.trunk, cutMaps: e.cutMaps!, k: 1, fitted: same.fitted });
  const err = maxAbsDiff(await logitsOf(a, calib, 64), await logitsOf(q, calib, 64));
  assert.ok(err < 1e-4, `max abs logit error ${err}`);
});
