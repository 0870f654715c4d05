// Distilling a causal LM (issue 29): the student learns the teachers' mean next-token distribution at every scored
// position of the text blocks. On the real GPT-2 fixture: a model distilled into itself (α = 1, no weight decay)
// has a zero KL at every step and keeps its held-out loss, while the same steps on the next-token labels move it;
// distilling from the other GPT-2 lowers the KL to that teacher step by step.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { engine } from '../../worker/api';
import type { TextSpec } from '../../worker/data/text';
import { tempDir } from '../helpers';
import { DEC } from './helpers';

const S0 = path.join(DEC, 'gpt2-s0');
const S1 = path.join(DEC, 'gpt2-s1');
const CALIB = path.join(DEC, 'calib.txt');
const HELDOUT = path.join(DEC, 'heldout.txt');
const common = { model: S0, data: CALIB, maxSteps: 6, batchSize: 8, lr: 1e-3, weightDecay: 0, threads: 1 };
const heldoutLoss = async (model: string) => (await engine.evaluate({ model, data: { path: HELDOUT, tokenizer: S0 } as TextSpec })).loss;

test('GPT-2 distilled into itself keeps its held-out loss; the same steps on labels move it', async () => {
  const dir = tempDir();
  const before = await heldoutLoss(S0);
  const self = await engine.finetune({ ...common, output: path.join(dir, 'self.onnx'), teachers: [S0], kdTemp: 2, kdAlpha: 1 });
  assert.deepEqual(self.distill, { teachers: [S0], temperature: 2, alpha: 1 });
  for (const h of self.history) assert.ok(Math.abs(h.loss) < 1e-5, `self-distillation KL ${h.loss} at step ${h.step}`);
  const selfMoved = Math.abs((await heldoutLoss(path.join(dir, 'self.onnx'))) - before);
  const ce = await engine.finetune({ ...common, output: path.join(dir, 'ce.onnx') });
  const ceMoved = Math.abs((await heldoutLoss(path.join(dir, 'ce.onnx'))) - before);
  assert.ok(selfMoved < 1e-4, `self-distillation moved the held-out loss by ${selfMoved}`);
  assert.ok(ceMoved > 100 * Math.max(selfMoved, 1e-5), `label finetune moved it by ${ceMoved}, self-distillation by ${selfMoved}`);
  assert.equal(ce.distill, undefined);
});

test('GPT-2 distilled from the other GPT-2 (α = 1): the KL to the teacher falls', async () => {
  const dir = tempDir();
  const kd = { teachers: [S1], kdTemp: 1, kdAlpha: 1 };
  // The KL on the first batch, measured by one step with a negligible learning rate (same seed, same batch).
  const klOf = async (model: string, tag: string) =>
    (
      await engine.finetune({
        ...common,
        ...kd,
        model,
        data: { path: CALIB, tokenizer: S0 } as TextSpec,
        maxSteps: 1,
        lr: 1e-12,
        output: path.join(dir, `${tag}.onnx`),
      })
    ).history[0].loss;
  const trained = path.join(dir, 'kd.onnx');
  await engine.finetune({ ...common, ...kd, maxSteps: 8, output: trained });
  const before = await klOf(S0, 'probe0');
  const after = await klOf(trained, 'probe1');
  assert.ok(before > 0.05, `initial KL ${before}`);
  assert.ok(after < 0.8 * before, `KL to the teacher ${before} → ${after}`);
});
