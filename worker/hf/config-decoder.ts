// config.json of a causal (decoder) language model: GPT-2 (GPT2LMHeadModel) and the Llama family (LlamaForCausalLM,
// and Mistral / Qwen2 where their tensors are Llama's). Everything the builders do not reproduce exactly — rope
// scaling, sliding-window attention, mixtures of experts, other activations — is refused, naming the field.
import { OtfuseError } from '../errors';
import { excerpt } from '../io/read';

/** model_type → the one architecture built for it. */
export const DECODER_TYPES = {
  gpt2: 'GPT2LMHeadModel',
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
} as const;
export type DecoderType = keyof typeof DECODER_TYPES;
export type DecoderArchitecture = (typeof DECODER_TYPES)[DecoderType];

export const isDecoderType = (t: unknown): t is DecoderType => typeof t === 'string' && Object.hasOwn(DECODER_TYPES, t);

export interface DecoderConfig {
  family: 'gpt2' | 'llama';
  modelType: DecoderType;
  architecture: DecoderArchitecture;
  hidden: number;
  layers: number;
  heads: number;
  /** Key-value heads (grouped-query attention when fewer than `heads`); GPT-2: = heads. */
  kvHeads: number;
  intermediate: number;
  vocab: number;
  maxPositions: number;
  eps: number;
  /** lm_head shares the token-embedding matrix. */
  tied: boolean;
  /** Llama family: RoPE base. */
  ropeTheta: number;
  /** Bias on the q/k/v projections (Qwen2; Llama's attention_bias). */
  qkvBias: boolean;
  /** Llama's attention_bias also puts a bias on o_proj. */
  oBias: boolean;
  /** Llama's mlp_bias. */
  mlpBias: boolean;
  act: 'gelu_new' | 'silu';
  torchDtype?: string;
  /** Only for messages shared with the encoder configs. */
  labels?: undefined;
}

const own = (raw: Record<string, unknown>, field: string): unknown => (Object.hasOwn(raw, field) ? raw[field] : undefined);

export function parseDecoderConfig(raw: Record<string, unknown>, file: string, modelType: DecoderType): DecoderConfig {
  const refuse = (field: string, why: string) => new OtfuseError('UNSUPPORTED', `field '${field}': ${why}`, { file });
  const int = (field: string, lo: number, hi: number, fallback?: number): number => {
    const v = own(raw, field) ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < lo || v > hi)
      throw new OtfuseError('BAD_MODEL', `field '${field}' must be an integer from ${lo} to ${hi}, got ${excerpt(own(raw, field))}`, { file });
    return v;
  };
  const num = (field: string, lo: number, hi: number, fallback: number): number => {
    const v = own(raw, field) ?? fallback;
    if (typeof v !== 'number' || !(v >= lo && v <= hi))
      throw new OtfuseError('BAD_MODEL', `field '${field}' must be a number from ${lo} to ${hi}, got ${excerpt(own(raw, field))}`, { file });
    return v;
  };
  const architecture = DECODER_TYPES[modelType];
  const archs = own(raw, 'architectures');
  if (archs !== undefined && archs !== null && (!Array.isArray(archs) || archs.length !== 1 || archs[0] !== architecture))
    throw refuse('architectures', `expected ['${architecture}'] for model_type '${modelType}', got ${excerpt(archs)}`);
  const torchDtype = typeof own(raw, 'torch_dtype') === 'string' ? excerpt(own(raw, 'torch_dtype'), 16) : undefined;
  if (modelType === 'gpt2') return gpt2Config(raw, file, int, num, refuse, torchDtype);
  for (const f of ['num_local_experts', 'num_experts', 'num_experts_per_tok']) {
    if (own(raw, f) !== undefined && own(raw, f) !== null && own(raw, f) !== 0) throw refuse(f, 'mixture-of-experts models are not supported');
  }
  const sliding = own(raw, 'sliding_window');
  const slidingOn = modelType === 'qwen2' ? own(raw, 'use_sliding_window') === true : sliding !== undefined && sliding !== null;
  if (slidingOn) throw refuse(modelType === 'qwen2' ? 'use_sliding_window' : 'sliding_window', 'sliding-window attention is not supported (set it to null)');
  const scaling = own(raw, 'rope_scaling');
  if (scaling !== undefined && scaling !== null) throw refuse('rope_scaling', 'scaled rotary embeddings are not supported (only absent or null)');
  const act = own(raw, 'hidden_act') ?? 'silu';
  if (act !== 'silu') throw refuse('hidden_act', `'${excerpt(act)}' is not supported (only silu: SwiGLU)`);
  const hidden = int('hidden_size', 1, 65_536);
  const heads = int('num_attention_heads', 1, 4_096);
  const kvHeads = int('num_key_value_heads', 1, 4_096, heads);
  if (hidden % heads !== 0) throw new OtfuseError('BAD_MODEL', `field 'hidden_size' (${hidden}) is not a multiple of num_attention_heads (${heads})`, { file });
  if (heads % kvHeads !== 0)
    throw new OtfuseError('BAD_MODEL', `field 'num_attention_heads' (${heads}) is not a multiple of num_key_value_heads (${kvHeads})`, { file });
  const headDim = own(raw, 'head_dim');
  if (headDim !== undefined && headDim !== null && headDim !== hidden / heads)
    throw refuse('head_dim', `${excerpt(headDim)} differs from hidden_size / num_attention_heads (${hidden / heads})`);
  if ((hidden / heads) % 2 !== 0) throw new OtfuseError('BAD_MODEL', `the head size ${hidden / heads} is odd: rotary embeddings need it even`, { file });
  for (const f of ['attention_bias', 'mlp_bias']) {
    if (own(raw, f) !== undefined && typeof own(raw, f) !== 'boolean') throw new OtfuseError('BAD_MODEL', `field '${f}' must be true or false`, { file });
  }
  const attnBias = own(raw, 'attention_bias') === true;
  return {
    family: 'llama',
    modelType,
    architecture,
    hidden,
    layers: int('num_hidden_layers', 1, 1_024),
    heads,
    kvHeads,
    intermediate: int('intermediate_size', 1, 262_144),
    vocab: int('vocab_size', 1, 1_048_576),
    maxPositions: int('max_position_embeddings', 1, 1_048_576, 2048),
    eps: num('rms_norm_eps', 1e-30, 0.1, 1e-6),
    tied: own(raw, 'tie_word_embeddings') === true || (own(raw, 'tie_word_embeddings') === undefined && modelType === 'qwen2'),
    ropeTheta: num('rope_theta', 1, 1e12, 10_000),
    qkvBias: modelType === 'qwen2' || attnBias,
    oBias: modelType !== 'qwen2' && attnBias,
    mlpBias: own(raw, 'mlp_bias') === true,
    act: 'silu',
    torchDtype,
  };
}

function gpt2Config(
  raw: Record<string, unknown>,
  file: string,
  int: (f: string, lo: number, hi: number, fb?: number) => number,
  num: (f: string, lo: number, hi: number, fb: number) => number,
  refuse: (f: string, why: string) => OtfuseError,
  torchDtype: string | undefined,
): DecoderConfig {
  const act = own(raw, 'activation_function') ?? 'gelu_new';
  if (act !== 'gelu_new') throw refuse('activation_function', `'${excerpt(act)}' is not supported (only gelu_new)`);
  for (const [f, expected] of [
    ['scale_attn_weights', true],
    ['scale_attn_by_inverse_layer_idx', false],
    ['reorder_and_upcast_attn', false],
    ['add_cross_attention', false],
  ] as const) {
    const v = own(raw, f);
    if (v !== undefined && v !== expected) throw refuse(f, `only ${expected} is supported`);
  }
  const hidden = int('n_embd', 1, 65_536);
  const heads = int('n_head', 1, 4_096);
  if (hidden % heads !== 0) throw new OtfuseError('BAD_MODEL', `field 'n_embd' (${hidden}) is not a multiple of n_head (${heads})`, { file });
  const inner = own(raw, 'n_inner');
  return {
    family: 'gpt2',
    modelType: 'gpt2',
    architecture: 'GPT2LMHeadModel',
    hidden,
    layers: int('n_layer', 1, 1_024),
    heads,
    kvHeads: heads,
    intermediate: inner === undefined || inner === null ? 4 * hidden : int('n_inner', 1, 262_144),
    vocab: int('vocab_size', 1, 1_048_576),
    maxPositions: int('n_positions', 1, 131_072, 1024),
    eps: num('layer_norm_epsilon', 1e-30, 0.1, 1e-5),
    tied: own(raw, 'tie_word_embeddings') !== false,
    ropeTheta: 0,
    qkvBias: true,
    oBias: true,
    mlpBias: true,
    act: 'gelu_new',
    torchDtype,
  };
}
