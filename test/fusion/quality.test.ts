// Acceptance on real models (10k Fashion-MNIST test set): default OT fusion ≥ reference OT − 1 pt and ≥ vanilla
// + 10 pt; heterogeneous 72→48 keeps the anchor's parameter count and ≥ reference het − 1 pt.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { VIT, FMNIST_TEST, hasFullFmnist } from '../helpers';

const ref = JSON.parse(fs.readFileSync(path.join(VIT, 'reference-results.json'), 'utf8'));
const evalSet = openDataset(hasFullFmnist ? FMNIST_TEST : path.join(process.cwd(), 'examples', 'data', 'fmnist-test-2k.json'));
const calib = openDataset(path.join(VIT, 'calib200.npz'));
const acc = async (m: ReturnType<typeof loadModel>) => (await evaluateModel(m, evalSet, { batchSize: 500 })).accuracy;

test('default OT fusion of the homogeneous pair beats vanilla by ≥ 10 pt and matches the reference', async (t) => {
  const r = await fuseLoaded({
    models: [loadModel(path.join(VIT, 'vit48_s11.onnx')), loadModel(path.join(VIT, 'vit48_s10.onnx'))],
    recipe: resolveRecipe({}),
    calib,
  });
  const ot = await acc(r.fused);
  const vanilla = await acc(r.vanilla!);
  const refOt = ref.fusion.vit48_sinkhorn.accuracy.otfusion;
  t.diagnostic(`${evalSet.size} images: OT ${ot}, vanilla ${vanilla}, reference OT ${refOt}, reference vanilla ${ref.fusion.vit48_sinkhorn.accuracy.vanilla}`);
  assert.ok(ot >= refOt - 0.01, `OT ${ot} < reference ${refOt} − 1 pt`);
  assert.ok(ot >= vanilla + 0.1, `OT ${ot} does not beat vanilla ${vanilla} by 10 pt`);
  if (hasFullFmnist) assert.ok(Math.abs(vanilla - ref.fusion.vit48_sinkhorn.accuracy.vanilla) < 1e-9, 'vanilla averaging matches the reference exactly');
});

test('EMD default beats the reference EMD − 1 pt', async (t) => {
  const r = await fuseLoaded({
    models: [loadModel(path.join(VIT, 'vit48_s11.onnx')), loadModel(path.join(VIT, 'vit48_s10.onnx'))],
    recipe: resolveRecipe({ solver: 'emd' }),
    calib,
  });
  const ot = await acc(r.fused);
  t.diagnostic(`EMD OT ${ot}, reference ${ref.fusion.vit48_emd.accuracy.otfusion}`);
  assert.ok(ot >= ref.fusion.vit48_emd.accuracy.otfusion - 0.01);
});

test('heterogeneous 72→48: anchor shape and parameter count, accuracy ≥ reference − 1 pt', async (t) => {
  const anchor = loadModel(path.join(VIT, 'vit48_s11.onnx'));
  const r = await fuseLoaded({ models: [anchor, loadModel(path.join(VIT, 'vit72_s12.onnx'))], recipe: resolveRecipe({}), calib });
  assert.equal(r.heterogeneous, true);
  assert.equal(r.vanilla, undefined);
  assert.equal(r.fused.summary().parameterCount, anchor.summary().parameterCount);
  for (const n of anchor.initializerNames()) assert.deepEqual(r.fused.getInitializer(n).dims, anchor.getInitializer(n).dims);
  const ot = await acc(r.fused);
  const refHet = ref.fusion.het72to48_sinkhorn.accuracy.otfusion;
  t.diagnostic(`het OT ${ot}, reference ${refHet}`);
  assert.ok(ot >= refHet - 0.01, `het OT ${ot} < reference ${refHet} − 1 pt`);
});
