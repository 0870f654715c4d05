// A fusion's cost estimated from the model's size before it runs (used by the auto-tune to bound its sweep):
// for every linear layer (a 2-D initializer read by a MatMul or Gemm, d_in → d_out) the alignment builds a d_out ×
// d_out cost matrix over T activation rows (2·T·d_out² flops) and solves OT on it (~d_out³ for an exact solve), and
// the refit accumulates a Gram over the layer's inputs (2·T·d_in²) and solves it against the layer (d_in³/3 +
// d_in²·d_out). T = the recipe's token budget (the cap on activation rows; samples × 64 when uncapped). The flops
// are turned into seconds at a nominal rate calibrated on ViT-B/16 (align 76 s + refit 140 s measured on the 2-core
// benchmark machine vs 5.4·10¹² estimated flops: ~2.5·10¹⁰ flop/s). The forward passes are not in it (their
// cost needs the token count per sample); the auto-tune stops a trial that overruns its budget instead.
import type { OnnxModel } from '../onnx/model';
import type { ResolvedRecipe } from '../fusion/recipe';

/** Nominal sustained rate of the fusion's linear algebra (flop/s), see above. */
export const NOMINAL_FLOPS = 2.5e10;

/** (d_in, d_out) of every MatMul/Gemm weight initializer of a model. */
export function linearShapes(model: OnnxModel): [number, number][] {
  const dims = new Map<string, number[]>();
  for (const t of model.graph.initializer ?? []) if ((t.dims ?? []).length === 2) dims.set(t.name ?? '', (t.dims ?? []).map(Number));
  const out: [number, number][] = [];
  for (const node of model.nodes) {
    if (node.opType !== 'MatMul' && node.opType !== 'Gemm') continue;
    const input = node.input ?? [];
    for (let k = 0; k < Math.min(2, input.length); k++) {
      const d = dims.get(input[k]);
      if (!d) continue;
      const attr = (name: string) => Number(node.attribute?.find((a) => a.name === name)?.i ?? 0);
      const transposed = node.opType === 'Gemm' && (k === 1 ? attr('transB') : attr('transA')) === 1;
      // MatMul(X, W): W is [d_in, d_out]; Gemm with transB: [d_out, d_in]. A weight on the left is seen from its side.
      out.push(transposed || k === 0 ? [d[1], d[0]] : [d[0], d[1]]);
    }
  }
  return out;
}

/** Estimated seconds of one fusion of `models` with `recipe` (alignment and refit, not the forward passes). */
export function estimateTrialSeconds(models: OnnxModel[], recipe: Pick<ResolvedRecipe, 'tokenBudget' | 'samples' | 'refit'>): number {
  const T = recipe.tokenBudget > 0 ? recipe.tokenBudget : recipe.samples * 64;
  let flops = 0;
  for (const [dIn, dOut] of linearShapes(models[0])) {
    const align = 2 * T * dOut * dOut + dOut ** 3;
    const refit = recipe.refit === 'none' ? 0 : 2 * T * dIn * dIn + dIn ** 3 / 3 + dIn * dIn * dOut;
    flops += (models.length - 1) * align + refit;
  }
  return flops / NOMINAL_FLOPS;
}
