// Diagnostic rows of the honest protocol (FuseRequest.baselines, issue 28): each non-anchor parent alone after
// alignment onto the anchor — the fusion with weights one-hot on that parent (no averaging; the refit fits it
// alone). A function-preserving alignment keeps the parent's accuracy; what it loses here cannot reach the fused
// model.
import path from 'node:path';
import { throwIfCancelled } from '../errors';
import type { OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import type { ModelPlan } from '../graph/analyze';
import { evaluateModel } from '../runtime/evaluate';
import type { DataRef, FuseRequest, JobContext, ModelMetrics } from '../types';
import type { ResolvedRecipe } from '../fusion/recipe';
import type { LoadedFusionInput, LoadedFusionResult } from './run';

export interface AlignedRowsInput {
  models: OnnxModel[];
  plans: ModelPlan[];
  recipe: ResolvedRecipe;
  calib?: Dataset;
  evalSet: Dataset;
  request: FuseRequest;
  measuredOn: (n: number) => DataRef | undefined;
  /** fuseLoaded (passed in: run.ts imports this module). */
  fuse: (input: LoadedFusionInput) => Promise<LoadedFusionResult>;
}

export async function alignedRows(input: AlignedRowsInput, context: JobContext = {}): Promise<ModelMetrics[]> {
  const { models, recipe, evalSet, request } = input;
  const rows: ModelMetrics[] = [];
  for (let k = 1; k < models.length; k++) {
    throwIfCancelled(context.signal);
    const label = `${path.basename(models[k].file)} aligned onto the anchor`;
    context.onProgress?.({ stage: 'evaluate', message: label, done: k - 1, total: models.length - 1 });
    const weights = models.map((_, i) => (i === k ? 1 : 0));
    const r = await input.fuse({
      models,
      plans: input.plans,
      recipe: { ...recipe, weights, mergeLayers: undefined, pareto: false },
      calib: input.calib,
      provider: request.provider,
      signal: context.signal,
      vanilla: false,
    });
    r.mapStore.release();
    const e = await evaluateModel(r.fused, evalSet, { limit: request.evalLimit, provider: request.provider, signal: context.signal, batchSize: 256 });
    rows.push({ label, role: 'aligned', model: k, data: input.measuredOn(e.samples), accuracy: e.accuracy, loss: e.loss });
  }
  return rows;
}
