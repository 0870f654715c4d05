// Whole-model gradient check on a fixture ViT (PyTorch export, opset 17): every parameter tensor's
// gradient from the generated graph against central differences (float32: ORT has no float64 Conv/Erf).
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { gradientCheck } from '../../worker/train/gradcheck';
import { trainableParameters } from '../../worker/train/graphs';
import { gradientMismatches, imageFeeds } from './helpers';

const VIT = path.join(process.cwd(), 'test/fixtures/vit/vit48_s10.onnx');
const CALIB = path.join(process.cwd(), 'test/fixtures/vit/calib200.npz');

test('ViT fixture: gradients of every parameter tensor match finite differences', async () => {
  const model = loadModel(VIT);
  const data = openDataset(CALIB);
  const feeds = imageFeeds(data, [0, 1, 2, 3, 4, 5]);
  const params = trainableParameters(model);
  assert.equal(params.length, 56);
  const entries = await gradientCheck(model, { feeds, labelSmoothing: 0.1, eps: 1e-2, samplesPerTensor: 4 });
  assert.equal(entries.length, params.length);
  assert.deepEqual(gradientMismatches(entries), []);
  // The check must be meaningful: real gradients, not zeros compared with zeros. Key biases are the
  // exception: q·(k + b) shifts every score of a query row equally, which softmax ignores, so their
  // true gradient is 0 (and both sides must agree on that).
  const flat = entries.filter((e) => e.scale <= 1e-4).map((e) => e.name);
  assert.deepEqual(
    flat,
    params.filter((p) => /attention\.key\.bias$/.test(p)),
  );
});

const BERT = path.join(process.cwd(), 'test', 'fixtures', 'bert');

test('BERT fixture (Gather embeddings, int64 inputs, Tanh pooler): gradients match finite differences', async () => {
  const model = loadModel(path.join(BERT, 'bertD_s20.onnx'));
  const data = openDataset(path.join(BERT, 'train.npz'));
  const batch = data.take([0, 1, 2, 3]);
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, f] of Object.entries(batch.feeds)) feeds[name] = new ort.Tensor(f.type, f.data, f.dims);
  feeds.labels = new ort.Tensor(
    'int64',
    BigInt64Array.from(batch.labels, (v) => BigInt(v)),
    [batch.labels.length],
  );
  const entries = await gradientCheck(model, { feeds, eps: 1e-2, samplesPerTensor: 3 });
  assert.deepEqual(gradientMismatches(entries), []);
  const flat = entries.filter((e) => e.scale <= 1e-4).map((e) => e.name);
  assert.deepEqual(
    flat,
    entries.map((e) => e.name).filter((p) => /attention\.self\.key\.bias$/.test(p)),
  );
  assert.ok(
    entries.some((e) => /word_embeddings/.test(e.name) && e.scale > 1e-4),
    'embedding rows get gradients through Gather',
  );
});
