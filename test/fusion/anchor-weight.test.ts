// The anchor's weight (recipe anchorWeight, `--anchor-weight`): α₀ for the anchor, the rest shared equally, used
// wherever per-parent weights are (the average and the refit's targets); explicit `weights` win.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { parentWeights, resolveRecipe } from '../../worker/fusion/recipe';
import { VIT, maxAbsDiff } from '../helpers';
import { logitsOf } from './vit-helpers';

const N = 48;
const calib = openDataset({ path: path.join(VIT, 'calib200.npz'), limit: N });
const s10 = loadModel(path.join(VIT, 'vit48_s10.onnx'));
const s11 = loadModel(path.join(VIT, 'vit48_s11.onnx'));

test('parentWeights: explicit weights, else the anchor weight and the rest shared, else uniform', () => {
  assert.deepEqual(parentWeights({}, 2), [0.5, 0.5]);
  const four = parentWeights({ anchorWeight: 0.7 }, 4);
  assert.equal(four[0], 0.7);
  for (const x of four.slice(1)) assert.ok(Math.abs(x - 0.1) < 1e-15, `${four}`);
  assert.deepEqual(parentWeights({ weights: [1, 3], anchorWeight: 0.7 }, 2), [1, 3]);
  assert.throws(() => resolveRecipe({ anchorWeight: 0 }), /anchorWeight' must be > 0/);
  assert.throws(() => resolveRecipe({ anchorWeight: 1.5 }), /anchorWeight' must be ≤ 1/);
});

for (const refit of ['none', 'regmean++'] as const) {
  test(`anchor weight 0.7 fuses exactly as weights 0.7 / 0.3 and not as the uniform average (refit ${refit})`, async () => {
    const fuse = (extra: object) =>
      fuseLoaded({ models: [s10, s11], recipe: resolveRecipe({ preset: 'exact', samples: N, refit, ...extra }), calib, vanilla: false });
    const [a, w, u] = [await fuse({ anchorWeight: 0.7 }), await fuse({ weights: [0.7, 1 - 0.7] }), await fuse({})];
    const [la, lw, lu] = [await logitsOf(a.fused, calib, N), await logitsOf(w.fused, calib, N), await logitsOf(u.fused, calib, N)];
    assert.equal(maxAbsDiff(la, lw), 0, 'the same weights give the same model');
    const diff = maxAbsDiff(la, lu);
    assert.ok(diff > 1e-2, `the anchor weight changes the fused model (max logit difference ${diff})`);
  });
}

test('the vanilla baseline stays the plain average: uniform under an anchor weight, the user’s weights when given', async () => {
  const fuse = (extra: object) => fuseLoaded({ models: [s10, s11], recipe: resolveRecipe({ preset: 'exact', samples: N, refit: 'none', ...extra }), calib });
  const [a, u, w] = [await fuse({ anchorWeight: 0.7 }), await fuse({}), await fuse({ weights: [0.7, 1 - 0.7] })];
  const [la, lu, lw] = [await logitsOf(a.vanilla!, calib, N), await logitsOf(u.vanilla!, calib, N), await logitsOf(w.vanilla!, calib, N)];
  assert.equal(maxAbsDiff(la, lu), 0, 'an anchor weight leaves the vanilla baseline uniform');
  assert.ok(maxAbsDiff(lw, lu) > 1e-2, 'explicit weights weigh the vanilla baseline too');
});
