// Head-aware attention alignment: for every pair of heads an inner OT over their dimensions (Q|K features
// together, and V features), the head pair's cost = the two inner transport costs; one OT over heads; the full
// maps are the head plan times the inner plans, so each head's Q and K share one map and its V follows the same
// head.
import type { AttentionRef } from '../../graph/analyze';
import { alignOutput, type TMap } from '../maps';
import type { Aligner } from './aligner';
import { concatCols, type Features } from './features';

interface InnerPlan {
  plan: Float64Array;
  cost: number;
  dO: number;
  dA: number;
}

export async function alignHeadAware(al: Aligner, p: string, aa: AttentionRef, ab: AttentionRef, stream: TMap): Promise<TMap> {
  const qa = aa.q,
    ka = aa.k,
    qb = ab.q,
    kb = ab.k,
    va = aa.v,
    vb = ab.v;
  const Wq = al.inAligned(qb, qa, stream),
    Wk = al.inAligned(kb, ka, stream);
  const Wv = al.inAligned(vb, va, stream);
  const d = qa.inDim;
  const fqk = al.features({
    acts: [
      [qb.out, qa.out],
      [kb.out, ka.out],
    ],
    stack: 'features',
    weights: () => ({
      B: concatCols(Wq, Wk, qb.outDim, d, d),
      n: qb.outDim,
      A: concatCols(al.weightOf(al.A, qa), al.weightOf(al.A, ka), qa.outDim, d, d),
      m: qa.outDim,
      d: 2 * d,
    }),
  });
  const fv = al.features({ acts: [[vb.out, va.out]], weights: () => ({ B: Wv, n: vb.outDim, A: al.weightOf(al.A, va), m: va.outDim, d }) });
  const maps = await headMaps(al, p, aa.heads, fqk, fv);
  const { outNorm } = al.recipe;
  al.putLinear(qa, alignOutput(Wq, d, maps.qk, outNorm), al.mapBias(al.biasOf(al.B, qb), maps.qk));
  al.putLinear(ka, alignOutput(Wk, d, maps.qk, outNorm), al.mapBias(al.biasOf(al.B, kb), maps.qk));
  al.putLinear(va, alignOutput(Wv, d, maps.v, outNorm), al.mapBias(al.biasOf(al.B, vb), maps.v));
  return maps.v;
}

async function headMaps(al: Aligner, p: string, heads: number, fqk: Features, fv: Features): Promise<{ qk: TMap; v: TMap }> {
  const t0 = performance.now();
  const Cqk = (await al.costOf(fqk)).cost,
    Cv = (await al.costOf(fv)).cost;
  const inner = async (C: Float64Array, n: number, m: number, ho: number, ha: number): Promise<InnerPlan> => {
    const dO = n / heads,
      dA = m / heads;
    const sub = new Float64Array(dO * dA);
    for (let i = 0; i < dO; i++) for (let j = 0; j < dA; j++) sub[i * dA + j] = C[(ho * dO + i) * m + ha * dA + j];
    const r = await al.transport(sub, dO, dA);
    let cost = 0;
    for (let k = 0; k < sub.length; k++) cost += r.plan[k] * sub[k];
    return { plan: r.plan, cost, dO, dA };
  };
  const innerQK: InnerPlan[] = [],
    innerV: InnerPlan[] = [];
  const Ch = new Float64Array(heads * heads);
  for (let ho = 0; ho < heads; ho++) {
    for (let ha = 0; ha < heads; ha++) {
      const a = await inner(Cqk, fqk.n, fqk.m, ho, ha),
        b = await inner(Cv, fv.n, fv.m, ho, ha);
      innerQK.push(a);
      innerV.push(b);
      Ch[ho * heads + ha] = a.cost + b.cost;
    }
  }
  let mx = 0;
  for (const c of Ch) mx = Math.max(mx, c);
  const ChN = Ch.map((c) => (mx > 0 ? c / mx : c));
  const hp = await al.transport(ChN, heads, heads);
  const headMap = al.record(`${p}.attn.heads`, 'attn-heads', { plan: hp.plan, n: heads, m: heads }, ChN, t0, { iterations: hp.iterations });
  const expand = (list: InnerPlan[], n: number, m: number): TMap => {
    const plan = new Float64Array(n * m);
    for (let ho = 0; ho < heads; ho++) {
      for (let ha = 0; ha < heads; ha++) {
        const w = headMap.plan[ho * heads + ha];
        if (w === 0) continue;
        const { plan: ip, dO, dA } = list[ho * heads + ha];
        for (let i = 0; i < dO; i++) for (let j = 0; j < dA; j++) plan[(ho * dO + i) * m + ha * dA + j] = w * ip[i * dA + j];
      }
    }
    return { plan, n, m };
  };
  return {
    qk: al.record(`${p}.attn.qk`, 'attn-qk-heads', expand(innerQK, fqk.n, fqk.m), Cqk, t0, {}),
    v: al.record(`${p}.attn.v`, 'attn-v-heads', expand(innerV, fv.n, fv.m), Cv, t0, {}),
  };
}
