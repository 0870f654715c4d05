// `otfuse fuse`: load → analyse graphs → capture activations → align each model onto the anchor → average →
// write the run folder (fused.onnx, maps.safetensors, run.json) atomically → evaluate parents, vanilla, OT.
import { fuseDecoderFolders, isDecoderFolder } from '../fusion/decoder/run';
import path from 'node:path';
import { OtfuseError, throwIfCancelled } from '../errors';
import { loadModel } from '../onnx/model';
import { openDataset } from '../data/dataset';
import { preflight } from '../preflight';
import { autotuneRecipe, AUTOTUNE_DEFAULT_BUDGET_S } from './autotune';
import { AUTO_ANCHOR, chooseAnchor } from './anchor';
import { analyzeModel } from '../graph/analyze';
export type { ParamRole } from '../fusion/schedule';
import type { AnchorChoice, FuseRequest, FuseResult, JobContext, RunRecord, ProgressEvent } from '../types';
import { abandonRun, claimRun, commitRun, writeRecord } from '../runs/store';
import { measuredOnFor, writeRunFolder } from './runFolder';
import { alignedRows } from './alignedRows';
import { parentWeights, resolveRecipe } from '../fusion/recipe';
import { detectSharedBase, identityMaps } from '../merge/sharedBase';
import { dataInputs, modelInputs } from '../io/outputs';
import { checkMergeLayers, partialStage } from './partialRun';

export { fuseLoaded, type LoadedFusionInput, type LoadedFusionResult } from '../fusion/fuse';
import { fuseLoaded } from '../fusion/fuse';
import { CaptureShare } from '../fusion/share';
export { OTFUSE_VERSION } from './runFolder';

export async function fuseModels(request: FuseRequest, context: JobContext = {}): Promise<FuseResult> {
  const t0 = performance.now();
  const emit = (e: ProgressEvent) => context.onProgress?.(e);
  if (!request.models || request.models.length < 2) throw new OtfuseError('BAD_USAGE', 'fusion needs at least two models');
  let recipe = resolveRecipe(request.recipe ?? {});
  // Anchor first; the others keep their order.
  let files = request.models.map((f) => path.resolve(f));
  const autoAnchor = request.anchor === AUTO_ANCHOR;
  if (request.anchor && !autoAnchor) {
    const a = path.resolve(request.anchor);
    files = [a, ...files.filter((f) => f !== a)];
  }
  if (new Set(files).size < 2) throw new OtfuseError('BAD_USAGE', 'fusion needs at least two different models');
  // Decoder LMs have their own alignment (no recipe to auto-tune).
  const decoders = files.every(isDecoderFolder);
  if (recipe.weights && recipe.weights.length !== files.length)
    throw new OtfuseError('BAD_USAGE', `recipe.weights has ${recipe.weights.length} entries for ${files.length} models`);

  const timings: Record<string, number> = {};
  const t = performance.now();
  emit({ stage: 'load', total: files.length });
  // Weights are read back from the files block by block instead of holding both parents' bytes (issue 16).
  let models = files.map((f) => loadModel(f, { lazyWeights: true }));
  timings.load = (performance.now() - t) / 1000;
  throwIfCancelled(context.signal);
  // Fine-tunes of one base need no alignment: say so (CLI, panel, run.json) and point at `merge` (issue 30).
  const sharedBase = detectSharedBase(models);
  if (sharedBase.shared) emit({ stage: 'sharedBase', message: sharedBase.message });

  const calib = request.data !== undefined ? openDataset(request.data) : undefined;
  const evalSet = request.skipEval ? undefined : request.evalData !== undefined ? openDataset(request.evalData) : calib;

  const runsDir = path.resolve(request.runsDir ?? path.join('.otfuse', 'runs'));
  // Before any work: outputs writable and not an input model, evaluation and training labels inside the classes.
  const trainSet = request.finetune ? openDataset(request.finetune.data) : undefined;
  const ft = request.finetune;
  const inputs = [
    ...files.flatMap((f) => modelInputs(f)),
    ...dataInputs(request.data, 'calibration data'),
    ...dataInputs(request.evalData, 'evaluation data'),
    ...dataInputs(ft?.data, 'training data'),
    ...dataInputs(ft?.evalData, 'finetune evaluation data'),
    ...(ft?.teachers ?? []).flatMap((t) => modelInputs(t, 'teacher')),
  ];
  preflight({ inputs, output: request.output, runsDir, model: models[0], labelled: [evalSet, trainSet], finite: models });
  trainSet?.close();
  // The automatic anchor: the parents scored on the held-out calibration slice, the best first (others keep order).
  let anchorChoice: AnchorChoice | undefined;
  if (autoAnchor) {
    if (decoders) throw new OtfuseError('BAD_USAGE', `--anchor ${AUTO_ANCHOR} is not built for decoder LMs (give the anchor's folder)`, { file: files[0] });
    const chosen = await chooseAnchor(files, models, calib, recipe.samples, { provider: request.provider, signal: context.signal });
    anchorChoice = chosen.record;
    const order = [chosen.index, ...files.map((_, i) => i).filter((i) => i !== chosen.index)];
    files = order.map((i) => files[i]);
    models = order.map((i) => models[i]);
  }
  const name = recipe.name !== 'fusion' ? recipe.name : `${path.basename(files[1], '.onnx')}-into-${path.basename(files[0], '.onnx')}`;
  // Partial fusion: a K past the models' depth is a usage error before any work (decoder LMs: not built).
  if (decoders && (recipe.mergeLayers !== undefined || recipe.pareto))
    throw new OtfuseError('BAD_USAGE', 'partial fusion (--merge-layers, --pareto) is not built for decoder LMs', { file: files[0] });
  const plans = recipe.mergeLayers !== undefined || recipe.pareto ? models.map((m) => analyzeModel(m)) : undefined;
  if (plans) checkMergeLayers(recipe, plans[0]);
  // The run folder is claimed (a unique id, a writable folder) before the work, and built under a hidden name.
  const claim = claimRun(runsDir, name);
  const runDir = claim.dir;
  let record: RunRecord;
  // Captures and Grams the auto-tune's trials share with each other and with the final fusion (same samples).
  const share = new CaptureShare();
  try {
    // Auto-tune: pick the recipe on a held-out slice of the calibration data (never the evaluation data).
    const autotune =
      request.autotune && calib && !decoders
        ? await autotuneRecipe(models, calib, {
            fuse: (input) => fuseLoaded({ ...input, share }),
            base: request.recipe,
            provider: request.provider,
            signal: context.signal,
            onProgress: context.onProgress,
            budgetSeconds: typeof request.autotune === 'object' ? (request.autotune.budgetSeconds ?? AUTOTUNE_DEFAULT_BUDGET_S) : AUTOTUNE_DEFAULT_BUDGET_S,
          })
        : undefined;
    if (autotune) {
      recipe = resolveRecipe(autotune.chosen);
      timings.autotune = autotune.seconds;
    }
    share.seal(); // the final fusion reads what the trials hold and holds nothing more
    // Decoder LMs (GPT-2 / Llama-family HF folders): their own symmetry-respecting alignment (worker/fusion/decoder).
    const result = decoders
      ? await fuseDecoderFolders(files, calib, {
          signal: context.signal,
          onProgress: context.onProgress,
          weights: parentWeights(recipe, files.length),
          models,
          vanilla: !!evalSet,
        })
      : await fuseLoaded({
          models,
          recipe,
          calib,
          provider: request.provider,
          signal: context.signal,
          onProgress: context.onProgress,
          vanilla: !!evalSet,
          plans,
          share,
        });
    await share.clear();
    Object.assign(timings, result.timings);
    throwIfCancelled(context.signal);
    const tp = performance.now();
    // Decoder LMs have no graph plans and no partial fusion (refused above): fused.onnx is the fused model.
    const partial: Awaited<ReturnType<typeof partialStage>> = decoders
      ? { model: result.fused }
      : await partialStage({ ...result, models, recipe, calib, evalSet, evalLimit: request.evalLimit, provider: request.provider }, context);
    if (partial.record) timings.partial = (performance.now() - tp) / 1000;
    result.fused = partial.model;
    sharedBase.identityMaps = identityMaps(result.maps);
    record = await writeRunFolder({ request, context, claim, files, models, recipe, result, evalSet, timings, t0, autotune });
    // The automatic anchor's scores say which data they were measured on, as every metric row does.
    const anchorOn = anchorChoice && request.data !== undefined ? measuredOnFor(request.data, runDir)(anchorChoice.heldOutSamples) : undefined;
    record = {
      ...record,
      sharedBase,
      ...(partial.record ? { partial: partial.record } : {}),
      ...(anchorChoice ? { anchorChoice: { ...anchorChoice, ...(anchorOn ? { measuredOn: anchorOn } : {}) } } : {}),
    };
    // The honest protocol also says how much of each non-anchor parent survived alignment (role 'aligned').
    if (request.baselines && evalSet && !decoders) {
      const measuredOn = measuredOnFor(request.evalData ?? request.data, runDir);
      const aligned = await alignedRows({ models, plans: result.plans, recipe, calib, evalSet, request, measuredOn, fuse: fuseLoaded }, context);
      record = { ...record, metrics: [...record.metrics, ...aligned] };
    }
    writeRecord(claim.tmp, record);
    commitRun(claim);
  } catch (err) {
    abandonRun(claim);
    throw err;
  } finally {
    await share.clear();
  }
  emit({ stage: 'done', message: runDir });
  return { runDir, record };
}
