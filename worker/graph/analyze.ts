// Derives the alignment structure (the transport-map flow graph) of a transformer from its ONNX graph alone:
// no parameter names are read. The walk starts at the graph input and follows the residual stream:
//   embedding (patch Conv [+ CLS Concat] [+ position Add]) → blocks (LN → Q/K/V → QKᵀ → Softmax → ·V → O → Add,
//   LN → fc1 → activation → fc2 → Add) → [final LN] → token select → [pooler] → classifier.
// Q, K and V are told apart by their role in the attention pattern (left / right operand of the score MatMul,
// right operand of the context MatMul), never by name. Anything that does not fit raises UNSUPPORTED with the
// node and op, so fusion never writes a silently wrong model.
import { OtfuseError } from '../errors';
import type { OnnxModel, NodeProto } from '../onnx/model';
import { GraphIndex, SHAPE_OPS, numel } from './ir';

export interface LinearRef {
  /** The MatMul/Gemm node. */
  node: string;
  weight: string;
  bias?: string;
  /** True when the weight is stored [out, in] (Gemm transB=1, PyTorch layout); false for [in, out]. */
  outIn: boolean;
  inDim: number;
  outDim: number;
  /** Output tensor after the bias (the pre-activation values of this layer's neurons). */
  out: string;
  /**
   * A packed parameter (fused QKV, nn.MultiheadAttention's in_proj): this layer's output neurons are elements
   * [offset, offset + size) of the stored weight's OUTPUT axis (rows when outIn, columns otherwise) and of the
   * bias; `weight`/`bias` name the whole packed initializer, inDim/outDim describe the sliced layer (outDim === size).
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

export interface HeadRef {
  finalNorm?: NormRef;
  tokenSelect: string;
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
}

const ELEMENTWISE_ACT = new Set(['Div', 'Mul', 'Add', 'Sub', 'Erf', 'Tanh', 'Pow', 'Sigmoid', 'Relu', 'Gelu', 'FastGelu', 'Sqrt', 'Neg', 'Softplus', 'Identity', 'Cast', 'Exp', 'HardSigmoid', 'Dropout']);
const SCORE_OPS = new Set(['Div', 'Mul', 'Add', 'Sub', 'Softmax', 'Where', 'Cast', 'Identity', 'Dropout']);

export function analyzeModel(model: OnnxModel): ModelPlan {
  const g = new GraphIndex(model);
  const placed = new Set<string>();
  const embedding = matchEmbedding(g, placed);
  const blocks: BlockRef[] = [];
  let stream = embedding.out;
  for (;;) {
    const block = matchBlock(g, stream, blocks.length, placed);
    if (!block) break;
    blocks.push(block);
    stream = block.output;
  }
  if (blocks.length === 0) {
    const next = g.dataConsumers(stream)[0];
    throw new OtfuseError('BAD_MODEL', `not a transformer: no attention block follows the embedding (next op: ${next ? `${next.opType} '${next.name}'` : 'none'})`, { file: g.file, node: next?.name ?? undefined });
  }
  const head = matchHead(g, stream, placed);
  const a0 = blocks[0].attn;
  const hidden = blocks[0].attn.o.outDim;
  for (const b of blocks) {
    if (b.attn.heads !== a0.heads) throw g.unsupported(g.producer.get(b.attn.q.out), `block ${b.index} has ${b.attn.heads} heads, block 0 has ${a0.heads}`);
    if (b.attn.o.outDim !== hidden || b.fc2.outDim !== hidden) throw g.unsupported(g.producer.get(b.fc2.out), `block ${b.index} changes the hidden width`);
  }
  checkAllPlaced(g, placed);
  return {
    file: g.file, hidden, layers: blocks.length, heads: a0.heads, headDim: a0.headDim, mlp: blocks[0].fc1.outDim,
    tokens: embedding.tokens, embedding, blocks, head, placed,
  };
}

/** Every non-scalar float initializer must have a role; one without would be silently left unfused. */
function checkAllPlaced(g: GraphIndex, placed: Set<string>): void {
  for (const t of g.model.graph.initializer ?? []) {
    const name = t.name ?? '';
    if (placed.has(name)) continue;
    const dt = t.dataType ?? 0;
    const isFloat = dt === 1 || dt === 10 || dt === 11 || dt === 16;
    if (!isFloat) continue;
    const dims = (t.dims ?? []).map(Number);
    if (numel(dims) <= 1) continue;
    const user = g.consumers.get(name)?.[0];
    throw g.unsupported(user, `parameter '${name}' [${dims}] is not part of any aligned layer`);
  }
}

// ---------- embedding ----------

/** Which graph input an index tensor comes from (through Cast/Identity/Reshape), or 'position'. */
function indexSource(g: GraphIndex, t: string): string {
  let cur = t;
  for (let guard = 0; guard < 6; guard++) {
    if (g.inputs.includes(cur)) return cur;
    const p = g.producer.get(cur);
    if (!p || !['Cast', 'Identity', 'Reshape', 'Unsqueeze', 'Squeeze'].includes(p.opType ?? '')) return 'position';
    cur = p.input![0];
  }
  return 'position';
}

function matchTokenEmbedding(g: GraphIndex, first: NodeProto, placed: Set<string>): TokenEmbedding {
  const tables: TableRef[] = [];
  const addTable = (n: NodeProto) => {
    const name = g.paramName(n.input![0])!;
    if ((g.attrInt(n, 'axis') ?? 0) !== 0) throw g.unsupported(n, 'embedding lookups must Gather rows (axis 0)');
    const dims = g.paramDims(name);
    if (dims.length !== 2) throw g.unsupported(n, `embedding table '${name}' is not 2-D`);
    tables.push({ name, dims, node: n.name ?? '', by: indexSource(g, n.input![1]) });
    placed.add(name);
  };
  addTable(first);
  let t = first.output![0];
  for (let guard = 0; guard < 8; guard++) {
    const cons = g.dataConsumers(t);
    if (cons.length !== 1 || cons[0].opType !== 'Add') break;
    const add = cons[0];
    const other = add.input![0] === t ? add.input![1] : add.input![0];
    const p = g.producer.get(other);
    if (p?.opType === 'Gather' && g.paramName(p.input![0])) addTable(p);
    else {
      const direct = g.paramName(other);
      if (!direct) throw g.unsupported(add, 'the embedding sum adds something that is not an embedding lookup');
      // A learned additive table without Gather (absolute positions added whole).
      tables.push({ name: direct, dims: g.paramDims(direct), node: add.name ?? '', by: 'position' });
      placed.add(direct);
    }
    t = add.output![0];
  }
  const hidden = tables[0].dims[1];
  for (const tb of tables) {
    if (tb.dims[tb.dims.length - 1] !== hidden) throw g.unsupported(undefined, `embedding table '${tb.name}' [${tb.dims}] does not end in the hidden width ${hidden}`);
  }
  const byKeys = tables.map((x) => x.by);
  if (new Set(byKeys).size !== byKeys.length) throw g.unsupported(undefined, `two embedding tables are indexed the same way (${byKeys.join(', ')})`);
  const ln = matchNorm(g, t, placed);
  const pos = tables.find((x) => x.by === 'position');
  return { kind: 'tokens', tables, sum: t, ln, out: ln ? ln.out : t, tokens: pos ? pos.dims[pos.dims.length - 2] : undefined };
}

function matchEmbedding(g: GraphIndex, placed: Set<string>): EmbeddingRef {
  const floatInputs = g.inputs;
  if (floatInputs.length === 0) throw new OtfuseError('BAD_MODEL', 'the graph has no inputs', { file: g.file });
  const input = floatInputs[0];
  const first = g.dataConsumers(input);
  const conv = first.find((n) => n.opType === 'Conv');
  if (!conv) {
    const n = first[0];
    const lookup = g.inputs.map((i) => g.dataConsumers(i).find((c) => c.opType === 'Gather' && c.input![1] === i && g.paramName(c.input![0]))).find(Boolean);
    if (lookup) return matchTokenEmbedding(g, lookup, placed);
    throw new OtfuseError('BAD_MODEL', `not a transformer: the input '${input}' feeds ${n ? `${n.opType} '${n.name}'` : 'nothing'}, not a patch-embedding Conv or token-embedding Gather`, { file: g.file, node: n?.name ?? undefined });
  }
  const weight = g.paramName(conv.input![1]);
  if (!weight) throw g.unsupported(conv, 'patch-embedding weight is not an initializer');
  const wd = g.paramDims(weight);
  const kernel = g.attrInts(conv, 'kernel_shape') ?? wd.slice(2);
  const strides = g.attrInts(conv, 'strides') ?? kernel.map(() => 1);
  const pads = g.attrInts(conv, 'pads') ?? [];
  const group = g.attrInt(conv, 'group') ?? 1;
  if (wd.length !== 4 || strides.some((s, i) => s !== kernel[i]) || pads.some((p) => p !== 0) || group !== 1) {
    throw g.unsupported(conv, `patch embedding must be a Conv with stride = kernel, no padding, one group (kernel [${kernel}], strides [${strides}])`);
  }
  const bias = conv.input![2] ? g.paramName(conv.input![2]) : undefined;
  placed.add(weight);
  if (bias) placed.add(bias);
  const channels = wd[0];
  const inShape = (g.model.graph.input ?? []).find((i) => i.name === input)?.type?.tensorType?.shape?.dim ?? [];
  const spatial = inShape.slice(2).map((d) => Number(d.dimValue ?? 0));
  const grid = spatial.length === 2 && spatial.every((s) => s > 0) ? spatial.map((s, i) => Math.floor(s / kernel[i])) : [];
  const patch: PatchEmbeddingRef = { node: conv.name ?? '', weight, bias, out: conv.output![0], channels, kernel: wd.slice(1), grid };

  // Follow the patch tokens through flatten/transpose to the CLS Concat and the position Add.
  let t = followShapes(g, conv.output![0]);
  let cls: PatchEmbedding['cls'];
  let pos: PatchEmbedding['pos'];
  for (let guard = 0; guard < 4; guard++) {
    const cons = g.dataConsumers(t);
    if (cons.length !== 1) break;
    const n = cons[0];
    if (n.opType === 'Concat' && !cls) {
      const others = (n.input ?? []).filter((i) => i !== t);
      const p = others.length === 1 ? paramThroughBroadcast(g, others[0]) : undefined;
      if (!p) throw g.unsupported(n, 'Concat on the token axis must join the patch tokens with one learned (CLS) token');
      cls = { name: p, dims: g.paramDims(p) };
      placed.add(p);
      t = n.output![0];
      continue;
    }
    if (n.opType === 'Add' && !pos) {
      const other = n.input![0] === t ? n.input![1] : n.input![0];
      const p = g.paramName(other);
      if (!p) break;
      const dims = g.paramDims(p);
      if (dims[dims.length - 1] !== channels) throw g.unsupported(n, `position embedding [${dims}] does not end in the hidden width ${channels}`);
      pos = { name: p, dims, node: n.name ?? '' };
      placed.add(p);
      t = n.output![0];
      continue;
    }
    break;
  }
  const tokens = pos ? pos.dims[pos.dims.length - 2] : grid.length ? numel(grid) + (cls ? 1 : 0) : undefined;
  return { kind: 'patch', patch, cls, pos, out: t, tokens };
}

/** A learned tensor broadcast to the batch (Expand/Tile), as exporters write the CLS token. */
function paramThroughBroadcast(g: GraphIndex, tensor: string): string | undefined {
  let t = tensor;
  for (let guard = 0; guard < 4; guard++) {
    const p = g.paramName(t);
    if (p) return p;
    const n = g.producer.get(t);
    if (!n || !['Expand', 'Tile', 'Identity', 'Cast', 'Reshape', 'Unsqueeze'].includes(n.opType ?? '')) return undefined;
    t = n.input![0];
  }
  return undefined;
}

/** Follows a tensor through pure data-movement ops while it has a single consumer. */
function followShapes(g: GraphIndex, tensor: string): string {
  let t = tensor;
  for (let guard = 0; guard < 8; guard++) {
    const cons = g.dataConsumers(t);
    if (cons.length !== 1 || !SHAPE_OPS.has(cons[0].opType ?? '')) return t;
    t = cons[0].output![0];
  }
  return t;
}

// ---------- linear layers and norms ----------

/** MatMul(x, W) [+ Add(b)] or Gemm(x, W, b) consuming `x`. */
function matchLinearAt(g: GraphIndex, n: NodeProto, x: string, placed?: Set<string>): LinearRef | undefined {
  if (n.opType === 'MatMul' && n.input![0] === x) {
    let weight = g.paramName(n.input![1]);
    let outIn = false;
    if (!weight) {
      // Exports without constant folding keep nn.Linear's weight [out, in] behind a Transpose node.
      const t = g.producer.get(n.input![1]);
      const perm = t?.opType === 'Transpose' ? g.attrInts(t, 'perm') : undefined;
      const inner = t?.opType === 'Transpose' ? g.paramName(t.input![0]) : undefined;
      if (!inner || (perm && perm.join() !== '1,0')) return undefined;
      weight = inner;
      outIn = true;
    }
    const stored = g.paramDims(weight);
    if (stored.length !== 2) return undefined;
    const d = outIn ? [stored[1], stored[0]] : stored; // [in, out]
    let out = n.output![0];
    let bias: string | undefined;
    const next = g.dataConsumers(out);
    if (next.length === 1 && next[0].opType === 'Add') {
      const other = next[0].input![0] === out ? next[0].input![1] : next[0].input![0];
      const b = g.paramName(other);
      if (b && numel(g.paramDims(b)) === d[1]) { bias = b; out = next[0].output![0]; }
    }
    placed?.add(weight);
    if (bias) placed?.add(bias);
    return { node: n.name ?? '', weight, bias, outIn, inDim: d[0], outDim: d[1], out };
  }
  if (n.opType === 'Gemm' && n.input![0] === x) {
    const weight = g.paramName(n.input![1]);
    if (!weight) return undefined;
    if ((g.attrInt(n, 'transA') ?? 0) !== 0) throw g.unsupported(n, 'Gemm with transA=1');
    const alpha = g.attrFloat(n, 'alpha');
    const beta = g.attrFloat(n, 'beta');
    if ((alpha !== undefined && alpha !== 1) || (beta !== undefined && beta !== 1 && n.input![2])) throw g.unsupported(n, 'Gemm with alpha/beta other than 1');
    const d = g.paramDims(weight);
    const outIn = (g.attrInt(n, 'transB') ?? 0) === 1;
    const bias = n.input![2] ? g.paramName(n.input![2]) : undefined;
    placed?.add(weight);
    if (bias) placed?.add(bias);
    return { node: n.name ?? '', weight, bias, outIn, inDim: outIn ? d[1] : d[0], outDim: outIn ? d[0] : d[1], out: n.output![0] };
  }
  return undefined;
}

function linearsOf(g: GraphIndex, x: string, placed?: Set<string>): LinearRef[] {
  const out: LinearRef[] = [];
  for (const n of g.dataConsumers(x)) {
    const l = matchLinearAt(g, n, x, placed);
    if (l) out.push(l);
  }
  return out;
}

/** LayerNormalization op, or the decomposed ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add form. */
function matchNorm(g: GraphIndex, x: string, placed?: Set<string>): NormRef | undefined {
  const cons = g.dataConsumers(x);
  const ln = cons.find((n) => n.opType === 'LayerNormalization' || n.opType === 'SimplifiedLayerNormalization');
  if (ln) {
    const axis = g.attrInt(ln, 'axis') ?? -1;
    if (axis !== -1) throw g.unsupported(ln, `LayerNormalization over axis ${axis} (only the last axis can carry a map)`);
    const scale = ln.input![1] ? g.paramName(ln.input![1]) : undefined;
    const bias = ln.input![2] ? g.paramName(ln.input![2]) : undefined;
    if (scale) placed?.add(scale);
    if (bias) placed?.add(bias);
    return { node: ln.name ?? '', form: 'LayerNormalization', scale, bias, out: ln.output![0] };
  }
  const mean = cons.find((n) => n.opType === 'ReduceMean');
  const sub = cons.find((n) => n.opType === 'Sub' && n.input![0] === x && mean && n.input![1] === mean.output![0]);
  if (!mean || !sub) return undefined;
  const d = sub.output![0];
  const div = g.dataConsumers(d).find((n) => n.opType === 'Div' && n.input![0] === d);
  if (!div) throw g.unsupported(sub, 'decomposed LayerNorm without the Div by the standard deviation');
  let out = div.output![0];
  let scale: string | undefined;
  let bias: string | undefined;
  const mul = g.dataConsumers(out).find((n) => n.opType === 'Mul');
  if (mul) {
    const other = mul.input![0] === out ? mul.input![1] : mul.input![0];
    scale = g.paramName(other);
    if (scale) out = mul.output![0];
  }
  const add = g.dataConsumers(out).find((n) => n.opType === 'Add');
  if (add && scale) {
    const other = add.input![0] === out ? add.input![1] : add.input![0];
    const b = g.paramName(other);
    if (b && numel(g.paramDims(b)) === numel(g.paramDims(scale))) { bias = b; out = add.output![0]; }
  }
  if (scale) placed?.add(scale);
  if (bias) placed?.add(bias);
  return { node: mean.name ?? '', form: 'decomposed', scale, bias, out };
}

// ---------- blocks ----------

function matchBlock(g: GraphIndex, x: string, index: number, placed: Set<string>): BlockRef | undefined {
  // Pre-LN: x → LN → {Q,K,V}; post-LN: x → {Q,K,V} directly.
  const preNorm = matchNorm(g, x);
  let attnIn: string;
  let norm: 'pre' | 'post';
  if (preNorm && linearsOf(g, preNorm.out).length >= 3) { attnIn = preNorm.out; norm = 'pre'; }
  else if (linearsOf(g, x).length >= 3) { attnIn = x; norm = 'post'; }
  else {
    const lins = preNorm ? linearsOf(g, preNorm.out) : linearsOf(g, x);
    if (lins.length === 1 && index >= 0) {
      // One projection whose output is later split three ways would be a fused QKV: say so, not "head".
      const n = g.producer.get(lins[0].out);
      const splits = g.dataConsumers(lins[0].out).some((c) => c.opType === 'Split' || c.opType === 'Slice');
      if (splits) throw g.unsupported(n, 'fused QKV projections (one MatMul split into Q, K, V) are not supported');
    }
    return undefined;
  }
  const scratch = new Set<string>();
  const lins = linearsOf(g, attnIn, scratch);
  const attn = matchAttention(g, lins, index);
  for (const p of scratch) placed.add(p);
  // W_O
  const ctx = followShapes(g, g.producer.get(attnOut(g, attn.contextNode))!.output![0]);
  const oCands = linearsOf(g, ctx, placed);
  if (oCands.length !== 1) throw g.unsupported(firstConsumer(g, ctx), 'expected the attention output projection (MatMul/Gemm) after merging the heads');
  const o = oCands[0];
  attn.o = o;
  if (o.inDim !== attn.v.outDim) throw g.unsupported(g.producer.get(o.out), `output projection takes ${o.inDim} inputs but V has ${attn.v.outDim} outputs`);
  // Residual Add after attention.
  const add1 = residualAdd(g, o.out, x);
  let ln1: NormRef | undefined = norm === 'pre' ? preNorm : undefined;
  if (preNorm && norm === 'pre') { if (preNorm.scale) placed.add(preNorm.scale); if (preNorm.bias) placed.add(preNorm.bias); }
  let stream = add1.output![0];
  let ln2: NormRef | undefined;
  let mlpIn: string;
  if (norm === 'post') {
    ln1 = matchNorm(g, stream, placed);
    if (!ln1) throw g.unsupported(firstConsumer(g, stream), 'post-LN block: expected a LayerNorm after the attention residual Add');
    stream = ln1.out;
    mlpIn = stream;
  } else {
    ln2 = matchNorm(g, stream, placed);
    if (!ln2) throw g.unsupported(firstConsumer(g, stream), 'pre-LN block: expected a LayerNorm before the MLP');
    mlpIn = ln2.out;
  }
  const fc1s = linearsOf(g, mlpIn, placed);
  if (fc1s.length !== 1) throw g.unsupported(firstConsumer(g, mlpIn), `expected one MLP input projection, found ${fc1s.length}`);
  const fc1 = fc1s[0];
  const { fc2, ops } = matchActivation(g, fc1, placed);
  const add2 = residualAdd(g, fc2.out, stream);
  let output = add2.output![0];
  if (norm === 'post') {
    ln2 = matchNorm(g, output, placed);
    if (!ln2) throw g.unsupported(firstConsumer(g, output), 'post-LN block: expected a LayerNorm after the MLP residual Add');
    output = ln2.out;
  }
  return {
    index, norm, input: x, ln1, attn, attnAdd: add1.output![0], attnAddNode: add1.name ?? '', ln2, fc1, activation: ops, fc2,
    mlpAdd: add2.output![0], mlpAddNode: add2.name ?? '', output,
  };
}

function firstConsumer(g: GraphIndex, t: string): NodeProto | undefined {
  return g.dataConsumers(t)[0] ?? g.producer.get(t);
}

function attnOut(g: GraphIndex, contextNode: string): string {
  const n = g.model.nodes.find((x) => x.name === contextNode)!;
  return n.output![0];
}

/** The Add that joins a branch output with the skip path `skip`. */
function residualAdd(g: GraphIndex, branch: string, skip: string): NodeProto {
  const b = followShapes(g, branch);
  const add = g.dataConsumers(b).find((n) => n.opType === 'Add' && (n.input ?? []).includes(skip));
  if (!add) {
    const next = g.dataConsumers(b)[0];
    throw g.unsupported(next ?? g.producer.get(b), 'expected a residual Add joining this branch with the block input');
  }
  return add;
}

/** Where a tensor ends up after data-movement ops: the consuming node and the input slot. */
function sinkOf(g: GraphIndex, tensor: string): { node: NodeProto; slot: number; via: NodeProto[] } | undefined {
  let t = tensor;
  const via: NodeProto[] = [];
  for (let guard = 0; guard < 8; guard++) {
    const cons = g.dataConsumers(t);
    if (cons.length !== 1) return undefined;
    const n = cons[0];
    if (SHAPE_OPS.has(n.opType ?? '')) { via.push(n); t = n.output![0]; continue; }
    return { node: n, slot: (n.input ?? []).indexOf(t), via };
  }
  return undefined;
}

function matchAttention(g: GraphIndex, lins: LinearRef[], blockIndex: number): AttentionRef {
  if (lins.length !== 3) throw g.unsupported(g.producer.get(lins[3]?.out ?? lins[0].out), `expected 3 projections (Q, K, V) from the normalised input, found ${lins.length}`);
  const sinks = lins.map((l) => ({ l, s: sinkOf(g, l.out) }));
  for (const { l, s } of sinks) {
    if (!s || s.node.opType !== 'MatMul') throw g.unsupported(s?.node ?? g.producer.get(l.out), `projection '${l.node}' does not feed an attention MatMul (after head split)`);
  }
  const byNode = new Map<string, { l: LinearRef; slot: number; via: NodeProto[] }[]>();
  for (const { l, s } of sinks) {
    const key = s!.node.name ?? '';
    byNode.set(key, [...(byNode.get(key) ?? []), { l, slot: s!.slot, via: s!.via }]);
  }
  let scores: NodeProto | undefined;
  let q: LinearRef | undefined, k: LinearRef | undefined, v: LinearRef | undefined;
  let qVia: NodeProto[] = [];
  let vVia: NodeProto[] = [];
  for (const [name, entries] of byNode) {
    const node = g.model.nodes.find((n) => n.name === name)!;
    if (entries.length === 2) {
      scores = node;
      q = entries.find((e) => e.slot === 0)?.l;
      k = entries.find((e) => e.slot === 1)?.l;
      qVia = entries.find((e) => e.slot === 0)?.via ?? [];
    } else if (entries.length === 1 && entries[0].slot === 1) {
      v = entries[0].l;
      vVia = entries[0].via;
    }
  }
  if (!scores || !q || !k || !v) throw g.unsupported(g.producer.get(lins[0].out), `block ${blockIndex}: cannot identify Q, K and V from the attention pattern (QKᵀ and ·V MatMuls)`);
  // The context MatMul: V's sink; its left operand must come from the scores through Softmax.
  const context = sinks.find((s) => s.l === v)!.s!.node;
  const ops = new Set<string>();
  let t = context.input![0];
  for (let guard = 0; guard < 12 && t !== scores.output![0]; guard++) {
    const p = g.producer.get(t);
    if (!p || !SCORE_OPS.has(p.opType ?? '')) throw g.unsupported(p ?? context, 'attention probabilities must come from the scores through scale/mask/Softmax only');
    ops.add(p.opType ?? '');
    // Follow the operand that comes from the scores (a mask may be added from another input).
    const ins = (p.input ?? []).filter((i) => i && !g.isConstant(i));
    t = ins.find((i) => isDownstreamOf(g, i, scores!.output![0])) ?? ins[0] ?? '';
  }
  if (t !== scores.output![0] || !ops.has('Softmax')) throw g.unsupported(context, 'no Softmax between QKᵀ and ·V');
  const heads = headsFrom(g, qVia, q.outDim);
  const vHeads = headsFrom(g, vVia, v.outDim);
  if (heads !== vHeads) throw g.unsupported(g.producer.get(v.out), `Q is split into ${heads} heads but V into ${vHeads}`);
  if (k.outDim !== q.outDim) throw g.unsupported(g.producer.get(k.out), `Q has ${q.outDim} outputs, K ${k.outDim}`);
  return {
    q, k, v, o: undefined as unknown as LinearRef, heads, headDim: q.outDim / heads, vHeadDim: v.outDim / heads,
    scoresNode: scores.name ?? '', contextNode: context.name ?? '',
  };
}

/** Head count from the Reshape that splits a projection: target [.., heads, headDim] (either may be -1). */
function headsFrom(g: GraphIndex, via: NodeProto[], width: number): number {
  const reshape = via.find((n) => n.opType === 'Reshape');
  if (!reshape) throw g.unsupported(via[0], 'no Reshape splitting the projection into heads');
  const shape = g.shapeVector(reshape.input![1]);
  if (!shape || shape.length !== 4) throw g.unsupported(reshape, 'cannot read the head-split shape (expected [batch, tokens, heads, headDim])');
  let [h, d] = [shape[2], shape[3]];
  if (h === -1 && d !== null && d > 0) h = width / d;
  if (d === -1 && h !== null && h > 0) d = width / h;
  if (h === null || d === null || h <= 0 || d <= 0 || h * d !== width) throw g.unsupported(reshape, `head split [${shape}] does not match width ${width}`);
  return h;
}

/** fc1 → elementwise activation (GELU in any form, ReLU, ...) → fc2. */
function matchActivation(g: GraphIndex, fc1: LinearRef, placed: Set<string>): { fc2: LinearRef; ops: string[] } {
  const seen = new Set<string>([fc1.out]);
  const queue = [fc1.out];
  const ops: string[] = [];
  let fc2: LinearRef | undefined;
  while (queue.length) {
    const t = queue.shift()!;
    for (const n of g.dataConsumers(t)) {
      const lin = matchLinearAt(g, n, t);
      if (lin) {
        if (fc2 && fc2.node !== lin.node) throw g.unsupported(n, 'the MLP activation feeds two projections');
        fc2 = lin;
        continue;
      }
      if (!ELEMENTWISE_ACT.has(n.opType ?? '')) throw g.unsupported(n, 'not an elementwise activation between the MLP projections');
      for (const i of n.input ?? []) {
        if (!i || seen.has(i)) continue;
        if (g.isConstant(i)) {
          const v = g.constValues(i);
          if (v && v.length > 1) throw g.unsupported(n, 'activation uses a per-neuron constant');
          continue;
        }
        const p = g.producer.get(i);
        // Inputs computed from fc1's output inside the activation are fine (e.g. x·Φ(x)); others are not.
        if (!p || !isDownstreamOf(g, i, fc1.out)) throw g.unsupported(n, 'activation mixes in a tensor from outside the MLP');
      }
      ops.push(n.opType ?? '');
      const o = n.output![0];
      if (!seen.has(o)) { seen.add(o); queue.push(o); }
    }
  }
  if (!fc2) throw g.unsupported(g.producer.get(fc1.out), 'MLP without an output projection');
  placed.add(fc2.weight);
  if (fc2.bias) placed.add(fc2.bias);
  return { fc2, ops };
}

function isDownstreamOf(g: GraphIndex, t: string, root: string, depth = 0): boolean {
  if (t === root) return true;
  if (depth > 10) return false;
  const p = g.producer.get(t);
  if (!p) return false;
  return (p.input ?? []).some((i) => i && isDownstreamOf(g, i, root, depth + 1));
}

// ---------- head ----------

function matchHead(g: GraphIndex, x: string, placed: Set<string>): HeadRef {
  let t = x;
  const finalNorm = matchNorm(g, t, placed);
  if (finalNorm) t = finalNorm.out;
  // Token selection: Gather(axis=1) / Slice on the token axis / mean over tokens, then shape ops.
  const cons = g.dataConsumers(t);
  if (cons.length !== 1) throw g.unsupported(cons[1] ?? g.producer.get(t), 'the encoder output has several consumers; expected one classifier path');
  const sel = cons[0];
  if (!['Gather', 'Slice', 'ReduceMean'].includes(sel.opType ?? '')) {
    throw g.unsupported(sel, 'expected token selection (Gather/Slice of the CLS token, or mean pooling) before the classifier');
  }
  if (sel.opType === 'Gather' && (g.attrInt(sel, 'axis') ?? 0) !== 1) throw g.unsupported(sel, 'Gather must select along the token axis (1)');
  t = followShapes(g, sel.output![0]);
  let lins = linearsOf(g, t);
  if (lins.length !== 1) throw g.unsupported(firstConsumer(g, t), 'expected a classifier (MatMul/Gemm) after the token selection');
  let pooler: LinearRef | undefined;
  let classifier = lins[0];
  const after = g.dataConsumers(classifier.out);
  if (after.length === 1 && after[0].opType === 'Tanh') {
    pooler = classifier;
    const t2 = followShapes(g, after[0].output![0]);
    lins = linearsOf(g, t2);
    if (lins.length !== 1) throw g.unsupported(after[0], 'expected a classifier after the pooler');
    classifier = lins[0];
  }
  for (const l of [pooler, classifier]) {
    if (!l) continue;
    placed.add(l.weight);
    if (l.bias) placed.add(l.bias);
  }
  return { finalNorm, tokenSelect: sel.name ?? '', pooler, classifier, classes: classifier.outDim };
}
