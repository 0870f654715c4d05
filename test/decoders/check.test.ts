// engine.check (the extension's pre-prompt compatibility check, issue 29 item 6) on decoder LM folders: two GPT-2
// folders of one architecture are fusable; a GPT-2 + Llama pair or a GPT-2 + BERT pair is refused with the reason.
// Before this check existed, the ONNX graph analysis refused every decoder folder with an empty problem list, so the
// editor's Fuse Models said "these models cannot be fused: " on the fixtures the CLI fuses.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { engine } from '../../worker/api';
import { openCausalText } from '../../worker/data/causal';
import { loadModel } from '../../worker/onnx/model';
import { evaluateEnsemble } from '../../worker/runtime/ensemble';
import type { DatasetSpec } from '../../worker/types';
import { ROOT } from '../helpers';

const fx = (p: string) => path.join(ROOT, 'test', 'fixtures', p);

test('engine.check: two GPT-2 folders (or their model.safetensors) are fusable; structure from config.json', async () => {
  const r = await engine.check({ models: [fx('decoders/gpt2-s0'), path.join(fx('decoders/gpt2-s1'), 'model.safetensors')] });
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.deepEqual(r.problems, []);
  const s = r.models[0].structure!;
  assert.ok(s.layers >= 1 && s.heads >= 1 && s.classes > 1, JSON.stringify(s));
  const llama = await engine.check({ models: [fx('decoders/llama-s0'), fx('decoders/llama-s1')] });
  assert.equal(llama.ok, true, JSON.stringify(llama));
});

test('engine.check: a GPT-2 + Llama pair and a GPT-2 + BERT pair are refused, naming the file and why', async () => {
  const mixed = await engine.check({ models: [fx('decoders/gpt2-s0'), fx('decoders/llama-s0')] });
  assert.equal(mixed.ok, false);
  assert.equal(mixed.problems.length, 1, JSON.stringify(mixed.problems));
  assert.match(mixed.problems[0], /llama-s0: .*(vocabularies differ|differs from the first model's in family)/);
  const bert = await engine.check({ models: [fx('decoders/gpt2-s0'), fx('hf/bert-tiny-cls-a')] });
  assert.equal(bert.ok, false);
  assert.equal(bert.models[1].ok, false);
  assert.match(bert.problems.join('\n'), /bert-tiny-cls-a: not a decoder language model \(BertForSequenceClassification\)/);
  const three = await engine.check({ models: [fx('decoders/gpt2-s0'), fx('decoders/gpt2-s1'), fx('decoders/gpt2-s1')] });
  assert.equal(three.ok, false);
  assert.match(three.problems[0], /two at a time \(got 3 models\)/);
});

// The run's "ensemble (mean logits)" row of a decoder fusion carries perplexity like the other rows (the editor's
// results table shows it). An ensemble of one model with itself is that model: same loss, same perplexity.
test('evaluateEnsemble on causal text reports perplexity = e^loss, equal to the single model for a self-ensemble', async () => {
  const dir = fx('decoders/gpt2-s0');
  const data = openCausalText(fx('decoders/heldout.txt'), dir, 16);
  const single = await engine.evaluate({ model: dir, data: { path: fx('decoders/heldout.txt'), maxLength: 16 } as DatasetSpec });
  const ens = await evaluateEnsemble([loadModel(dir), loadModel(dir)], data);
  assert.ok(single.perplexity !== undefined && single.perplexity > 1, JSON.stringify(single));
  assert.ok(ens.perplexity !== undefined, JSON.stringify(ens));
  assert.ok(Math.abs(ens.perplexity - Math.exp(ens.loss)) < 1e-9 * ens.perplexity);
  assert.ok(Math.abs(ens.perplexity - single.perplexity) < 1e-4 * single.perplexity, `${ens.perplexity} vs ${single.perplexity}`);
});
