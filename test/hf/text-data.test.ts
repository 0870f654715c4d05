// Text datasets (.jsonl / .csv with text,label) become token datasets through a model folder's tokenizer; the
// engine picks the tokenizer of an HF model folder by itself; bad files are named with the line.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { engine } from '../../worker/api';
import { openDataset } from '../../worker/data/dataset';
import { loadTokenizer } from '../../worker/data/tokenizer';
import { parseCsv } from '../../worker/data/text';
import { importHf } from '../../worker/hf';
import { OtfuseError } from '../../worker/errors';
import { tempDir } from '../helpers';
import { hfDir, runFeeds } from './helpers';

const SAMPLES = [
  { text: 'The cat sat on the mat.', label: 0 },
  { text: 'I love this movie, it is great!', label: 'positive' },
  { text: 'unbelievable… a very bad movie', label: 'negative' },
  { text: 'Café naïve dogs running', text_pair: 'the big cat', label: 1 },
  { text: 'hello world', label: 'neutral' },
];

function writeJsonl(dir: string): string {
  const file = path.join(dir, 'reviews.jsonl');
  fs.writeFileSync(file, SAMPLES.map((s) => JSON.stringify(s)).join('\n') + '\n');
  return file;
}

test('a .jsonl becomes input_ids / attention_mask / token_type_ids through the tokenizer, padded to the longest sample', () => {
  const file = writeJsonl(tempDir());
  const ds = openDataset({ path: file, tokenizer: hfDir('bert-tiny-cls-a') } as never);
  const tok = loadTokenizer(hfDir('bert-tiny-cls-a'));
  const enc = SAMPLES.map((s) => tok.encode(s.text, s.text_pair));
  const L = Math.max(...enc.map((e) => e.ids.length));
  assert.equal(ds.size, SAMPLES.length);
  assert.deepEqual(
    ds.arrays.map((a) => [a.name, a.type, a.sampleShape]),
    [
      ['input_ids', 'int64', [L]],
      ['attention_mask', 'int64', [L]],
      ['token_type_ids', 'int64', [L]],
    ],
  );
  // Labels: indices as given, names through config.json's label2id (negative 0, neutral 1, positive 2).
  assert.deepEqual(Array.from(ds.labels), [0, 2, 0, 1, 1]);
  const b = ds.take([3, 0]);
  const ids = Array.from(b.feeds.input_ids.data as BigInt64Array, Number);
  assert.deepEqual(ids.slice(0, enc[3].ids.length), enc[3].ids);
  assert.deepEqual(ids.slice(L, L + enc[0].ids.length), enc[0].ids);
  assert.ok(
    ids.slice(L + enc[0].ids.length, 2 * L).every((v) => v === 0),
    'padding with [PAD]',
  );
  const mask = Array.from(b.feeds.attention_mask.data as BigInt64Array, Number);
  assert.equal(
    mask.slice(L, 2 * L).reduce((s, v) => s + v, 0),
    enc[0].ids.length,
  );
  const types = Array.from(b.feeds.token_type_ids.data as BigInt64Array, Number);
  assert.deepEqual(types.slice(0, enc[3].typeIds.length), enc[3].typeIds);
  assert.ok(types.includes(1));
});

test('a .csv with quoted fields gives the same tensors as the .jsonl', () => {
  const dir = tempDir();
  const csv = path.join(dir, 'reviews.csv');
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  fs.writeFileSync(csv, 'label,text,text_pair\r\n' + SAMPLES.map((s) => `${s.label},${q(s.text)},${s.text_pair ?? ''}`).join('\r\n') + '\r\n');
  const a = openDataset({ path: csv, tokenizer: hfDir('bert-tiny-cls-a') } as never);
  const b = openDataset({ path: writeJsonl(dir), tokenizer: hfDir('bert-tiny-cls-a') } as never);
  const all = SAMPLES.map((_, i) => i);
  assert.deepEqual(Array.from(a.take(all).feeds.input_ids.data as BigInt64Array), Array.from(b.take(all).feeds.input_ids.data as BigInt64Array));
  assert.deepEqual(Array.from(a.labels), Array.from(b.labels));
  assert.deepEqual(parseCsv('a,b\n"x, ""y""\nz",2\n').rows, [
    ['a', 'b'],
    ['x, "y"\nz', '2'],
  ]);
});

test("evaluating an HF BERT on a .jsonl takes the folder's tokenizer and the model's logits on those ids", async () => {
  const file = writeJsonl(tempDir());
  const r = await engine.evaluate({ model: hfDir('bert-tiny-cls-a'), data: file });
  assert.equal(r.samples, SAMPLES.length);
  // Accuracy from the logits computed directly on the dataset's tensors.
  const ds = openDataset({ path: file, tokenizer: hfDir('bert-tiny-cls-a') } as never);
  const batch = ds.take(SAMPLES.map((_, i) => i));
  const feeds = Object.fromEntries(Object.entries(batch.feeds).map(([k, v]) => [k, { dtype: 'i8' as const, shape: v.dims, data: v.data }]));
  const logits = await runFeeds(importHf(hfDir('bert-tiny-cls-a')), feeds);
  let correct = 0;
  for (let i = 0; i < SAMPLES.length; i++) {
    const row = Array.from(logits.subarray(i * 3, i * 3 + 3));
    if (row.indexOf(Math.max(...row)) === ds.labels[i]) correct++;
  }
  assert.equal(r.accuracy, correct / SAMPLES.length);
  assert.ok(Number.isFinite(r.loss) && r.loss > 0);
});

test('text data problems are named with the file and line', () => {
  const dir = tempDir();
  const bad = (name: string, content: string, pattern: RegExp, spec: object = { tokenizer: hfDir('bert-tiny-cls-a') }) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, content);
    assert.throws(
      () => openDataset({ path: f, ...spec } as never),
      (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_DATA' && pattern.test(e.message) && e.message.includes(f),
    );
  };
  bad('a.jsonl', '{"text": "hi", "label": 0}\n{"text": "x", "label": "happy"}\n', /line 2: label 'happy'/);
  bad('b.jsonl', '{"text": "hi", "label": 0}\nnot json\n', /line 2 is not valid JSON/);
  bad('c.jsonl', '{"label": 0}\n', /line 1: no string field 'text'/);
  bad('d.csv', 'text,lbl\nhi,0\n', /no 'label' column/);
  bad('e.csv', 'text,label\nhi,0,3\n', /line 2: 3 fields/);
  bad('f.jsonl', '{"text": "hi", "label": 0}\n', /needs a tokenizer/, {});
});

test("a JSON spec pointing at a .jsonl gets the model folder's tokenizer too", async () => {
  const dir = tempDir();
  writeJsonl(dir);
  fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify({ path: 'reviews.jsonl', limit: 3 }));
  const r = await engine.evaluate({ model: hfDir('bert-tiny-cls-a'), data: path.join(dir, 'spec.json') });
  assert.equal(r.samples, 3);
});
