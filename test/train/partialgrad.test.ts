// A partial model (--merge-layers K, issue 28) trains: its branches' logits meet in ONNX Mean, and the shared
// trunk's parameters collect the gradient of every branch. Whole-graph gradient check against central differences,
// then one distillation epoch from the parents on the fixture's data: the checkpoint stays a partial model of the
// same size, every branch and the trunk moved, and it is evaluated like any model.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded, fuseModels } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { buildPartial, isPartialModel } from '../../worker/fusion/partial';
import { gradientCheck } from '../../worker/train/gradcheck';
import { trainableParameters } from '../../worker/train/graphs';
import { finetuneModel } from '../../worker/train/finetune';
import { VIT, tempDir } from '../helpers';
import { gradientMismatches, imageFeeds } from './helpers';

const A = path.join(VIT, 'vit48_s10.onnx');
const B = path.join(VIT, 'vit48_s11.onnx');
const calib = openDataset({ path: path.join(VIT, 'calib200.npz'), limit: 64 });

async function partialK1() {
  const models = [loadModel(A), loadModel(B)];
  const r = await fuseLoaded({ models, recipe: resolveRecipe({ samples: 64, mergeLayers: 1 }), calib, vanilla: false });
  return buildPartial({ models, plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, k: 1 });
}

test('partial model (K = 1, two branches): every parameter tensor’s gradient matches finite differences', async () => {
  const p = await partialK1();
  assert.ok(isPartialModel(p));
  const feeds = imageFeeds(calib, [0, 1, 2, 3, 4]);
  const params = trainableParameters(p);
  const entries = await gradientCheck(p, { feeds, eps: 3e-3, samplesPerTensor: 3 });
  assert.equal(entries.length, params.length);
  assert.deepEqual(gradientMismatches(entries), []);
  // Both branches' heads get real gradients (each through Mean's 1/2 share), and the shared trunk's patch embedding too.
  const live = new Set(entries.filter((e) => e.scale > 1e-4).map((e) => e.name));
  const heads = params.filter((n) => /classifier\.weight$/.test(n));
  assert.equal(heads.length, 2, `one head per branch: ${heads.join(', ')}`);
  for (const h of heads) assert.ok(live.has(h), `${h} gets a gradient`);
  assert.ok(
    params.some((n) => /patch_embeddings.*weight$/.test(n) && live.has(n)),
    'the shared patch embedding gets a gradient',
  );
});

test('a partial model distils from its parents: one epoch keeps it partial and moves trunk and branches', async () => {
  const p = await partialK1();
  const dir = tempDir('partial-kd-');
  const start = path.join(dir, 'partial.onnx');
  const out = path.join(dir, 'partial-kd.onnx');
  p.save(start);
  const res = await finetuneModel(
    { model: start, data: path.join(VIT, 'calib200.npz'), output: out, epochs: 1, batchSize: 32, seed: 0, keep: 'last', threads: 1, teachers: [A, B] },
    {},
  );
  assert.ok(res.steps >= 6, `steps ${res.steps}`);
  const after = loadModel(out);
  assert.ok(isPartialModel(after), 'the checkpoint is still marked partial (HF export refuses it)');
  assert.equal(after.summary().parameterCount, p.summary().parameterCount);
  const moved = (name: string) => {
    const x = p.getInitializer(name).data as Float32Array;
    const y = after.getInitializer(name).data as Float32Array;
    return x.some((v, i) => v !== y[i]);
  };
  const heads = trainableParameters(after).filter((n) => /classifier\.weight$/.test(n));
  for (const h of heads) assert.ok(moved(h), `${h} moved`);
  const embed = trainableParameters(after).find((n) => /patch_embeddings.*weight$/.test(n))!;
  assert.ok(moved(embed), `${embed} (shared trunk) moved`);
});

test('fuse --merge-layers 1 with a finetune stage: the partial model is finetuned, beside the parents given the same', async () => {
  const runs = tempDir('partial-ft-');
  const out = await fuseModels({
    models: [A, B],
    data: { path: path.join(VIT, 'calib200.npz'), limit: 64 },
    evalData: { path: path.join(VIT, 'calib200.npz'), offset: 64, limit: 100 },
    recipe: { samples: 64, mergeLayers: 1 },
    finetune: { data: { path: path.join(VIT, 'calib200.npz'), limit: 64 }, epochs: 1, batchSize: 32, seed: 0, teachers: [A, B] },
    baselines: true,
    runsDir: runs,
  });
  const tuned = loadModel(path.join(out.runDir, 'finetuned.onnx'));
  assert.ok(isPartialModel(tuned), 'finetuned.onnx is the partial model, trained');
  assert.equal(tuned.summary().parameterCount, out.record.partial!.parameters);
  const roles = out.record.metrics.map((m) => `${m.role}:${m.start ?? ''}`);
  assert.ok(roles.includes('finetuned:fused'), roles.join(', '));
  assert.equal(out.record.metrics.filter((m) => m.role === 'baseline' && (m.start === 'parent' || m.start === 'anchor')).length, 2, roles.join(', '));
  // Two steps from the partial model and from each parent stay far above chance (the vanilla average's may not).
  for (const m of out.record.metrics.filter((r) => r.role === 'finetuned' || (r.role === 'baseline' && r.start !== 'vanilla')))
    assert.ok(m.accuracy! > 0.3, `${m.label}: ${m.accuracy}`);
});
