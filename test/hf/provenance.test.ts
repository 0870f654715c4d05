// What a Hugging Face export and the HF-consistency checks say (#27): the model card names the parents, the
// evaluation data and N and each row's role; a `-o` copy of a fused model carries its lineage in itself; text is cut
// at the tokenizer's model_max_length by default and run.json records the length; --max-length reaches the
// evaluation data; config.json keeps its number forms; the parameter count leaves out graph constants.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { EXAMPLES, VIT, runCli, tempDir } from '../helpers';
import { hfDir } from './helpers';
import { engine } from '../../worker/api';
import { exportHf } from '../../worker/hf/export';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { defaultMaxLength } from '../../worker/data/text';
import '../../worker/hf';

const EVAL = path.join(EXAMPLES, 'data', 'fmnist-test-2k.json');
const CALIB = path.join(VIT, 'calib200.npz');
const json = (r: { code: number | null; stdout: string; stderr: string }) => {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
};

test('the model card names the parents, the evaluation data with N, and each measured row with its role; a -o copy carries the same lineage', () => {
  const tmp = tempDir();
  const copy = path.join(tmp, 'elsewhere', 'fused-copy.onnx');
  fs.mkdirSync(path.dirname(copy));
  const run = json(
    runCli([
      'fuse',
      hfDir('vit-fmnist-s11'),
      hfDir('vit-fmnist-s10-f16'),
      '--data',
      CALIB,
      '--eval-data',
      EVAL,
      '--eval-limit',
      '300',
      '--preset',
      'weights',
      '--runs-dir',
      path.join(tmp, 'runs'),
      '-o',
      copy,
      '--json',
    ]),
  );
  const fused = run.record.metrics.find((m: { role: string }) => m.role === 'fused');
  const cards: string[] = [];
  for (const model of [path.join(run.runDir, 'fused.onnx'), copy]) {
    const out = path.join(tmp, `hf-${cards.length}`);
    json(runCli(['export', model, '--like', hfDir('vit-fmnist-s11'), '-o', out, '--json']));
    cards.push(fs.readFileSync(path.join(out, 'README.md'), 'utf8'));
  }
  for (const card of cards) {
    assert.match(card, /## Parents[\s\S]*vit-fmnist-s11` \(anchor[\s\S]*vit-fmnist-s10-f16/);
    assert.match(card, /## Evaluation data\n\n- `fmnist-test-2k\.json`: N = 300 samples, sha256 `[0-9a-f]{64}`/);
    assert.ok(card.includes(`| ot | fused | ${(fused.accuracy * 100).toFixed(2)} % |`), card);
    assert.match(card, /\| vanilla \| vanilla \| [\d.]+ % \| [\d.]+ \| fmnist-test-2k\.json, N = 300 \|/);
    assert.match(card, /\| vit-fmnist-s11 \(anchor\) \| anchor \|/);
    assert.match(card, /## Recipe/);
  }
});

test('text is cut at the tokenizer model_max_length by default (as transformers), and run.json records the length', () => {
  assert.equal(defaultMaxLength(16, 32), 16);
  assert.equal(defaultMaxLength(undefined, 32), 32);
  assert.equal(defaultMaxLength(1024, 512), 512);
  assert.equal(defaultMaxLength(undefined, 2048), 512);
  // A copy of a BERT folder whose tokenizer stops at 12 tokens (the model has 32 positions).
  const tmp = tempDir();
  const folder = path.join(tmp, 'bert');
  fs.cpSync(hfDir('bert-tiny-cls-a'), folder, { recursive: true });
  const cfgFile = path.join(folder, 'tokenizer_config.json');
  fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, 'utf8')), model_max_length: 12 }));
  const data = path.join(tmp, 'texts.jsonl');
  const long = 'the cat sat on the mat and i love this movie a very bad dog hello world new york is big';
  fs.writeFileSync(data, Array.from({ length: 24 }, (_, i) => JSON.stringify({ text: `${long} ${i}`, label: i % 3 })).join('\n'));
  const ds = openDataset({ path: data, tokenizer: folder } as Parameters<typeof openDataset>[0]);
  assert.equal(ds.maxLength, 12);
  assert.deepEqual(ds.arrays[0].sampleShape, [12]);
  const evalData = path.join(tmp, 'eval.jsonl');
  fs.writeFileSync(evalData, Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: `${long} ${long} ${i}`, label: (i + 1) % 3 })).join('\n'));
  const base = [
    'fuse',
    folder,
    hfDir('bert-tiny-cls-b'),
    '--data',
    data,
    '--eval-data',
    evalData,
    '--preset',
    'weights',
    '--runs-dir',
    path.join(tmp, 'runs'),
    '--json',
  ];
  assert.equal(json(runCli(base)).record.maxLength, 12);
  // --max-length applies to the evaluation data too: the recorded length is the one asked for.
  const asked = json(runCli([...base, '--max-length', '8'])).record;
  assert.equal(asked.maxLength, 8);
  assert.equal(asked.evalData.maxLength, 8);
});

test('config.json comes back with its number forms; the parameter count leaves out scalar graph constants', async () => {
  const tmp = tempDir();
  const onnxFile = path.join(tmp, 'vit.onnx');
  await engine.importHf({ model: hfDir('vit-fmnist-s11'), output: onnxFile });
  const out = path.join(tmp, 'out');
  await exportHf({ model: onnxFile, like: hfDir('vit-fmnist-s11'), output: out });
  const original = fs.readFileSync(path.join(hfDir('vit-fmnist-s11'), 'config.json'), 'utf8');
  assert.match(original, /"hidden_dropout_prob": 0\.0/);
  assert.equal(fs.readFileSync(path.join(out, 'config.json'), 'utf8'), original);
  // transformers' num_parameters() for these folders (the safetensors' element counts): 88,666 and 23,363.
  assert.equal(loadModel(hfDir('vit-fmnist-s11')).summary().parameterCount, 88666);
  assert.equal(loadModel(hfDir('bert-tiny-cls-a')).summary().parameterCount, 23363);
});
