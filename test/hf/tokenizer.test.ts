// Tokenization through @huggingface/tokenizers (a folder's tokenizer.json, or one built from vocab.txt alone)
// gives the ids of an independent Python implementation of BERT's algorithm (scripts/fixtures/bert_tokenize_ref.py)
// on sentences with accents, punctuation, unknown words, CJK, control characters, truncation and pairs.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadTokenizer, wordPieceTokenizerJson } from '../../worker/data/tokenizer';
import { HF, hfDir } from './helpers';

interface Case {
  text: string;
  text_pair?: string;
  max_length?: number;
  ids: number[];
  token_type_ids: number[];
}
const ref = JSON.parse(fs.readFileSync(path.join(HF, 'tokenizer-reference.json'), 'utf8')) as { cases: Case[] };

for (const [label, where] of [
  ['tokenizer.json', hfDir('bert-tiny-cls-a')],
  ['vocab.txt only', hfDir('vocab-only')],
] as const) {
  test(`${label}: ids and token types equal the Python reference on ${ref.cases.length} cases`, () => {
    const tok = loadTokenizer(where);
    for (const c of ref.cases) {
      const got = tok.encode(c.text, c.text_pair, c.max_length);
      assert.deepEqual(got.ids, c.ids, JSON.stringify(c.text));
      assert.deepEqual(got.typeIds, c.token_type_ids, JSON.stringify(c.text));
    }
  });
}

test('the reference exercises what it claims: unknown words, subwords, truncation, pairs', () => {
  const unk = 1;
  assert.ok(ref.cases.some((c) => c.ids.includes(unk)));
  assert.ok(ref.cases.some((c) => c.max_length !== undefined && c.ids.length === c.max_length));
  assert.ok(ref.cases.some((c) => c.token_type_ids.includes(1)));
  const vocab = fs.readFileSync(path.join(hfDir('vocab-only'), 'vocab.txt'), 'utf8').split('\n');
  assert.ok(ref.cases.some((c) => c.ids.some((id) => vocab[id]?.startsWith('##'))));
});

test('a vocab.txt without [CLS] is refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-tok-'));
  fs.writeFileSync(path.join(dir, 'vocab.txt'), '[PAD]\n[UNK]\nhello\n');
  assert.throws(() => wordPieceTokenizerJson(path.join(dir, 'vocab.txt')), /no '\[CLS\]'/);
});
