// The alignment's registries (worker/fusion/steps): every block of a real model finds its attention pattern —
// separate projections are 'mha', a PyTorch export with one packed qkv Linear is 'packed-qkv' — every step kind the
// schedule emits has a handler, and each Q/K mode's strategy gives a different fusion of the same pair.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import '../../worker/hf'; // Hugging Face folders load like .onnx models
import { openDataset } from '../../worker/data/dataset';
import { analyzeModel } from '../../worker/graph/analyze';
import { compileSchedule } from '../../worker/fusion/schedule';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { QK_MODES } from '../../worker/fusion/registry';
import { attentionPattern, QK_STRATEGIES } from '../../worker/fusion/steps/attention';
import { STEP_HANDLERS } from '../../worker/fusion/steps/index';
import { EXAMPLES, VIT } from '../helpers';
import { TINY, fixturePath, loadGz } from '../graph/torch-fixtures';

test('steps: attention patterns — separate Q/K/V projections are mha, a packed qkv Linear is packed-qkv', () => {
  const separate = analyzeModel(loadModel(path.join(VIT, 'vit48_s10.onnx')));
  assert.deepEqual(
    separate.blocks.map((b) => attentionPattern(b.attn)?.[0]),
    separate.blocks.map(() => 'mha'),
  );
  const packed = analyzeModel(loadGz(fixturePath(TINY, 'enc_post_gelu_sf_tiny_op14')));
  assert.ok(packed.blocks.length > 0);
  for (const b of packed.blocks) {
    assert.ok(b.attn.q.slice && b.attn.k.slice && b.attn.v.slice, 'the export packs Q, K and V into one projection');
    assert.equal(attentionPattern(b.attn)?.[0], 'packed-qkv');
  }
});

test('steps: every step kind of the ViT, BERT and masked-LM schedules has a handler; every Q/K mode a strategy', () => {
  const files = [path.join(VIT, 'vit48_s10.onnx'), path.join('test', 'fixtures', 'bert', 'bertD_s20.onnx'), path.join('test', 'fixtures', 'mlm', 'mlm-s0')];
  const kinds = new Set(files.flatMap((f) => compileSchedule(analyzeModel(loadModel(f))).map((s) => s.kind)));
  assert.deepEqual([...kinds].sort(), ['attention', 'classifier', 'embedding', 'linear', 'norm', 'residual', 'save', 'stage']);
  for (const kind of kinds) assert.equal(typeof STEP_HANDLERS[kind], 'function', kind);
  assert.deepEqual(Object.keys(QK_STRATEGIES).sort(), Object.keys(QK_MODES).sort());
});

test('steps: the Q/K strategies differ — each mode fuses the bundled pair into different Q/K weights', async () => {
  const models = [loadModel(path.join(EXAMPLES, 'vit48_s11.onnx')), loadModel(path.join(EXAMPLES, 'vit48_s10.onnx'))];
  const calib = openDataset({ path: path.join(EXAMPLES, 'calib200.npz'), limit: 64 });
  const plan = analyzeModel(models[0]);
  const qWeight = plan.blocks[0].attn.q.weight;
  const vWeight = plan.blocks[0].attn.v.weight;
  const q: Record<string, Float32Array> = {},
    v: Record<string, Float32Array> = {};
  for (const qk of Object.keys(QK_MODES) as (keyof typeof QK_MODES)[]) {
    const { fused } = await fuseLoaded({ models, recipe: resolveRecipe({ solver: 'emd', qk, samples: 64, refit: 'none' }), calib, provider: 'cpu' });
    q[qk] = Float32Array.from(fused.getInitializer(qWeight).data);
    v[qk] = Float32Array.from(fused.getInitializer(vWeight).data);
  }
  calib.close();
  const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((x, i) => x === b[i]);
  // V takes its own map in every mode: identical; Q (and K) follow the mode.
  assert.ok(same(v.separate, v.joint) && same(v.separate, v.eq_t_map), 'V is aligned the same way in every Q/K mode');
  assert.ok(!same(q.separate, q.joint) && !same(q.separate, q.eq_t_map) && !same(q.joint, q.eq_t_map), 'each Q/K mode aligns Q differently');
});
