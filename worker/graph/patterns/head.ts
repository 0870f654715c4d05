// The classifier head after the last block: [final LayerNorm] → token selection → [pooler + Tanh] → classifier.
import { GraphIndex } from '../ir';
import type { EmbeddingRef, HeadRef, LinearRef, NormRef } from '../plan';
import { firstConsumer, followShapes, linearsOf, matchLinearAt, matchNorm, ELEMENTWISE_ACT } from './common';

/** `seqFirst`: the stream is [tokens, batch, hidden], so tokens are selected on axis 0. */
export function matchHead(g: GraphIndex, x: string, placed: Set<string>, seqFirst = false, embedding?: EmbeddingRef): HeadRef {
  const tokenAxis = seqFirst ? 0 : 1;
  let t = x;
  const finalNorm = matchNorm(g, t, placed);
  if (finalNorm) t = finalNorm.out;
  // Token selection: Gather / Slice on the token axis / mean over tokens, then shape ops.
  const cons = g.dataConsumers(t);
  if (cons.length !== 1) throw g.unsupported(cons[1] ?? g.producer.get(t), 'the encoder output has several consumers; expected one classifier path');
  const sel = cons[0];
  if (!['Gather', 'Slice', 'ReduceMean'].includes(sel.opType ?? '')) {
    const lin = matchLinearAt(g, sel, t);
    const mlm = lin ? matchMlmHead(g, lin, placed, embedding) : undefined;
    if (mlm) return { ...mlm, finalNorm };
    if (lin)
      throw g.unsupported(
        sel,
        `a per-token head follows the encoder (no CLS selection or pooling${tokenHeadNote(g, lin, embedding)}); only sequence-classification heads (CLS token or mean pooling → [pooler] → classifier) are supported so far`,
      );
    throw g.unsupported(sel, 'expected token selection (Gather/Slice of the CLS token, or mean pooling) before the classifier');
  }
  if (sel.opType === 'Gather' && (g.attrInt(sel, 'axis') ?? 0) !== tokenAxis)
    throw g.unsupported(sel, `Gather must select along the token axis (${tokenAxis} in this ${seqFirst ? 'sequence-first' : 'batch-first'} stream)`);
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
  return { finalNorm, tokenSelect: sel.name ?? '', tokenAxis, pooler, classifier, classes: classifier.outDim };
}

/**
 * A masked-LM head: transform dense (`first`) → elementwise activation → LayerNorm → decoder MatMul/Gemm whose
 * weight IS the word-embedding table (one initializer, also read by the embedding Gather) [+ vocabulary bias].
 * Undefined when the graph does not have that form (the caller then refuses with a note on what it found).
 */
function matchMlmHead(g: GraphIndex, first: LinearRef, placed: Set<string>, embedding?: EmbeddingRef): HeadRef | undefined {
  if (embedding?.kind !== 'tokens') return undefined;
  const ops: string[] = [];
  let norm: NormRef | undefined;
  const queue = [first.out];
  const seen = new Set(queue);
  for (let guard = 0; guard < 64 && queue.length && !norm; guard++) {
    const t = queue.shift()!;
    if (t !== first.out) norm = matchNorm(g, t);
    if (norm) break;
    for (const n of g.dataConsumers(t)) {
      if (!ELEMENTWISE_ACT.has(n.opType ?? '')) return undefined;
      ops.push(n.opType ?? '');
      for (const o of n.output ?? [])
        if (o && !seen.has(o)) {
          seen.add(o);
          queue.push(o);
        }
    }
  }
  if (!norm) return undefined;
  const decs = linearsOf(g, norm.out);
  if (decs.length !== 1) return undefined;
  const decoder = decs[0];
  const table = embedding.tables.find((x) => x.name === decoder.weight);
  if (!table || first.outDim !== first.inDim || decoder.inDim !== first.outDim || decoder.outDim !== table.dims[0]) return undefined;
  for (const p of [first.weight, first.bias, norm.scale, norm.bias, decoder.bias]) if (p) placed.add(p);
  return {
    kind: 'mlm',
    mlm: { transform: first, activation: ops, norm, decoder, table: table.name },
    tokenSelect: '',
    tokenAxis: 1,
    classifier: decoder,
    classes: decoder.outDim,
  };
}

/**
 * For a per-token head (a masked-LM decoder): whether its output projection uses a word-embedding table — the
 * same initializer (tied), or a transposed copy of it (PyTorch's constant folding unties MatMul(x, Wᵀ)).
 */
function tokenHeadNote(g: GraphIndex, first: LinearRef, embedding?: EmbeddingRef): string {
  if (embedding?.kind !== 'tokens') return '';
  // Breadth-first through the transform (activation, LayerNorm) to the next projection.
  const queue = [first.out];
  const seen = new Set(queue);
  for (let guard = 0; guard < 64 && queue.length; guard++) {
    const t = queue.shift()!;
    for (const n of g.dataConsumers(t)) {
      const lin = matchLinearAt(g, n, t);
      if (!lin) {
        for (const o of n.output ?? [])
          if (o && !seen.has(o)) {
            seen.add(o);
            queue.push(o);
          }
        continue;
      }
      for (const table of embedding.tables) {
        if (lin.weight === table.name) return `; its decoder '${lin.node}' is tied to the embedding table '${table.name}'`;
        const w = g.paramDims(lin.weight);
        if (!lin.outIn && w[0] === table.dims[1] && w[1] === table.dims[0]) {
          const a = g.model.getInitializer(lin.weight).data,
            b = g.model.getInitializer(table.name).data;
          const [rows, cols] = table.dims;
          let same = true;
          for (let r = 0; r < rows && same; r++)
            for (let c = 0; c < cols; c++)
              if (a[c * rows + r] !== b[r * cols + c]) {
                same = false;
                break;
              }
          if (same)
            return `; its decoder '${lin.node}' uses '${lin.weight}', a transposed copy of the embedding table '${table.name}' (a tie the exporter's constant folding undid)`;
        }
      }
      return `; its next projection is '${lin.node}'`;
    }
  }
  return '';
}
