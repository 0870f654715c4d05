// recipe.refitMix (refitmix.ts): per-sample parent weights from the parents' own outputs, normalised so that
// Σ_k α_k w_k(x) = 1; a permuted copy stays exact under any mix; the weighted refit still never does worse than
// plain averaging on its own (weighted) objective, and really differs from the uniform refit.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { refitSampleWeights, weighRows } from '../../worker/fusion/refitmix';
import { VIT, maxAbsDiff } from '../helpers';
import { permutedCopy, logitsOf } from './vit-helpers';

const N = 48;
const calib = openDataset({ path: path.join(VIT, 'calib200.npz'), limit: N });
const s10 = loadModel(path.join(VIT, 'vit48_s10.onnx'));
const s11 = loadModel(path.join(VIT, 'vit48_s11.onnx'));

function softmax(l: Float32Array, i: number, c: number): number[] {
  const row = Array.from(l.subarray(i * c, (i + 1) * c));
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

for (const mix of ['confidence', 'label'] as const) {
  test(`refit mix '${mix}': w_k(x) ∝ the parent's ${mix === 'label' ? 'probability of the label' : 'largest probability'}, Σ α_k w_k(x) = 1`, async () => {
    const alpha = [0.3, 0.7];
    const w = (await refitSampleWeights({ mix, models: [s10, s11], alpha, calib, samples: N }))!;
    const [l0, l1] = [await logitsOf(s10, calib, N), await logitsOf(s11, calib, N)];
    let spread = 0;
    for (let x = 0; x < N; x++) {
      const p = [softmax(l0, x, 10), softmax(l1, x, 10)].map((q) => (mix === 'label' ? q[calib.labels[x]] : Math.max(...q)));
      const z = alpha[0] * p[0] + alpha[1] * p[1];
      assert.ok(Math.abs(w[0][x] - p[0] / z) < 1e-5 && Math.abs(w[1][x] - p[1] / z) < 1e-5, `sample ${x}: ${w[0][x]}, ${w[1][x]} vs ${p[0] / z}, ${p[1] / z}`);
      assert.ok(Math.abs(alpha[0] * w[0][x] + alpha[1] * w[1][x] - 1) < 1e-9);
      spread = Math.max(spread, Math.abs(w[0][x] - w[1][x]));
    }
    assert.ok(spread > 0.05, `the parents' weights differ somewhere (max |w0 − w1| ${spread})`);
  });
}

test("refit mix 'uniform' gives no weights (the refit as before)", async () => {
  assert.equal(await refitSampleWeights({ mix: 'uniform', models: [s10, s11], alpha: [0.5, 0.5], calib, samples: N }), undefined);
});

test('weighRows scales each kept row by its sample’s weight (w or √w)', () => {
  // 3 rows kept of a block of 2 samples × 3 tokens (rows 1, 3, 5), width 2, block starting at sample 4
  const X = Float32Array.from([1, 1, 2, 1, 3, 1]);
  const w = Float64Array.from([0, 0, 0, 0, 4, 9]);
  assert.deepEqual(Array.from(weighRows(X, 2, [1, 3, 5], 3, 4, w, 1)), [4, 4, 18, 9, 27, 9]);
  assert.deepEqual(Array.from(weighRows(X, 2, [1, 3, 5], 3, 4, w, 0.5)), [2, 2, 6, 3, 9, 3]);
  assert.deepEqual(Array.from(weighRows(X, 2, null, 1, 3, w, 1)), [0, 0, 8, 4, 27, 9]); // one token per sample: samples 3, 4, 5
});

for (const refit of ['regmean', 'regmean++'] as const) {
  test(`refit ${refit} with mix 'confidence' on a permuted copy is still exact`, async () => {
    const r = await fuseLoaded({
      models: [s10, permutedCopy(s10, 7).model],
      recipe: resolveRecipe({ solver: 'emd', qk: 'eq_t_map', samples: N, refit, refitRidge: 0, refitMix: 'confidence' }),
      calib,
    });
    const err = maxAbsDiff(await logitsOf(s10, calib, N), await logitsOf(r.fused, calib, N));
    assert.ok(err < 1e-3, `max abs logit error ${err}`);
  });

  test(`refit ${refit} with mix 'label' never does worse than plain averaging per layer, and differs from the uniform refit`, async () => {
    const fuse = async (refitMix: 'uniform' | 'label') =>
      fuseLoaded({ models: [s11, s10], recipe: resolveRecipe({ samples: N, refit, refitMix }), calib, vanilla: false });
    const [u, m] = [await fuse('uniform'), await fuse('label')];
    for (const l of m.refit!) assert.ok(l.errorRefit <= l.errorAverage + 1e-12, `${l.name}: ${l.errorRefit} > ${l.errorAverage}`);
    const diff = maxAbsDiff(await logitsOf(u.fused, calib, N), await logitsOf(m.fused, calib, N));
    assert.ok(diff > 1e-2, `the mix changes the fused model (max logit difference ${diff})`);
  });
}
