// How many calibration samples a capture passes (calibinputs.ts): every one, unless the token budget keeps fewer than
// 1 in CANDIDATES_PER_KEPT of their (sample, token) pairs — then the first n whose pairs reach that many.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { analyzeModel } from '../../worker/graph/analyze';
import { captureSampleCount, CANDIDATES_PER_KEPT } from '../../worker/fusion/calibinputs';
import { captureActivations } from '../../worker/fusion/activations';
import { VIT } from '../helpers';

const BERT = path.join(process.cwd(), 'test', 'fixtures', 'bert');
const pass = { samples: 200, batchSize: 32, tokenFilter: 'all' as const };

test('ViT: all samples unless the budget keeps < 1 in 2 pairs; then ⌈2 × budget / fewest tokens per image⌉', async () => {
  const model = loadModel(path.join(VIT, 'vit48_s10.onnx'));
  const plan = analyzeModel(model);
  const data = openDataset(path.join(VIT, 'calib200.npz'));
  assert.equal(CANDIDATES_PER_KEPT, 2);
  // 200 images × 17 tokens = 3,400 pairs: under 2 × 8,192 (the default budget) and with no budget, every image.
  assert.equal(await captureSampleCount(model, plan, data, { ...pass, tokenBudget: 8192 }), 200);
  assert.equal(await captureSampleCount(model, plan, data, { ...pass, tokenBudget: 0 }), 200);
  assert.equal(await captureSampleCount(model, plan, data, { ...pass, tokenBudget: 1700 }), 200);
  // The patch grid has 16 tokens (the CLS-token stream 17): the fewest decides.
  assert.equal(await captureSampleCount(model, plan, data, { ...pass, tokenBudget: 1000 }), 125);
  assert.equal(await captureSampleCount(model, plan, data, { ...pass, tokenBudget: 256 }), 32);
  // Never more than asked or than the data holds.
  assert.equal(await captureSampleCount(model, plan, data, { ...pass, samples: 20, tokenBudget: 256 }), 20);
  assert.equal(await captureSampleCount(model, plan, data, { ...pass, samples: 5000, tokenBudget: 0 }), 200);
  // CLS only: one pair per image, so the budget never leaves pairs unused.
  assert.equal(await captureSampleCount(model, plan, data, { ...pass, tokenFilter: 'cls', tokenBudget: 256 }), 200);
});

test('BERT: real tokens counted from the attention mask, the first n reaching 2 × budget; the capture then has them', async () => {
  const model = loadModel(path.join(BERT, 'bertD_s20.onnx'));
  const plan = analyzeModel(model);
  const data = openDataset(path.join(BERT, 'calib.npz'));
  const mask = data.take(Array.from({ length: data.size }, (_, i) => i)).feeds.attention_mask;
  const T = mask.dims[1];
  const real = (n: number) => {
    let c = 0;
    for (let k = 0; k < n * T; k++) c += Number(mask.data[k]) !== 0 ? 1 : 0;
    return c;
  };
  assert.ok(real(200) < 2 * 8192, `${real(200)} real tokens`);
  assert.equal(await captureSampleCount(model, plan, data, { ...pass, tokenBudget: 8192 }), 200);
  for (const budget of [512, 1024]) {
    const n = await captureSampleCount(model, plan, data, { ...pass, tokenBudget: budget });
    assert.ok(n < 200, `budget ${budget}: ${n}`);
    assert.ok(real(n) >= 2 * budget && real(n - 1) < 2 * budget, `budget ${budget}: ${n} samples, ${real(n)} real tokens`);
    // A capture of those n samples: every token-shaped tensor has ≥ 2 × budget candidates and keeps the budget.
    const acts = await captureActivations(model, plan, data, {
      samples: n,
      batchSize: 32,
      tokenFilter: 'all',
      standardize: true,
      hasCls: true,
      tokenBudget: budget,
    });
    for (const g of acts.stats.tokens.filter((x) => x.candidates > n)) {
      assert.ok(g.candidates >= 2 * budget, `${g.candidates} candidates`);
      assert.equal(g.kept, budget);
    }
  }
});
