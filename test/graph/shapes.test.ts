// Static shape inference and shape arithmetic (worker/graph/shapes.ts) on real exports: what nn.MultiheadAttention
// computes at run time (slice bounds, head-split targets) is evaluated from the graph alone.
import test from 'node:test';
import assert from 'node:assert/strict';
import { GraphIndex } from '../../worker/graph/ir';
import { sliceRange } from '../../worker/graph/shapes';
import { tiny } from './torch-fixtures';

test('nn.MultiheadAttention (torch 1.13, batch_first=False): slice bounds and the head split evaluate statically', () => {
  const g = new GraphIndex(tiny('enc_post_relu_sf', 14));
  const slices = g.model.nodes.filter((n) => n.opType === 'Slice' && (n.name ?? '').startsWith('/encoder/layers.0/self_attn/'));
  assert.equal(slices.length, 3);
  // starts/ends come from Shape → Gather(−1) → Add 2 → Div 3 → Mul k (integer division of 72 + 2 by 3 = 24).
  assert.deepEqual(
    slices.map((s) => [g.shapes.value(s.input![1]), g.shapes.value(s.input![2])]),
    [
      [[0], [24]],
      [[24], [48]],
      [[48], [72]],
    ],
  );
  for (const s of slices) assert.deepEqual(g.shapes.shape(s.output![0]), [17, null, 24]);
  // The head split: Reshape to [T, B·H, d] with B unknown.
  const reshape = g.model.nodes.find((n) => n.name === '/encoder/layers.0/self_attn/Reshape')!;
  assert.deepEqual(g.shapes.value(reshape.input![1]), [17, null, 6]);
  // The input stream and the out-projection (a Gemm on the flattened tokens).
  const gemm = g.model.nodes.find((n) => n.name === '/encoder/layers.0/self_attn/Gemm')!;
  assert.deepEqual(g.shapes.shape(gemm.input![0]), [null, 24]);
  assert.deepEqual(g.shapes.shape(gemm.output![0]), [null, 24]);
});

test('timm packed qkv: the 5-D reshape and the Split along the "3" axis', () => {
  const g = new GraphIndex(tiny('timm', 17));
  const split = g.model.nodes.find((n) => n.opType === 'Split' && (n.name ?? '').includes('blocks.1'))!;
  assert.deepEqual(g.shapes.shape(split.input![0]), [3, null, 4, 17, 6]);
  assert.deepEqual(
    split.output!.map((o) => g.shapes.shape(o)),
    [
      [1, null, 4, 17, 6],
      [1, null, 4, 17, 6],
      [1, null, 4, 17, 6],
    ],
  );
});

test('sliceRange clamps like ONNX Slice and refuses what it cannot size', () => {
  assert.deepEqual(sliceRange(72, 48, 9.2e18, 1), { start: 48, size: 24, step: 1 });
  assert.deepEqual(sliceRange(72, -24, 1000, 1), { start: 48, size: 24, step: 1 });
  assert.deepEqual(sliceRange(null, 0, 24, 1), { start: 0, size: 24, step: 1 });
  assert.equal(sliceRange(null, -24, 1000, 1), undefined);
  assert.equal(sliceRange(72, 0, 72, 2), undefined);
  assert.equal(sliceRange(72, null, 24, 1), undefined);
});
