// Trunk distillation (train/trunkdistill.ts, issue 28): a partial model's trunk and unmerge maps are trained so that
// every branch's stream at the cut reproduces its own parent's; the branches' blocks and heads stay the parents'.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { analyzeModel } from '../../worker/graph/analyze';
import { buildPartial, cutTensor, isPartialModel, partialMetadata } from '../../worker/fusion/partial';
import { captureTensors, fitUnmerges } from '../../worker/fusion/unmerge';
import { branchStream, distillTrunk, lossModel } from '../../worker/train/trunkdistill';
import { ModelRunner } from '../../worker/runtime/runner';
import * as ort from 'onnxruntime-node';
import { finetuneModel } from '../../worker/train/finetune';
import { VIT, tempDir } from '../helpers';

const A = path.join(VIT, 'vit48_s10.onnx');
const B = path.join(VIT, 'vit48_s11.onnx');
const data = openDataset({ path: path.join(VIT, 'calib200.npz'), limit: 128 });
const K = 1;

async function partial(): Promise<{ p: OnnxModel; models: OnnxModel[] }> {
  const models = [loadModel(A), loadModel(B)];
  const r = await fuseLoaded({ models, recipe: resolveRecipe({ samples: 64, mergeLayers: K }), calib: data, vanilla: false });
  const fitted = await fitUnmerges({ models, plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, calib: data, samples: 64 });
  return { p: buildPartial({ models, plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, k: K, fitted: fitted[K] }), models };
}

/** Σ over branches ‖branch stream − parent's own stream‖² / Σ ‖parent's stream‖², measured on the data. */
async function streamError(p: OnnxModel, models: OnnxModel[]): Promise<number> {
  const opts = { calib: data, samples: data.size };
  const mapped = await captureTensors(p, ['p0/unmerged', 'p1/unmerged'], opts);
  let err = 0,
    norm = 0;
  for (let m = 0; m < 2; m++) {
    const own = (await captureTensors(models[m], [cutTensor(analyzeModel(models[m]), K)!], opts))[0];
    for (let i = 0; i < own.length; i++) {
      err += (mapped[m][i] - own[i]) ** 2;
      norm += own[i] ** 2;
    }
  }
  return err / norm;
}

const initializers = (m: OnnxModel) => new Map(m.initializerNames().map((n) => [n, m.getInitializer(n).data]));
const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.prototype.every.call(a, (v: number, i: number) => v === b[i]);

test('trunk distillation: the branches see their parents’ streams better, only the trunk and the maps move', async () => {
  const { p, models } = await partial();
  assert.deepEqual(partialMetadata(p), { mergeLayers: 1, attention: false, layers: 3, models: 2 });
  const before = await streamError(p, models);
  // Teachers in the other order: matched to the branches by their weights.
  const { model: d, result } = await distillTrunk({ partial: p, teachers: [B, A], data, epochs: 40, seed: 0 });
  assert.equal(result.skipped, undefined);
  assert.equal(result.mse.length, 40);
  assert.ok(result.mse[39] < 0.7 * result.mse[0], `mse per epoch ${result.mse.map((x) => x.toFixed(4)).join(' ')}`);
  const after = await streamError(d, models);
  assert.ok(after < 0.7 * before, `stream error ${before.toFixed(4)} → ${after.toFixed(4)}`);
  assert.ok(isPartialModel(d));
  const was = initializers(p),
    now = initializers(d);
  assert.deepEqual([...now.keys()].sort(), [...was.keys()].sort());
  const moved = [...was.keys()].filter((n) => !same(was.get(n)!, now.get(n)!));
  // Every branch block and head is its parent's, bit for bit; what moved is the trunk and the unmerge maps.
  for (const n of moved) assert.ok(!/^p\d\//.test(n) || /unmerge/.test(n), `branch tensor ${n} moved`);
  assert.ok(moved.some((n) => /unmerge/.test(n)));
  assert.ok(
    moved.some((n) => !/^p\d\//.test(n) && /patch_embeddings|layer\.0\./.test(n)),
    `trunk moved: ${moved.join(', ')}`,
  );
});

test('trunk distillation is skipped, with the reason, when the teachers are not the parents or for a plain model', async () => {
  const { p } = await partial();
  // The reference's plain average of the two: the same architecture and names, other weights.
  const other = path.join(VIT, 'vit48_vanilla.onnx');
  const r = await distillTrunk({ partial: p, teachers: [other, A], data, epochs: 2, seed: 0 });
  assert.match(r.result.skipped ?? '', /not the partial model's parents/);
  assert.equal(r.model, p);
  const plain = await distillTrunk({ partial: loadModel(A), teachers: [A, B], data, epochs: 2, seed: 0 });
  assert.match(plain.result.skipped ?? '', /not a partial model/);
});

test('finetune of a partial model with its parents as teachers starts with trunk distillation; --trunk-epochs 0 turns it off', async () => {
  const { p } = await partial();
  const dir = tempDir('trunk-ft-');
  const start = path.join(dir, 'partial.onnx');
  p.save(start);
  const base = { model: start, data: path.join(VIT, 'calib200.npz'), epochs: 1, batchSize: 64, seed: 0, keep: 'last' as const, threads: 1, teachers: [A, B] };
  const on = await finetuneModel({ ...base, output: path.join(dir, 'on.onnx'), trunkEpochs: 3 }, {});
  assert.equal(on.trunkDistill?.epochs, 3);
  assert.equal(on.trunkDistill?.mse.length, 3);
  const off = await finetuneModel({ ...base, output: path.join(dir, 'off.onnx'), trunkEpochs: 0 }, {});
  assert.equal(off.trunkDistill, undefined);
  // Different starts for the same steps: different checkpoints.
  const a = loadModel(path.join(dir, 'on.onnx')),
    b = loadModel(path.join(dir, 'off.onnx'));
  const name = a.initializerNames().find((n) => /patch_embeddings.*weight$/.test(n))!;
  assert.ok(!same(a.getInitializer(name).data, b.getInitializer(name).data));
});

test('trunk distillation on a BERT partial model: three inputs bound, the error at the cut goes down', async () => {
  const BERT = path.join(process.cwd(), 'test', 'fixtures', 'bert');
  const files = [path.join(BERT, 'bertD_s20.onnx'), path.join(BERT, 'bertD_s21.onnx')];
  const text = openDataset({ path: path.join(BERT, 'calib.npz'), limit: 96 });
  const models = files.map((f) => loadModel(f));
  const r = await fuseLoaded({ models, recipe: resolveRecipe({ samples: 64, mergeLayers: 1 }), calib: text, vanilla: false });
  const p = buildPartial({ models, plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, k: 1 });
  // The loss counts real tokens only: a target off at padded positions alone leaves it at zero.
  const cut = cutTensor(r.plans[0], 1)!;
  const streams = [0, 1].map((m) => branchStream(p, m, cut));
  const batch = text.take([0, 1, 2, 3]);
  const f = await captureTensors(p, streams, { calib: openDataset({ path: path.join(BERT, 'calib.npz'), limit: 4 }), samples: 4 });
  const W = r.plans[0].hidden,
    T = f[0].length / (4 * W);
  const target = new Float32Array(4 * T * 2 * W);
  for (let row = 0; row < 4 * T; row++) for (let m = 0; m < 2; m++) target.set(f[m].subarray(row * W, (row + 1) * W), (row * 2 + m) * W);
  const mask = batch.feeds.attention_mask.data as BigInt64Array;
  const padded = Array.from(mask.keys()).filter((i) => mask[i] === 0n);
  assert.ok(padded.length > 0, 'the first four samples have padding');
  const runner = await ModelRunner.create(lossModel(p, streams, T, W), { provider: 'cpu' });
  const errWith = async (t: Float32Array) => {
    const feeds = {
      ...Object.fromEntries(Object.entries(batch.feeds).map(([k, v]) => [k, new ort.Tensor(v.type, v.data, v.dims)])),
      feat_target: new ort.Tensor('float32', t, [4, T, 2 * W]),
    };
    const out = await runner.session.run(feeds);
    return Array.from(out['trunk/err'].data as Float32Array);
  };
  const offPadded = Float32Array.from(target);
  for (const i of padded) for (let c = 0; c < 2 * W; c++) offPadded[i * 2 * W + c] += 5;
  const offReal = Float32Array.from(target);
  const real = Array.from(mask.keys()).find((i) => mask[i] !== 0n)!;
  offReal[real * 2 * W] += 5;
  for (const e of await errWith(offPadded)) assert.ok(e < 1e-3, `padded-only change: ${e}`);
  assert.ok((await errWith(offReal))[0] > 20, 'a real token counts');
  await runner.release();
  const { result } = await distillTrunk({ partial: p, teachers: files, data: text, epochs: 8, seed: 0 });
  assert.equal(result.skipped, undefined);
  assert.ok(result.mse[7] < 0.8 * result.mse[0], `mse per epoch ${result.mse.map((x) => x.toFixed(4)).join(' ')}`);
});
