// The parents' logit ensemble: the average of the models' logits, scored like one model's logits.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel, scoreLogits } from '../../worker/runtime/evaluate';
import { evaluateEnsemble } from '../../worker/runtime/ensemble';
import { EXAMPLES } from '../helpers';

const S10 = path.join(EXAMPLES, 'vit48_s10.onnx');
const S11 = path.join(EXAMPLES, 'vit48_s11.onnx');
const TEST = path.join(EXAMPLES, 'data/fmnist-test-2k.json');

test('ensemble = mean of the logits; one model (or weight 1, 0) = that model', async () => {
  const data = openDataset(TEST);
  const n = 600;
  const logits = [new Float32Array(n * 10), new Float32Array(n * 10)];
  const single = [];
  for (const [k, f] of [S10, S11].entries())
    single.push(await evaluateModel(loadModel(f), data, { limit: n, onLogits: (l, start) => logits[k].set(l, start * 10) }));
  const mean = logits[0].map((v, i) => (v + logits[1][i]) / 2);
  const ref = scoreLogits(mean, data.labels.subarray(0, n));
  const ens = await evaluateEnsemble([S10, S11], data, { limit: n, batchSize: 128 });
  assert.equal(ens.samples, n);
  assert.equal(ens.accuracy, ref.correct / n);
  assert.ok(Math.abs(ens.loss - ref.lossSum / n) < 1e-6, `${ens.loss} vs ${ref.lossSum / n}`);
  // The ensemble differs from both members (a wrong implementation returning one model would match it).
  assert.ok(Math.abs(ens.loss - single[0].loss) > 1e-3 && Math.abs(ens.loss - single[1].loss) > 1e-3);
  const one = await evaluateEnsemble([S10], data, { limit: n });
  assert.equal(one.accuracy, single[0].accuracy);
  assert.ok(Math.abs(one.loss - single[0].loss) < 1e-6);
  const weighted = await evaluateEnsemble([S10, S11], data, { limit: n, weights: [1, 0] });
  assert.ok(Math.abs(weighted.loss - single[0].loss) < 1e-6);
});
