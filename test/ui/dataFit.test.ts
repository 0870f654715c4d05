// The data picker's ranking: files that fit the model's inputs (names and per-sample shapes) come first, with N and
// shapes; a BERT token set never ranks above an image set for a ViT; held-out names next to the calibration data
// come first for evaluation.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { describeArrays, fitOf, isCausalLmArchitecture, looksHeldOut, looksTraining, rankData } from '../../extension/dataFit';
import { engine } from '../../worker/api';
import { ROOT } from '../helpers';
import type { DataDescription, ModelSummary } from '../../worker/types';

const vit: ModelSummary['inputs'] = [{ name: 'pixel_values', type: 'FLOAT', shape: ['batch', 1, 28, 28] }];
const bert: ModelSummary['inputs'] = [
  { name: 'input_ids', type: 'INT64', shape: ['batch', 32] },
  { name: 'attention_mask', type: 'INT64', shape: ['batch', 32] },
  { name: 'token_type_ids', type: 'INT64', shape: ['batch', 32] },
];
const images: DataDescription = { path: '/ws/examples/calib200.npz', size: 200, arrays: [{ name: 'x', type: 'float32', sampleShape: [1, 28, 28] }] };
const testImages: DataDescription = {
  path: '/ws/examples/data/fmnist-test-2k.json',
  size: 2000,
  arrays: [{ name: 'x', type: 'float32', sampleShape: [1, 28, 28] }],
};
const tokens: DataDescription = {
  path: '/ws/bert/calib.npz',
  size: 256,
  arrays: ['input_ids', 'attention_mask', 'token_type_ids'].map((name) => ({ name, type: 'int64', sampleShape: [32] })),
};
const small: DataDescription = { path: '/ws/small.npz', size: 8, arrays: [{ name: 'x', type: 'float32', sampleShape: [1, 14, 14] }] };

test('fitOf: names and per-sample shapes decide; reasons say what is wrong', () => {
  assert.equal(fitOf(vit, images).score, 2);
  assert.equal(fitOf(vit, images).reason, 'N 200 · x [1, 28, 28]');
  assert.equal(fitOf(bert, tokens).score, 2);
  const wrong = fitOf(vit, tokens);
  assert.equal(wrong.score, 0);
  assert.match(wrong.reason, /no array 'pixel_values'/);
  assert.equal(fitOf(bert, images).score, 0);
  const shape = fitOf(vit, small);
  assert.equal(shape.score, 0);
  assert.match(shape.reason, /\[1, 14, 14\] per sample.*needs \[1, 28, 28\]/);
  // A file the engine cannot parse is not "fitting" (issue 27 item 4): listed under "Do not fit" with the reason.
  const broken = fitOf(vit, { path: '/x.csv', error: 'row 3 has 2 columns, the header 5' });
  assert.equal(broken.score, 0);
  assert.match(broken.reason, /^cannot be read: row 3 has 2 columns/);
  assert.equal(describeArrays(tokens), 'N 256 · input_ids [32] · attention_mask [32] · token_type_ids [32]');
});

test('rankData: fitting first (a ViT never gets the BERT file first, despite "bert/" sorting before "examples/")', () => {
  const items = [tokens, small, images, testImages].map((d) => ({ file: d.path, fit: fitOf(vit, d) }));
  const ranked = rankData(items).map((x) => x.file);
  assert.deepEqual(ranked.slice(0, 2), [images.path, testImages.path]);
  assert.deepEqual(ranked.slice(2).sort(), [tokens.path, small.path].sort());
  // For evaluation: held-out names first, and the last used one before the rest.
  const evalRank = rankData(items, { heldOut: true, near: images.path }).map((x) => x.file);
  assert.equal(evalRank[0], testImages.path);
  assert.equal(rankData(items, { last: testImages.path })[0].file, testImages.path);
});

test('looksHeldOut recognises test/eval/validation names only', () => {
  for (const f of ['test.npz', 'fmnist-test-2k.json', 'val.npz', 'eval_set.npz', 'heldout.npz', 'validation-1k.npz']) assert.ok(looksHeldOut(f), f);
  for (const f of ['calib.npz', 'train.npz', 'latest.npz', 'contest.npz']) assert.ok(!looksHeldOut(f), f);
});

test('training splits are recognised by name (marked in the evaluation picker, never offered first)', () => {
  for (const f of ['/d/fmnist-train-5k.json', '/d/train.npz', '/d/x_training.csv', 'C:\\d\\train-1.npz']) assert.ok(looksTraining(f), f);
  for (const f of ['/d/fmnist-test-2k.json', '/d/calib200.npz', '/train/test.npz', '/d/trainee.npz', '/d/constrained.npz']) assert.ok(!looksTraining(f), f);
});

// Causal language models (issue 29 item 6): a GPT-2 / Llama folder reads .txt / .jsonl text through its own
// tokenizer; the picker learns that from the model's 'otfuse.hf.architecture' metadata (read from the real fixtures).
const gpt2Inputs: ModelSummary['inputs'] = [{ name: 'input_ids', type: 'INT64', shape: ['batch', 'sequence'] }];
const heldoutTxt: DataDescription = { path: '/ws/decoders/heldout.txt', error: 'not inspected' };
const calibTxt: DataDescription = { path: '/ws/decoders/calib.txt', error: 'not inspected' };
// describeData has no tokenizer: a text .jsonl is reported unreadable on its own, yet fits a causal LM.
const textJsonl: DataDescription = { path: '/ws/decoders/wiki.jsonl', error: "line 1: no 'label' field" };

test('text files fit a causal LM (and say why), plain .txt fits nothing else', () => {
  for (const d of [heldoutTxt, calibTxt, textJsonl]) {
    const fit = fitOf(gpt2Inputs, d, { causalLm: true });
    assert.equal(fit.score, 2, d.path);
    assert.match(fit.reason, /next-token prediction.*perplexity \(lower is better\)/);
  }
  // Not a causal LM: a .txt is a misfit with the reason; a .jsonl goes through the ordinary checks (its error).
  const vitTxt = fitOf(vit, heldoutTxt);
  assert.equal(vitTxt.score, 0);
  assert.match(vitTxt.reason, /only a causal language model/);
  assert.equal(fitOf(bert, textJsonl).score, 0);
  assert.match(fitOf(bert, textJsonl).reason, /^cannot be read: line 1/);
  // A text file over describeData's size limit is refused for an LM too.
  assert.equal(fitOf(gpt2Inputs, { path: '/ws/big.txt', error: 'larger than 256 MiB: not inspected' }, { causalLm: true }).score, 0);
  // Ranking for evaluation: the held-out text first, next to the calibration text; an image set is a misfit.
  const items = [images, calibTxt, heldoutTxt].map((d) => ({ file: d.path, fit: fitOf(gpt2Inputs, d, { causalLm: true }) }));
  const ranked = rankData(items, { heldOut: true, near: calibTxt.path });
  assert.deepEqual(
    ranked.map((x) => x.file),
    [heldoutTxt.path, calibTxt.path, images.path],
  );
  assert.equal(ranked[2].fit.score, 0);
});

test('causal LMs are recognised from the architecture the engine reports for real HF folders', async () => {
  const fx = path.join(ROOT, 'test', 'fixtures');
  const arch = async (dir: string) => (await engine.inspect({ model: path.join(fx, dir), noSession: true })).summary.metadata?.['otfuse.hf.architecture'];
  for (const dir of ['decoders/gpt2-s0', 'decoders/llama-s0']) assert.ok(isCausalLmArchitecture(await arch(dir)), dir);
  for (const dir of ['hf/bert-tiny-cls-a', 'hf/bert-tiny-mlm']) assert.ok(!isCausalLmArchitecture(await arch(dir)), dir);
  assert.ok(!isCausalLmArchitecture(undefined));
  assert.ok(isCausalLmArchitecture('MistralForCausalLM'));
  assert.ok(!isCausalLmArchitecture('BertForMaskedLM'));
});
