// Acceptance: a model fused (EMD) with a functionally identical, neuron-permuted copy of itself reproduces its
// own logits — for activation- and weight-based costs and every Q/K mode — and breaking any single map breaks it.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import type { TMap } from '../../worker/fusion/maps';
import { VIT, maxAbsDiff } from '../helpers';
import { permutedCopy, logitsOf } from './vit-helpers';

const calib = openDataset({ path: path.join(VIT, 'calib200.npz'), limit: 64 });
const original = loadModel(path.join(VIT, 'vit48_s10.onnx'));
const { model: permuted } = permutedCopy(original, 7);
const BATCH = 32;

test('the permuted copy is functionally identical to the original', async () => {
  const a = await logitsOf(original, calib, BATCH);
  const b = await logitsOf(permuted, calib, BATCH);
  assert.ok(maxAbsDiff(a, b) < 1e-4, `permuted copy differs by ${maxAbsDiff(a, b)}`);
  // ...and really permuted: its parameters differ.
  const w = 'vit.encoder.layer.0.intermediate.dense.bias';
  assert.ok(maxAbsDiff(original.getInitializer(w).data, permuted.getInitializer(w).data) > 1e-3);
});

const cases: { alignBy: 'acts' | 'wts'; qk: 'separate' | 'joint' | 'eq_t_map' }[] = [];
for (const alignBy of ['acts', 'wts'] as const) for (const qk of ['eq_t_map', 'joint', 'separate'] as const) cases.push({ alignBy, qk });

for (const c of cases) {
  test(`EMD fusion with a permuted copy reproduces the logits (${c.alignBy}, qk ${c.qk})`, async (t) => {
    const recipe = resolveRecipe({ solver: 'emd', alignBy: c.alignBy, qk: c.qk, samples: 64 });
    const r = await fuseLoaded({ models: [original, permuted], recipe, calib });
    const want = await logitsOf(original, calib, BATCH);
    const got = await logitsOf(r.fused, calib, BATCH);
    const err = maxAbsDiff(want, got);
    t.diagnostic(`max abs logit error ${err}`);
    assert.ok(err < 1e-4, `max abs logit error ${err}`);
    // Every solved map is a permutation.
    for (const m of r.maps[1])
      if (m.kind !== 'residual')
        assert.ok(m.diagnostics.meanBestMatch > 0.999, `${m.name} is not a permutation (best-match mass ${m.diagnostics.meanBestMatch})`);
  });
}

test('the fused logits stay exact under every residual policy (maps agree, so any mix is the same permutation)', async () => {
  for (const residualPolicy of ['no_resid', 'only_resid', 'weighted_scalar', 'weighted_matrix'] as const) {
    const recipe = resolveRecipe({ solver: 'emd', qk: 'eq_t_map', residualPolicy, samples: 64 });
    const r = await fuseLoaded({ models: [original, permuted], recipe, calib });
    const err = maxAbsDiff(await logitsOf(original, calib, BATCH), await logitsOf(r.fused, calib, BATCH));
    assert.ok(err < 1e-4, `${residualPolicy}: max abs logit error ${err}`);
  }
});

/** Swaps two anchor columns of one map: one axis aligned wrongly. */
function swapColumns(map: TMap, a: number, b: number): TMap {
  const plan = Float64Array.from(map.plan);
  for (let i = 0; i < map.n; i++) {
    const x = plan[i * map.m + a];
    plan[i * map.m + a] = plan[i * map.m + b];
    plan[i * map.m + b] = x;
  }
  return { ...map, plan };
}

for (const target of ['embed.patch', 'blocks.1.attn.q', 'blocks.0.attn.v', 'blocks.2.mlp.fc1', 'blocks.1.attn.o', 'embed.pos']) {
  test(`breaking one map (${target}) breaks exactness`, async (t) => {
    const recipe = resolveRecipe({ solver: 'emd', qk: 'separate', samples: 64 });
    const r = await fuseLoaded({
      models: [original, permuted],
      recipe,
      calib,
      tamper: (_k, name, map) => (name === target ? swapColumns(map, 0, 5) : map),
    });
    const err = maxAbsDiff(await logitsOf(original, calib, BATCH), await logitsOf(r.fused, calib, BATCH));
    t.diagnostic(`max abs logit error with ${target} corrupted: ${err}`);
    // Ten times the exactness tolerance: the 1e-4 check above would fail.
    assert.ok(err > 1e-3, `corrupting ${target} should change the logits, error only ${err}`);
  });
}

test('the wider fixture (vit72) fused with its permuted copy is exact too (acts eq_t_map, wts separate)', async (t) => {
  const wide = loadModel(path.join(VIT, 'vit72_s12.onnx'));
  const { model: wperm } = permutedCopy(wide, 11, { hidden: 72, heads: 4, mlp: 288, layers: 3 });
  const want = await logitsOf(wide, calib, BATCH);
  assert.ok(maxAbsDiff(want, await logitsOf(wperm, calib, BATCH)) < 1e-4);
  for (const [alignBy, qk] of [
    ['acts', 'eq_t_map'],
    ['wts', 'separate'],
  ] as const) {
    const r = await fuseLoaded({ models: [wide, wperm], recipe: resolveRecipe({ solver: 'emd', alignBy, qk, samples: 64 }), calib });
    const err = maxAbsDiff(want, await logitsOf(r.fused, calib, BATCH));
    t.diagnostic(`vit72 ${alignBy}/${qk}: max abs logit error ${err}`);
    assert.ok(err < 1e-4, `${alignBy}/${qk}: max abs logit error ${err}`);
  }
});

test('head-aware EMD (preset exact): exact on the permuted copy, and heads matched as units on real pairs', async (t) => {
  for (const alignBy of ['acts', 'wts'] as const) {
    const r = await fuseLoaded({ models: [original, permuted], recipe: resolveRecipe({ preset: 'exact', alignBy, samples: 64 }), calib });
    const err = maxAbsDiff(await logitsOf(original, calib, BATCH), await logitsOf(r.fused, calib, BATCH));
    t.diagnostic(`head-aware ${alignBy}: max abs logit error ${err}`);
    assert.ok(err < 1e-4, `head-aware ${alignBy}: ${err}`);
  }
  // Two independently trained models: every head of s10 goes whole to one head of s11, the same for Q/K and V.
  const s11 = loadModel(path.join(VIT, 'vit48_s11.onnx'));
  const r = await fuseLoaded({ models: [s11, original], recipe: resolveRecipe({ preset: 'exact', samples: 64 }), calib });
  for (let b = 0; b < 3; b++) {
    const get = (n: string) => r.maps[1].find((m) => m.name === `blocks.${b}.attn.${n}`)!.map;
    const heads = get('heads'),
      qk = get('qk'),
      v = get('v');
    assert.deepEqual([heads.n, heads.m], [4, 4]);
    const headOf = (row: number, map: TMap) => {
      let best = 0;
      for (let j = 0; j < map.m; j++) if (map.plan[row * map.m + j] > map.plan[row * map.m + best]) best = j;
      return Math.floor(best / (map.m / 4));
    };
    for (let h = 0; h < 4; h++) {
      const target = new Set<number>();
      for (let i = h * 12; i < (h + 1) * 12; i++) {
        target.add(headOf(i, qk));
        target.add(headOf(i, v));
      }
      assert.equal(target.size, 1, `block ${b} head ${h} is split across anchor heads`);
    }
  }
});
