// The cheap pre-fusion check (engine.check): graph analysis only, one report per model, mismatches named.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { engine } from '../../worker/api';
import { ROOT, VIT, tempDir } from '../helpers';
import { EngineClient } from '../../worker/client';
import { TINY, fixturePath, tiny, unpacked } from './torch-fixtures';

test('two exports of the same torchvision ViT at different opsets are compatible', async () => {
  const r = await engine.check({ models: [unpacked(fixturePath(TINY, 'tv_tiny_op14')), unpacked(fixturePath(TINY, 'tv_tiny_perm_op17'))] });
  assert.equal(r.ok, true, JSON.stringify(r.problems));
  assert.deepEqual(r.problems, []);
  assert.equal(r.heterogeneous, false);
  assert.deepEqual(r.models[0].structure, {
    layers: 2,
    hidden: 24,
    heads: 4,
    mlp: 48,
    tokens: 17,
    classes: 10,
    norm: 'pre',
    embedding: 'patch',
    packedQkv: true,
    seqFirst: false,
  });
});

test('post-LN against pre-LN is named as the mismatch; different widths are heterogeneous, not an error', async () => {
  const r = await engine.check({
    models: [
      unpacked(fixturePath(TINY, 'enc_post_relu_sf_tiny_op17')),
      unpacked(fixturePath(TINY, 'enc_pre_relu_sf_tiny_op17')),
      path.join(VIT, 'vit48_s10.onnx'),
    ],
  });
  assert.equal(r.ok, false);
  assert.equal(r.models[0].structure!.seqFirst, true);
  // The pre-LN encoder: LayerNorm placement; the bundled ViT: 3 blocks and pre-LN (heads, tokens, classes agree).
  assert.equal(r.problems.length, 3, r.problems.join('\n'));
  assert.match(r.problems[1], /vit48_s10\.onnx: blocks 3, the anchor 2/);
  assert.match(r.problems[0], /enc_pre_relu_sf_tiny_op17\.onnx: LayerNorm placement pre-LN, the anchor post-LN/);
  assert.equal(r.heterogeneous, true);
});

test('an unsupported graph is reported once, with its node, without throwing', async () => {
  const model = tiny('enc_pre_relu_bf', 14);
  const slice = model.nodes.find((n) => n.opType === 'Slice' && (n.name ?? '').includes('layers.0/self_attn/Slice_1'))!;
  const mul = model.nodes.find((n) => n.output![0] === slice.input![1])!;
  model.nodes.find((n) => n.output![0] === mul.input![1])!.attribute![0].t!.rawData = new Uint8Array(new BigInt64Array([0n]).buffer);
  const bad = path.join(tempDir(), 'bad.onnx');
  model.save(bad);
  const r = await engine.check({ models: [bad, unpacked(fixturePath(TINY, 'enc_pre_relu_bf_tiny_op14'))] });
  assert.equal(r.ok, false);
  assert.equal(r.models[0].ok, false);
  assert.equal(r.models[0].error!.code, 'UNSUPPORTED');
  assert.equal(r.models[0].error!.node, '/encoder/layers.0/self_attn/Slice');
  assert.match(r.models[0].error!.message, /packed projection/);
  assert.equal(r.models[1].ok, true);
});

test('the check crosses the worker-process boundary (the extension calls it through EngineClient)', async () => {
  const client = new EngineClient({ hostScript: path.join(ROOT, 'dist', 'host.js') });
  try {
    const files = [unpacked(fixturePath(TINY, 'timm_tiny_op17')), unpacked(fixturePath(TINY, 'timm_tiny_perm_op17'))];
    const r = await client.check({ models: files });
    assert.equal(r.ok, true);
    assert.deepEqual(r, await engine.check({ models: files }));
  } finally {
    client.dispose();
  }
});
