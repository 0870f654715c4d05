// A trunk fitted for partial fusion (issue 28): the layers that write into the trunk's residual stream — every
// shared block's attention output projection (O) and MLP output layer (fc2), in order — refit jointly with the
// branches' fitted unmerge maps, so that every parent's own upper blocks see the features they expect. Targets:
// each parent's own stream at the cut, through its fitted unmerge map (x̃_m = h·U_m + c_m).
//
// For a pre-norm block a writer adds ĝ·Ŵ to the stream (ĝ = [g, 1]: the layer's input with a ones column,
// Ŵ = [W; b]), and the stream at the cut is h = ρ + ĝ·Ŵ with ρ = h − ĝ·Ŵ_old (exact for the last writer, fc2 of
// block K − 1; for earlier writers a linearisation: the later layers see the change through their nonlinearities).
// Block-coordinate least squares on the calibration data, all parents' targets stacked:
//
//   1. U_m, c_m ← ridge LS from h to parent m's own stream x_m (unmerge.ts' fitLinear)
//   2. Ŵ ← argmin Σ_m ‖(ρ + ĝŴ)·U_m + c_m − x_m‖²  =  (ĝᵀĝ + λI)⁻¹ (R·S⁻¹ + λŴ_old),
//        R = Σ_m ĝᵀ(x_m − c_m − ρ·U_m)·U_mᵀ,  S = Σ_m U_m·U_mᵀ   (exact for λ → 0)
//
// `rounds` alternations per writer; then the trunk is run again (its own inputs, exact h) and the maps refit. A
// writer's new weights are kept only if that measured stacked residual at the cut goes down. Layers are visited in
// graph order (block 0's O first), each on the inputs the already-refit layers before it give. Post-norm blocks
// (LN after the residual) are not linear in Ŵ: only the maps. Writers whose solve would cost more than
// TRUNK_FIT_MAX_FLOPS (rows × (in + 1)², e.g. BERT-base's 3,072-wide fc2) are skipped and counted.
import { OtfuseError } from '../errors';
import type { OnnxModel } from '../onnx/model';
import type { ModelPlan } from '../graph/analyze';
import type { LinearRef } from '../graph/plan';
import { solveSpd } from './dense';
import { cutTensor } from './partial';
import { inputTensor } from './refitgrams';
import { captureTensors, fitLinear, priorOf, UNMERGE_RIDGE, type FittedUnmerge, type UnmergeFitInput } from './unmerge';

export interface TrunkFit {
  /** A copy of the starting trunk with its writers refit (the starting model itself when nothing was kept). */
  trunk: OnnxModel;
  fitted: FittedUnmerge[];
  /** Stacked relative residual Σ_m ‖x̃_m − x_m‖² / Σ_m ‖x_m − mean‖² after the maps alone, then after each kept writer. */
  residuals: number[];
  /** The writers whose refit was kept ("block 0 attn.o", "block 2 fc2"), and those skipped for their cost. */
  kept: string[];
  skipped: string[];
}

/** Ridge of a writer's solve, relative to the mean diagonal of ĝᵀĝ: small, towards the current weights. */
export const TRUNK_RIDGE = 1e-3;
/** A writer's solve is skipped above this many multiply-adds for its Gram (rows × (in + 1)²). */
export const TRUNK_FIT_MAX_FLOPS = 2e10;

export interface TrunkFitInput extends UnmergeFitInput {
  /** Shared blocks (0 < K < layers). `fused` is the starting trunk (the fused model, or the anchor itself). */
  k: number;
  /** The cut after block K + 1's attention (partial.ts cutTensor; 0 ≤ K < layers): its O is the last writer. */
  attention?: boolean;
  /** Solve ↔ maps alternations per writer (default 2; 0: the maps only). */
  rounds?: number;
  /** 'all' (default): every shared block's O and fc2, in order; 'last': fc2 of block K − 1 only. */
  layers?: 'all' | 'last';
  /** Parents' own streams at the cut (captured here when absent). */
  own?: Float32Array[];
  /** Passes over the writers (default 1). */
  passes?: number;
}

const gram = (A: Float64Array, rows: number, a: number): Float64Array => {
  const G = new Float64Array(a * a);
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < a; i++) {
      const v = A[r * a + i];
      if (v !== 0) for (let j = 0; j <= i; j++) G[i * a + j] += v * A[r * a + j];
    }
  for (let i = 0; i < a; i++) for (let j = 0; j < i; j++) G[j * a + i] = G[i * a + j];
  return G;
};

/** Aᵀ·B for A [rows, a], B [rows, c]. */
function tmul(A: ArrayLike<number>, B: ArrayLike<number>, rows: number, a: number, c: number): Float64Array {
  const C = new Float64Array(a * c);
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < a; i++) {
      const v = A[r * a + i];
      if (v !== 0) for (let j = 0; j < c; j++) C[i * c + j] += v * B[r * c + j];
    }
  return C;
}

/** base + sign · ĝ·Ŵ (float32, as the graph computes it). */
function addProduct(base: Float32Array, G: Float64Array, W: Float64Array, rows: number, a: number, d: number, sign: number): Float32Array {
  const h = Float32Array.from(base);
  for (let row = 0; row < rows; row++)
    for (let i = 0; i < a; i++) {
      const v = sign * G[row * a + i];
      if (v !== 0) for (let j = 0; j < d; j++) h[row * d + j] += v * W[i * d + j];
    }
  return h;
}

/** Fits every branch's map from h; returns the maps and the stacked relative residual. */
export function fitMaps(
  h: Float32Array,
  xs: Float32Array[],
  input: Pick<UnmergeFitInput, 'plans' | 'cutMaps' | 'ridge'>,
  k: number,
): { fitted: FittedUnmerge[]; residual: number } {
  const m = input.plans[0].hidden;
  let num = 0,
    den = 0;
  const fitted = xs.map((x, i) => {
    const n = input.plans[i].hidden;
    const rows = x.length / n;
    let tot = 0;
    for (let j = 0; j < n; j++) {
      let mean = 0;
      for (let r = 0; r < rows; r++) mean += x[r * n + j];
      mean /= rows;
      for (let r = 0; r < rows; r++) tot += (x[r * n + j] - mean) ** 2;
    }
    const { W, err0, err } = fitLinear(h, x, m, n, priorOf(i === 0 ? null : input.cutMaps[i]?.[k], m, n), input.ridge ?? UNMERGE_RIDGE);
    num += err * tot;
    den += tot;
    return { weight: Float32Array.from(W.subarray(0, m * n)), bias: Float32Array.from(W.subarray(m * n)), m, n, errorMap: err0, errorFit: err };
  });
  return { fitted, residual: num / (den || 1) };
}

/** A linear layer's [W; b] as [in + 1, out] float64. */
function readLinear(model: OnnxModel, l: LinearRef): Float64Array {
  const w = model.getInitializer(l.weight).data;
  const b = model.getInitializer(l.bias!).data;
  const p = l.inDim,
    d = l.outDim;
  const W = new Float64Array((p + 1) * d);
  for (let i = 0; i < p; i++) for (let j = 0; j < d; j++) W[i * d + j] = l.outIn ? w[j * p + i] : w[i * d + j];
  for (let j = 0; j < d; j++) W[p * d + j] = b[j];
  return W;
}

function writeLinear(model: OnnxModel, l: LinearRef, W: Float64Array): void {
  const p = l.inDim,
    d = l.outDim;
  const w = new Float32Array(p * d);
  for (let i = 0; i < p; i++) for (let j = 0; j < d; j++) w[l.outIn ? j * p + i : i * d + j] = W[i * d + j];
  model.setInitializer(l.weight, w);
  model.setInitializer(l.bias!, Float32Array.from(W.subarray(p * d)));
}

/** One writer solve for fixed maps (step 2 above): ρ the rest of the stream, ĝ the layer's input (ones column). */
function solveWriter(
  G: Float64Array,
  gg: Float64Array,
  rho: Float32Array,
  xs: Float32Array[],
  fitted: FittedUnmerge[],
  W: Float64Array,
  rows: number,
  a: number,
  d: number,
): Float64Array {
  const R = new Float64Array(a * d);
  const S = new Float64Array(d * d);
  fitted.forEach((f, i) => {
    const n = f.n;
    const T = new Float64Array(rows * n);
    for (let row = 0; row < rows; row++)
      for (let j = 0; j < n; j++) {
        let y = xs[i][row * n + j] - f.bias[j];
        for (let q = 0; q < d; q++) y -= rho[row * d + q] * f.weight[q * n + j];
        T[row * n + j] = y;
      }
    const GT = tmul(G, T, rows, a, n); // a×n
    for (let q = 0; q < a; q++) for (let c = 0; c < d; c++) for (let j = 0; j < n; j++) R[q * d + c] += GT[q * n + j] * f.weight[c * n + j];
    for (let q = 0; q < d; q++) for (let c = 0; c < d; c++) for (let j = 0; j < n; j++) S[q * d + c] += f.weight[q * n + j] * f.weight[c * n + j];
  });
  // R·S⁻¹ = (S⁻¹·Rᵀ)ᵀ (S symmetric).
  const Rt = new Float64Array(d * a);
  for (let q = 0; q < a; q++) for (let c = 0; c < d; c++) Rt[c * a + q] = R[q * d + c];
  let ms = 0;
  for (let i = 0; i < d; i++) ms += S[i * d + i];
  const X = solveSpd(S, d, Rt, a, (1e-8 * ms) / d);
  let mg = 0;
  for (let i = 0; i < a; i++) mg += gg[i * a + i];
  const lambda = (TRUNK_RIDGE * mg) / a;
  const B = new Float64Array(a * d);
  for (let q = 0; q < a; q++) for (let c = 0; c < d; c++) B[q * d + c] = X[c * a + q] + lambda * W[q * d + c];
  return solveSpd(gg, a, B, d, lambda);
}

/** The writers of the shared blocks, in graph order (pre-norm blocks with their own biases only). */
function writers(plan: ModelPlan, k: number, which: 'all' | 'last', attention: boolean): { name: string; layer: LinearRef }[] {
  const out: { name: string; layer: LinearRef }[] = [];
  for (let b = 0; b < k; b++) {
    const block = plan.blocks[b];
    if (block.norm !== 'pre') continue;
    out.push({ name: `block ${b} attn.o`, layer: block.attn.o }, { name: `block ${b} fc2`, layer: block.fc2 });
  }
  if (attention && plan.blocks[k].norm === 'pre') out.push({ name: `block ${k} attn.o`, layer: plan.blocks[k].attn.o });
  return (which === 'last' ? out.slice(-1) : out).filter((w) => w.layer.bias && !w.layer.slice);
}

/** The trunk and the branches' maps for K shared blocks (0 < K < layers). */
export async function fitPartialTrunk(input: TrunkFitInput): Promise<TrunkFit> {
  const { models, plans, fused: start, k } = input;
  const attention = input.attention ?? false;
  const cut = k < plans[0].layers ? cutTensor(plans[0], k, attention) : undefined;
  if (!cut) throw new OtfuseError('INTERNAL', `trunk fit at K = ${k} (the models have ${plans[0].layers} blocks)`);
  const own = input.own ?? [];
  if (!input.own) for (let i = 0; i < models.length; i++) own.push((await captureTensors(models[i], [cutTensor(plans[i], k, attention)!], input))[0]);
  const first = fitMaps((await captureTensors(start, [cut], input))[0], own, input, k);
  let best: TrunkFit = { trunk: start, fitted: first.fitted, residuals: [first.residual], kept: [], skipped: [] };
  const rounds = input.rounds ?? 2;
  if (!rounds) return best;
  const d = plans[0].hidden;
  const list = writers(plans[0], k, input.layers ?? 'all', attention);
  for (const { name, layer } of Array.from({ length: input.passes ?? 1 }, () => list).flat()) {
    const p = layer.inDim,
      a = p + 1;
    const [h, g] = await captureTensors(best.trunk, [cut, inputTensor(best.trunk, layer)], input);
    const rows = g.length / p;
    if (rows * a * a > TRUNK_FIT_MAX_FLOPS) {
      best.skipped.push(name);
      continue;
    }
    const G = new Float64Array(rows * a);
    for (let row = 0; row < rows; row++) {
      for (let i = 0; i < p; i++) G[row * a + i] = g[row * p + i];
      G[row * a + p] = 1;
    }
    const gg = gram(G, rows, a);
    let W = readLinear(best.trunk, layer);
    const rho = addProduct(h, G, W, rows, a, d, -1);
    let fitted = best.fitted;
    for (let round = 0; round < rounds; round++) {
      W = solveWriter(G, gg, rho, own, fitted, W, rows, a, d);
      if (round < rounds - 1) fitted = fitMaps(addProduct(rho, G, W, rows, a, d, 1), own, input, k).fitted;
    }
    const trunk = best.trunk.clone(); // the writers kept so far, and this one
    writeLinear(trunk, layer, W);
    const next = fitMaps((await captureTensors(trunk, [cut], input))[0], own, input, k);
    if (next.residual < best.residuals[best.residuals.length - 1])
      best = { trunk, fitted: next.fitted, residuals: [...best.residuals, next.residual], kept: [...best.kept, name], skipped: best.skipped };
  }
  return best;
}
