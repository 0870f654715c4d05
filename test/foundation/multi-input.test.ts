// Multi-input text models: a .npz whose arrays are named after the model inputs feeds it with no flags.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { runCli } from '../helpers';

const BERT = path.join(process.cwd(), 'test', 'fixtures', 'bert');
// Test accuracies from the fixture README (662 test samples).
const README_ACC: Record<string, number> = { bertD_s20: 0.4819, bertD_s21: 0.494, bertE_s24: 0.494, bertD_vanilla_s20_s21: 0.1722 };

for (const [name, acc] of Object.entries(README_ACC)) {
  test(`eval ${name} on test.npz (input_ids, attention_mask, token_type_ids) matches the README`, () => {
    const r = runCli(['eval', path.join(BERT, `${name}.onnx`), '--data', path.join(BERT, 'test.npz'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.samples, 662);
    assert.ok(Math.abs(out.accuracy - acc) < 0.0006, `${out.accuracy} vs ${acc}`);
  });
}
