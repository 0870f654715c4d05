// A fusion trial's cost estimated from the model's size before it runs: the auto-tune's budget is counted in these
// estimated seconds, not in wall time, so the same models, data and budget give the same sweep (and the same chosen
// recipe) on a quiet or a loaded machine (issue 31). Four parts, each from the model's shapes and the recipe:
// - the alignment and the refit's linear algebra: for every linear layer (a 2-D initializer read by a MatMul or
//   Gemm, d_in → d_out) a d_out × d_out cost matrix over T activation rows (2·T·d_out² flops) and an OT solve on it
//   (~d_out³), and the refit's Gram over the layer's inputs (2·T·d_in²) solved against the layer (d_in³/3 +
//   d_in²·d_out); T = the recipe's token budget (samples × tokens per sample when uncapped). At NOMINAL_FLOPS,
//   calibrated on ViT-B/16 (align 76 s + refit 140 s measured on the 2-core benchmark machine vs 5.4·10¹² flops).
// - forward passes: 2 flops per weight per token, at FORWARD_FLOPS (400 plain ViT-B/16 passes, 165 s); the capture
//   runs one pass per model over the fit samples, the score one pass of the fused model over the held-out samples,
//   regmean++ one more pass per model and refit level (its level-by-level Grams).
// - a fixed cost per forward pass (sessions, batching, token selection) and per trial (graph analysis, schedule,
//   writing the fused clone), PASS_OVERHEAD_S and TRIAL_OVERHEAD_S, measured on the bundled 48-wide ViT pair, where
//   they are almost all of a trial (its per-trial CPU seconds: regmean 1.4–2.1, regmean++ 6.2–6.4, no refit 0.6–0.7,
//   weights 0.24, measured at load 33 on the 2-core machine).
// These are estimates on a nominal machine, not predictions for this one; the auto-tune keeps a wall-time guard as
// a safety stop and reports when it fires.
import type { OnnxModel } from '../onnx/model';
import type { ResolvedRecipe } from '../fusion/recipe';
import { CANDIDATES_PER_KEPT } from '../fusion/calibinputs';

/** Nominal sustained rate of the fusion's linear algebra (flop/s), see above. */
export const NOMINAL_FLOPS = 2.5e10;
/** Nominal rate of ONNX Runtime forward passes (flop/s), see above. */
export const FORWARD_FLOPS = 8e10;
/** Fixed seconds per forward pass over a sample set, and per trial. */
export const PASS_OVERHEAD_S = 0.25;
export const TRIAL_OVERHEAD_S = 0.5;

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

/** What a trial's cost depends on besides the models. */
export interface TrialShape {
  /** Samples the trial fuses from, and the held-out samples it is scored on (0: the fusion alone). */
  samples: number;
  heldOut?: number;
  /** Tokens per sample (a ViT's patches + CLS, a text model's sequence length); default 64. */
  tokensPerSample?: number;
  /** Refit levels (regmean++ runs one pass per model per level); default 1. */
  refitLevels?: number;
}

/** Estimated seconds of the alignment and refit's linear algebra alone (the part NOMINAL_FLOPS is calibrated on). */
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

/** Estimated seconds of one whole trial (capture, alignment, refit, score), deterministic in its inputs. */
export function estimateTrialCost(
  models: OnnxModel[],
  recipe: Pick<ResolvedRecipe, 'tokenBudget' | 'samples' | 'refit' | 'alignBy'>,
  shape: TrialShape,
): number {
  const tokens = shape.tokensPerSample ?? 64;
  const weights = linearShapes(models[0]).reduce((s, [i, o]) => s + i * o, 0);
  const pass = (samples: number) => PASS_OVERHEAD_S + (2 * weights * tokens * samples) / FORWARD_FLOPS;
  const captures = recipe.alignBy === 'wts' && recipe.refit === 'none' ? 0 : models.length;
  const plusplus = recipe.refit === 'regmean++' ? models.length * (shape.refitLevels ?? 1) : 0;
  const capped = { ...recipe, tokenBudget: recipe.tokenBudget > 0 ? recipe.tokenBudget : shape.samples * tokens };
  // A capture passes only the samples its token budget can use (fusion/calibinputs.ts).
  const passed = recipe.tokenBudget > 0 ? Math.min(shape.samples, Math.ceil((CANDIDATES_PER_KEPT * recipe.tokenBudget) / tokens)) : shape.samples;
  return TRIAL_OVERHEAD_S + (captures + plusplus) * pass(passed) + (shape.heldOut ? pass(shape.heldOut) : 0) + estimateTrialSeconds(models, capped);
}
