// Masked-LM BERTs with a decoder tied to the word embedding (issue 13): the head comes from the graph, the tie is
// aligned once (the transform's outputs take the embedding map) and kept (one initializer in the output), and
// evaluation scores masked tokens only. Fixtures: test/fixtures/mlm (scripts/fixtures/make_mlm.py: two small
// BertForMaskedLM trained from different seeds on the fortunes token ids, imported from their HF folders).
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { OnnxModel } from '../../worker/onnx/model';
import { importHf } from '../../worker/hf';
import { openDataset } from '../../worker/data/dataset';
import { analyzeModel } from '../../worker/graph/analyze';
import { summarizePlan } from '../../worker/fusion/summary';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { finetuneModel } from '../../worker/train/finetune';
import { loadModel } from '../../worker/onnx/model';
import { maxAbsDiff, tempDir } from '../helpers';
import { headPerm, logitsOf, permuteAxis, randomPerm, rng } from './vit-helpers';

const MLM = path.join(process.cwd(), 'test', 'fixtures', 'mlm');
const TABLE = 'bert.embeddings.word_embeddings.weight';
const REF = JSON.parse(fs.readFileSync(path.join(MLM, 'reference.json'), 'utf8')) as Record<string, { loss: number; accuracy: number; tokens: number }>;
const model = (name: string) => importHf(path.join(MLM, name));

/** Initializers holding a [vocab, hidden] matrix (the tied table and any copy of it). */
function vocabMatrices(m: OnnxModel, vocab: number): string[] {
  return m.initializerNames().filter((n) => m.getInitializer(n).dims[0] === vocab && m.getInitializer(n).dims.length === 2);
}

/** A functionally identical copy: residual stream, heads, head dims and MLP neurons permuted (HF layout: weights [out, in]). */
function permutedMlmCopy(m0: OnnxModel, seed: number, cfg = { hidden: 48, heads: 4, mlp: 96, layers: 2 }): OnnxModel {
  const rand = rng(seed);
  const m = m0.clone();
  const P = (name: string, axis: number, p: number[]) => {
    const i = m.getInitializer(name);
    m.setInitializer(name, permuteAxis(i.data, i.dims, axis, p), i.dims);
  };
  const resid = randomPerm(cfg.hidden, rand);
  for (const t of ['word', 'position', 'token_type']) P(`bert.embeddings.${t}_embeddings.weight`, 1, resid);
  for (const x of ['weight', 'bias']) P(`bert.embeddings.LayerNorm.${x}`, 0, resid);
  const lin = (prefix: string, pin: number[], pout: number[]) => {
    P(`${prefix}.weight`, 1, pin);
    P(`${prefix}.weight`, 0, pout);
    P(`${prefix}.bias`, 0, pout);
  };
  const hd = cfg.hidden / cfg.heads;
  for (let l = 0; l < cfg.layers; l++) {
    const p = `bert.encoder.layer.${l}`;
    const hp = randomPerm(cfg.heads, rand);
    const qk = headPerm(hp, hd, rand),
      vo = headPerm(hp, hd, rand),
      mlp = randomPerm(cfg.mlp, rand);
    lin(`${p}.attention.self.query`, resid, qk);
    lin(`${p}.attention.self.key`, resid, qk);
    lin(`${p}.attention.self.value`, resid, vo);
    lin(`${p}.attention.output.dense`, vo, resid);
    lin(`${p}.intermediate.dense`, resid, mlp);
    lin(`${p}.output.dense`, mlp, resid);
    for (const ln of ['attention.output.LayerNorm', 'output.LayerNorm']) for (const x of ['weight', 'bias']) P(`${p}.${ln}.${x}`, 0, resid);
  }
  // The head transform's outputs must follow the word-embedding columns (the decoder is that table).
  lin('cls.predictions.transform.dense', resid, resid);
  for (const x of ['weight', 'bias']) P(`cls.predictions.transform.LayerNorm.${x}`, 0, resid);
  return m;
}

test('MLM: the masked-LM head and its tie to the word embedding come from the graph', () => {
  const plan = analyzeModel(model('mlm-s0'));
  assert.equal(plan.head.kind, 'mlm');
  assert.equal(plan.head.mlm?.table, TABLE);
  assert.equal(plan.head.classifier.weight, TABLE, 'the decoder reads the embedding table itself');
  assert.equal(plan.head.classifier.bias, 'cls.predictions.bias');
  assert.equal(plan.head.mlm?.transform.weight, 'cls.predictions.transform.dense.weight');
  assert.equal(plan.head.mlm?.norm.scale, 'cls.predictions.transform.LayerNorm.weight');
  assert.deepEqual(plan.head.mlm?.activation.slice().sort(), ['Add', 'Div', 'Erf', 'Mul', 'Mul']);
  assert.equal(plan.head.classes, 512);
  const text = summarizePlan(plan).text;
  assert.match(text, /head\.transform/);
  assert.match(text, /head\.decoder .*tied to the word embedding/);
});

test('MLM: evaluation scores masked tokens only and matches PyTorch', async () => {
  const data = openDataset(path.join(MLM, 'eval.npz'));
  assert.equal(data.labelsPerSample, 32);
  for (const name of ['mlm-s0', 'mlm-s1']) {
    const r = await evaluateModel(model(name), data);
    assert.equal(r.samples, 400);
    assert.equal(r.maskedTokens, REF[name].tokens);
    assert.ok(Math.abs(r.loss - REF[name].loss) < 1e-3, `${name}: loss ${r.loss} vs PyTorch ${REF[name].loss}`);
    assert.ok(Math.abs(r.accuracy - REF[name].accuracy) < 1e-3, `${name}: accuracy ${r.accuracy} vs PyTorch ${REF[name].accuracy}`);
  }
});

test('MLM: EMD fusion with a permuted copy reproduces the logits and keeps one tied table', async (t) => {
  const original = model('mlm-s0');
  const permuted = permutedMlmCopy(original, 9);
  const data = openDataset(path.join(MLM, 'eval.npz'));
  const calib = openDataset({ path: path.join(MLM, 'calib.npz'), limit: 64 });
  const want = await logitsOf(original, data, 64);
  assert.ok(maxAbsDiff(want, await logitsOf(permuted, data, 64)) < 1e-4, 'the permuted copy is functionally identical');
  assert.ok(maxAbsDiff(original.getInitializer(TABLE).data, permuted.getInitializer(TABLE).data) > 0.01, 'the copy is really permuted');
  for (const [alignBy, qk] of [
    ['acts', 'eq_t_map'],
    ['wts', 'separate'],
  ] as const) {
    const r = await fuseLoaded({ models: [original, permuted], recipe: resolveRecipe({ solver: 'emd', alignBy, qk, samples: 64, refit: 'none' }), calib });
    const err = maxAbsDiff(want, await logitsOf(r.fused, data, 64));
    t.diagnostic(`${alignBy}/${qk}: max abs logit error ${err}`);
    assert.ok(err < 1e-4, `${alignBy}/${qk}: ${err}`);
    assert.deepEqual(vocabMatrices(r.fused, 512), [TABLE]);
  }
});

test("MLM: the fused pair's masked-LM loss is well below vanilla averaging's; the tie is kept", async (t) => {
  const data = openDataset(path.join(MLM, 'eval.npz'));
  const calib = openDataset(path.join(MLM, 'calib.npz'));
  const a = model('mlm-s0'),
    b = model('mlm-s1');
  const r = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({}), calib });
  const rows: Record<string, { loss: number; accuracy: number }> = {};
  for (const [name, m] of [
    ['parent s0', a],
    ['parent s1', b],
    ['vanilla', r.vanilla!],
    ['OT fused', r.fused],
  ] as const) {
    const e = await evaluateModel(m, data);
    rows[name] = { loss: e.loss, accuracy: e.accuracy };
    t.diagnostic(`${name}: masked-LM loss ${e.loss.toFixed(4)}, accuracy ${(100 * e.accuracy).toFixed(2)} % over ${e.maskedTokens} masked tokens`);
  }
  assert.ok(rows['OT fused'].loss < rows.vanilla.loss - 0.5, `fused ${rows['OT fused'].loss} vs vanilla ${rows.vanilla.loss}`);
  assert.ok(rows['OT fused'].accuracy > rows.vanilla.accuracy + 0.02, `fused ${rows['OT fused'].accuracy} vs vanilla ${rows.vanilla.accuracy}`);
  assert.deepEqual(vocabMatrices(r.fused, 512), [TABLE], 'one initializer for the tied table');
  const dec = r.fused.nodes.find((n) => n.opType === 'Transpose' && n.input?.[0] === TABLE);
  assert.ok(dec, 'the decoder still reads the embedding table');
});

test('MLM: finetune trains on masked-LM data (loss over the labelled positions) and keeps the tie', async (t) => {
  const dir = tempDir();
  const calib = path.join(MLM, 'calib.npz'),
    evalData = path.join(MLM, 'eval.npz');
  const r = await fuseLoaded({ models: [model('mlm-s0'), model('mlm-s1')], recipe: resolveRecipe({}), calib: openDataset(calib) });
  const start = path.join(dir, 'vanilla.onnx');
  r.vanilla!.save(start);
  // One step at lr 0 over the whole calibration set: the training loss is the masked-token mean eval reports.
  const probe = await finetuneModel(
    { model: start, data: calib, output: path.join(dir, 'probe.onnx'), maxSteps: 1, batchSize: 200, lr: 0, weightDecay: 0, threads: 1 },
    {},
  );
  const before = await evaluateModel(loadModel(start), openDataset(calib));
  t.diagnostic(`step-0 training loss ${probe.train![0].loss} vs evaluated ${before.loss}`);
  assert.ok(Math.abs(probe.train![0].loss - before.loss) < 1e-3, `${probe.train![0].loss} vs ${before.loss}`);
  assert.ok(Math.abs(probe.train![0].accuracy - before.accuracy) < 1e-6, `${probe.train![0].accuracy} vs ${before.accuracy}`);
  // A few real steps lower the held-out masked-LM loss; the tuned model still has one tied table.
  const out = path.join(dir, 'tuned.onnx');
  await finetuneModel({ model: start, data: calib, output: out, maxSteps: 40, batchSize: 32, lr: 1e-3, weightDecay: 0, threads: 1 }, {});
  const tuned = loadModel(out);
  const e0 = await evaluateModel(loadModel(start), openDataset(evalData)),
    e1 = await evaluateModel(tuned, openDataset(evalData));
  t.diagnostic(`vanilla masked-LM loss on eval.npz ${e0.loss.toFixed(4)} → ${e1.loss.toFixed(4)} after 40 steps`);
  assert.ok(e1.loss < e0.loss - 0.1, `${e0.loss} → ${e1.loss}`);
  assert.deepEqual(vocabMatrices(tuned, 512), [TABLE]);
  fs.rmSync(dir, { recursive: true, force: true });
});
