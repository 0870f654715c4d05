// The embedding step: the map of the residual stream into block 0. One handler per embedding kind of the plan
// (EMBEDDING_KINDS): ViT patches (CLS token, positions, the patch convolution) and summed token lookups (BERT).
import { OtfuseError } from '../../errors';
import type { EmbeddingRef } from '../../graph/analyze';
import { TMap, alignOutput, alignVector, transpose, toF64 } from '../maps';
import type { EmbeddingStep } from '../schedule';
import type { Aligner, Side } from './aligner';
import { concatRows, type NeuronSource } from './features';
import { alignNorm } from './norm';

type PatchEmbedding = Extract<EmbeddingRef, { kind: 'patch' }>;
type TokenEmbedding = Extract<EmbeddingRef, { kind: 'tokens' }>;

/** How one kind of embedding is aligned; returns the stream map. */
export interface EmbeddingHandler<E extends EmbeddingRef> {
  align(al: Aligner, ea: E, eb: E): Promise<TMap>;
}

export const EMBEDDING_KINDS: { [K in EmbeddingRef['kind']]: EmbeddingHandler<Extract<EmbeddingRef, { kind: K }>> } = {
  patch: { align: alignPatchEmbedding },
  tokens: { align: alignTokenEmbedding },
};

export async function embeddingStep(al: Aligner, step: EmbeddingStep): Promise<void> {
  const ea = step.ref(al.A.plan),
    eb = step.ref(al.B.plan);
  if (ea.kind !== eb.kind) throw al.mismatch(`${eb.kind} embedding vs the anchor's ${ea.kind} embedding`);
  const handler = EMBEDDING_KINDS[ea.kind] as EmbeddingHandler<EmbeddingRef> | undefined;
  if (!handler) throw new OtfuseError('INTERNAL', 'unknown embedding kind');
  al.setSlot(step.out, await handler.align(al, ea, eb));
}

/** CLS, positions and patches (ViT). */
async function alignPatchEmbedding(al: Aligner, ea: PatchEmbedding, eb: PatchEmbedding): Promise<TMap> {
  const { A, B, recipe } = al;
  if (!!ea.cls !== !!eb.cls || !!ea.pos !== !!eb.pos) throw al.mismatch('the models differ in CLS token / position embedding');
  if (ea.cls && eb.cls) {
    // CLS: one learned vector; its map comes from its own values (scalar per hidden neuron).
    const ca = A.params.get(ea.cls.name).data,
      cb = B.params.get(eb.cls.name).data;
    const map = await al.solve('embed.cls', 'cls-token', { X: cb, Y: ca, n: cb.length, m: ca.length, d: 1 });
    al.put(ea.cls.name, alignVector(toF64(cb), map, recipe.outNorm));
  }
  let posMap: TMap | undefined;
  if (ea.pos && eb.pos) {
    // Positions: each hidden neuron described by its values over the token positions.
    const T = ea.pos.dims[ea.pos.dims.length - 2];
    const Tb = eb.pos.dims[eb.pos.dims.length - 2];
    if (T !== Tb) throw al.mismatch(`position embeddings cover ${Tb} tokens, the anchor's ${T}`);
    const Da = A.plan.hidden,
      Db = B.plan.hidden;
    const Pa = transpose(A.params.get(ea.pos.name).data, T, Da); // channels × tokens
    const Pb = transpose(B.params.get(eb.pos.name).data, T, Db);
    posMap = await al.solve('embed.pos', 'position', { X: Pb, Y: Pa, n: Db, m: Da, d: T });
    const aligned = alignOutput(Pb, T, posMap, recipe.outNorm); // Da × T
    al.put(ea.pos.name, transpose(aligned, Da, T));
  }
  // Patch embedding: a Conv with stride = kernel is a linear layer on flattened patches.
  const pa = ea.patch,
    pb = eb.patch;
  if (pa.kernel.join() !== pb.kernel.join()) throw al.mismatch(`patch kernels differ ([${pb.kernel}] vs the anchor's [${pa.kernel}])`);
  const kin = pa.kernel.reduce((x, y) => x * y, 1);
  const Wpb = toF64(B.params.get(pb.weight).data);
  const Wpa = toF64(A.params.get(pa.weight).data);
  const source: NeuronSource = { acts: [[pb.out, pa.out]], weights: () => ({ B: Wpb, n: pb.channels, A: Wpa, m: pa.channels, d: kin }) };
  const patchMap = await al.solve('embed.patch', 'patch-conv', al.features(source));
  al.put(pa.weight, alignOutput(Wpb, kin, patchMap, recipe.outNorm));
  if (pa.bias) {
    if (!pb.bias) throw al.mismatch('patch embedding bias missing');
    al.put(pa.bias, alignVector(toF64(B.params.get(pb.bias).data), patchMap, recipe.outNorm));
  }
  if (!posMap) return patchMap;
  // The stream into block 0 = patch tokens + positions: combined like a residual (skip = positions).
  const posName = ea.pos!.name;
  const posAbs = () => {
    const P = A.params.get(posName).data,
      D = A.plan.hidden,
      v = new Float64Array(D);
    for (let k = 0; k < P.length; k++) v[k % D] += Math.abs(P[k]) / (P.length / D);
    return v;
  };
  return al.residual('embed.stream', posMap, patchMap, posAbs, al.absOf(pa.out));
}

/**
 * Summed lookups (BERT) feed one residual stream: one map for it, from the summed activations (acts) or from the
 * columns of the tables stacked (wts: each hidden neuron described by its values over every row).
 */
async function alignTokenEmbedding(al: Aligner, ea: TokenEmbedding, eb: TokenEmbedding): Promise<TMap> {
  const { A, B, recipe } = al;
  const pairs = ea.tables.map((ta) => {
    const tb = eb.tables.find((x) => x.by === ta.by);
    if (!tb) throw al.mismatch(`the anchor's embedding table '${ta.name}' (indexed by ${ta.by}) has no counterpart`);
    if (tb.dims[0] !== ta.dims[0]) throw al.mismatch(`embedding table '${tb.name}' has ${tb.dims[0]} rows, the anchor's '${ta.name}' ${ta.dims[0]}`);
    return { ta, tb };
  });
  if (eb.tables.length !== ea.tables.length) throw al.mismatch(`${eb.tables.length} embedding tables vs the anchor's ${ea.tables.length}`);
  const Da = A.plan.hidden,
    Db = B.plan.hidden;
  const colsOf = (side: Side, list: string[], D: number) => {
    const parts = list.map((n) => side.params.get(n).data);
    const rows = parts.reduce((s, p) => s + p.length / D, 0);
    return { T: transpose(concatRows(...parts), rows, D), rows }; // D × rows
  };
  const source: NeuronSource = {
    acts: [[eb.sum, ea.sum]],
    weights: () => {
      const cb = colsOf(
          B,
          pairs.map((p) => p.tb.name),
          Db,
        ),
        ca = colsOf(
          A,
          pairs.map((p) => p.ta.name),
          Da,
        );
      return { B: cb.T, n: Db, A: ca.T, m: Da, d: ca.rows };
    },
  };
  const stream = await al.solve('embed.tokens', 'embedding', al.features(source));
  for (const { ta, tb } of pairs) {
    const R = tb.dims[0];
    const aligned = alignOutput(transpose(B.params.get(tb.name).data, R, Db), R, stream, recipe.outNorm); // Da × R
    al.put(ta.name, transpose(aligned, Da, R));
  }
  alignNorm(al, eb.ln, ea.ln, stream);
  return stream;
}
