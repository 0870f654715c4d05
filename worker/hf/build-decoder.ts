// GPT2LMHeadModel and LlamaForCausalLM (also Mistral / Qwen2 with Llama's tensors) → ONNX, as transformers
// computes them in eval mode: input_ids [batch, sequence] → logits [batch, sequence, vocab], causal attention, no
// padding (every row is a full block). GPT-2: learned positions, pre-LN blocks, Conv1D weights ([in, out]: used by
// MatMul as stored), fused c_attn split into q|k|v, gelu_new, lm_head tied to wte. Llama: RMSNorm, rotary position
// embeddings (rope_theta, rotate_half), grouped-query attention (each key-value head repeated for its group of query
// heads, as repeat_kv does), SwiGLU MLP, lm_head tied or not.
import { OtfuseError } from '../errors';
import { A, DT, makeTensor } from '../train/builder';
import type { DecoderConfig } from './config-decoder';
import { HfGraph, MASK_MIN } from './graph';

/** Additive causal mask [T, T]: 0 on and below the diagonal, float32 min above (Trilu of a ones matrix). */
function causalMask(g: HfGraph, ids: string): string {
  const s = '/model/causal_mask';
  const seq = g.op(s, 'Slice', [g.op(s, 'Shape', [ids]), g.i64([1]), g.i64([2]), g.i64([0])]);
  const square = g.op(s, 'Concat', [seq, seq], { axis: A.i(0) });
  const ones = g.op(s, 'ConstantOfShape', [square], { value: A.t(makeTensor('value', DT.FLOAT, [1], [1])) });
  const lower = g.op(s, 'Trilu', [ones], { upper: A.i(0) });
  return g.op(s, 'Mul', [g.op(s, 'Sub', [g.f32(1), lower]), g.f32(MASK_MIN)]);
}

/** positions 0…T−1 of the sequence (int64 [T]). */
function positionIds(g: HfGraph, ids: string, maxPositions: number): string {
  const s = '/model/positions';
  const positions = g.constant(
    DT.INT64,
    [maxPositions],
    Array.from({ length: maxPositions }, (_, i) => i),
  );
  const seq = g.op(s, 'Slice', [g.op(s, 'Shape', [ids]), g.i64([1]), g.i64([2]), g.i64([0])]);
  return g.op(s, 'Slice', [positions, g.i64([0]), seq, g.i64([0])]);
}

/** softmax(q·kᵀ/√d + mask)·v over heads, q/k/v [batch, heads, T, d]; back to [batch, T, heads·d]. */
function scaledAttention(g: HfGraph, s: string, q: string, k: string, v: string, mask: string, hd: number, width: number): string {
  const scores = g.op(s, 'Mul', [g.op(s, 'MatMul', [q, g.op(s, 'Transpose', [k], { perm: A.is([0, 1, 3, 2]) })]), g.f32(1 / Math.sqrt(hd))]);
  const p = g.op(s, 'Softmax', [g.op(s, 'Add', [scores, mask])], { axis: A.i(-1) });
  const ctx = g.op(s, 'MatMul', [p, v]);
  return g.op(s, 'Reshape', [g.op(s, 'Transpose', [ctx], { perm: A.is([0, 2, 1, 3]) }), g.i64([0, 0, width])]);
}

/** [batch, T, heads·d] → [batch, heads, T, d]. */
function splitHeads(g: HfGraph, s: string, x: string, heads: number, hd: number): string {
  return g.op(s, 'Transpose', [g.op(s, 'Reshape', [x, g.i64([0, 0, heads, hd])])], { perm: A.is([0, 2, 1, 3]) });
}

/** lm_head: logits = h · Wᵀ (W [vocab, hidden]: lm_head.weight, or the embedding matrix when tied). */
function lmHead(g: HfGraph, h: string, c: DecoderConfig, embedKey: string): void {
  if (!c.tied && !g.has('lm_head.weight'))
    throw new OtfuseError('BAD_MODEL', `config.json sets tie_word_embeddings: false but there is no tensor 'lm_head.weight'`, { file: g.ckpt.dir });
  const w = g.param(c.tied ? embedKey : 'lm_head.weight', [c.vocab, c.hidden]);
  g.op('/lm_head', 'MatMul', [h, g.op('/lm_head', 'Transpose', [w], { perm: A.is([1, 0]) })], {}, 'logits');
  g.output('logits', ['batch', 'sequence', c.vocab]);
  g.checkAllUsed((key) => key === 'lm_head.weight' && c.tied && sameValues(g, key, embedKey));
}

function sameValues(g: HfGraph, a: string, b: string): boolean {
  const x = g.ckpt.tensors.get(a)!;
  const y = g.ckpt.tensors.get(b)!;
  if (x.dtype !== y.dtype || Buffer.compare(Buffer.from(x.bytes), Buffer.from(y.bytes)) !== 0)
    throw new OtfuseError('BAD_MODEL', `'${a}' is tied to '${b}' but holds different values (set tie_word_embeddings: false)`, { file: x.file });
  return true;
}

export function buildGpt2(g: HfGraph, c: DecoderConfig): void {
  const H = c.hidden;
  const hd = H / c.heads;
  const ids = g.input('input_ids', DT.INT64, ['batch', 'sequence']);
  const mask = causalMask(g, ids);
  const t = '/transformer';
  const wte = g.param('transformer.wte.weight', [c.vocab, H]);
  const tok = g.op(`${t}/wte`, 'Gather', [wte, ids]);
  const pos = g.op(`${t}/wpe`, 'Gather', [g.param('transformer.wpe.weight', [c.maxPositions, H]), positionIds(g, ids, c.maxPositions)]);
  let h = g.op(t, 'Add', [tok, pos]);
  const conv1d = (scope: string, x: string, prefix: string, inDim: number, outDim: number) =>
    g.op(scope, 'Add', [g.op(scope, 'MatMul', [x, g.param(`${prefix}.weight`, [inDim, outDim])]), g.param(`${prefix}.bias`, [outDim])]);
  for (let l = 0; l < c.layers; l++) {
    const s = `${t}/h.${l}`;
    const p = `transformer.h.${l}`;
    const x1 = g.layerNorm(`${s}/ln_1`, h, `${p}.ln_1`, H, c.eps);
    const qkv = conv1d(`${s}/attn/c_attn`, x1, `${p}.attn.c_attn`, H, 3 * H);
    const a = `${s}/attn`;
    const parts = ['q', 'k', 'v'].map((_, i) => g.op(a, 'Slice', [qkv, g.i64([i * H]), g.i64([(i + 1) * H]), g.i64([2])]));
    const [q, k, v] = parts.map((x) => splitHeads(g, a, x, c.heads, hd));
    const ctx = scaledAttention(g, a, q, k, v, mask, hd, H);
    h = g.op(s, 'Add', [conv1d(`${s}/attn/c_proj`, ctx, `${p}.attn.c_proj`, H, H), h]);
    const x2 = g.layerNorm(`${s}/ln_2`, h, `${p}.ln_2`, H, c.eps);
    const f = conv1d(`${s}/mlp/c_fc`, x2, `${p}.mlp.c_fc`, H, c.intermediate);
    h = g.op(s, 'Add', [conv1d(`${s}/mlp/c_proj`, geluNew(g, `${s}/mlp/act`, f), `${p}.mlp.c_proj`, c.intermediate, H), h]);
  }
  lmHead(g, g.layerNorm(`${t}/ln_f`, h, 'transformer.ln_f', H, c.eps), c, 'transformer.wte.weight');
}

/** gelu_new: ½x(1 + tanh(√(2/π)(x + 0.044715x³))). */
function geluNew(g: HfGraph, s: string, x: string): string {
  const cube = g.op(s, 'Mul', [g.op(s, 'Mul', [x, x]), x]);
  const inner = g.op(s, 'Mul', [g.op(s, 'Add', [x, g.op(s, 'Mul', [cube, g.f32(0.044715)])]), g.f32(Math.sqrt(2 / Math.PI))]);
  return g.op(s, 'Mul', [g.op(s, 'Mul', [x, g.f32(0.5)]), g.op(s, 'Add', [g.op(s, 'Tanh', [inner]), g.f32(1)])]);
}

/** LlamaRMSNorm: w · x / √(mean(x²) + ε). */
function rmsNorm(g: HfGraph, s: string, x: string, key: string, dim: number, eps: number): string {
  const ms = g.op(s, 'ReduceMean', [g.op(s, 'Mul', [x, x])], { axes: A.is([-1]), keepdims: A.i(1) });
  const inv = g.op(s, 'Reciprocal', [g.op(s, 'Sqrt', [g.op(s, 'Add', [ms, g.f32(eps)])])]);
  return g.op(s, 'Mul', [g.param(key, [dim]), g.op(s, 'Mul', [x, inv])]);
}

/** cos / sin tables [maxPositions, d] of the rotary embedding, in float32 as transformers computes them. */
function ropeTables(g: HfGraph, c: DecoderConfig, hd: number): { cos: string; sin: string } {
  const f = Math.fround;
  const inv = Array.from({ length: hd / 2 }, (_, i) => f(1 / f(c.ropeTheta ** f((2 * i) / hd))));
  const cos: number[] = [];
  const sin: number[] = [];
  for (let p = 0; p < c.maxPositions; p++) {
    for (let j = 0; j < hd; j++) {
      const angle = f(p * inv[j % (hd / 2)]);
      cos.push(Math.cos(angle));
      sin.push(Math.sin(angle));
    }
  }
  return { cos: g.constant(DT.FLOAT, [c.maxPositions, hd], cos), sin: g.constant(DT.FLOAT, [c.maxPositions, hd], sin) };
}

/** x·cos + rotate_half(x)·sin, x [batch, heads, T, d]; rotate_half(x) = [−x₂, x₁]. */
function rope(g: HfGraph, s: string, x: string, cos: string, sin: string, hd: number): string {
  const x1 = g.op(s, 'Slice', [x, g.i64([0]), g.i64([hd / 2]), g.i64([3])]);
  const x2 = g.op(s, 'Slice', [x, g.i64([hd / 2]), g.i64([hd]), g.i64([3])]);
  const rot = g.op(s, 'Concat', [g.op(s, 'Neg', [x2]), x1], { axis: A.i(3) });
  return g.op(s, 'Add', [g.op(s, 'Mul', [x, cos]), g.op(s, 'Mul', [rot, sin])]);
}

/** [batch, kvHeads, T, d] → [batch, heads, T, d]: each key-value head repeated for its `rep` query heads. */
function repeatKv(g: HfGraph, s: string, x: string, c: DecoderConfig, hd: number): string {
  const rep = c.heads / c.kvHeads;
  if (rep === 1) return x;
  const e = g.op(s, 'Expand', [g.op(s, 'Unsqueeze', [x, g.i64([2])]), g.i64([1, 1, rep, 1, 1])]);
  return g.op(s, 'Reshape', [e, g.i64([0, c.heads, -1, hd])]);
}

export function buildLlama(g: HfGraph, c: DecoderConfig): void {
  const H = c.hidden;
  const hd = H / c.heads;
  const kvW = c.kvHeads * hd;
  const ids = g.input('input_ids', DT.INT64, ['batch', 'sequence']);
  const mask = causalMask(g, ids);
  const tables = ropeTables(g, c, hd);
  const pos = positionIds(g, ids, c.maxPositions);
  const cos = g.op('/model/rotary_emb', 'Gather', [tables.cos, pos]);
  const sin = g.op('/model/rotary_emb', 'Gather', [tables.sin, pos]);
  let h = g.op('/model/embed_tokens', 'Gather', [g.param('model.embed_tokens.weight', [c.vocab, H]), ids]);
  for (let l = 0; l < c.layers; l++) {
    const s = `/model/layers.${l}`;
    const p = `model.layers.${l}`;
    const x1 = rmsNorm(g, `${s}/input_layernorm`, h, `${p}.input_layernorm.weight`, H, c.eps);
    const a = `${s}/self_attn`;
    const proj = (name: string, out: number, bias: boolean) => g.linear(`${a}/${name}`, x1, `${p}.self_attn.${name}`, H, out, bias);
    const q = rope(g, a, splitHeads(g, a, proj('q_proj', H, c.qkvBias), c.heads, hd), cos, sin, hd);
    const k = rope(g, a, splitHeads(g, a, proj('k_proj', kvW, c.qkvBias), c.kvHeads, hd), cos, sin, hd);
    const v = splitHeads(g, a, proj('v_proj', kvW, c.qkvBias), c.kvHeads, hd);
    const ctx = scaledAttention(g, a, q, repeatKv(g, a, k, c, hd), repeatKv(g, a, v, c, hd), mask, hd, H);
    h = g.op(s, 'Add', [h, g.linear(`${a}/o_proj`, ctx, `${p}.self_attn.o_proj`, H, H, c.oBias)]);
    const x2 = rmsNorm(g, `${s}/post_attention_layernorm`, h, `${p}.post_attention_layernorm.weight`, H, c.eps);
    const m = `${s}/mlp`;
    const gate = g.linear(`${m}/gate_proj`, x2, `${p}.mlp.gate_proj`, H, c.intermediate, c.mlpBias);
    const up = g.linear(`${m}/up_proj`, x2, `${p}.mlp.up_proj`, H, c.intermediate, c.mlpBias);
    const silu = g.op(`${m}/act_fn`, 'Mul', [gate, g.op(`${m}/act_fn`, 'Sigmoid', [gate])]);
    h = g.op(s, 'Add', [h, g.linear(`${m}/down_proj`, g.op(m, 'Mul', [silu, up]), `${p}.mlp.down_proj`, c.intermediate, H, c.mlpBias)]);
  }
  lmHead(g, rmsNorm(g, '/model/norm', h, 'model.norm.weight', H, c.eps), c, 'model.embed_tokens.weight');
}
