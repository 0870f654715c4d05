// BertForSequenceClassification / BertForMaskedLM → ONNX: word + token-type + position Gathers, LayerNorm,
// post-LN blocks with HF's additive attention mask, then the pooler (tanh) + classifier, or the MLM head
// (dense, activation, LayerNorm, decoder tied to the word embeddings, bias).
import { OtfuseError } from '../errors';
import { A, DT } from '../train/builder';
import type { BertConfig } from './config';
import { HfGraph, MASK_MIN } from './graph';

export const TIED_DECODER = 'cls.predictions.decoder.weight';
export const TIED_DECODER_BIAS = 'cls.predictions.decoder.bias';

export function buildBert(g: HfGraph, c: BertConfig): void {
  const H = c.hidden;
  const ids = g.input('input_ids', DT.INT64, ['batch', 'sequence']);
  const mask = g.input('attention_mask', DT.INT64, ['batch', 'sequence']);
  const types = g.input('token_type_ids', DT.INT64, ['batch', 'sequence']);
  const e = '/bert/embeddings';
  const word = g.op(`${e}/word_embeddings`, 'Gather', [g.param('bert.embeddings.word_embeddings.weight', [c.vocab, H]), ids]);
  const type = g.op(`${e}/token_type_embeddings`, 'Gather', [g.param('bert.embeddings.token_type_embeddings.weight', [c.typeVocab, H]), types]);
  // position_ids[:seq] (absolute positions), looked up in the position table.
  const positions = g.constant(
    DT.INT64,
    [c.maxPositions],
    Array.from({ length: c.maxPositions }, (_, i) => i),
  );
  const seq = g.op(e, 'Slice', [g.op(e, 'Shape', [ids]), g.i64([1]), g.i64([2]), g.i64([0])]);
  const posIds = g.op(e, 'Slice', [positions, g.i64([0]), seq, g.i64([0])]);
  const pos = g.op(`${e}/position_embeddings`, 'Gather', [g.param('bert.embeddings.position_embeddings.weight', [c.maxPositions, H]), posIds]);
  const sum = g.op(e, 'Add', [g.op(e, 'Add', [word, type]), pos]);
  let h = g.layerNorm(`${e}/LayerNorm`, sum, 'bert.embeddings.LayerNorm', H, c.eps);
  // (1 − mask[:, None, None, :]) · finfo(float32).min
  const m4 = g.op('/bert', 'Cast', [g.op('/bert', 'Unsqueeze', [mask, g.i64([1, 2])])], { to: A.i(DT.FLOAT) });
  const ext = g.op('/bert', 'Mul', [g.op('/bert', 'Sub', [g.f32(1), m4]), g.f32(MASK_MIN)]);
  for (let l = 0; l < c.layers; l++) {
    const s = `/bert/encoder/layer.${l}`;
    const p = `bert.encoder.layer.${l}`;
    const ctx = g.attention(`${s}/attention/self`, h, `${p}.attention.self`, H, c.heads, true, ext);
    const a = g.op(`${s}/attention/output`, 'Add', [g.linear(`${s}/attention/output/dense`, ctx, `${p}.attention.output.dense`, H, H), h]);
    h = g.layerNorm(`${s}/attention/output/LayerNorm`, a, `${p}.attention.output.LayerNorm`, H, c.eps);
    const act = g.activation(`${s}/intermediate`, g.linear(`${s}/intermediate/dense`, h, `${p}.intermediate.dense`, H, c.intermediate), c.act);
    const o = g.op(`${s}/output`, 'Add', [g.linear(`${s}/output/dense`, act, `${p}.output.dense`, c.intermediate, H), h]);
    h = g.layerNorm(`${s}/output/LayerNorm`, o, `${p}.output.LayerNorm`, H, c.eps);
  }
  if (c.architecture === 'BertForSequenceClassification') {
    const first = g.op('/bert/pooler', 'Gather', [h, g.constant(DT.INT64, [], [0])], { axis: A.i(1) });
    const pooled = g.op('/bert/pooler/activation', 'Tanh', [g.linear('/bert/pooler/dense', first, 'bert.pooler.dense', H, H)]);
    g.linear('/classifier', pooled, 'classifier', H, c.labels!, true, 'logits');
    g.output('logits', ['batch', c.labels!]);
    g.checkAllUsed(() => false);
    return;
  }
  // BertForMaskedLM: no pooler; the decoder shares the word-embedding matrix unless tie_word_embeddings is false.
  const t = '/cls/predictions/transform';
  const tr = g.activation(`${t}/transform_act_fn`, g.linear(`${t}/dense`, h, 'cls.predictions.transform.dense', H, H), c.act);
  const ln = g.layerNorm(`${t}/LayerNorm`, tr, 'cls.predictions.transform.LayerNorm', H, c.eps);
  const decoderKey = c.tied ? 'bert.embeddings.word_embeddings.weight' : TIED_DECODER;
  if (!c.tied && !g.has(TIED_DECODER))
    throw new OtfuseError('BAD_MODEL', `config.json sets tie_word_embeddings: false but there is no tensor '${TIED_DECODER}'`, { file: g.ckpt.dir });
  const w = g.param(decoderKey, [c.vocab, H]);
  const dec = g.op('/cls/predictions/decoder', 'MatMul', [ln, g.op('/cls/predictions/decoder', 'Transpose', [w], { perm: A.is([1, 0]) })]);
  g.op('/cls/predictions', 'Add', [dec, g.param('cls.predictions.bias', [c.vocab])], {}, 'logits');
  g.output('logits', ['batch', 'sequence', c.vocab]);
  // A checkpoint may still carry the tied copies; they must equal what they are tied to.
  g.checkAllUsed((key) => {
    if (key === TIED_DECODER && c.tied) return sameBytes(g, key, 'bert.embeddings.word_embeddings.weight');
    if (key === TIED_DECODER_BIAS) return sameBytes(g, key, 'cls.predictions.bias');
    return false;
  });
}

function sameBytes(g: HfGraph, a: string, b: string): boolean {
  const x = g.ckpt.tensors.get(a)!;
  const y = g.ckpt.tensors.get(b);
  if (!y || x.dtype !== y.dtype || Buffer.compare(Buffer.from(x.bytes), Buffer.from(y.bytes)) !== 0) {
    throw new OtfuseError(
      'BAD_MODEL',
      `'${a}' is tied to '${b}' but holds different values (set tie_word_embeddings: false in config.json if they are meant to differ)`,
      { file: x.file },
    );
  }
  return true;
}
