// engine.check (the extension's pre-prompt compatibility check, issue 29 item 6) on decoder LM folders: two GPT-2
// folders of one architecture are fusable; a GPT-2 + Llama pair or a GPT-2 + BERT pair is refused with the reason.
// Before this check existed, the ONNX graph analysis refused every decoder folder with an empty problem list, so the
// editor's Fuse Models said "these models cannot be fused: " on the fixtures the CLI fuses.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { engine } from '../../worker/api';
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
