// Text transformers (issue 7, graph + fusion part): BERT exports with summed Gather embeddings, post-LN blocks,
// an additive attention mask and a pooler. Structure from the graph, exactness against a permuted copy on the
// test set, and OT fusion vs vanilla averaging.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { analyzeModel } from '../../worker/graph/analyze';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { maxAbsDiff } from '../helpers';
import { permutedBertCopy, logitsOf } from './vit-helpers';

const BERT = path.join(process.cwd(), 'test', 'fixtures', 'bert');
const opts = {};

test('BERT: embeddings, post-LN blocks, masked attention and pooler come from the graph', opts, () => {
  const plan = analyzeModel(loadModel(path.join(BERT, 'bertD_s20.onnx')));
  assert.deepEqual([plan.layers, plan.hidden, plan.heads, plan.headDim, plan.mlp, plan.head.classes], [2, 64, 4, 16, 256, 8]);
  assert.ok(plan.embedding.kind === 'tokens');
  assert.deepEqual(
    plan.embedding.tables.map((t) => [t.name, t.by]),
    [
      ['bert.embeddings.word_embeddings.weight', 'input_ids'],
      ['bert.embeddings.position_embeddings.weight', 'position'],
      ['bert.embeddings.token_type_embeddings.weight', 'token_type_ids'],
    ],
  );
  assert.equal(plan.embedding.ln?.scale, 'bert.embeddings.LayerNorm.weight');
  for (const b of plan.blocks) {
    assert.equal(b.norm, 'post');
    assert.equal(b.ln1?.scale, `bert.encoder.layer.${b.index}.attention.output.LayerNorm.weight`);
    assert.equal(b.ln2?.scale, `bert.encoder.layer.${b.index}.output.LayerNorm.weight`);
    assert.equal(b.attn.q.bias, `bert.encoder.layer.${b.index}.attention.self.query.bias`);
    assert.equal(b.attn.k.bias, `bert.encoder.layer.${b.index}.attention.self.key.bias`);
    assert.equal(b.attn.v.bias, `bert.encoder.layer.${b.index}.attention.self.value.bias`);
  }
  assert.equal(plan.head.pooler?.weight, 'bert.pooler.dense.weight');
  assert.equal(plan.head.classifier.weight, 'classifier.weight');
});

test('BERT: EMD fusion with a permuted copy reproduces the logits on the test set', opts, async (t) => {
  const original = loadModel(path.join(BERT, 'bertD_s20.onnx'));
  const permuted = permutedBertCopy(original, 5);
  const testSet = openDataset(path.join(BERT, 'test.npz'));
  const calib = openDataset({ path: path.join(BERT, 'calib.npz'), limit: 64 });
  const want = await logitsOf(original, testSet, testSet.size);
  assert.ok(maxAbsDiff(want, await logitsOf(permuted, testSet, testSet.size)) < 1e-4, 'the permuted copy is functionally identical');
  for (const [alignBy, qk] of [
    ['acts', 'eq_t_map'],
    ['acts', 'separate'],
    ['wts', 'separate'],
  ] as const) {
    const r = await fuseLoaded({ models: [original, permuted], recipe: resolveRecipe({ solver: 'emd', alignBy, qk, samples: 64 }), calib });
    const err = maxAbsDiff(want, await logitsOf(r.fused, testSet, testSet.size));
    t.diagnostic(`${alignBy}/${qk}: max abs logit error over ${testSet.size} test samples ${err}`);
    assert.ok(err < 1e-4, `${alignBy}/${qk}: ${err}`);
  }
});

test('BERT: default OT fusion beats vanilla averaging; heterogeneous 96→64 runs', opts, async (t) => {
  const testSet = openDataset(path.join(BERT, 'test.npz'));
  const calib = openDataset(path.join(BERT, 'calib.npz'));
  const anchor = loadModel(path.join(BERT, 'bertD_s21.onnx'));
  const r = await fuseLoaded({ models: [anchor, loadModel(path.join(BERT, 'bertD_s20.onnx'))], recipe: resolveRecipe({}), calib });
  const ot = (await evaluateModel(r.fused, testSet)).accuracy;
  const vanilla = (await evaluateModel(r.vanilla!, testSet)).accuracy;
  t.diagnostic(`D pair: OT ${ot}, vanilla ${vanilla} (fixture README: vanilla 0.1722)`);
  assert.ok(Math.abs(vanilla - 0.1722) < 0.001);
  assert.ok(ot > vanilla + 0.15, `OT ${ot} vs vanilla ${vanilla}`);
  const het = await fuseLoaded({ models: [anchor, loadModel(path.join(BERT, 'bertE_s24.onnx'))], recipe: resolveRecipe({}), calib });
  assert.equal(het.fused.summary().parameterCount, anchor.summary().parameterCount);
  const hetAcc = (await evaluateModel(het.fused, testSet)).accuracy;
  t.diagnostic(`E→D heterogeneous: OT ${hetAcc}`);
  assert.ok(hetAcc > 0.2, `heterogeneous OT ${hetAcc}`);
});
