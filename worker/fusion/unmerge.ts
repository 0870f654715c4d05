// Fitted unmerge maps for partial fusion (issue 28). At the cut after block K, branch m runs parent m's own upper
// blocks on the shared trunk's output h. The transport map's transpose (partial.ts' default) is exact only when the
// trunk computes what the parent computed, up to a permutation; a fused trunk computes a compromise. Here each
// branch's map is *fitted*: ridge least squares from the fused trunk's stream to that parent's own stream at the
// same point, on the calibration data (every row = one token of one sample):
//
//   [U; c] = argmin ‖[H, 1]·[U; c] − X_m‖² + λ‖[U; c] − [U₀; 0]‖²,   λ = ridge · mean diag([H, 1]ᵀ[H, 1])
//
// with U₀ the transport map's unmerge (identity for the anchor), so λ → ∞ is today's map, and a branch whose
// stream is an invertible linear function of the trunk's is recovered exactly (zero residual at the minimiser).
// Every branch gets one, the anchor's too: the fused trunk is not the anchor's either.
import { OtfuseError, throwIfCancelled } from '../errors';
import type { OnnxModel } from '../onnx/model';
import { batches, type Dataset } from '../data/dataset';
import type { ModelPlan } from '../graph/analyze';
import { ModelRunner } from '../runtime/runner';
import type { ProviderChoice } from '../runtime/providers';
import { inputT, type TMap } from './maps';
import { solveSpd } from './dense';

/** x = h·W + b: W is [m, n] (trunk width m, the branch's width n), b has n entries. */
export interface FittedUnmerge {
  weight: Float32Array;
  bias: Float32Array;
  m: number;
  n: number;
  /** Relative residual ‖[H,1]W − X‖² / ‖X − mean(X)‖² on the calibration rows, before (the transport map's) and after. */
  errorMap: number;
  errorFit: number;
}

export interface UnmergeFitInput {
  /** The original models, anchor first. */
  models: OnnxModel[];
  plans: ModelPlan[];
  /** The fully fused model: its first K blocks are the trunk. */
  fused: OnnxModel;
  /** cutMaps[k][b]: model k's input map at block b (null or absent: identity). */
  cutMaps: (TMap | null)[][];
  calib: Dataset;
  samples: number;
  batchSize?: number;
  /** Ridge towards the transport map, relative to the mean diagonal of the trunk's Gram. */
  ridge?: number;
  provider?: ProviderChoice;
  signal?: AbortSignal;
}

/** The default ridge: only for conditioning (the fit has ≥ 17 rows per sample, d + 1 unknowns per output). */
export const UNMERGE_RIDGE = 1e-6;

/** The values of `names` in `model` on the first `samples` calibration samples, each row-major [rows, width]. */
export async function captureTensors(
  model: OnnxModel,
  names: string[],
  input: Pick<UnmergeFitInput, 'calib' | 'samples' | 'batchSize' | 'provider' | 'signal'>,
): Promise<Float32Array[]> {
  const copy = model.clone();
  copy.setOutputs(names);
  const runner = await ModelRunner.create(copy, { provider: input.provider ?? 'cpu' });
  const parts: Float32Array[][] = names.map(() => []);
  try {
    const binding = runner.bind(input.calib, { checkLabels: false });
    for (const batch of batches(input.calib, input.batchSize ?? 64, Math.min(input.samples, input.calib.size))) {
      throwIfCancelled(input.signal);
      const out = await runner.run(batch, binding, names);
      names.forEach((n, i) => parts[i].push(new Float32Array(out[n].data as Float32Array)));
    }
  } finally {
    await runner.release();
  }
  return parts.map((p) => {
    const all = new Float32Array(p.reduce((s, a) => s + a.length, 0));
    let o = 0;
    for (const a of p) {
      all.set(a, o);
      o += a.length;
    }
    return all;
  });
}

/** Every block output but the last (the streams at the cuts 1 … L − 1). */
function streams(model: OnnxModel, plan: ModelPlan, input: UnmergeFitInput): Promise<Float32Array[]> {
  return captureTensors(
    model,
    plan.blocks.slice(0, plan.layers - 1).map((b) => b.output),
    input,
  );
}

/** The transport map's unmerge as [m+1, n] (last row: zero bias); identity when there is no map. */
export function priorOf(map: TMap | null | undefined, m: number, n: number): Float64Array {
  const W = new Float64Array((m + 1) * n);
  if (!map) {
    for (let i = 0; i < Math.min(m, n); i++) W[i * n + i] = 1;
    return W;
  }
  const t = inputT(map); // n×m
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) W[j * n + i] = t[i * m + j];
  return W;
}

/** Ridge least squares [H,1]·W ≈ X towards W₀; returns W ([m+1, n]) and the relative residuals of W₀ and W. */
export function fitLinear(
  H: Float32Array,
  X: Float32Array,
  m: number,
  n: number,
  W0: Float64Array,
  ridge: number,
): { W: Float64Array; err0: number; err: number } {
  const rows = H.length / m;
  if (!Number.isInteger(rows) || X.length !== rows * n)
    throw new OtfuseError('INTERNAL', `unmerge fit: ${H.length} / ${X.length} values for widths ${m} / ${n}`);
  const a = m + 1;
  const G = new Float64Array(a * a);
  const B = new Float64Array(a * n);
  const h = new Float64Array(a);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < m; i++) h[i] = H[r * m + i];
    h[m] = 1;
    for (let i = 0; i < a; i++) {
      const hi = h[i];
      if (hi === 0) continue;
      for (let j = 0; j <= i; j++) G[i * a + j] += hi * h[j];
      for (let j = 0; j < n; j++) B[i * n + j] += hi * X[r * n + j];
    }
  }
  for (let i = 0; i < a; i++) for (let j = 0; j < i; j++) G[j * a + i] = G[i * a + j];
  let md = 0;
  for (let i = 0; i < a; i++) md += G[i * a + i];
  const lambda = (ridge * md) / a;
  for (let k = 0; k < B.length; k++) B[k] += lambda * W0[k];
  const W = solveSpd(G, a, B, n, lambda);
  const residual = (w: Float64Array) => {
    let s = 0;
    for (let r = 0; r < rows; r++)
      for (let j = 0; j < n; j++) {
        let y = w[m * n + j];
        for (let i = 0; i < m; i++) y += H[r * m + i] * w[i * n + j];
        const e = y - X[r * n + j];
        s += e * e;
      }
    return s;
  };
  let tot = 0;
  for (let j = 0; j < n; j++) {
    let mean = 0;
    for (let r = 0; r < rows; r++) mean += X[r * n + j];
    mean /= rows;
    for (let r = 0; r < rows; r++) tot += (X[r * n + j] - mean) ** 2;
  }
  return { W, err0: residual(W0) / (tot || 1), err: residual(W) / (tot || 1) };
}

/**
 * fitted[b][k]: model k's fitted unmerge at the cut after block b (b = 1 … L − 1; index 0 unused), from the fused
 * trunk's stream there to model k's own.
 */
export async function fitUnmerges(input: UnmergeFitInput): Promise<FittedUnmerge[][]> {
  const { models, plans, fused } = input;
  const layers = plans[0].layers;
  const trunk = await streams(fused, plans[0], input);
  const own = [];
  for (let k = 0; k < models.length; k++) own.push(await streams(models[k], plans[k], input));
  const out: FittedUnmerge[][] = [[]];
  for (let b = 1; b < layers; b++) {
    const m = plans[0].hidden;
    const fits: FittedUnmerge[] = [];
    for (let k = 0; k < models.length; k++) {
      throwIfCancelled(input.signal);
      const n = plans[k].hidden;
      const W0 = priorOf(k === 0 ? null : input.cutMaps[k]?.[b], m, n);
      const { W, err0, err } = fitLinear(trunk[b - 1], own[k][b - 1], m, n, W0, input.ridge ?? UNMERGE_RIDGE);
      fits.push({ weight: Float32Array.from(W.subarray(0, m * n)), bias: Float32Array.from(W.subarray(m * n)), m, n, errorMap: err0, errorFit: err });
    }
    out.push(fits);
  }
  return out;
}
