// The partial-fusion stage of `otfuse fuse` (recipe.mergeLayers / recipe.pareto, issue 28): builds the model for the
// chosen K and, when asked, every K's model with its parameter count and accuracy on the evaluation data (the
// accuracy-vs-size curve run.json records). With calibration data, every branch's unmerge map at the cut is fitted
// (least squares from the trunk's stream to the parent's own, worker/fusion/unmerge.ts) instead of the transport
// map's transpose, and the trunk itself (fused / the anchor's own / refit) is chosen per K on held-out calibration
// rows (partialChoice.ts); run.json records the choice and every candidate's held-out score.
import { OtfuseError, throwIfCancelled } from '../errors';
import type { OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import type { ModelPlan } from '../graph/analyze';
import { evaluateModel } from '../runtime/evaluate';
import type { JobContext, PartialPoint, PartialRecord } from '../types';
import type { ProviderChoice } from '../runtime/providers';
import type { ResolvedRecipe } from '../fusion/recipe';
import type { TMap } from '../fusion/maps';
import { buildPartial } from '../fusion/partial';
import { fitUnmerges } from '../fusion/unmerge';
import { chooseTrunks } from './partialChoice';

export interface PartialStageInput {
  models: OnnxModel[];
  plans: ModelPlan[];
  fused: OnnxModel;
  cutMaps?: (TMap | null)[][];
  recipe: ResolvedRecipe;
  /** The calibration data the unmerge maps are fitted on (absent: the transport maps). */
  calib?: Dataset;
  evalSet?: Dataset;
  evalLimit?: number;
  provider?: ProviderChoice;
}

/** Refuses a K past the models' depth before any work (usage error). */
export function checkMergeLayers(recipe: ResolvedRecipe, plan: ModelPlan): void {
  if (recipe.mergeLayers !== undefined && recipe.mergeLayers > plan.layers)
    throw new OtfuseError('BAD_USAGE', `--merge-layers ${recipe.mergeLayers}: the models have ${plan.layers} blocks (0 … ${plan.layers})`, {
      file: plan.file,
    });
}

/** The model fused.onnx holds and the run's `partial` record (undefined when the recipe asks for neither). */
export async function partialStage(input: PartialStageInput, context: JobContext = {}): Promise<{ model: OnnxModel; record?: PartialRecord }> {
  const { models, plans, fused, recipe } = input;
  const layers = plans[0].layers;
  const chosen = recipe.mergeLayers ?? layers;
  if (chosen === layers && !recipe.pareto) return { model: fused };
  if (!input.cutMaps) throw new OtfuseError('INTERNAL', 'partial fusion without the maps at the cuts');
  const cutMaps = input.cutMaps;
  const inner = recipe.pareto ? Array.from({ length: Math.max(0, layers - 1) }, (_, i) => i + 1) : chosen > 0 && chosen < layers ? [chosen] : [];
  const choice =
    input.calib && inner.length
      ? await chooseTrunks({
          models,
          plans,
          fused,
          cutMaps,
          calib: input.calib,
          samples: recipe.samples,
          ks: inner,
          provider: input.provider,
          signal: context.signal,
          onProgress: context.onProgress,
        })
      : undefined;
  // Too few calibration samples to hold any out: every branch's map fitted from the fused trunk on all of them.
  const fitted =
    input.calib && !choice && layers > 1
      ? await fitUnmerges({ models, plans, fused, cutMaps, calib: input.calib, samples: recipe.samples, provider: input.provider, signal: context.signal })
      : undefined;
  const build = (k: number) => {
    const c = choice?.choices.get(k);
    return buildPartial({ models, plans, fused: c?.trunk ?? fused, cutMaps, k, fitted: c?.fitted ?? fitted?.[k] });
  };
  const trunkOf = (k: number): Pick<PartialPoint, 'trunk' | 'candidates'> => {
    const c = choice?.choices.get(k);
    return c ? { trunk: c.kind, candidates: c.candidates } : {};
  };
  const model = build(chosen);
  const record: PartialRecord = {
    mergeLayers: chosen,
    layers,
    parameters: model.summary().parameterCount,
    parentParameters: models[0].summary().parameterCount,
    modelParameters: models.map((m) => m.summary().parameterCount),
    ...trunkOf(chosen),
    ...(choice ? { heldOut: choice.split } : {}),
  };
  if (recipe.pareto) {
    const points: PartialPoint[] = [];
    for (let k = 0; k <= layers; k++) {
      throwIfCancelled(context.signal);
      context.onProgress?.({ stage: 'evaluate', message: `partial fusion, ${k} of ${layers} blocks shared`, done: k, total: layers + 1 });
      const m = k === chosen ? model : build(k);
      const point: PartialPoint = { mergeLayers: k, parameters: m.summary().parameterCount, ...trunkOf(k) };
      if (input.evalSet) {
        const r = await evaluateModel(m, input.evalSet, { limit: input.evalLimit, provider: input.provider, signal: context.signal, batchSize: 256 });
        point.accuracy = r.accuracy;
        point.loss = r.loss;
      }
      points.push(point);
    }
    record.points = points;
  }
  return { model, record };
}
