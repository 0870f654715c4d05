// A trunk fitted for partial fusion (issue 28): the fused trunk's last write into the residual stream — block
// K − 1's MLP output layer (fc2) — refit jointly with the branches' fitted unmerge maps so that every parent's own
// upper blocks see the features they expect. For a pre-norm block the stream at the cut is h = r + ĝ·Ŵ (r: the
// stream after the attention residual, ĝ = [g, 1]: fc2's input with a ones column, Ŵ = [W; b]); branch m reads
// x̃_m = h·U_m + c_m. Block-coordinate least squares on the calibration data, all parents' targets stacked:
//
//   1. U_m, c_m ← ridge LS from h to parent m's own stream x_m (unmerge.ts' fitLinear)
//   2. Ŵ ← argmin Σ_m ‖(r + ĝŴ)·U_m + c_m − x_m‖²  =  (ĝᵀĝ + λI)⁻¹ (R·S⁻¹ + λŴ_old),
//        R = Σ_m ĝᵀ(x_m − c_m − r·U_m)·U_mᵀ,  S = Σ_m U_m·U_mᵀ   (exact for λ → 0)
//
// repeated `rounds` times, then the maps are refit on the final h. A round is kept only if the stacked residual
// on the calibration rows goes down. Post-norm blocks (LN after the residual) are not linear in Ŵ: only the maps.
import { OtfuseError } from '../errors';
import type { OnnxModel } from '../onnx/model';
import type { ModelPlan } from '../graph/analyze';
import { solveSpd } from './dense';
import { inputTensor } from './refitgrams';
import { captureTensors, fitLinear, priorOf, UNMERGE_RIDGE, type FittedUnmerge, type UnmergeFitInput } from './unmerge';

export interface TrunkFit {
  /** A copy of the fused model with block K − 1's fc2 refit (the fused model itself when nothing was refit). */
  trunk: OnnxModel;
  fitted: FittedUnmerge[];
  /** Stacked relative residual Σ_m ‖x̃_m − x_m‖² / Σ_m ‖x_m − mean‖² after the maps alone, then after each kept round. */
  residuals: number[];
}

/** Ridge of the fc2 solve, relative to the mean diagonal of ĝᵀĝ: small, towards the fused weights. */
export const TRUNK_RIDGE = 1e-3;

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

/** h = r + ĝ·Ŵ (float32, as the graph computes it). */
function streamOf(r: Float32Array, G: Float64Array, W: Float64Array, rows: number, a: number, d: number): Float32Array {
  const h = Float32Array.from(r);
  for (let row = 0; row < rows; row++)
    for (let i = 0; i < a; i++) {
      const v = G[row * a + i];
      if (v !== 0) for (let j = 0; j < d; j++) h[row * d + j] += v * W[i * d + j];
    }
  return h;
}

/** Fits every branch's map from h; returns the maps and the stacked relative residual. */
function fitMaps(h: Float32Array, xs: Float32Array[], input: UnmergeFitInput, k: number): { fitted: FittedUnmerge[]; residual: number } {
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

/** Fc2's [W; b] as [in + 1, out] float64. */
function readFc2(model: OnnxModel, plan: ModelPlan, k: number): Float64Array {
  const fc2 = plan.blocks[k - 1].fc2;
  if (!fc2.bias || fc2.slice)
    throw new OtfuseError('UNSUPPORTED', `partial trunk fit: block ${k - 1}'s MLP output has no bias of its own`, { file: model.file });
  const w = model.getInitializer(fc2.weight).data;
  const b = model.getInitializer(fc2.bias).data;
  const p = fc2.inDim,
    d = fc2.outDim;
  const W = new Float64Array((p + 1) * d);
  for (let i = 0; i < p; i++) for (let j = 0; j < d; j++) W[i * d + j] = fc2.outIn ? w[j * p + i] : w[i * d + j];
  for (let j = 0; j < d; j++) W[p * d + j] = b[j];
  return W;
}

function writeFc2(model: OnnxModel, plan: ModelPlan, k: number, W: Float64Array): void {
  const fc2 = plan.blocks[k - 1].fc2;
  const p = fc2.inDim,
    d = fc2.outDim;
  const w = new Float32Array(p * d);
  for (let i = 0; i < p; i++) for (let j = 0; j < d; j++) w[fc2.outIn ? j * p + i : i * d + j] = W[i * d + j];
  model.setInitializer(fc2.weight, w);
  model.setInitializer(fc2.bias!, Float32Array.from(W.subarray(p * d)));
}

/** One fc2 solve for fixed maps (step 2 above). */
function solveFc2(
  G: Float64Array,
  gg: Float64Array,
  r: Float32Array,
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
        for (let q = 0; q < d; q++) y -= r[row * d + q] * f.weight[q * n + j];
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

/** The trunk and the branches' maps for K shared blocks (0 < K < layers). */
export async function fitPartialTrunk(input: UnmergeFitInput & { k: number; rounds?: number }): Promise<TrunkFit> {
  const { models, plans, fused, k } = input;
  const block = plans[0].blocks[k - 1];
  const own: Float32Array[] = [];
  for (let i = 0; i < models.length; i++) own.push((await captureTensors(models[i], [plans[i].blocks[k - 1].output], input))[0]);
  const [h0, g, r] = await captureTensors(fused, block.norm === 'pre' ? [block.output, inputTensor(fused, block.fc2), block.attnAdd] : [block.output], input);
  const first = fitMaps(h0, own, input, k);
  const out: TrunkFit = { trunk: fused, fitted: first.fitted, residuals: [first.residual] };
  if (block.norm !== 'pre' || !block.fc2.bias || block.fc2.slice || !(input.rounds ?? 2)) return out;
  const p = block.fc2.inDim,
    d = block.fc2.outDim,
    a = p + 1;
  const rows = g.length / p;
  const G = new Float64Array(rows * a);
  for (let row = 0; row < rows; row++) {
    for (let i = 0; i < p; i++) G[row * a + i] = g[row * p + i];
    G[row * a + p] = 1;
  }
  const gg = gram(G, rows, a);
  let W = readFc2(fused, plans[0], k);
  let best = out;
  for (let round = 0; round < (input.rounds ?? 2); round++) {
    W = solveFc2(G, gg, r, own, best.fitted, W, rows, a, d);
    const next = fitMaps(streamOf(r, G, W, rows, a, d), own, input, k);
    if (!(next.residual < best.residuals[best.residuals.length - 1])) break;
    const trunk = fused.clone();
    writeFc2(trunk, plans[0], k, W);
    best = { trunk, fitted: next.fitted, residuals: [...best.residuals, next.residual] };
  }
  return best;
}
