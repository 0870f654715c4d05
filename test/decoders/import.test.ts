// Decoder LMs imported from Hugging Face folders (test/fixtures/decoders, written by transformers'
// save_pretrained through scripts/fixtures/make_decoders.py): logits equal PyTorch's, the tokenizer gives the same
// ids as transformers' (the reference blocks), and unsupported configurations are refused with the reason.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { engine } from '../../worker/api';
import { causalBlocks, nextTokenLabels } from '../../worker/data/causal';
import { encodeNpz } from '../../worker/data/npy';
import { importHf } from '../../worker/hf';
import { runFeeds } from '../hf/helpers';

import { DEC, decReference, FIXTURES } from './helpers';

for (const name of FIXTURES) {
  test(`import ${name}: logits of a held-out block equal PyTorch's within 1e-4`, async () => {
    const ref = decReference(name);
    const model = importHf(path.join(DEC, name));
    const block = BigInt64Array.from(ref.blocks.subarray(0, ref.t), (v) => BigInt(v));
    const logits = await runFeeds(model, { input_ids: { dtype: 'i8', shape: [1, ref.t], data: block } as never });
    const V = ref.logits0.length / 16;
    assert.equal(logits.length, ref.t * V);
    let d = 0;
    for (let i = 0; i < ref.logits0.length; i++) d = Math.max(d, Math.abs(logits[i] - ref.logits0[i]));
    assert.ok(d < 1e-4, `max |Δlogit| ${d}`);
    const spread = Math.max(...ref.logits0) - Math.min(...ref.logits0);
    assert.ok(spread > 5, `reference logits vary (${spread})`);
  });
}

test('causal text: heldout.txt tokenizes (line + EOS, 64-token blocks) to exactly the ids transformers gives', () => {
  const ref = decReference('gpt2-s0');
  const { ids, blocks } = causalBlocks(path.join(DEC, 'heldout.txt'), path.join(DEC, 'gpt2-s0'), ref.t);
  assert.equal(blocks, ref.n);
  assert.deepEqual([...ids], [...ref.blocks]);
  // Labels: the next token; the last position of each block is not scored.
  const labels = nextTokenLabels(ids, ref.t);
  assert.equal(labels[0], ids[1]);
  assert.equal(labels[ref.t - 1], -100);
  assert.equal(labels[ref.t], ids[ref.t + 1]);
});

for (const name of FIXTURES) {
  test(`eval ${name} on held-out text: perplexity within 0.5 % of PyTorch's, next-token accuracy equal`, async () => {
    const ref = decReference(name);
    const dir = path.join(DEC, name);
    const r = await engine.evaluate({ model: dir, data: { path: path.join(DEC, 'heldout.txt'), maxLength: 64 } as never, batchSize: 8 });
    assert.ok(r.perplexity !== undefined, 'perplexity reported for a causal LM');
    assert.equal(r.samples, ref.n);
    const rel = Math.abs(r.perplexity! - ref.perplexity) / ref.perplexity;
    assert.ok(rel < 0.005, `perplexity ${r.perplexity} vs PyTorch ${ref.perplexity} (${(rel * 100).toFixed(3)} %)`);
    assert.ok(Math.abs(r.accuracy - ref.accuracy) < 1e-3, `accuracy ${r.accuracy} vs ${ref.accuracy}`);
    assert.ok(Math.abs(Math.log(r.perplexity!) - r.loss) < 1e-9);
  });
}

test("eval of token .npz data for a causal LM: labels = input_ids (transformers' convention) and input_ids alone are scored as next-token prediction", async () => {
  const ref = decReference('llama-s0');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-decnpz-'));
  try {
    const ids = BigInt64Array.from(ref.blocks, (v) => BigInt(v));
    const both = path.join(tmp, 'both.npz');
    const only = path.join(tmp, 'ids.npz');
    fs.writeFileSync(both, encodeNpz({ input_ids: { data: ids, shape: [ref.n, ref.t] }, labels: { data: ids, shape: [ref.n, ref.t] } }));
    fs.writeFileSync(only, encodeNpz({ input_ids: { data: ids, shape: [ref.n, ref.t] } }));
    for (const data of [both, only]) {
      const r = await engine.evaluate({ model: path.join(DEC, 'llama-s0'), data, batchSize: 16 });
      const rel = Math.abs(r.perplexity! - ref.perplexity) / ref.perplexity;
      assert.ok(rel < 0.005, `${path.basename(data)}: perplexity ${r.perplexity} vs PyTorch ${ref.perplexity}`);
      assert.ok(Math.abs(r.accuracy - ref.accuracy) < 1e-3, `${path.basename(data)}: accuracy ${r.accuracy} vs ${ref.accuracy}`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
