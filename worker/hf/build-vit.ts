// ViTForImageClassification → ONNX: Conv patch embedding, CLS Concat, position Add, pre-LN blocks, final
// LayerNorm, CLS token Gather, classifier — the graph torch.onnx.export writes for HF's ViT.
import { A, DT } from '../train/builder';
import type { VitConfig } from './config';
import { HfGraph } from './graph';

export function buildVit(g: HfGraph, c: VitConfig): void {
  const { hidden: H, imageSize: S, patchSize: P, channels: C } = c;
  const tokens = (S / P) ** 2 + 1;
  const x = g.input('pixel_values', DT.FLOAT, ['batch', C, S, S]);
  const e = '/vit/embeddings';
  const conv = g.op(
    `${e}/patch_embeddings/projection`,
    'Conv',
    [x, g.param('vit.embeddings.patch_embeddings.projection.weight', [H, C, P, P]), g.param('vit.embeddings.patch_embeddings.projection.bias', [H])],
    { kernel_shape: A.is([P, P]), strides: A.is([P, P]) },
  );
  const patches = g.op(`${e}/patch_embeddings`, 'Transpose', [g.op(`${e}/patch_embeddings`, 'Reshape', [conv, g.i64([0, 0, -1])])], { perm: A.is([0, 2, 1]) });
  // cls_token [1, 1, H] broadcast to [batch, 1, H].
  const batch = g.op(e, 'Slice', [g.op(e, 'Shape', [x]), g.i64([0]), g.i64([1]), g.i64([0])]);
  const cls = g.op(e, 'Expand', [g.param('vit.embeddings.cls_token', [1, 1, H]), g.op(e, 'Concat', [batch, g.i64([1, 1])], { axis: A.i(0) })]);
  let h = g.op(e, 'Add', [g.op(e, 'Concat', [cls, patches], { axis: A.i(1) }), g.param('vit.embeddings.position_embeddings', [1, tokens, H])]);
  for (let l = 0; l < c.layers; l++) {
    const s = `/vit/encoder/layer.${l}`;
    const p = `vit.encoder.layer.${l}`;
    const ln1 = g.layerNorm(`${s}/layernorm_before`, h, `${p}.layernorm_before`, H, c.eps);
    const ctx = g.attention(`${s}/attention/attention`, ln1, `${p}.attention.attention`, H, c.heads, c.qkvBias);
    h = g.op(s, 'Add', [g.linear(`${s}/attention/output/dense`, ctx, `${p}.attention.output.dense`, H, H), h]);
    const ln2 = g.layerNorm(`${s}/layernorm_after`, h, `${p}.layernorm_after`, H, c.eps);
    const act = g.activation(
      `${s}/intermediate/intermediate_act_fn`,
      g.linear(`${s}/intermediate/dense`, ln2, `${p}.intermediate.dense`, H, c.intermediate),
      c.act,
    );
    h = g.op(`${s}/output`, 'Add', [g.linear(`${s}/output/dense`, act, `${p}.output.dense`, c.intermediate, H), h]);
  }
  const final = g.layerNorm('/vit/layernorm', h, 'vit.layernorm', H, c.eps);
  const first = g.op('/vit', 'Gather', [final, g.constant(DT.INT64, [], [0])], { axis: A.i(1) });
  g.linear('/classifier', first, 'classifier', H, c.labels, true, 'logits');
  g.output('logits', ['batch', c.labels]);
  g.checkAllUsed(() => false);
}
