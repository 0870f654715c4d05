// Aligns one model onto the anchor along the plan derived from the graph (MISSION §2): for each layer the input
// side takes the incoming map, a cost between the layer's output neurons and the anchor's (activations or
// weights) gives an OT map, the output side is moved onto the anchor's neurons, and the map flows on —
// through LayerNorms unchanged, into residual Adds via the residual policy, from V into W_O's input side.
// Results are keyed by the anchor's parameter names, in the anchor's storage layout.
import { OtfuseError } from '../errors';
import { solveOTAsync, pickSolverParams, uniform, diagnose, type OrtProvider } from '../ot/index';
import { RESIDUAL_POLICIES } from './registry';
import type { CostEngine } from './cost';
import type { AttentionRef, ModelPlan, LinearRef, NormRef } from '../graph/analyze';
import { compileSchedule, type Slot } from './schedule';
import type { ActivationStore } from './activations';
import type { ResolvedRecipe } from './recipe';
import { ParamSink, biasRegion, readBias, readWeight, toStorage, weightRegion, type ParamValues, type Region } from './slices';
import { Spool } from '../onnx/spool';
import { TMap, alignInput, alignOutput, alignVector, transpose, toF64 } from './maps';

import type { Params } from '../onnx/params';
export type { Params };

export interface MapRecord {
  name: string;
  kind: string;
  map: TMap;
  diagnostics: Record<string, number>;
}

export interface AlignContext {
  anchor: { plan: ModelPlan; params: Params; acts?: ActivationStore };
  other: { plan: ModelPlan; params: Params; acts?: ActivationStore };
  recipe: ResolvedRecipe;
  costs: CostEngine;
  onMap?: (record: MapRecord) => void;
  /** Called before each stage reads activations (0 = embedding, 1…L = blocks, L+1 = head): staged capture. */
  prepare?: (stage: number) => Promise<void>;
  /** Run OT solvers that have an ONNX Runtime path there, on this provider (undefined: the JS solvers). */
  otProvider?: OrtProvider;
  /** Called for every anchor linear layer with the map its input side takes from this model (null: none). */
  onLinear?: (anchor: LinearRef, mapIn: TMap | null) => void;
  /** Replace a named map after solving (tests use it to break one axis on purpose). */
  tamper?: (name: string, map: TMap) => TMap;
}

/** Aligned values of the other model, keyed by anchor parameter name (anchor layout, float32), spooled to a temp
 * file: the caller releases them. */
export type Aligned = ParamValues;

interface Features {
  X: Float64Array | Float32Array;
  Y: Float64Array | Float32Array;
  n: number;
  m: number;
  d: number;
}

export async function alignModel(ctx: AlignContext): Promise<Aligned> {
  // Whole aligned initializers wait in a temp file (read back by the average and the refit), not in memory.
  const spool = new Spool('otfuse-aligned.spool');
  try {
    return await alignInto(ctx, spool);
  } catch (err) {
    spool.release();
    throw err;
  }
}

async function alignInto(ctx: AlignContext, spool: Spool): Promise<Aligned> {
  const { anchor: A, other: B, recipe } = ctx;
  const sink = new ParamSink((name) => A.params.get(name).data.length, A.plan.file, spool);
  const put = (name: string, v: Float64Array, region?: Region) => sink.put(name, v, region);

  const costOf = (f: Features) => ctx.costs.cost(f.X, f.Y, f.n, f.m, f.d, { metric: recipe.groundMetric, normalize: recipe.costNorm });
  const solverParams = pickSolverParams(recipe.solver, recipe as unknown as Record<string, unknown>);
  /** OT with uniform marginals on a cost matrix (plan with total mass 1). */
  const transport = async (M: Float64Array, n: number, m: number) => {
    const C = recipe.float32Cost ? Float32Array.from(M) : M;
    const res = await solveOTAsync(uniform(n), uniform(m), C, { solver: recipe.solver, ...solverParams }, ctx.otProvider);
    return { plan: res.plan, iterations: res.iterations, converged: res.converged, ort: 'backend' in res && res.backend === 'ort' };
  };
  const record = (name: string, kind: string, solved: TMap, M: Float64Array, t0: number, extra: Record<string, number>): TMap => {
    const map = ctx.tamper ? ctx.tamper(name, solved) : solved;
    const d = diagnose(map.plan, map.n, map.m, M, 1);
    const diagnostics: Record<string, number> = {
      cost: d.cost ?? NaN,
      entropy: d.entropy,
      meanBestMatch: d.meanBestMatch,
      hardness: d.hardness,
      ms: performance.now() - t0,
      ...extra,
    };
    if (Number.isFinite(d.frobeniusToPermutation)) diagnostics.frobeniusToPermutation = d.frobeniusToPermutation;
    ctx.onMap?.({ name, kind, map, diagnostics });
    return map;
  };
  const solve = async (name: string, kind: string, f: Features): Promise<TMap> => {
    const t0 = performance.now();
    const gm = await costOf(f);
    const res = await transport(gm.cost, f.n, f.m);
    return record(name, kind, { plan: res.plan, n: f.n, m: f.m }, gm.cost, t0, {
      iterations: res.iterations,
      converged: res.converged ? 1 : 0,
      costScale: gm.scale,
      ...(res.ort ? { onnxRuntime: 1 } : {}),
    });
  };

  /**
   * Head-aware maps: for every pair of heads an inner OT over their dimensions (Q|K features together, and V
   * features), the head pair's cost = the two inner transport costs; one OT over heads; the full maps are the
   * head plan times the inner plans, so each head's Q and K share one map and its V follows the same head.
   */
  const headMaps = async (p: string, heads: number, fqk: Features, fv: Features): Promise<{ qk: TMap; v: TMap }> => {
    const t0 = performance.now();
    const Cqk = (await costOf(fqk)).cost,
      Cv = (await costOf(fv)).cost;
    const inner = async (C: Float64Array, n: number, m: number, ho: number, ha: number) => {
      const dO = n / heads,
        dA = m / heads;
      const sub = new Float64Array(dO * dA);
      for (let i = 0; i < dO; i++) for (let j = 0; j < dA; j++) sub[i * dA + j] = C[(ho * dO + i) * m + ha * dA + j];
      const r = await transport(sub, dO, dA);
      let cost = 0;
      for (let k = 0; k < sub.length; k++) cost += r.plan[k] * sub[k];
      return { plan: r.plan, cost, dO, dA };
    };
    const innerQK: Awaited<ReturnType<typeof inner>>[] = [],
      innerV: Awaited<ReturnType<typeof inner>>[] = [];
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
    const hp = await transport(ChN, heads, heads);
    const headMap = record(`${p}.attn.heads`, 'attn-heads', { plan: hp.plan, n: heads, m: heads }, ChN, t0, { iterations: hp.iterations });
    const expand = (list: Awaited<ReturnType<typeof inner>>[], n: number, m: number): TMap => {
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
      qk: record(`${p}.attn.qk`, 'attn-qk-heads', expand(innerQK, fqk.n, fqk.m), Cqk, t0, {}),
      v: record(`${p}.attn.v`, 'attn-v-heads', expand(innerV, fv.n, fv.m), Cv, t0, {}),
    };
  };

  const residual = (name: string, skip: TMap, branch: TMap, skipAbs: () => Float64Array, branchAbs: () => Float64Array): TMap => {
    const map = RESIDUAL_POLICIES[recipe.residualPolicy].combine({ skip, branch, skipAbs, branchAbs });
    ctx.onMap?.({ name, kind: 'residual', map, diagnostics: {} });
    return map;
  };

  const actsOf = (side: typeof A, tensor: string) => {
    if (!side.acts) throw new OtfuseError('INTERNAL', 'activation-based alignment without activations');
    return side.acts.get(tensor);
  };
  const actFeatures = (tensorB: string, tensorA: string): Features => {
    const x = actsOf(B, tensorB),
      y = actsOf(A, tensorA);
    if (x.samples !== y.samples)
      throw new OtfuseError('MISMATCH', `activation sample counts differ (${x.samples} vs ${y.samples}): the models do not see the same tokens`, {
        file: B.plan.file,
      });
    return { X: x.X, Y: y.X, n: x.neurons, m: y.neurons, d: x.samples };
  };
  const absOf = (tensor: string) => () => {
    if (!A.acts) throw new OtfuseError('BAD_USAGE', `residual policy '${recipe.residualPolicy}' needs activations (give --data)`);
    return A.acts.absMean(tensor);
  };

  // ---- linear layers ----
  const weightOf = (side: typeof A, l: LinearRef): Float64Array => readWeight(side.params.get(l.weight), l); // canonical [out, in]
  const biasOf = (side: typeof A, l: LinearRef): Float64Array | undefined => (l.bias ? readBias(side.params.get(l.bias), l) : undefined);
  const putLinear = (la: LinearRef, W: Float64Array, b: Float64Array | undefined) => {
    put(la.weight, toStorage(W, la), weightRegion(la, A.params.get(la.weight).dims));
    if (la.bias) {
      if (!b) throw new OtfuseError('MISMATCH', `layer '${la.node}' has a bias in the anchor but not in ${B.plan.file}`, { file: B.plan.file });
      put(la.bias, b, biasRegion(la, A.params.get(la.bias).data.length));
    }
  };
  const inAligned = (lb: LinearRef, la: LinearRef, mapIn: TMap | null): Float64Array => {
    ctx.onLinear?.(la, mapIn);
    const W = weightOf(B, lb);
    const r = alignInput(W, lb.outDim, mapIn, lb.inDim);
    if (r.inDim !== la.inDim)
      throw new OtfuseError('MISMATCH', `layer '${lb.node}' takes ${r.inDim} inputs after alignment, the anchor's '${la.node}' takes ${la.inDim}`, {
        file: B.plan.file,
      });
    return r.W;
  };
  const wtsFeatures = (Wb: Float64Array, nb: number, Wa: Float64Array, na: number, d: number): Features => ({
    X: rowNormalized(Wb, nb, d),
    Y: rowNormalized(Wa, na, d),
    n: nb,
    m: na,
    d,
  });

  /** One aligned layer: input side, map, output side. Returns the layer's map. */
  const linear = async (name: string, kind: string, lb: LinearRef, la: LinearRef, mapIn: TMap | null): Promise<TMap> => {
    const W = inAligned(lb, la, mapIn);
    const f = recipe.alignBy === 'acts' ? actFeatures(lb.out, la.out) : wtsFeatures(W, lb.outDim, weightOf(A, la), la.outDim, la.inDim);
    const map = await solve(name, kind, f);
    putLinear(la, alignOutput(W, la.inDim, map, recipe.outNorm), mapBias(biasOf(B, lb), map));
    return map;
  };
  const mapBias = (b: Float64Array | undefined, map: TMap) => (b ? alignVector(b, map, recipe.outNorm) : undefined);

  const norm = (nb: NormRef | undefined, na: NormRef | undefined, map: TMap | null) => {
    if (!na) return;
    if (!nb) throw new OtfuseError('MISMATCH', `the anchor has a LayerNorm '${na.node}' that ${B.plan.file} lacks`, { file: B.plan.file });
    for (const key of ['scale', 'bias'] as const) {
      const pa = na[key],
        pb = nb[key];
      if (!pa) continue;
      if (!pb) throw new OtfuseError('MISMATCH', `LayerNorm '${nb.node}' has no ${key}`, { file: B.plan.file });
      put(pa, alignVector(toF64(B.params.get(pb).data), map, recipe.outNorm));
    }
  };

  // ---- step handlers (one per schedule step kind; schedule.ts) ----
  /** Embedding: CLS, positions and patches (ViT) or the summed lookup tables (BERT); returns the stream map. */
  const embedding = async (): Promise<TMap> => {
    const ea = A.plan.embedding,
      eb = B.plan.embedding;
    if (ea.kind !== eb.kind) throw new OtfuseError('MISMATCH', `${eb.kind} embedding vs the anchor's ${ea.kind} embedding`, { file: B.plan.file });
    let stream: TMap;
    if (ea.kind === 'patch' && eb.kind === 'patch') {
      if (!!ea.cls !== !!eb.cls || !!ea.pos !== !!eb.pos)
        throw new OtfuseError('MISMATCH', 'the models differ in CLS token / position embedding', { file: B.plan.file });
      if (ea.cls && eb.cls) {
        // CLS: one learned vector; its map comes from its own values (scalar per hidden neuron).
        const ca = A.params.get(ea.cls.name).data,
          cb = B.params.get(eb.cls.name).data;
        const map = await solve('embed.cls', 'cls-token', { X: cb, Y: ca, n: cb.length, m: ca.length, d: 1 });
        put(ea.cls.name, alignVector(toF64(cb), map, recipe.outNorm));
      }
      let posMap: TMap | undefined;
      if (ea.pos && eb.pos) {
        // Positions: each hidden neuron described by its values over the token positions.
        const T = ea.pos.dims[ea.pos.dims.length - 2];
        const Tb = eb.pos.dims[eb.pos.dims.length - 2];
        if (T !== Tb) throw new OtfuseError('MISMATCH', `position embeddings cover ${Tb} tokens, the anchor's ${T}`, { file: B.plan.file });
        const Da = A.plan.hidden,
          Db = B.plan.hidden;
        const Pa = transpose(A.params.get(ea.pos.name).data, T, Da); // channels × tokens
        const Pb = transpose(B.params.get(eb.pos.name).data, T, Db);
        posMap = await solve('embed.pos', 'position', { X: Pb, Y: Pa, n: Db, m: Da, d: T });
        const aligned = alignOutput(Pb, T, posMap, recipe.outNorm); // Da × T
        put(ea.pos.name, transpose(aligned, Da, T));
      }
      // Patch embedding: a Conv with stride = kernel is a linear layer on flattened patches.
      const pa = ea.patch,
        pb = eb.patch;
      if (pa.kernel.join() !== pb.kernel.join())
        throw new OtfuseError('MISMATCH', `patch kernels differ ([${pb.kernel}] vs the anchor's [${pa.kernel}])`, { file: B.plan.file });
      const kin = pa.kernel.reduce((x, y) => x * y, 1);
      const Wpb = toF64(B.params.get(pb.weight).data);
      const Wpa = toF64(A.params.get(pa.weight).data);
      const patchMap = await solve(
        'embed.patch',
        'patch-conv',
        recipe.alignBy === 'acts' ? actFeatures(pb.out, pa.out) : wtsFeatures(Wpb, pb.channels, Wpa, pa.channels, kin),
      );
      put(pa.weight, alignOutput(Wpb, kin, patchMap, recipe.outNorm));
      if (pa.bias) {
        if (!pb.bias) throw new OtfuseError('MISMATCH', 'patch embedding bias missing', { file: B.plan.file });
        put(pa.bias, alignVector(toF64(B.params.get(pb.bias).data), patchMap, recipe.outNorm));
      }
      stream = patchMap;
      if (posMap) {
        // The stream into block 0 = patch tokens + positions: combined like a residual (skip = positions).
        const posName = ea.pos!.name;
        const posAbs = () => {
          const P = A.params.get(posName).data,
            D = A.plan.hidden,
            v = new Float64Array(D);
          for (let k = 0; k < P.length; k++) v[k % D] += Math.abs(P[k]) / (P.length / D);
          return v;
        };
        stream = residual('embed.stream', posMap, patchMap, posAbs, absOf(pa.out));
      }
    } else if (ea.kind === 'tokens' && eb.kind === 'tokens') {
      // Summed lookups feed one residual stream: one map for it, from the summed activations (acts) or from the
      // columns of the tables stacked (wts: each hidden neuron described by its values over every row).
      const pairs = ea.tables.map((ta) => {
        const tb = eb.tables.find((x) => x.by === ta.by);
        if (!tb) throw new OtfuseError('MISMATCH', `the anchor's embedding table '${ta.name}' (indexed by ${ta.by}) has no counterpart`, { file: B.plan.file });
        if (tb.dims[0] !== ta.dims[0])
          throw new OtfuseError('MISMATCH', `embedding table '${tb.name}' has ${tb.dims[0]} rows, the anchor's '${ta.name}' ${ta.dims[0]}`, {
            file: B.plan.file,
          });
        return { ta, tb };
      });
      if (eb.tables.length !== ea.tables.length)
        throw new OtfuseError('MISMATCH', `${eb.tables.length} embedding tables vs the anchor's ${ea.tables.length}`, { file: B.plan.file });
      const Da = A.plan.hidden,
        Db = B.plan.hidden;
      const colsOf = (side: typeof A, list: string[], D: number) => {
        const parts = list.map((n) => side.params.get(n).data);
        const rows = parts.reduce((s, p) => s + p.length / D, 0);
        return { T: transpose(concatRows(...parts), rows, D), rows }; // D × rows
      };
      let f: Features;
      if (recipe.alignBy === 'acts') f = actFeatures(eb.sum, ea.sum);
      else {
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
        f = wtsFeatures(cb.T, Db, ca.T, Da, ca.rows);
      }
      stream = await solve('embed.tokens', 'embedding', f);
      for (const { ta, tb } of pairs) {
        const R = tb.dims[0];
        const aligned = alignOutput(transpose(B.params.get(tb.name).data, R, Db), R, stream, recipe.outNorm); // Da × R
        put(ta.name, transpose(aligned, Da, R));
      }
      norm(eb.ln, ea.ln, stream);
    } else {
      throw new OtfuseError('INTERNAL', 'unknown embedding kind');
    }
    return stream;
  };

  /** Q, K and V of one block by the Q/K mode (or head-aware); returns the V map (W_O's input side). */
  const attention = async (p: string, aa: AttentionRef, ab: AttentionRef, stream: TMap): Promise<TMap> => {
    const qa = aa.q,
      ka = aa.k,
      qb = ab.q,
      kb = ab.k;
    let vMap: TMap;
    if (recipe.headAware) {
      const Wq = inAligned(qb, qa, stream),
        Wk = inAligned(kb, ka, stream);
      const va = aa.v,
        vb = ab.v;
      const Wv = inAligned(vb, va, stream);
      const d = qa.inDim;
      let fqk: Features, fv: Features;
      if (recipe.alignBy === 'acts') {
        const fq = actFeatures(qb.out, qa.out),
          fk = actFeatures(kb.out, ka.out);
        fqk = {
          X: concatCols(fq.X, fk.X, qb.outDim, fq.d, fk.d),
          Y: concatCols(fq.Y, fk.Y, qa.outDim, fq.d, fk.d),
          n: qb.outDim,
          m: qa.outDim,
          d: fq.d + fk.d,
        };
        fv = actFeatures(vb.out, va.out);
      } else {
        fqk = wtsFeatures(concatCols(Wq, Wk, qb.outDim, d, d), qb.outDim, concatCols(weightOf(A, qa), weightOf(A, ka), qa.outDim, d, d), qa.outDim, 2 * d);
        fv = wtsFeatures(Wv, vb.outDim, weightOf(A, va), va.outDim, d);
      }
      const maps = await headMaps(p, aa.heads, fqk, fv);
      putLinear(qa, alignOutput(Wq, d, maps.qk, recipe.outNorm), mapBias(biasOf(B, qb), maps.qk));
      putLinear(ka, alignOutput(Wk, d, maps.qk, recipe.outNorm), mapBias(biasOf(B, kb), maps.qk));
      putLinear(va, alignOutput(Wv, d, maps.v, recipe.outNorm), mapBias(biasOf(B, vb), maps.v));
      vMap = maps.v;
    } else {
      if (recipe.qk === 'separate') {
        await linear(`${p}.attn.q`, 'attn-q', qb, qa, stream);
        await linear(`${p}.attn.k`, 'attn-k', kb, ka, stream);
      } else {
        const Wq = inAligned(qb, qa, stream),
          Wk = inAligned(kb, ka, stream);
        const nb = qb.outDim,
          na = qa.outDim,
          d = qa.inDim;
        if (recipe.qk === 'eq_t_map') {
          let f: Features;
          if (recipe.alignBy === 'acts') {
            const fq = actFeatures(qb.out, qa.out),
              fk = actFeatures(kb.out, ka.out);
            f = { X: concatCols(fq.X, fk.X, nb, fq.d, fk.d), Y: concatCols(fq.Y, fk.Y, na, fq.d, fk.d), n: nb, m: na, d: fq.d + fk.d };
          } else {
            f = wtsFeatures(concatCols(Wq, Wk, nb, d, d), nb, concatCols(weightOf(A, qa), weightOf(A, ka), na, d, d), na, 2 * d);
          }
          const map = await solve(`${p}.attn.qk`, 'attn-qk', f);
          putLinear(qa, alignOutput(Wq, d, map, recipe.outNorm), mapBias(biasOf(B, qb), map));
          putLinear(ka, alignOutput(Wk, d, map, recipe.outNorm), mapBias(biasOf(B, kb), map));
        } else {
          // joint: one OT over the Q|K neurons stacked (2n × 2m).
          let f: Features;
          if (recipe.alignBy === 'acts') {
            const fq = actFeatures(qb.out, qa.out),
              fk = actFeatures(kb.out, ka.out);
            f = { X: concatRows(fq.X, fk.X), Y: concatRows(fq.Y, fk.Y), n: 2 * nb, m: 2 * na, d: fq.d };
          } else {
            f = wtsFeatures(concatRows(Wq, Wk), 2 * nb, concatRows(weightOf(A, qa), weightOf(A, ka)), 2 * na, d);
          }
          const map = await solve(`${p}.attn.qk`, 'attn-qk-joint', f);
          const Wj = alignOutput(concatRows(Wq, Wk), d, map, recipe.outNorm);
          const bq = biasOf(B, qb),
            bk = biasOf(B, kb);
          const bj = bq && bk ? alignVector(concatRows(bq, bk), map, recipe.outNorm) : undefined;
          putLinear(qa, Wj.slice(0, na * d), bj?.slice(0, na));
          putLinear(ka, Wj.slice(na * d), bj?.slice(na));
        }
      }
      vMap = await linear(`${p}.attn.v`, 'attn-v', ab.v, aa.v, stream);
    }
    return vMap;
  };

  // ---- the schedule ----
  if (A.plan.blocks.length !== B.plan.blocks.length)
    throw new OtfuseError('MISMATCH', `${B.plan.blocks.length} blocks vs the anchor's ${A.plan.blocks.length}`, { file: B.plan.file });
  const slots = new Map<Slot, TMap | null>();
  const slot = (name: Slot): TMap | null => {
    const v = slots.get(name);
    if (v === undefined) throw new OtfuseError('INTERNAL', `alignment schedule: map slot '${name}' read before it is written`);
    return v;
  };
  const mapOf = (name: Slot): TMap => {
    const v = slot(name);
    if (!v) throw new OtfuseError('INTERNAL', `alignment schedule: map slot '${name}' holds no map`);
    return v;
  };
  for (const step of compileSchedule(A.plan)) {
    switch (step.kind) {
      case 'stage': {
        await ctx.prepare?.(step.stage);
        if (step.block === undefined) break;
        const i = step.block,
          ba = A.plan.blocks[i],
          bb = B.plan.blocks[i];
        if (ba.norm !== bb.norm) throw new OtfuseError('MISMATCH', `block ${i} is ${bb.norm}-LN, the anchor's is ${ba.norm}-LN`, { file: B.plan.file });
        if (ba.attn.heads !== bb.attn.heads)
          throw new OtfuseError('MISMATCH', `block ${i} has ${bb.attn.heads} heads, the anchor ${ba.attn.heads}`, { file: B.plan.file });
        break;
      }
      case 'embedding':
        slots.set(step.out, await embedding());
        break;
      case 'save':
        slots.set(step.to, slot(step.from));
        break;
      case 'norm':
        norm(step.ref(B.plan), step.ref(A.plan), slot(step.slot));
        break;
      case 'attention':
        slots.set(step.out, await attention(`blocks.${step.block}`, step.ref(A.plan), step.ref(B.plan), mapOf(step.in)));
        break;
      case 'linear': {
        const la = step.ref(A.plan),
          lb = step.ref(B.plan);
        if (!la) break;
        if (!lb)
          throw new OtfuseError('MISMATCH', `the anchor has a ${step.mapKind === 'pooler' ? 'pooler' : `layer '${step.name}'`}, the other model not`, {
            file: B.plan.file,
          });
        if (step.fixedOut) {
          // No OT: the outputs take a given map (the masked-LM transform takes the embedding map).
          const map = mapOf(step.fixedOut);
          putLinear(la, alignOutput(inAligned(lb, la, slot(step.in)), la.inDim, map, recipe.outNorm), mapBias(biasOf(B, lb), map));
          slots.set(step.out, map);
        } else slots.set(step.out, await linear(step.name, step.mapKind, lb, la, slot(step.in)));
        break;
      }
      case 'residual':
        slots.set(step.out, residual(step.name, mapOf(step.skip), mapOf(step.branch), absOf(step.skipTensor(A.plan)), absOf(step.branchTensor(A.plan))));
        break;
      case 'classifier': {
        const ha = A.plan.head,
          hb = B.plan.head;
        if (ha.classes !== hb.classes) throw new OtfuseError('MISMATCH', `${hb.classes} classes vs the anchor's ${ha.classes}`, { file: B.plan.file });
        // Input side only; its outputs are the classes and are never permuted.
        const la = step.ref(A.plan),
          lb = step.ref(B.plan);
        if (step.tied) {
          // The weight is the embedding table, aligned once by the embedding with this very map: write the bias only.
          if (la.weight !== A.plan.head.mlm?.table || lb.weight !== B.plan.head.mlm?.table)
            throw new OtfuseError('MISMATCH', `decoder '${lb.node}' is not tied to the word embedding in both models`, { file: B.plan.file, node: lb.node });
          ctx.onLinear?.(la, slot(step.in));
          const b = biasOf(B, lb);
          if (la.bias && b) put(la.bias, b, biasRegion(la, A.params.get(la.bias).data.length));
          else if (la.bias) throw new OtfuseError('MISMATCH', `layer '${la.node}' has a bias in the anchor but not in ${B.plan.file}`, { file: B.plan.file });
          break;
        }
        putLinear(la, inAligned(lb, la, slot(step.in)), biasOf(B, lb));
        break;
      }
    }
  }

  return sink.finish();
}

/** Rows scaled to unit L2 norm (the reference's weight-based cost), in float64. */
export function rowNormalized(W: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(W.length);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += W[r * cols + c] ** 2;
    const inv = 1 / (Math.sqrt(s) + 1e-9);
    for (let c = 0; c < cols; c++) out[r * cols + c] = W[r * cols + c] * inv;
  }
  return out;
}

function concatCols(A: ArrayLike<number>, B: ArrayLike<number>, rows: number, ca: number, cb: number): Float64Array {
  const out = new Float64Array(rows * (ca + cb));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < ca; c++) out[r * (ca + cb) + c] = A[r * ca + c];
    for (let c = 0; c < cb; c++) out[r * (ca + cb) + ca + c] = B[r * cb + c];
  }
  return out;
}

function concatRows(...parts: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
