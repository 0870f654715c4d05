// Acceptance: preset 'reference' reproduces graldij/transformer-fusion's fused checkpoints (EMD and Sinkhorn 0.08,
// plus the heterogeneous 72→48 one): argmax agreement ≥ 99 % on the 10k test set, accuracy within 0.3 pt, and
// logits compared directly.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel, OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import type { FuseRecipe } from '../../worker/types';
import { VIT, FMNIST_TEST, hasFullFmnist } from '../helpers';

const evalSet = hasFullFmnist ? openDataset(FMNIST_TEST) : openDataset(path.join(process.cwd(), 'examples', 'data', 'fmnist-test-2k.json'));
const calib = openDataset(path.join(VIT, 'calib200.npz'));

async function predict(model: OnnxModel): Promise<{ accuracy: number; logits: Float32Array }> {
  const parts: Float32Array[] = [];
  const r = await evaluateModel(model, evalSet, { batchSize: 500, onLogits: (l) => parts.push(new Float32Array(l)) });
  const logits = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    logits.set(p, o);
    o += p.length;
  }
  return { accuracy: r.accuracy, logits };
}

function compare(a: Float32Array, b: Float32Array, classes = 10): { agreement: number; maxAbs: number; meanAbs: number } {
  const n = a.length / classes;
  let agree = 0,
    maxAbs = 0,
    sum = 0;
  for (let i = 0; i < n; i++) {
    let ia = 0,
      ib = 0;
    for (let c = 0; c < classes; c++) {
      const k = i * classes + c;
      if (a[k] > a[i * classes + ia]) ia = c;
      if (b[k] > b[i * classes + ib]) ib = c;
      const d = Math.abs(a[k] - b[k]);
      maxAbs = Math.max(maxAbs, d);
      sum += d;
    }
    if (ia === ib) agree++;
  }
  return { agreement: agree / n, maxAbs, meanAbs: sum / a.length };
}

const cases: { name: string; other: string; ref: string; recipe: FuseRecipe }[] = [
  { name: 'Sinkhorn 0.08', other: 'vit48_s10.onnx', ref: 'vit48_otfused_ref.onnx', recipe: { preset: 'reference' } },
  { name: 'EMD', other: 'vit48_s10.onnx', ref: 'vit48_otfused_emd_ref.onnx', recipe: { preset: 'reference', solver: 'emd' } },
  { name: 'heterogeneous 72→48, Sinkhorn 0.08', other: 'vit72_s12.onnx', ref: 'het72to48_otfused_ref.onnx', recipe: { preset: 'reference' } },
];

for (const c of cases) {
  test(`preset 'reference' reproduces the reference fusion (${c.name})`, async (t) => {
    const anchor = loadModel(path.join(VIT, 'vit48_s11.onnx'));
    const other = loadModel(path.join(VIT, c.other));
    const r = await fuseLoaded({ models: [anchor, other], recipe: resolveRecipe(c.recipe), calib });
    const ours = await predict(r.fused);
    const ref = await predict(loadModel(path.join(VIT, c.ref)));
    const cmp = compare(ours.logits, ref.logits);
    t.diagnostic(
      `${evalSet.size} images: ours ${ours.accuracy}, reference ${ref.accuracy}, argmax agreement ${cmp.agreement}, logits max |Δ| ${cmp.maxAbs.toExponential(2)}, mean |Δ| ${cmp.meanAbs.toExponential(2)}`,
    );
    assert.ok(cmp.agreement >= 0.99, `argmax agreement ${cmp.agreement} < 0.99`);
    assert.ok(Math.abs(ours.accuracy - ref.accuracy) <= 0.003, `accuracy ${ours.accuracy} vs reference ${ref.accuracy}`);
    // Sinkhorn is smooth in the cost, so the logits match closely; EMD may break a near-tie the other way.
    if (c.recipe.solver !== 'emd') assert.ok(cmp.maxAbs < 1e-3, `logits differ by up to ${cmp.maxAbs}`);
  });
}
