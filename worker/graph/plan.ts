// The alignment plan: what graph analysis derives from an ONNX transformer (layers, their parameters, the
// tensors that carry their activations) and what fusion, activation capture and the summary read.

export interface LinearRef {
  /** The MatMul/Gemm node. */
  node: string;
  weight: string;
  bias?: string;
  /** True when the weight is stored [out, in] (Gemm transB=1, PyTorch layout); false for [in, out]. */
  outIn: boolean;
  inDim: number;
  outDim: number;
  /**
   * Output tensor after the bias (the pre-activation values of this layer's neurons, on its last axis). For a
   * sliced layer whose neurons have no tensor of their own (a packed qkv split after a reshape), a view name
   * listed in `ModelPlan.views`.
   */
  out: string;
  /**
   * Packed parameters (one in_proj / qkv initializer for Q, K and V): this layer's outputs are elements
   * [offset, offset + size) of the stored weight's output axis and of the bias; `weight`/`bias` name the whole
   * packed initializer and `outDim === size`.
   */
  slice?: { offset: number; size: number };
}

export interface NormRef {
  node: string;
  form: 'LayerNormalization' | 'decomposed';
  scale?: string;
  bias?: string;
  out: string;
}

export interface AttentionRef {
  q: LinearRef;
  k: LinearRef;
  v: LinearRef;
  o: LinearRef;
  heads: number;
  /** Per-head size of Q/K and of V. */
  headDim: number;
  vHeadDim: number;
  scoresNode: string;
  contextNode: string;
}

export interface BlockRef {
  index: number;
  /** 'pre': x + f(LN(x)) (ViT); 'post': LN(x + f(x)) (BERT). */
  norm: 'pre' | 'post';
  input: string;
  /** pre: before attention; post: after the attention residual Add. */
  ln1?: NormRef;
  attn: AttentionRef;
  /** Residual Add after attention (its output tensor). */
  attnAdd: string;
  attnAddNode: string;
  ln2?: NormRef;
  fc1: LinearRef;
  activation: string[];
  fc2: LinearRef;
  mlpAdd: string;
  mlpAddNode: string;
  /** The residual stream after the block (post-LN: the LN output). */
  output: string;
}

export interface PatchEmbeddingRef {
  node: string;
  weight: string;
  bias?: string;
  /** Conv output (NCHW): one token per spatial position. */
  out: string;
  channels: number;
  /** [in channels, kh, kw] */
  kernel: number[];
  grid: number[];
}

export interface PatchEmbedding {
  kind: 'patch';
  patch: PatchEmbeddingRef;
  cls?: { name: string; dims: number[] };
  pos?: { name: string; dims: number[]; node: string };
  /** Start of the residual stream. */
  out: string;
  tokens?: number;
}

/** An embedding table [rows, hidden] looked up by Gather; `by` pairs tables across models. */
export interface TableRef {
  name: string;
  dims: number[];
  node: string;
  /** The graph input whose ids index it (e.g. 'input_ids', 'token_type_ids'), or 'position' for ids built from shapes/constants. */
  by: string;
}

/** Text transformers (BERT): summed Gather lookups, then (usually) a LayerNorm. */
export interface TokenEmbedding {
  kind: 'tokens';
  tables: TableRef[];
  /** The summed lookups (before the LayerNorm): the activations the embedding map is computed from. */
  sum: string;
  ln?: NormRef;
  out: string;
  tokens?: number;
}

export type EmbeddingRef = PatchEmbedding | TokenEmbedding;

/**
 * A masked-LM head (BertForMaskedLM's cls.predictions): transform dense → activation → LayerNorm → decoder, whose
 * weight is the word-embedding table itself (tied: the same initializer a Gather reads) + a vocabulary bias.
 */
export interface MlmHeadRef {
  transform: LinearRef;
  activation: string[];
  norm: NormRef;
  /** The decoder (same LinearRef as `HeadRef.classifier`); `decoder.weight === table`. */
  decoder: LinearRef;
  /** The tied word-embedding table. */
  table: string;
}

export interface HeadRef {
  /** 'classifier' (default: token selection → [pooler] → classifier) or a per-token masked-LM head. */
  kind?: 'classifier' | 'mlm';
  /** For kind 'mlm': the transform and the tied decoder; `classifier` is the decoder, `classes` the vocabulary. */
  mlm?: MlmHeadRef;
  finalNorm?: NormRef;
  tokenSelect: string;
  /** The axis the token selection works on: 1 for [batch, tokens, …], 0 for sequence-first streams. */
  tokenAxis: number;
  pooler?: LinearRef;
  classifier: LinearRef;
  classes: number;
}

export interface ModelPlan {
  file: string;
  hidden: number;
  layers: number;
  heads: number;
  headDim: number;
  mlp: number;
  tokens?: number;
  embedding: EmbeddingRef;
  blocks: BlockRef[];
  head: HeadRef;
  /** Float initializers the plan places (for the "nothing left unplaced" check). */
  placed: Set<string>;
  /**
   * Tensors (named by the plan: layer outputs, stream points) stored in [tokens, batch, …] order (PyTorch's
   * sequence-first layout: nn.MultiheadAttention internals, nn.TransformerEncoder with batch_first=False).
   * Every other token tensor is [batch, tokens, …].
   */
  seqFirst: string[];
  /** Views: plan tensor names that stand for a range of the last axis of a real graph tensor. */
  views: Record<string, TensorView>;
}

/** Elements [offset, offset + size) of the last axis of `tensor`. */
export interface TensorView {
  tensor: string;
  offset: number;
  size: number;
}
