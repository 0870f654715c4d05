// Derives the alignment structure (the transport-map flow graph) of a transformer from its ONNX graph alone:
// no parameter names are read. The walk starts at the graph input and follows the residual stream:
//   embedding (patch Conv [+ CLS Concat] [+ position Add]) → blocks (LN → Q/K/V → QKᵀ → Softmax → ·V → O → Add,
//   LN → fc1 → activation → fc2 → Add) → [final LN] → token select → [pooler] → classifier.
// Q, K and V are told apart by their role in the attention pattern (left / right operand of the score MatMul,
// right operand of the context MatMul), never by name. Anything that does not fit raises UNSUPPORTED with the
// node and op, so fusion never writes a silently wrong model.
import { OtfuseError } from '../errors';
import type { OnnxModel } from '../onnx/model';
import { GraphIndex, numel } from './ir';
import type { BlockRef, LinearRef, ModelPlan, NormRef, TensorView } from './plan';
import { firstConsumer, followShapes, isDownstreamOf, linearsOf, matchLinearAt, matchNorm, residualAdd } from './patterns/common';
import { matchEmbedding } from './patterns/embedding';
import { matchAttention, projectionParts, type ProjPart } from './patterns/attention';
import { matchHead } from './patterns/head';
import { ELEMENTWISE_ACT } from './patterns/common';

export type * from './plan';

/** Bookkeeping while walking one model: placed parameters, sequence-first tensors, views. */
interface Walk {
  g: GraphIndex;
  placed: Set<string>;
  seqFirst: Set<string>;
  views: Record<string, TensorView>;
}

export function analyzeModel(model: OnnxModel): ModelPlan {
  const g = new GraphIndex(model);
  const w: Walk = { g, placed: new Set<string>(), seqFirst: new Set<string>(), views: {} };
  const embedding = matchEmbedding(g, w.placed);
  // nn.TransformerEncoder with batch_first=False: the stream turns sequence-first before the first block.
  let sf = false;
  const swapped = layoutSwap(g, embedding.out);
  if (swapped) {
    embedding.out = swapped;
    sf = true;
    w.seqFirst.add(swapped);
  }
  const blocks: BlockRef[] = [];
  let stream = embedding.out;
  for (;;) {
    const block = matchBlock(w, stream, blocks.length, sf);
    if (!block) break;
    blocks.push(block);
    stream = block.output;
  }
  if (blocks.length === 0) {
    const next = g.dataConsumers(stream)[0];
    throw new OtfuseError(
      'BAD_MODEL',
      `not a transformer: no attention block follows the embedding (next op: ${next ? `${next.opType} '${next.name}'` : 'none'}; expected Q/K/V projections — separate MatMul/Gemm, or one packed projection split by Slice/Split/Gather — directly or after a LayerNorm)`,
      { file: g.file, node: next?.name ?? undefined },
    );
  }
  const head = matchHead(g, stream, w.placed, sf, embedding);
  if (sf && head.finalNorm) w.seqFirst.add(head.finalNorm.out);
  const a0 = blocks[0].attn;
  const hidden = blocks[0].attn.o.outDim;
  for (const b of blocks) {
    if (b.attn.heads !== a0.heads) throw g.unsupported(g.producer.get(b.attn.q.out), `block ${b.index} has ${b.attn.heads} heads, block 0 has ${a0.heads}`);
    if (b.attn.o.outDim !== hidden || b.fc2.outDim !== hidden) throw g.unsupported(g.producer.get(b.fc2.out), `block ${b.index} changes the hidden width`);
  }
  checkShared(g, embedding, blocks, head);
  checkAllPlaced(g, w.placed);
  return {
    file: g.file,
    hidden,
    layers: blocks.length,
    heads: a0.heads,
    headDim: a0.headDim,
    mlp: blocks[0].fc1.outDim,
    tokens: embedding.tokens,
    embedding,
    blocks,
    head,
    placed: w.placed,
    seqFirst: [...w.seqFirst],
    views: w.views,
  };
}

/**
 * One initializer may serve only one layer (the parts of a packed projection are one layer's node): a weight
 * shared by two layers would be written twice with different maps.
 */
function checkShared(g: GraphIndex, embedding: ModelPlan['embedding'], blocks: BlockRef[], head: ModelPlan['head']): void {
  const owner = new Map<string, string>();
  const lins: LinearRef[] = [];
  for (const b of blocks) lins.push(b.attn.q, b.attn.k, b.attn.v, b.attn.o, b.fc1, b.fc2);
  if (head.pooler) lins.push(head.pooler);
  if (head.mlm) lins.push(head.mlm.transform);
  lins.push(head.classifier);
  const norms: (NormRef | undefined)[] = [embedding.kind === 'tokens' ? embedding.ln : undefined, head.finalNorm, head.mlm?.norm];
  for (const b of blocks) norms.push(b.ln1, b.ln2);
  const owners: { node: string; params: (string | undefined)[] }[] = [
    ...lins.map((l) => ({ node: l.node, params: [l.weight, l.bias] })),
    ...norms.filter((n): n is NormRef => !!n).map((n) => ({ node: n.node, params: [n.scale, n.bias] })),
  ];
  for (const o of owners) {
    for (const p of o.params) {
      if (!p) continue;
      const prev = owner.get(p);
      if (prev !== undefined && prev !== o.node)
        throw g.unsupported(
          g.model.nodes.find((n) => n.name === o.node),
          `parameter '${p}' is shared by layers '${prev}' and '${o.node}' (tied weights between layers cannot take two alignments; exporters also merge parameters that are merely equal, e.g. untrained LayerNorms)`,
        );
      owner.set(p, o.node);
    }
  }
}

/** The output of a Transpose [1, 0, 2] that is the tensor's only data consumer (batch ⇄ tokens), if any. */
function layoutSwap(g: GraphIndex, t: string): string | undefined {
  const cons = g.dataConsumers(t);
  if (cons.length !== 1 || cons[0].opType !== 'Transpose') return undefined;
  return (g.attrInts(cons[0], 'perm') ?? []).join() === '1,0,2' ? cons[0].output![0] : undefined;
}

/**
 * The attention projections reading `t`: linear layers consuming it directly, or after a Transpose [1, 0, 2]
 * (nn.MultiheadAttention with batch_first=True turns its input sequence-first before the projection).
 */
interface Projections {
  parts: ProjPart[];
  swap: boolean;
  views: Record<string, TensorView>;
}

function attentionProjections(w: Walk, t: string): Projections | undefined {
  const views: Record<string, TensorView> = {};
  const direct = linearsOf(w.g, t);
  if (direct.length) return { parts: projectionParts(w.g, direct, views), swap: false, views };
  const swapped = w.g.dataConsumers(t).find((n) => n.opType === 'Transpose' && (w.g.attrInts(n, 'perm') ?? []).join() === '1,0,2');
  if (!swapped) return undefined;
  const lins = linearsOf(w.g, swapped.output![0]);
  return lins.length ? { parts: projectionParts(w.g, lins, views), swap: true, views } : undefined;
}

/** A 2-D Gemm output (tokens flattened) reshaped back to 3-D: the 3-D tensor, which keeps the token axis. */
function tokenView(g: GraphIndex, l: LinearRef): LinearRef {
  const cons = g.dataConsumers(l.out);
  if (cons.length !== 1 || cons[0].opType !== 'Reshape') return l;
  const before = g.shapes.shape(l.out),
    after = g.shapes.shape(cons[0].output![0]);
  if (before?.length !== 2 || after?.length !== 3 || after[2] !== l.outDim) return l;
  return { ...l, out: cons[0].output![0] };
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

// ---------- blocks ----------

function matchBlock(w: Walk, x: string, index: number, sf: boolean): BlockRef | undefined {
  const { g, placed } = w;
  // Pre-LN: x → LN → {Q,K,V}; post-LN: x → {Q,K,V} directly (either possibly through a layout Transpose).
  const preNorm = matchNorm(g, x);
  const fromNorm = preNorm ? attentionProjections(w, preNorm.out) : undefined;
  const fromX = attentionProjections(w, x);
  let proj: Projections;
  let norm: 'pre' | 'post';
  if (fromNorm && fromNorm.parts.length >= 3) {
    proj = fromNorm;
    norm = 'pre';
  } else if (fromX && fromX.parts.length >= 3) {
    proj = fromX;
    norm = 'post';
  } else return undefined;
  const attn = matchAttention(g, proj.parts, index);
  for (const l of [attn.q, attn.k, attn.v]) {
    placed.add(l.weight);
    if (l.bias) placed.add(l.bias);
    if (proj.views[l.out]) w.views[l.out] = proj.views[l.out];
  }
  // Tensors inside the attention are sequence-first when the stream is, or when the projection swapped it.
  const attnSf = sf !== proj.swap;
  // W_O
  const ctx = followShapes(g, g.producer.get(attnOut(g, attn.contextNode))!.output![0]);
  const oCands = linearsOf(g, ctx, placed);
  if (oCands.length !== 1) throw g.unsupported(firstConsumer(g, ctx), 'expected the attention output projection (MatMul/Gemm) after merging the heads');
  const o = tokenView(g, oCands[0]);
  attn.o = o;
  if (o.inDim !== attn.v.outDim) throw g.unsupported(g.producer.get(o.out), `output projection takes ${o.inDim} inputs but V has ${attn.v.outDim} outputs`);
  if (attnSf) for (const l of [attn.q, attn.k, attn.v, o]) w.seqFirst.add(l.out);
  // Residual Add after attention.
  const add1 = residualAdd(g, o.out, x);
  let ln1: NormRef | undefined = norm === 'pre' ? preNorm : undefined;
  if (preNorm && norm === 'pre') {
    if (preNorm.scale) placed.add(preNorm.scale);
    if (preNorm.bias) placed.add(preNorm.bias);
  }
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
  if (sf) for (const t of [x, add1.output![0], fc1.out, fc2.out, add2.output![0], output]) w.seqFirst.add(t);
  return {
    index,
    norm,
    input: x,
    ln1,
    attn,
    attnAdd: add1.output![0],
    attnAddNode: add1.name ?? '',
    ln2,
    fc1,
    activation: ops,
    fc2,
    mlpAdd: add2.output![0],
    mlpAddNode: add2.name ?? '',
    output,
  };
}

function attnOut(g: GraphIndex, contextNode: string): string {
  const n = g.model.nodes.find((x) => x.name === contextNode)!;
  return n.output![0];
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
      if (!seen.has(o)) {
        seen.add(o);
        queue.push(o);
      }
    }
  }
  if (!fc2) throw g.unsupported(g.producer.get(fc1.out), 'MLP without an output projection');
  placed.add(fc2.weight);
  if (fc2.bias) placed.add(fc2.bias);
  return { fc2, ops };
}
