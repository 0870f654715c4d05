// Fusion of what PyTorch's own modules export (issue 13): exactness with a neuron-permuted copy (made in
// PyTorch from parameter names by scripts/fixtures/torch_exports.py, independently of the graph analysis) for
// every pattern at opset 14 and 17; trained pairs: OT beats vanilla averaging; the fused model keeps the packed
// layout; finetune runs on the fused models.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { finetuneModel } from '../../worker/train/finetune';
import { analyzeModel } from '../../worker/graph/analyze';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import { EXAMPLES, FMNIST_TEST, VIT, hasFullFmnist, maxAbsDiff, tempDir } from '../helpers';
import { logitsOf } from './vit-helpers';
import { ALL_VARIANTS, OPSETS, TINY, TRAINED, fixturePath, hasPermuted, loadGz, tiny } from '../graph/torch-fixtures';

const calib = openDataset({ path: path.join(VIT, 'calib200.npz'), limit: 64 });
const N = 64;

function sameParams(a: OnnxModel, b: OnnxModel): number {
  let m = 0;
  for (const n of a.initializerNames()) m = Math.max(m, maxAbsDiff(a.getInitializer(n).data, b.getInitializer(n).data));
  return m;
}

const exactCases: { variant: string; opset: number }[] = [];
for (const variant of ALL_VARIANTS) for (const opset of OPSETS) if (hasPermuted(variant, opset)) exactCases.push({ variant, opset });

test('every pattern has a permuted copy at opset 14 and at opset 17 (the headline variants at both)', () => {
  for (const v of ['tv', 'timm', 'enc_post_relu_sf', 'enc_pre_gelu_bf']) for (const op of OPSETS) assert.ok(hasPermuted(v, op), `${v} op${op}`);
  assert.equal(exactCases.length, 16);
});

for (const { variant, opset } of exactCases) {
  test(`${variant} opset ${opset}: EMD fusion with its permuted copy reproduces the model bit for bit`, async (t) => {
    const original = tiny(variant, opset),
      permuted = tiny(variant, opset, true);
    const want = await logitsOf(original, calib, N);
    const perm = await logitsOf(permuted, calib, N);
    // The copy computes the same function (to float32 rounding of the reordered sums) with other parameters.
    assert.ok(maxAbsDiff(want, perm) < 1e-5, `permuted copy differs by ${maxAbsDiff(want, perm)}`);
    assert.ok(sameParams(original, permuted) > 1e-3);
    const headline = ['tv', 'timm', 'enc_post_relu_sf', 'enc_pre_gelu_bf'].includes(variant);
    const recipes = headline
      ? [
          { alignBy: 'acts', qk: 'eq_t_map' },
          { alignBy: 'wts', qk: 'eq_t_map' },
          { alignBy: 'acts', qk: 'joint' },
          { alignBy: 'acts', qk: 'separate' },
          { alignBy: 'acts', headAware: true },
        ]
      : [{ alignBy: 'acts', qk: 'eq_t_map' }];
    for (const opts of recipes) {
      const r = await fuseLoaded({ models: [original, permuted], recipe: resolveRecipe({ solver: 'emd', samples: N, ...opts } as never), calib });
      const got = await logitsOf(r.fused, calib, N);
      const err = maxAbsDiff(want, got);
      t.diagnostic(`${JSON.stringify(opts)}: max |Δlogit| ${err}, max |Δparam| ${sameParams(original, r.fused)}`);
      assert.equal(err, 0, `${JSON.stringify(opts)}: max abs logit error ${err}`);
      assert.equal(sameParams(original, r.fused), 0, 'every fused parameter equals the original');
      // The fused model keeps the anchor's packed layout: same initializers, same dims.
      assert.deepEqual(r.fused.initializerNames(), original.initializerNames());
      for (const n of original.initializerNames()) assert.deepEqual(r.fused.getInitializer(n).dims, original.getInitializer(n).dims);
      if (opts === recipes[0]) {
        // Negative control: plain averaging of the two (unaligned) copies is far from the original.
        const vanilla = await logitsOf(r.vanilla!, calib, N);
        assert.ok(maxAbsDiff(want, vanilla) > 0.05, `vanilla averaging is suspiciously close: ${maxAbsDiff(want, vanilla)}`);
      }
    }
  });
}

test('exports without constant folding (weights behind Transpose nodes, all shapes computed at run time) fuse bit for bit', async (t) => {
  for (const v of ['tv', 'timm']) {
    const original = loadGz(fixturePath(TINY, `${v}_tiny_nofold_op14`)),
      permuted = loadGz(fixturePath(TINY, `${v}_tiny_nofold_perm_op14`));
    const plan = analyzeModel(original);
    assert.equal(plan.blocks[0].attn.q.outIn, true, 'the packed weight is read through its Transpose ([out, in] storage)');
    assert.deepEqual(plan.blocks[1].attn.v.slice, { offset: 48, size: 24 });
    const r = await fuseLoaded({ models: [original, permuted], recipe: resolveRecipe({ solver: 'emd', samples: N }), calib });
    const want = await logitsOf(original, calib, N);
    const err = maxAbsDiff(want, await logitsOf(r.fused, calib, N));
    t.diagnostic(`${v}: max |Δlogit| ${err}`);
    assert.equal(err, 0);
    assert.ok(maxAbsDiff(want, await logitsOf(permuted, calib, N)) < 1e-5);
  }
});

// ---- trained pairs (4 epochs on Fashion-MNIST, two seeds; test/fixtures/torch/trained) ----

const evalSet = openDataset(hasFullFmnist ? FMNIST_TEST : path.join(EXAMPLES, 'data', 'fmnist-test-2k.json'));
const PAIRS: { name: string; margin: number }[] = [
  { name: 'tv', margin: 0.1 },
  { name: 'timm', margin: 0.1 },
  { name: 'enc_pre_gelu_bf', margin: 0.1 },
  { name: 'enc_post_relu_sf', margin: 0.05 },
];

for (const { name, margin } of PAIRS) {
  test(`${name} trained pair (opset 17): both parents ≥ 80 %, OT fusion (default, and the paper's recipe without refit) beats vanilla by ≥ ${margin * 100} pt`, async (t) => {
    const a = loadGz(fixturePath(TRAINED, `${name}_s1_op17`)),
      b = loadGz(fixturePath(TRAINED, `${name}_s2_op17`));
    const acc = async (m: OnnxModel) => (await evaluateModel(m, evalSet, { batchSize: 500 })).accuracy;
    const full = openDataset(path.join(VIT, 'calib200.npz'));
    const r = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({}), calib: full });
    const paper = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({ preset: 'paper' }), calib: full });
    const [pa, pb, ot, otPaper, vanilla] = [await acc(a), await acc(b), await acc(r.fused), await acc(paper.fused), await acc(r.vanilla!)];
    t.diagnostic(`${evalSet.size} test images: parents ${pa} / ${pb}, vanilla ${vanilla}, OT ${ot}, OT (paper, no refit) ${otPaper}`);
    assert.ok(pa >= 0.8 && pb >= 0.8, `parents ${pa} / ${pb}`);
    assert.ok(ot >= vanilla + margin, `OT ${ot} does not beat vanilla ${vanilla} by ${margin}`);
    assert.ok(otPaper >= vanilla + margin, `OT without refit ${otPaper} does not beat vanilla ${vanilla} by ${margin}`);
    // The fused model has the anchor's graph and the packed initializers.
    const plan = analyzeModel(r.fused);
    assert.equal(plan.blocks[0].attn.q.weight, plan.blocks[0].attn.v.weight);
  });
}

test('finetune runs on fused packed-attention models (every pattern) and keeps their structure', async (t) => {
  const dir = tempDir();
  for (const name of ['tv', 'timm', 'enc_post_relu_sf', 'enc_pre_gelu_bf']) {
    const a = loadGz(fixturePath(TRAINED, `${name}_s1_op17`)),
      b = loadGz(fixturePath(TRAINED, `${name}_s2_op17`));
    // The paper's recipe (no refit) so that finetuning has something to recover.
    const r = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({ preset: 'paper' }), calib });
    const fusedPath = path.join(dir, `${name}_fused.onnx`);
    r.fused.save(fusedPath);
    const output = path.join(dir, `${name}_ft.onnx`);
    const res = await finetuneModel(
      {
        model: fusedPath,
        data: { path: path.join(EXAMPLES, 'data', 'fmnist-train-5k.json'), limit: 1280 },
        evalData: { path: path.join(EXAMPLES, 'data', 'fmnist-test-2k.json'), limit: 1000 },
        output,
        epochs: 1,
        batchSize: 64,
        lr: 1e-3,
        seed: 1,
        evalBefore: true,
      },
      {},
    );
    const before = res.initial!.accuracy,
      after = res.evals[res.evals.length - 1].accuracy;
    t.diagnostic(`${name}: ${res.steps} steps, accuracy ${before} → ${after}`);
    assert.equal(res.steps, 20);
    assert.ok(res.history.every((h) => Number.isFinite(h.loss)));
    assert.ok(after > before, `${name}: finetuning did not help (${before} → ${after})`);
    const plan = analyzeModel(loadModel(output));
    assert.equal(plan.layers, 2);
  }
});
