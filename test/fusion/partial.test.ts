// Partial fusion (--merge-layers K, issue 28): K = 0 is the parents' logit ensemble, K = all is today's fusion, a
// permuted copy fused with its original reproduces the original at every K (the unmerge map at the cut undoes the
// permutation), a wrong unmerge map breaks that, and Hugging Face export refuses a partial model.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded, fuseModels } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { buildPartial, isPartialModel } from '../../worker/fusion/partial';
import { identityMap } from '../../worker/fusion/maps';
import { exportHf } from '../../worker/hf/export';
import { OtfuseError } from '../../worker/errors';
import { VIT, maxAbsDiff, runCli, tempDir } from '../helpers';
import { hfDir } from '../hf/helpers';
import { permutedCopy, logitsOf } from './vit-helpers';
import '../../worker/hf';

const CALIB = path.join(VIT, 'calib200.npz');
const calib = openDataset({ path: CALIB, limit: 64 });
const a = loadModel(path.join(VIT, 'vit48_s10.onnx'));
const b = loadModel(path.join(VIT, 'vit48_s11.onnx'));
const BATCH = 64;
const LAYERS = 3;

test('K = 0 is the logit ensemble of the original parents (nothing shared, not even the embeddings)', async () => {
  const r = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({ mergeLayers: 0, samples: 64 }), calib });
  assert.ok(r.cutMaps, 'the maps at the cuts are kept');
  const p0 = buildPartial({ models: [a, b], plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, k: 0 });
  const [la, lb, got] = await Promise.all([logitsOf(a, calib, BATCH), logitsOf(b, calib, BATCH), logitsOf(p0, calib, BATCH)]);
  const want = la.map((x, i) => (x + lb[i]) / 2);
  const err = maxAbsDiff(want, got);
  assert.ok(err < 1e-5, `K = 0 differs from the ensemble by ${err}`);
  // Two whole parents: twice one parent's parameters.
  assert.equal(p0.summary().parameterCount, a.summary().parameterCount + b.summary().parameterCount);
  assert.ok(isPartialModel(p0));
});

test('K = all is the fused model itself: same weights as a run without --merge-layers', async () => {
  const plain = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({ samples: 64 }), calib });
  const all = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({ samples: 64, mergeLayers: LAYERS }), calib });
  const pAll = buildPartial({ models: [a, b], plans: all.plans, fused: all.fused, cutMaps: all.cutMaps ?? [], k: LAYERS });
  assert.equal(pAll, all.fused);
  assert.ok(!isPartialModel(pAll));
  for (const name of plain.fused.initializerNames())
    assert.deepEqual(all.fused.getInitializer(name).data, plain.fused.getInitializer(name).data, `initializer ${name} differs`);
  const err = maxAbsDiff(await logitsOf(plain.fused, calib, BATCH), await logitsOf(pAll, calib, BATCH));
  assert.equal(err, 0);
});

test('a permuted copy fused with its original reproduces the original at every K; a wrong unmerge map breaks it', async (t) => {
  const { model: permuted } = permutedCopy(a, 7);
  const r = await fuseLoaded({ models: [a, permuted], recipe: resolveRecipe({ solver: 'emd', qk: 'eq_t_map', samples: 64, pareto: true }), calib });
  const want = await logitsOf(a, calib, BATCH);
  const single = a.summary().parameterCount;
  let prevParams = Infinity;
  for (let k = 0; k <= LAYERS; k++) {
    const p = buildPartial({ models: [a, permuted], plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, k });
    const err = maxAbsDiff(want, await logitsOf(p, calib, BATCH));
    t.diagnostic(`K = ${k}: max abs logit error ${err}, ${p.summary().parameterCount} parameters`);
    assert.ok(err < 1e-5, `K = ${k}: max abs logit error ${err}`);
    // Fewer parameters with every shared block; between one parent (K = all) and two (K = 0).
    const n = p.summary().parameterCount;
    assert.ok(n < prevParams && n >= single && n <= 2 * single, `K = ${k}: ${n} parameters`);
    prevParams = n;
  }
  // The identity in place of the unmerge map: the permuted parent's upper blocks read the anchor's basis.
  for (const k of [1, 2]) {
    const wrong = r.cutMaps!.map((maps) => maps.map((m) => m && identityMap(m.n)));
    const p = buildPartial({ models: [a, permuted], plans: r.plans, fused: r.fused, cutMaps: wrong, k });
    const err = maxAbsDiff(want, await logitsOf(p, calib, BATCH));
    assert.ok(err > 0.1, `K = ${k} without the unmerge map still matches (${err})`);
  }
});

test('fuse --merge-layers writes the partial model and the curve; HF export refuses it, ONNX works', async () => {
  const runs = tempDir();
  const out = await fuseModels({
    models: [path.join(VIT, 'vit48_s10.onnx'), path.join(VIT, 'vit48_s11.onnx')],
    data: { path: CALIB, limit: 64 },
    evalData: { path: CALIB, offset: 64, limit: 100 },
    recipe: { samples: 64, mergeLayers: 1, pareto: true },
    runsDir: runs,
  });
  const partial = out.record.partial!;
  assert.equal(partial.mergeLayers, 1);
  assert.equal(partial.layers, LAYERS);
  assert.deepEqual(
    partial.points!.map((p) => p.mergeLayers),
    [0, 1, 2, 3],
  );
  for (const p of partial.points!) assert.ok(p.accuracy! > 0.3 && p.accuracy! <= 1, `K = ${p.mergeLayers}: ${p.accuracy}`);
  // Each parent's own size; the trunk of every inner K chosen on held-out calibration rows (64 samples, all used by
  // the fusion: the last 32 held out, the chosen trunk refit on all 64), the lowest held-out KL, recorded.
  assert.deepEqual(partial.modelParameters, [88666, 88666]);
  assert.deepEqual(partial.heldOut, { fit: 32, heldOut: 32, refitOnAll: true });
  assert.deepEqual(
    partial.points!.map((p) => p.trunk !== undefined),
    [false, true, true, false],
  );
  for (const p of partial.points!.slice(1, 3)) {
    const lowest = p.candidates!.reduce((x, y) => (y.heldOutKl < x.heldOutKl ? y : x));
    assert.equal(p.trunk, lowest.trunk, `K = ${p.mergeLayers}: ${JSON.stringify(p.candidates)}`);
    assert.ok(p.candidates!.length >= 2 && p.candidates!.every((c) => c.heldOutKl >= 0 && c.heldOutAccuracy! >= 0));
  }
  assert.equal(partial.trunk, partial.points![1].trunk);
  const fusedFile = path.join(out.runDir, 'fused.onnx');
  const saved = loadModel(fusedFile);
  assert.ok(isPartialModel(saved));
  assert.equal(saved.summary().parameterCount, partial.parameters);
  assert.equal(partial.points![1].parameters, partial.parameters);
  // The fused row measures the partial model: the curve's point at K = 1.
  const fusedRow = out.record.metrics.find((m) => m.role === 'fused')!;
  assert.ok(Math.abs(fusedRow.accuracy! - partial.points![1].accuracy!) < 1e-9);
  const hfOut = path.join(tempDir(), 'hf');
  await assert.rejects(
    () => exportHf({ model: fusedFile, like: hfDir('vit-fmnist-s11'), output: hfOut }),
    (e: unknown) => e instanceof OtfuseError && e.code === 'UNSUPPORTED' && /partial fusion/.test(e.message) && e.file === fusedFile,
  );
  assert.ok(!fs.existsSync(hfOut), 'nothing written');
});

test('--merge-layers past the depth is refused before any work', async () => {
  const runs = tempDir();
  await assert.rejects(
    () =>
      fuseModels({
        models: [path.join(VIT, 'vit48_s10.onnx'), path.join(VIT, 'vit48_s11.onnx')],
        data: { path: CALIB, limit: 64 },
        recipe: { mergeLayers: LAYERS + 1 },
        runsDir: runs,
      }),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE' && /3 blocks/.test(e.message),
  );
  assert.deepEqual(fs.readdirSync(runs), []);
});

test("the honest protocol reports each non-anchor parent after alignment (role 'aligned'): a permuted copy keeps its accuracy", async () => {
  const dir = tempDir();
  const perm = path.join(dir, 'permuted.onnx');
  permutedCopy(a, 11).model.save(perm);
  const out = await fuseModels({
    models: [path.join(VIT, 'vit48_s10.onnx'), perm],
    data: { path: CALIB, limit: 64 },
    evalData: { path: CALIB, offset: 64, limit: 136 },
    recipe: { samples: 64, solver: 'emd', qk: 'eq_t_map' },
    baselines: true,
    runsDir: path.join(dir, 'runs'),
  });
  const aligned = out.record.metrics.filter((m) => m.role === 'aligned');
  assert.equal(aligned.length, 1);
  assert.equal(aligned[0].model, 1);
  const parent = out.record.metrics.find((m) => m.role === 'parent' && m.model === 1)!;
  assert.equal(aligned[0].accuracy, parent.accuracy);
  assert.ok(Math.abs(aligned[0].loss! - parent.loss!) < 1e-4, `loss ${aligned[0].loss} vs ${parent.loss}`);
});

test('otfuse fuse --merge-layers past the depth: exit 2, the depth named, no stack trace, no run folder', () => {
  const runs = tempDir();
  const r = runCli(['fuse', path.join(VIT, 'vit48_s10.onnx'), path.join(VIT, 'vit48_s11.onnx'), '--data', CALIB, '--merge-layers', '7', '--runs-dir', runs]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--merge-layers 7: the models have 3 blocks/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.deepEqual(fs.readdirSync(runs), []);
});
