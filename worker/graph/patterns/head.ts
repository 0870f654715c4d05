// The classifier head after the last block: [final LayerNorm] → token selection → [pooler + Tanh] → classifier.
import { GraphIndex } from '../ir';
import type { HeadRef, LinearRef } from '../plan';
import { firstConsumer, followShapes, linearsOf, matchNorm } from './common';

/** `seqFirst`: the stream is [tokens, batch, hidden], so tokens are selected on axis 0. */
export function matchHead(g: GraphIndex, x: string, placed: Set<string>, seqFirst = false): HeadRef {
  const tokenAxis = seqFirst ? 0 : 1;
  let t = x;
  const finalNorm = matchNorm(g, t, placed);
  if (finalNorm) t = finalNorm.out;
  // Token selection: Gather / Slice on the token axis / mean over tokens, then shape ops.
  const cons = g.dataConsumers(t);
  if (cons.length !== 1) throw g.unsupported(cons[1] ?? g.producer.get(t), 'the encoder output has several consumers; expected one classifier path');
  const sel = cons[0];
  if (!['Gather', 'Slice', 'ReduceMean'].includes(sel.opType ?? '')) {
    throw g.unsupported(sel, 'expected token selection (Gather/Slice of the CLS token, or mean pooling) before the classifier');
  }
  if (sel.opType === 'Gather' && (g.attrInt(sel, 'axis') ?? 0) !== tokenAxis) throw g.unsupported(sel, `Gather must select along the token axis (${tokenAxis} in this ${seqFirst ? 'sequence-first' : 'batch-first'} stream)`);
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
