// The partial model's trunk, chosen per K on held-out calibration rows (worker/jobs/partialChoice.ts), the trunk
// fit over every shared block's residual-stream writers (worker/fusion/trunkfit.ts) and the finer cut after a
// block's attention (partial.ts `attention`). A wrong split, a score computed on other rows than those recorded,
// a choice that is not the lowest score, or a fit that breaks a function-preserving case fails here.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { buildPartial } from '../../worker/fusion/partial';
import { fitPartialTrunk } from '../../worker/fusion/trunkfit';
import { chooseTrunks, heldOutSplit, klAndAccuracy, type TrunkChoice } from '../../worker/jobs/partialChoice';
import { sliceDataset } from '../../worker/jobs/autotune';
import { VIT, maxAbsDiff } from '../helpers';
import { permutedCopy, logitsOf } from './vit-helpers';

const calib = openDataset(path.join(VIT, 'calib200.npz'));
const a = loadModel(path.join(VIT, 'vit48_s10.onnx'));
const b = loadModel(path.join(VIT, 'vit48_s11.onnx'));
const SAMPLES = 64; // 136 spare calibration samples: the held-out rows are 64 … 199, nothing is refit

test('held-out split: the spare samples past the fusion’s when ≥ 100, otherwise the last quarter (≥ 32) and a refit on all', () => {
  assert.deepEqual(heldOutSplit(200, 64), { fit: 64, heldOut: 136, offset: 64, refitOnAll: false });
  assert.deepEqual(heldOutSplit(2000, 200), { fit: 200, heldOut: 500, offset: 200, refitOnAll: false });
  assert.deepEqual(heldOutSplit(200, 200), { fit: 150, heldOut: 50, offset: 150, refitOnAll: true });
  assert.deepEqual(heldOutSplit(100, 200), { fit: 68, heldOut: 32, offset: 68, refitOnAll: true });
  assert.equal(heldOutSplit(40, 200), undefined);
});

test('klAndAccuracy: zero for the same logits, the closed form for two classes, accuracy of the second argument', () => {
  const p = Float32Array.from([2, 0, 0, 1]);
  assert.equal(klAndAccuracy(p, p, 2).kl, 0);
  const q = Float32Array.from([0, 0, 0, 0]);
  const s = 1 / (1 + Math.exp(-2));
  const kl0 = s * Math.log(s / 0.5) + (1 - s) * Math.log((1 - s) / 0.5);
  const s1 = 1 / (1 + Math.exp(-1));
  const kl1 = s1 * Math.log(s1 / 0.5) + (1 - s1) * Math.log((1 - s1) / 0.5);
  const r = klAndAccuracy(p, q, 2, Int32Array.from([0, 1]));
  assert.ok(Math.abs(r.kl - (kl0 + kl1) / 2) < 1e-12, `${r.kl}`);
  assert.equal(klAndAccuracy(q, p, 2, Int32Array.from([0, 1])).accuracy, 1);
  assert.equal(klAndAccuracy(p, q, 2, Int32Array.from([1, 1])).accuracy, 0); // ties: the first class
});

test('two different parents: every K records fused, anchor and fitted candidates; the choice is the lowest held-out KL, as recomputed', async () => {
  const r = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({ samples: SAMPLES, pareto: true }), calib, vanilla: false });
  const out = await chooseTrunks({ models: [a, b], plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, calib, samples: SAMPLES, ks: [1, 2] });
  assert.ok(out);
  assert.deepEqual(out.split, { fit: SAMPLES, heldOut: 136, refitOnAll: false });
  const held = sliceDataset(calib, SAMPLES, 136);
  const ens = await logitsOf(buildPartial({ models: [a, b], plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, k: 0 }), held, 136);
  for (const k of [1, 2]) {
    const c: TrunkChoice = out.choices.get(k)!;
    assert.deepEqual(
      c.candidates.map((x) => x.trunk),
      ['fused', 'anchor', 'fitted'],
      `K = ${k}: candidates`,
    );
    const lowest = c.candidates.reduce((x, y) => (y.heldOutKl < x.heldOutKl ? y : x));
    assert.equal(c.kind, lowest.trunk);
    // The recorded score is the KL of the model returned, on the held-out rows (not the fitting rows).
    const got = await logitsOf(buildPartial({ models: [a, b], plans: r.plans, fused: c.trunk, cutMaps: r.cutMaps!, k, fitted: c.fitted }), held, 136);
    const kl = klAndAccuracy(ens, got, 10, held.labels);
    assert.ok(Math.abs(kl.kl - lowest.heldOutKl) < 1e-6, `K = ${k}: ${kl.kl} vs recorded ${lowest.heldOutKl}`);
    assert.equal(kl.accuracy, lowest.heldOutAccuracy);
    // The refit trunk lowers the stacked residual at the cut below its starting trunk's.
    const fitted = c.candidates.find((x) => x.trunk === 'fitted')!;
    const start = c.candidates.find((x) => x.trunk === fitted.from)!;
    assert.ok(fitted.residual < start.residual, `K = ${k}: fitted ${fitted.residual} vs ${fitted.from} ${start.residual}`);
  }
});

test('a permuted copy: every candidate trunk reproduces the original, the chosen one to 1e-4 in the logits', async () => {
  const { model: permuted } = permutedCopy(a, 11);
  const r = await fuseLoaded({
    models: [a, permuted],
    recipe: resolveRecipe({ solver: 'emd', qk: 'eq_t_map', samples: SAMPLES, pareto: true }),
    calib,
    vanilla: false,
  });
  const out = await chooseTrunks({ models: [a, permuted], plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, calib, samples: SAMPLES, ks: [1, 2] });
  const want = await logitsOf(a, calib, SAMPLES);
  for (const k of [1, 2]) {
    const c: TrunkChoice = out!.choices.get(k)!;
    for (const x of c.candidates) assert.ok(x.heldOutKl < 1e-8, `K = ${k}, ${x.trunk}: KL ${x.heldOutKl}`);
    const p = buildPartial({ models: [a, permuted], plans: r.plans, fused: c.trunk, cutMaps: r.cutMaps!, k, fitted: c.fitted });
    const err = maxAbsDiff(want, await logitsOf(p, calib, SAMPLES));
    assert.ok(err < 1e-4, `K = ${k} (${c.kind}): max abs logit error ${err}`);
  }
});

test('the cut after a block’s attention: a permuted copy is reproduced, sizes fall between K and K + 1, the writers’ refit lowers the residual', async () => {
  const { model: permuted } = permutedCopy(a, 13);
  const e = await fuseLoaded({
    models: [a, permuted],
    recipe: resolveRecipe({ solver: 'emd', qk: 'eq_t_map', samples: SAMPLES, pareto: true }),
    calib,
    vanilla: false,
  });
  const want = await logitsOf(a, calib, SAMPLES);
  const base = { models: [a, permuted], plans: e.plans, cutMaps: e.cutMaps!, calib, samples: SAMPLES };
  for (const k of [0, 1, 2]) {
    const tf = await fitPartialTrunk({ ...base, fused: e.fused, k, attention: true, rounds: 0 });
    for (const f of tf.fitted) assert.ok(f.errorFit < 1e-8, `K = ${k}½: residual ${f.errorFit}`);
    const p = buildPartial({ ...base, fused: e.fused, k, attention: true, fitted: tf.fitted });
    const err = maxAbsDiff(want, await logitsOf(p, calib, SAMPLES));
    assert.ok(err < 1e-4, `K = ${k}½: max abs logit error ${err}`);
    const lo = buildPartial({ ...base, fused: e.fused, k: k + 1, fitted: k + 1 < 3 ? tf.fitted : undefined }).summary().parameterCount;
    const hi = buildPartial({ ...base, fused: e.fused, k, fitted: k > 0 ? tf.fitted : undefined }).summary().parameterCount;
    const mid = p.summary().parameterCount;
    assert.ok(mid > lo && mid < hi, `K = ${k}½: ${mid} parameters, not between ${lo} and ${hi}`);
  }
  const r = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({ samples: SAMPLES, pareto: true }), calib, vanilla: false });
  const tf = await fitPartialTrunk({ models: [a, b], plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, calib, samples: SAMPLES, k: 1, attention: true });
  assert.ok(tf.kept.includes('block 1 attn.o'), `kept ${tf.kept}`);
  assert.ok(tf.residuals.at(-1)! < 0.9 * tf.residuals[0], `residuals ${tf.residuals}`);
});
