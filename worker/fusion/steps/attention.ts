// The attention step: Q, K and V of one block. An attention pattern (ATTENTION_PATTERNS) recognises how the
// plan's block computes attention and aligns it; a Q/K strategy (QK_STRATEGIES, one per QK_MODES entry) decides
// how Q and K share maps (their maps must agree, as QKᵀ sums over the pairs); head-aware alignment (headaware.ts)
// matches whole heads first. The step leaves V's map for W_O's input side.
//
// Adding a pattern (grouped-query attention, rotary positions …) = one entry here: `matches` on the block's
// AttentionRef (the graph pattern in worker/graph/patterns/attention.ts fills it) and `align`.
import { OtfuseError } from '../../errors';
import type { AttentionRef, LinearRef } from '../../graph/analyze';
import { alignOutput, type TMap } from '../maps';
import type { QkMode } from '../registry';
import type { AttentionStep } from '../schedule';
import type { Aligner } from './aligner';
import { concatCols, concatRows } from './features';
import { alignHeadAware } from './headaware';

export interface AttentionPattern {
  description: string;
  /** Whether the block's attention, as analysed, is of this pattern. */
  matches(ref: AttentionRef): boolean;
  /** Aligns the other model's Q, K, V onto the anchor's given the stream map; returns V's map. */
  align(al: Aligner, p: string, aa: AttentionRef, ab: AttentionRef, stream: TMap): Promise<TMap>;
}

const isPacked = (ref: AttentionRef) => !!(ref.q.slice || ref.k.slice || ref.v.slice);

/** First matching entry wins. */
export const ATTENTION_PATTERNS: Record<string, AttentionPattern> = {
  mha: {
    description: 'multi-head self-attention with separate Q, K and V projections',
    matches: (ref) => !isPacked(ref),
    align: alignMultiHead,
  },
  'packed-qkv': {
    description: 'multi-head self-attention whose Q, K and V are ranges of one packed projection (read and written through slices)',
    matches: isPacked,
    align: alignMultiHead,
  },
};

export function attentionPattern(ref: AttentionRef): [string, AttentionPattern] | undefined {
  return Object.entries(ATTENTION_PATTERNS).find(([, pattern]) => pattern.matches(ref));
}

export async function attentionStep(al: Aligner, step: AttentionStep): Promise<void> {
  const aa = step.ref(al.A.plan),
    ab = step.ref(al.B.plan);
  const pa = attentionPattern(aa),
    pb = attentionPattern(ab);
  if (!pa || !pb) throw new OtfuseError('INTERNAL', `block ${step.block}: no attention pattern matches`);
  // Packed and separate projections align the same way (slices), so only the alignment has to agree.
  if (pa[1].align !== pb[1].align) throw al.mismatch(`block ${step.block}: ${pb[0]} attention vs the anchor's ${pa[0]}`);
  al.setSlot(step.out, await pa[1].align(al, `blocks.${step.block}`, aa, ab, al.mapOf(step.in)));
}

/** Multi-head attention: Q/K by the recipe's mode (or head-aware), V as a linear layer. */
async function alignMultiHead(al: Aligner, p: string, aa: AttentionRef, ab: AttentionRef, stream: TMap): Promise<TMap> {
  if (al.recipe.headAware) return alignHeadAware(al, p, aa, ab, stream);
  await QK_STRATEGIES[al.recipe.qk](al, p, { qa: aa.q, ka: aa.k, qb: ab.q, kb: ab.k }, stream);
  return al.linear(`${p}.attn.v`, 'attn-v', ab.v, aa.v, stream);
}

/** The Q and K projections of both models. */
export interface QkPair {
  qa: LinearRef;
  ka: LinearRef;
  qb: LinearRef;
  kb: LinearRef;
}

/** Aligns Q and K (input sides from the stream map, output sides by the mode's maps). */
export type QkStrategy = (al: Aligner, p: string, qk: QkPair, stream: TMap) => Promise<void>;

/** One strategy per QK_MODES entry (the compiler asks for a new entry's strategy here). */
export const QK_STRATEGIES: Record<QkMode, QkStrategy> = {
  /** One OT for Q and one for K. */
  separate: async (al, p, { qa, ka, qb, kb }, stream) => {
    await al.linear(`${p}.attn.q`, 'attn-q', qb, qa, stream);
    await al.linear(`${p}.attn.k`, 'attn-k', kb, ka, stream);
  },
  /** One map from Q and K features side by side, used for both. */
  eq_t_map: async (al, p, { qa, ka, qb, kb }, stream) => {
    const Wq = al.inAligned(qb, qa, stream),
      Wk = al.inAligned(kb, ka, stream);
    const nb = qb.outDim,
      na = qa.outDim,
      d = qa.inDim;
    const f = al.features({
      acts: [
        [qb.out, qa.out],
        [kb.out, ka.out],
      ],
      stack: 'features',
      weights: () => ({ B: concatCols(Wq, Wk, nb, d, d), n: nb, A: concatCols(al.weightOf(al.A, qa), al.weightOf(al.A, ka), na, d, d), m: na, d: 2 * d }),
    });
    const map = await al.solve(`${p}.attn.qk`, 'attn-qk', f);
    al.putLinear(qa, alignOutput(Wq, d, map, al.recipe.outNorm), al.mapBias(al.biasOf(al.B, qb), map));
    al.putLinear(ka, alignOutput(Wk, d, map, al.recipe.outNorm), al.mapBias(al.biasOf(al.B, kb), map));
  },
  /** One OT over the Q|K neurons stacked (2n × 2m). */
  joint: async (al, p, { qa, ka, qb, kb }, stream) => {
    const Wq = al.inAligned(qb, qa, stream),
      Wk = al.inAligned(kb, ka, stream);
    const nb = qb.outDim,
      na = qa.outDim,
      d = qa.inDim;
    const f = al.features({
      acts: [
        [qb.out, qa.out],
        [kb.out, ka.out],
      ],
      stack: 'neurons',
      weights: () => ({ B: concatRows(Wq, Wk), n: 2 * nb, A: concatRows(al.weightOf(al.A, qa), al.weightOf(al.A, ka)), m: 2 * na, d }),
    });
    const map = await al.solve(`${p}.attn.qk`, 'attn-qk-joint', f);
    const Wj = alignOutput(concatRows(Wq, Wk), d, map, al.recipe.outNorm);
    const bq = al.biasOf(al.B, qb),
      bk = al.biasOf(al.B, kb);
    const bj = bq && bk ? al.mapBias(concatRows(bq, bk), map) : undefined;
    al.putLinear(qa, Wj.slice(0, na * d), bj?.slice(0, na));
    al.putLinear(ka, Wj.slice(na * d), bj?.slice(na));
  },
};
