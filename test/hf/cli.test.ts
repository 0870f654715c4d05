// End to end through the built CLI: import, eval/inspect on HF folders, fuse two HF folders (ViT on Fashion-MNIST,
// BERT on a .jsonl with the folder's tokenizer), export the fused model as an HF folder, and evaluate that folder:
// it scores exactly what the run measured for the fused model.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { EXAMPLES, VIT, runCli, tempDir } from '../helpers';
import { hfDir } from './helpers';

const json = (r: { code: number | null; stdout: string; stderr: string }) => {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
};
const EVAL = path.join(EXAMPLES, 'data', 'fmnist-test-2k.json');

test('otfuse import writes an .onnx that evaluates like the folder itself', () => {
  const tmp = tempDir();
  const out = path.join(tmp, 'vit.onnx');
  const imp = json(runCli(['import', hfDir('vit-fmnist-s10-f16'), '-o', out, '--json']));
  assert.equal(imp.architecture, 'ViTForImageClassification');
  assert.equal(imp.dtypes, 'F16');
  const a = json(runCli(['eval', out, '--data', EVAL, '--limit', '500', '--json']));
  const b = json(runCli(['eval', hfDir('vit-fmnist-s10-f16'), '--data', EVAL, '--limit', '500', '--json']));
  assert.equal(a.accuracy, b.accuracy);
  assert.equal(a.loss, b.loss);
  assert.ok(a.accuracy > 0.8, String(a.accuracy));
});

test('fuse two HF ViT folders, export the fused model as an HF folder, and it scores what the run measured', () => {
  const tmp = tempDir();
  const run = json(
    runCli([
      'fuse',
      hfDir('vit-fmnist-s11'),
      hfDir('vit-fmnist-s10-f16'),
      '--data',
      path.join(VIT, 'calib200.npz'),
      '--eval-data',
      EVAL,
      '--runs-dir',
      path.join(tmp, 'runs'),
      '--json',
    ]),
  );
  const metric = (label: string) => run.record.metrics.find((m: { label: string }) => m.label === label);
  const ot = metric('ot');
  assert.ok(ot.accuracy > metric('vanilla').accuracy + 0.05, `ot ${ot.accuracy} vs vanilla ${metric('vanilla').accuracy}`);
  const out = path.join(tmp, 'fused-hf');
  const exp = json(runCli(['export', run.record.fusedModel, '--like', hfDir('vit-fmnist-s11'), '-o', out, '--json']));
  assert.deepEqual(exp.configChanges, {});
  const back = json(runCli(['eval', out, '--data', EVAL, '--json']));
  assert.equal(back.accuracy, ot.accuracy);
  assert.ok(Math.abs(back.loss - ot.loss) < 1e-6, `${back.loss} vs ${ot.loss}`);
  const card = fs.readFileSync(path.join(out, 'README.md'), 'utf8');
  assert.match(card, /vit-fmnist-s11` \(anchor/);
  assert.match(card, /vit-fmnist-s10-f16/);
  assert.ok(card.includes(`${(ot.accuracy * 100).toFixed(2)} %`), card);
  assert.ok(fs.existsSync(path.join(out, 'preprocessor_config.json')));
});

test('fuse two HF BERT folders on a .jsonl (tokenizer from the folder) and export; the export loads back', () => {
  const tmp = tempDir();
  const data = path.join(tmp, 'texts.jsonl');
  const words = ['the cat sat on the mat', 'i love this movie', 'a very bad dog', 'hello world', 'new york is big', 'that was not good'];
  fs.writeFileSync(data, Array.from({ length: 60 }, (_, i) => JSON.stringify({ text: `${words[i % 6]} ${words[(i * 5) % 6]}`, label: i % 3 })).join('\n'));
  const run = json(runCli(['fuse', hfDir('bert-tiny-cls-a'), hfDir('bert-tiny-cls-b'), '--data', data, '--runs-dir', path.join(tmp, 'runs'), '--json']));
  const ot = run.record.metrics.find((m: { label: string }) => m.label === 'ot');
  assert.ok(ot && Number.isFinite(ot.loss));
  const out = path.join(tmp, 'fused-bert');
  json(runCli(['export', run.record.fusedModel, '--like', hfDir('bert-tiny-cls-a'), '-o', out, '--json']));
  for (const f of ['tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'config.json', 'model.safetensors', 'README.md'])
    assert.ok(fs.existsSync(path.join(out, f)), f);
  const back = json(runCli(['eval', out, '--data', data, '--json']));
  assert.equal(back.accuracy, ot.accuracy);
  assert.ok(Math.abs(back.loss - ot.loss) < 1e-6);
});

test('import/export usage errors exit 2, bad folders exit 1 with the file named', () => {
  assert.equal(runCli(['export', hfDir('bert-tiny-cls-a'), '-o', path.join(tempDir(), 'x')]).code, 2);
  assert.equal(runCli(['import', hfDir('bert-tiny-cls-a')]).code, 2);
  const r = runCli(['import', path.join(EXAMPLES, 'data'), '-o', path.join(tempDir(), 'x.onnx')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /config\.json/);
});
