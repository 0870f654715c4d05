// The decoder LM's alignment schedule (GPT-2 / Llama family, Hugging Face keys): the checkpoint as steps — the
// residual stream, embeddings, norms, attention, MLP, LM head — each walked by the handler of its kind
// (DECODER_STEP_HANDLERS), with the form-specific parts chosen from registries: the attention pattern
// (DECODER_ATTENTION_PATTERNS: GPT-2's packed c_attn, RoPE + grouped-query attention), the MLP form
// (DECODER_MLP_FORMS: GELU, SwiGLU), the norm form (DECODER_NORM_FORMS: LayerNorm, RMSNorm) and the LM head (tied or
// not). A handler says which map permutes each axis of each tensor of its step (the symmetry table is their union,
// decoderRules) and how its map is solved from the two models' activations. Maps:
//   resid — the residual stream's channels (embeddings, every norm's gain/bias, every projection's input side,
//           o_proj / down_proj / c_proj outputs, lm_head; the tied lm_head shares it through the embedding).
//   heads — whole query heads: a head's head_dim coordinates move together (RoPE rotates the (i, i + d/2) pairs of a
//           head, so nothing is permuted inside a Q/K head). Q rows, O's input columns.
//   kv    — whole key-value heads (GQA: a KV head moves with its group of query heads; see alignHeads).
//   mlp   — MLP neurons: SwiGLU's gate_proj and up_proj rows share it, down_proj takes it on its input side;
//           GPT-2's c_fc output / c_proj input.
//   v / o — V's output rows (kv space) and O's input columns (query-head space): whole heads as above, plus one
//           order of the coordinates inside each KV head (shared by the query heads of its group).
//   qkv   — GPT-2's fused c_attn output axis: [q | k | v], q and k with the head map, v with the v map (split,
//           permuted, repacked).
// A map is an index array: aligned[i] = original[map[i]].
//
// This is the decoder's own schedule: it does not go through the ONNX graph analysis (ModelPlan) and the generic
// Aligner of steps/index.ts (whose maps are transport plans with residual policies); see the decoder section of
// ARCHITECTURE.md.
import { OtfuseError } from '../../errors';
import type { DecoderConfig } from '../../hf/config-decoder';
import { linearAssignment } from '../../ot';

export interface HeadMap {
  headOrder: Int32Array;
  kvOrder: Int32Array;
  /** V coordinates (kvHeads·d): aligned coordinate g·d + k takes kvOrder[g]·d + π_g(k); π_g is free inside a head
   * (V/O only: Q/K coordinates never move inside a head). Absent: π_g = identity. */
  vCoords?: Int32Array;
}

export type MapName = 'resid' | 'heads' | 'kv' | 'v' | 'o' | 'mlp' | 'qkv';
export interface TensorRule {
  key: string;
  /** The map of each axis (null: not permuted), for the tensor's shape as stored. */
  axes: (MapName | null)[];
}

export interface DecoderMaps {
  resid: Int32Array;
  /** Per layer: the query-head order (length heads) and the key-value-head order (length kvHeads); with GQA,
   * headOrder keeps every query head in its KV head's group. */
  heads: HeadMap[];
  /** Per layer: the MLP neuron order. */
  mlp: Int32Array[];
}

/** What a handler solves its map with: the cost between the two models' neurons of an activation group
 * ('resid', 'heads.l', 'mlp.l'), and the maps solved so far. */
export interface DecoderSolveContext {
  config: DecoderConfig;
  cost(group: 'resid' | `heads.${number}` | `mlp.${number}`): Promise<Float64Array>;
  maps: { resid?: Int32Array; heads: HeadMap[]; mlp: Int32Array[] };
}

export type DecoderStep =
  | { kind: 'stream' }
  | { kind: 'embedding'; keys: string[] }
  | { kind: 'norm'; form: DecoderNormForm; prefix: string }
  | { kind: 'attention'; pattern: DecoderAttentionPattern; layer: number; prefix: string }
  | { kind: 'mlp'; form: DecoderMlpForm; layer: number; prefix: string }
  | { kind: 'lm-head'; tied: boolean };

/** Top-level steps have layer −1 (the embeddings / final norm / head); block steps their layer. */
export type ScheduledStep = DecoderStep & { at: number };

export interface DecoderStepHandler<S extends DecoderStep> {
  rules(step: S, c: DecoderConfig): TensorRule[];
  solve?(step: S, ctx: DecoderSolveContext): Promise<void>;
}

const assign = (C: Float64Array, n: number): Int32Array => Int32Array.from(linearAssignment(C, n).rowToCol);

// ---- norms ----
export type DecoderNormForm = 'layernorm' | 'rmsnorm';
export const DECODER_NORM_FORMS: Record<DecoderNormForm, { description: string; params: string[] }> = {
  layernorm: { description: 'LayerNorm: scale and bias take the residual map', params: ['weight', 'bias'] },
  rmsnorm: { description: 'RMSNorm: its gain takes the residual map, like a LayerNorm scale', params: ['weight'] },
};

// ---- attention ----
export interface DecoderAttentionEntry {
  description: string;
  matches(c: DecoderConfig): boolean;
  rules(prefix: string, c: DecoderConfig): TensorRule[];
}

export type DecoderAttentionPattern = 'packed-qkv' | 'rope-gqa';
export const DECODER_ATTENTION_PATTERNS: Record<DecoderAttentionPattern, DecoderAttentionEntry> = {
  'packed-qkv': {
    description: "GPT-2's c_attn: Q|K|V packed on one Conv1D output axis ([in, out]), split for alignment and repacked",
    matches: (c: DecoderConfig) => c.family === 'gpt2',
    rules: (p: string) => [
      { key: `${p}.c_attn.weight`, axes: ['resid', 'qkv'] },
      { key: `${p}.c_attn.bias`, axes: ['qkv'] },
      { key: `${p}.c_proj.weight`, axes: ['o', 'resid'] },
      { key: `${p}.c_proj.bias`, axes: ['resid'] },
    ],
  },
  'rope-gqa': {
    description: 'rotary Q/K (whole heads only: RoPE rotates pairs inside a head) with grouped-query K/V (a KV head moves with its query-head group)',
    matches: (c: DecoderConfig) => c.family === 'llama',
    rules: (p: string, c: DecoderConfig) => [
      { key: `${p}.q_proj.weight`, axes: ['heads', 'resid'] },
      { key: `${p}.k_proj.weight`, axes: ['kv', 'resid'] },
      { key: `${p}.v_proj.weight`, axes: ['v', 'resid'] },
      { key: `${p}.o_proj.weight`, axes: ['resid', 'o'] },
      ...(c.qkvBias
        ? ([
            { key: `${p}.q_proj.bias`, axes: ['heads'] },
            { key: `${p}.k_proj.bias`, axes: ['kv'] },
            { key: `${p}.v_proj.bias`, axes: ['v'] },
          ] as TensorRule[])
        : []),
      ...(c.oBias ? ([{ key: `${p}.o_proj.bias`, axes: ['resid'] }] as TensorRule[]) : []),
    ],
  },
};

// ---- MLP ----
export type DecoderMlpForm = 'gelu' | 'swiglu';
export const DECODER_MLP_FORMS: Record<DecoderMlpForm, { description: string; rules(p: string, c: DecoderConfig): TensorRule[] }> = {
  gelu: {
    description: "GPT-2's MLP: c_fc's outputs and c_proj's inputs share the neuron map (Conv1D: [in, out])",
    rules: (p) => [
      { key: `${p}.c_fc.weight`, axes: ['resid', 'mlp'] },
      { key: `${p}.c_fc.bias`, axes: ['mlp'] },
      { key: `${p}.c_proj.weight`, axes: ['mlp', 'resid'] },
      { key: `${p}.c_proj.bias`, axes: ['resid'] },
    ],
  },
  swiglu: {
    description: 'SwiGLU: gate_proj and up_proj rows share one neuron map, down_proj takes it on its input side',
    rules: (p, c) => [
      { key: `${p}.gate_proj.weight`, axes: ['mlp', 'resid'] },
      { key: `${p}.up_proj.weight`, axes: ['mlp', 'resid'] },
      { key: `${p}.down_proj.weight`, axes: ['resid', 'mlp'] },
      ...(c.mlpBias
        ? ([
            { key: `${p}.gate_proj.bias`, axes: ['mlp'] },
            { key: `${p}.up_proj.bias`, axes: ['mlp'] },
            { key: `${p}.down_proj.bias`, axes: ['resid'] },
          ] as TensorRule[])
        : []),
    ],
  },
};

type Handlers = { [K in DecoderStep['kind']]: DecoderStepHandler<Extract<DecoderStep, { kind: K }>> };

/** One handler per step kind. */
export const DECODER_STEP_HANDLERS: Handlers = {
  /** One map of the residual channels for the whole stream, from every point a norm reads it. */
  stream: {
    rules: () => [],
    solve: async (_s, ctx) => {
      ctx.maps.resid = assign(await ctx.cost('resid'), ctx.config.hidden);
    },
  },
  /** Token (and learned position) tables [rows, hidden]: the hidden axis takes the residual map. */
  embedding: { rules: (s) => s.keys.map((key) => ({ key, axes: [null, 'resid'] })) },
  norm: { rules: (s) => DECODER_NORM_FORMS[s.form].params.map((x) => ({ key: `${s.prefix}.${x}`, axes: ['resid'] })) },
  /** Whole heads (GQA: KV-head groups first), then V/O coordinates inside each KV head. */
  attention: {
    rules: (s, c) => DECODER_ATTENTION_PATTERNS[s.pattern].rules(s.prefix, c),
    solve: async (s, ctx) => {
      const c = ctx.config;
      ctx.maps.heads[s.layer] = alignHeads(await ctx.cost(`heads.${s.layer}`), c.heads, c.kvHeads, c.hidden / c.heads);
    },
  },
  mlp: {
    rules: (s, c) => DECODER_MLP_FORMS[s.form].rules(s.prefix, c),
    solve: async (s, ctx) => {
      ctx.maps.mlp[s.layer] = assign(await ctx.cost(`mlp.${s.layer}`), ctx.config.intermediate);
    },
  },
  /** Untied: lm_head's input side takes the residual map; tied: it is the embedding table (moved there). */
  'lm-head': { rules: (s) => (s.tied ? [] : [{ key: 'lm_head.weight', axes: [null, 'resid'] }]) },
};

function patternOf(c: DecoderConfig): DecoderAttentionPattern {
  const found = (Object.keys(DECODER_ATTENTION_PATTERNS) as DecoderAttentionPattern[]).find((k) => DECODER_ATTENTION_PATTERNS[k].matches(c));
  if (!found) throw new OtfuseError('UNSUPPORTED', `no decoder attention pattern for ${c.architecture}`);
  return found;
}

/** The schedule of a decoder checkpoint, in order (the stream map first: every other step reads it). */
export function decoderSchedule(c: DecoderConfig): ScheduledStep[] {
  const gpt2 = c.family === 'gpt2';
  const norm: DecoderNormForm = gpt2 ? 'layernorm' : 'rmsnorm';
  const pattern = patternOf(c);
  const top: ScheduledStep[] = gpt2
    ? [
        { kind: 'embedding', keys: ['transformer.wte.weight', 'transformer.wpe.weight'], at: -1 },
        { kind: 'norm', form: norm, prefix: 'transformer.ln_f', at: -1 },
      ]
    : [
        { kind: 'embedding', keys: ['model.embed_tokens.weight'], at: -1 },
        { kind: 'norm', form: norm, prefix: 'model.norm', at: -1 },
      ];
  const blocks = Array.from({ length: c.layers }, (_, l): ScheduledStep[] => {
    const p = gpt2 ? `transformer.h.${l}` : `model.layers.${l}`;
    return [
      { kind: 'norm', form: norm, prefix: gpt2 ? `${p}.ln_1` : `${p}.input_layernorm`, at: l },
      { kind: 'norm', form: norm, prefix: gpt2 ? `${p}.ln_2` : `${p}.post_attention_layernorm`, at: l },
      { kind: 'attention', pattern, layer: l, prefix: gpt2 ? `${p}.attn` : `${p}.self_attn`, at: l },
      { kind: 'mlp', form: gpt2 ? 'gelu' : 'swiglu', layer: l, prefix: `${p}.mlp`, at: l },
    ];
  });
  return [{ kind: 'stream', at: -1 }, ...top, { kind: 'lm-head', tied: c.tied, at: -1 }, ...blocks.flat()];
}

type AnyHandler = DecoderStepHandler<DecoderStep>;
const handlerOf = (s: DecoderStep) => DECODER_STEP_HANDLERS[s.kind] as AnyHandler;

/** The symmetry table: the rules of every tensor, by layer (index 0: the top-level tensors, l + 1: block l). */
export function decoderRules(c: DecoderConfig): TensorRule[][] {
  const out: TensorRule[][] = Array.from({ length: c.layers + 1 }, () => []);
  for (const step of decoderSchedule(c)) out[step.at + 1].push(...handlerOf(step).rules(step, c));
  return out;
}

/** Walks the schedule, solving each step's map. */
export async function solveDecoderSchedule(ctx: DecoderSolveContext): Promise<DecoderMaps> {
  for (const step of decoderSchedule(ctx.config)) await handlerOf(step).solve?.(step, ctx);
  if (!ctx.maps.resid) throw new OtfuseError('INTERNAL', 'decoder schedule: no residual map');
  return { resid: ctx.maps.resid, heads: ctx.maps.heads, mlp: ctx.maps.mlp };
}

/** Whole-head alignment from the per-coordinate cost of the attention context (heads·d wide). Two heads cost the
 * best matching of their coordinates (V/O coordinates are free inside a head). GQA: a group cost is the best matching
 * of its query heads; groups are matched on it, then query heads inside the matched groups. Last, the V coordinates
 * of each KV head are matched (one order shared by the query heads of its group: they read the same V). */
export function alignHeads(C: Float64Array, heads: number, kvHeads: number, hd: number): HeadMap {
  const W = heads * hd;
  const block = (i: number, j: number) => {
    const sub = new Float64Array(hd * hd);
    for (let k = 0; k < hd; k++) for (let q = 0; q < hd; q++) sub[k * hd + q] = C[(i * hd + k) * W + j * hd + q];
    return sub;
  };
  const headCost = new Float64Array(heads * heads);
  for (let i = 0; i < heads; i++) for (let j = 0; j < heads; j++) headCost[i * heads + j] = linearAssignment(block(i, j), hd).cost;
  const rep = heads / kvHeads;
  const inner = (ga: number, gb: number) => {
    const sub = new Float64Array(rep * rep);
    for (let i = 0; i < rep; i++) for (let j = 0; j < rep; j++) sub[i * rep + j] = headCost[(ga * rep + i) * heads + gb * rep + j];
    const r = linearAssignment(sub, rep);
    return { cost: r.cost, order: r.rowToCol };
  };
  const groupCost = new Float64Array(kvHeads * kvHeads);
  for (let a = 0; a < kvHeads; a++) for (let b = 0; b < kvHeads; b++) groupCost[a * kvHeads + b] = inner(a, b).cost;
  const kvOrder = assign(groupCost, kvHeads);
  const headOrder = new Int32Array(heads);
  const vCoords = new Int32Array(kvHeads * hd);
  for (let a = 0; a < kvHeads; a++) {
    const { order } = inner(a, kvOrder[a]);
    const shared = new Float64Array(hd * hd);
    for (let i = 0; i < rep; i++) {
      headOrder[a * rep + i] = kvOrder[a] * rep + order[i];
      const sub = block(a * rep + i, headOrder[a * rep + i]);
      for (let k = 0; k < shared.length; k++) shared[k] += sub[k];
    }
    const within = assign(shared, hd);
    for (let k = 0; k < hd; k++) vCoords[a * hd + k] = kvOrder[a] * hd + within[k];
  }
  return { headOrder, kvOrder, vCoords };
}
