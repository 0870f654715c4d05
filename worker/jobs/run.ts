// `otfuse fuse`: load → analyse graphs → capture activations → align each model onto the anchor → average →
// write the run folder (fused.onnx, maps.safetensors, run.json) atomically → evaluate parents, vanilla, OT.
import { fuseDecoderFolders, isDecoderFolder } from '../fusion/decoder/run';
import path from 'node:path';
import { OtfuseError, throwIfCancelled } from '../errors';
import { loadModel, OnnxModel } from '../onnx/model';
import { openDataset, type Dataset } from '../data/dataset';
import { preflight } from '../preflight';
import { autotuneRecipe, AUTOTUNE_DEFAULT_BUDGET_S } from './autotune';
import type { ProviderChoice } from '../runtime/providers';
import { analyzeModel, type LinearRef, type ModelPlan } from '../graph/analyze';
export type { ParamRole } from '../fusion/schedule';
import { ParamSink, biasRegion, readBias, readWeight, toStorage, weightRegion, type ParamValues } from '../fusion/slices';
import { compileSchedule, planParams, solvedMapCount, type ParamRole } from '../fusion/schedule';
import type { FuseRequest, FuseResult, JobContext, RunRecord, ProgressEvent } from '../types';
import { abandonRun, claimRun, commitRun, writeRecord } from '../runs/store';
import { measuredOnFor, writeRunFolder } from './runFolder';
import { alignedRows } from './alignedRows';
import {
  captureActivations,
  estimateActivationBytes,
  StagedActivations,
  type ActivationStore,
  type CaptureOptions,
  type CaptureStats,
} from '../fusion/activations';
import { alignModel, type MapRecord, type Params } from '../fusion/align';
import { CostEngine } from '../fusion/cost';
import { releaseSinkhornSessions } from '../ot/sinkhorn-ort';
import { resolveRecipe, type ResolvedRecipe } from '../fusion/recipe';
import { ALIGN_BY, REFITS, RESIDUAL_POLICIES } from '../fusion/registry';
import { configureLinalg } from '../fusion/linalg';
import { cloneForWeights, paramView } from '../onnx/params';
import { MapStore } from '../fusion/mapstore';
import type { TMap } from '../fusion/maps';
import { refitModel, refitLevels, type RefitLayerResult } from '../fusion/refit';
import { CaptureGrams } from '../fusion/refitgrams';
import { detectSharedBase, identityMaps } from '../merge/sharedBase';
import { dataInputs, modelInputs } from '../io/outputs';
import { checkMergeLayers, partialStage } from './partialRun';

export { OTFUSE_VERSION } from './runFolder';

/** Above this many bytes of activations per model, 'auto' capture goes stage by stage. */
const STAGED_ABOVE_BYTES = 512 * 2 ** 20;

export interface LoadedFusionInput {
  /** Anchor first. */
  models: OnnxModel[];
  recipe: ResolvedRecipe;
  calib?: Dataset;
  provider?: ProviderChoice;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  /** Plans already derived (one per model, anchor first); by default each model's graph is analysed. */
  plans?: ModelPlan[];
  /** Build the plain-average baseline too (default true; fuseModels skips it when nothing is evaluated). */
  vanilla?: boolean;
  /** For tests: alter a solved map (model index, map name). */
  tamper?: (model: number, name: string, map: TMap) => TMap;
  /** For tests and benchmarks: regmean collects its Grams with a forward pass of its own, not from the capture. */
  refitOwnPass?: boolean;
}

export interface LoadedFusionResult {
  fused: OnnxModel;
  vanilla?: OnnxModel;
  plans: ModelPlan[];
  heterogeneous: boolean;
  /** maps[k] are the maps of model k (k ≥ 1) onto the anchor. */
  maps: MapRecord[][];
  timings: Record<string, number>;
  activationBytes: number;
  /** Per-layer results of the refit (recipe.refit ≠ 'none'). */
  refit?: RefitLayerResult[];
  /** What activation capture did (run.json's `capture`). */
  capture?: RunRecord['capture'];
  /** The maps in their stored form (large ones spooled to a temp file; maps[k][i].map.plan is then empty). */
  mapStore: MapStore;
  /** cutMaps[k][b]: model k's input map at block b (partial fusion's unmerge maps; kept when the recipe asks for
   * partial fusion or its curve). */
  cutMaps?: (TMap | null)[][];
}

function paramsOf(model: OnnxModel): Params {
  return paramView(model); // zero-copy float32 views where possible, a small LRU otherwise (params.ts)
}

/** Parameters by role (position in the alignment schedule), so models exported with different names or packings pair up. */
/** A role's values: linear parameters in canonical form through their slice, anything else as stored. */
function readRole(params: Params, r: ParamRole): Float64Array {
  const p = params.get(r.name);
  if (r.linear && r.part === 'weight') return readWeight(p, r.linear);
  if (r.linear && r.part === 'bias') return readBias(p, r.linear);
  return Float64Array.from(p.data);
}

function writeRole(sink: ParamSink, params: Params, r: ParamRole, v: Float64Array): void {
  if (r.linear && r.part === 'weight') sink.put(r.name, toStorage(v, r.linear), weightRegion(r.linear, params.get(r.name).dims));
  else if (r.linear && r.part === 'bias') sink.put(r.name, v, biasRegion(r.linear, params.get(r.name).data.length));
  else sink.put(r.name, v);
}

/** Role shape for pairing: canonical [out, in] of a linear, the stored dims otherwise. */
function roleShape(params: Params, r: ParamRole): string {
  if (r.linear) return r.part === 'weight' ? `${r.linear.outDim}x${r.linear.inDim}` : `${r.linear.outDim}`;
  return params.get(r.name).dims.join('x');
}

function checkCompatible(plans: ModelPlan[]): void {
  const a = plans[0];
  for (const p of plans.slice(1)) {
    if (p.layers !== a.layers)
      throw new OtfuseError('MISMATCH', `${p.layers} transformer blocks but the anchor ${a.file} has ${a.layers}: depths must match`, {
        file: p.file,
        node: p.blocks[Math.min(p.layers, a.layers) - 1]?.mlpAddNode,
      });
    if (p.heads !== a.heads)
      throw new OtfuseError('MISMATCH', `${p.heads} attention heads but the anchor ${a.file} has ${a.heads}: head counts must match`, {
        file: p.file,
        node: p.blocks[0].attn.scoresNode,
      });
    if ((p.tokens ?? -1) !== (a.tokens ?? -1))
      throw new OtfuseError('MISMATCH', `${p.tokens} tokens but the anchor has ${a.tokens}`, {
        file: p.file,
        node: p.embedding.kind === 'patch' ? p.embedding.pos?.node : undefined,
      });
    if (p.head.classes !== a.head.classes)
      throw new OtfuseError('MISMATCH', `${p.head.classes} classes but the anchor has ${a.head.classes}`, { file: p.file, node: p.head.classifier.node });
    if (p.blocks[0].norm !== a.blocks[0].norm)
      throw new OtfuseError('MISMATCH', `${p.blocks[0].norm}-LN blocks but the anchor has ${a.blocks[0].norm}-LN`, { file: p.file });
  }
}

/** The fusion itself on loaded models (no files written). */
export async function fuseLoaded(input: LoadedFusionInput): Promise<LoadedFusionResult> {
  const { models, recipe } = input;
  const timings: Record<string, number> = {};
  const emit = (e: ProgressEvent) => input.onProgress?.(e);
  let t = performance.now();
  const plans = input.plans ?? models.map((m) => analyzeModel(m));
  checkCompatible(plans);
  timings.analyze = (performance.now() - t) / 1000;
  const params = models.map((m) => paramsOf(m));
  const roles = plans.map((p) => new Map(planParams(p).map((r) => [r.role, r])));
  const heterogeneous = models.slice(1).some((_, j) => {
    for (const [role, ra] of roles[0]) {
      const rb = roles[j + 1].get(role);
      if (!rb || roleShape(params[j + 1], rb) !== roleShape(params[0], ra)) return true;
    }
    return false;
  });

  // Activations (also needed by weight-based alignment when a weighted residual policy reads them).
  const needActs = ALIGN_BY[recipe.alignBy].needsActivations || RESIDUAL_POLICIES[recipe.residualPolicy].needsActivations;
  if (REFITS[recipe.refit].needsActivations && !input.calib) throw new OtfuseError('BAD_USAGE', `refit '${recipe.refit}' needs calibration data (--data)`);
  const acts: (ActivationStore | undefined)[] = models.map(() => undefined);
  let activationBytes = 0;
  // regmean's Grams come out of the capture's own forward pass (taps), not a second pass of the refit.
  const grams =
    needActs && recipe.refit === 'regmean' && input.calib && !input.refitOwnPass
      ? new CaptureGrams(models, refitLevels(plans).flat(), {
          samples: recipe.samples,
          datasetSize: input.calib.size,
          tokenBudget: recipe.tokenBudget,
          tokenSeed: recipe.tokenSeed,
        })
      : undefined;
  // Aligned values of each model (spooled to temp files by the alignment; released below).
  const aligned: ParamValues[] = [new Map()];
  try {
    t = performance.now();
    const captureOptions = (k: number): CaptureOptions => {
      const e = plans[k].embedding;
      return {
        samples: recipe.samples,
        batchSize: recipe.batchSize,
        tokenFilter: recipe.tokenFilter,
        standardize: recipe.standardize,
        tokenBudget: recipe.tokenBudget,
        tokenSeed: recipe.tokenSeed,
        provider: input.provider,
        signal: input.signal,
        grid: e.kind === 'patch' ? e.patch.grid : undefined,
        hasCls: e.kind === 'patch' ? !!e.cls : true,
        tap: grams?.tap(k),
        absMeans: RESIDUAL_POLICIES[recipe.residualPolicy].needsActivations,
      };
    };
    // Staged capture (one block's activations at a time) when all at once would be large.
    const staged =
      needActs &&
      (recipe.capture === 'staged' ||
        (recipe.capture === 'auto' && plans.some((p) => estimateActivationBytes(p, recipe.samples, recipe.tokenBudget) > STAGED_ABOVE_BYTES)));
    if (needActs) {
      if (!input.calib) {
        const why = ALIGN_BY[recipe.alignBy].needsActivations
          ? 'alignment by activations'
          : RESIDUAL_POLICIES[recipe.residualPolicy].needsActivations
            ? `residual policy '${recipe.residualPolicy}'`
            : `refit '${recipe.refit}'`;
        throw new OtfuseError('BAD_USAGE', `${why} needs calibration data (--data)`);
      }
      for (let k = 0; k < models.length; k++) {
        throwIfCancelled(input.signal);
        if (staged) {
          acts[k] = new StagedActivations(models[k], plans[k], input.calib, captureOptions(k));
          continue;
        }
        emit({ stage: 'activations', message: path.basename(models[k].file), done: k, total: models.length });
        acts[k] = await captureActivations(models[k], plans[k], input.calib, captureOptions(k));
        activationBytes += acts[k]!.bytes;
      }
      if (!staged) emit({ stage: 'activations', done: models.length, total: models.length });
    }
    timings.activations = (performance.now() - t) / 1000;

    // Align every other model onto the anchor.
    t = performance.now();
    const maps: MapRecord[][] = [[]];
    const mapStore = new MapStore(recipe.mapsDtype);
    const inputMaps: Map<LinearRef, TMap | null>[] = [new Map()];
    // Partial fusion reads each model's input map of every block's Q (the stream map at the cut).
    const keepCuts = recipe.pareto || (recipe.mergeLayers !== undefined && recipe.mergeLayers < plans[0].layers);
    const cutBlock = new Map(plans[0].blocks.map((b, i) => [b.attn.q, i]));
    const cutMaps: (TMap | null)[][] = models.map(() => []);
    const layerCount = solvedMapCount(compileSchedule(plans[0]), plans[0], recipe);
    const costs = await CostEngine.create(recipe.costEngine === 'ort', input.provider);
    configureLinalg({ provider: input.provider ?? 'cpu' });
    // OT solvers follow the execution provider: a GPU provider runs those with an ONNX Runtime path there.
    const otProvider = input.provider === 'cuda' || input.provider === 'webgpu' ? input.provider : recipe.otBackend === 'ort' ? 'cpu' : undefined;
    try {
      for (let k = 1; k < models.length; k++) {
        throwIfCancelled(input.signal);
        const records: MapRecord[] = [];
        const linearMaps = new Map<LinearRef, TMap | null>();
        inputMaps.push(linearMaps);
        let done = 0;
        aligned.push(
          await alignModel({
            anchor: { plan: plans[0], params: params[0], acts: acts[0] },
            other: { plan: plans[k], params: params[k], acts: acts[k] },
            recipe,
            costs,
            onMap: (r) => {
              records.push(mapStore.add(k, r));
              if (r.kind !== 'residual')
                emit({
                  stage: 'align',
                  layer: r.name,
                  message: `model ${k}`,
                  done: ++done,
                  total: layerCount,
                  metrics: { cost: r.diagnostics.cost, entropy: r.diagnostics.entropy },
                });
            },
            tamper: input.tamper ? (name, map) => input.tamper!(k, name, map) : undefined,
            // The refit reads the input maps at the end: large ones wait in the Gram spool, not in memory.
            onLinear: (la, mapIn) => {
              const b = keepCuts ? cutBlock.get(la) : undefined;
              if (b !== undefined) cutMaps[k][b] = mapIn && { ...mapIn, plan: Float64Array.from(mapIn.plan) };
              linearMaps.set(la, mapIn && grams ? grams.holdMap(mapIn) : mapIn);
            },
            otProvider,
            prepare: staged
              ? async (stage) => {
                  throwIfCancelled(input.signal);
                  emit({ stage: 'activations', message: `stage ${stage} (model ${k})` });
                  for (const i of [0, k]) await (acts[i] as StagedActivations).prepare(stage);
                }
              : undefined,
          }),
        );
        maps.push(records);
      }
    } finally {
      await costs.release();
      if (otProvider) await releaseSinkhornSessions();
    }
    // Stages the alignment did not need still feed the refit's Grams.
    if (grams && staged) for (const a of acts) await (a as StagedActivations).finishTaps();
    timings.align = (performance.now() - t) / 1000;
    if (staged) activationBytes = acts.reduce((s, a) => s + ((a as StagedActivations | undefined)?.peakBytes ?? 0), 0);
    const stats = acts.map((a) => (a as { stats?: CaptureStats } | undefined)?.stats).filter((s): s is CaptureStats => !!s);
    let capture: RunRecord['capture'];
    if (stats.length) {
      const seconds = stats.reduce((s, x) => s + x.seconds, 0);
      // Staged capture runs inside the alignment loop: book its time under activations, not align.
      if (staged) {
        timings.activations = seconds;
        timings.align = Math.max(0, timings.align - seconds);
      }
      capture = {
        mode: staged ? 'staged' : 'all',
        passes: stats.reduce((s, x) => s + x.passes, 0),
        seconds,
        cpuSeconds: stats.reduce((s, x) => s + x.cpuSeconds, 0),
        tokenBudget: recipe.tokenBudget,
        tokenSeed: recipe.tokenSeed,
        tokens: stats[0].tokens,
        peakActivationBytes: Math.max(...stats.map((x) => x.peakBytes)),
        peakCacheBytes: Math.max(...stats.map((x) => x.peakCacheBytes)),
      };
    }

    // Activations are no longer needed (the refit reads its Grams from the spool or runs its own passes): their
    // buffers go before the fused model is built (ViT-B: ~0.8 GB of captured matrices and cached streams).
    for (let k = 0; k < acts.length; k++) {
      acts[k]?.release?.();
      acts[k] = undefined;
    }

    // Weighted average into a clone of the anchor.
    t = performance.now();
    const alpha = recipe.weights ?? models.map(() => 1 / models.length);
    if (alpha.length !== models.length) throw new OtfuseError('BAD_USAGE', `recipe.weights has ${alpha.length} entries for ${models.length} models`);
    const asum = alpha.reduce((a, b) => a + b, 0);
    const fused = cloneForWeights(models[0]);
    // Every initializer the plan places, once (a packed one is shared by the roles of its slices).
    const names = [...new Set([...roles[0].values()].map((r) => r.name))];
    for (const name of names) {
      const base = params[0].get(name).data;
      const acc = new Float64Array(base.length);
      for (let i = 0; i < base.length; i++) acc[i] = (alpha[0] / asum) * base[i];
      for (let k = 1; k < models.length; k++) {
        const v = aligned[k].get(name);
        if (!v) throw new OtfuseError('INTERNAL', `no aligned value for '${name}' from model ${k}`);
        const w = alpha[k] / asum;
        for (let i = 0; i < acc.length; i++) acc[i] += w * v[i];
      }
      fused.setInitializer(name, Float32Array.from(acc));
    }
    timings.average = (performance.now() - t) / 1000;

    // Optional closed-form refit of every aligned linear layer from calibration activations (refit.ts).
    let refit: RefitLayerResult[] | undefined;
    if (recipe.refit !== 'none') {
      t = performance.now();
      refit = await refitModel({
        grams: grams?.ready ? grams : undefined,
        resolveMap: grams ? (m) => grams.resolveMap(m) : undefined,
        mode: recipe.refit,
        ridge: recipe.refitRidge,
        models,
        plans,
        fused,
        aligned,
        alpha: alpha.map((a) => a / asum),
        inputMaps,
        calib: input.calib!,
        samples: recipe.samples,
        batchSize: recipe.batchSize,
        tokenBudget: recipe.tokenBudget,
        tokenSeed: recipe.tokenSeed,
        provider: input.provider,
        signal: input.signal,
        onLayer: (r, done, total) => emit({ stage: 'refit', layer: r.name, done, total, metrics: { errorAverage: r.errorAverage, errorRefit: r.errorRefit } }),
      });
      // Per-layer diagnostics go with the layer's maps (the run's layer table); layers without a map of their own
      // (the classifier, Q/K under a shared map) are listed in `refit`.
      for (const r of refit) {
        for (const rec of maps.slice(1).flat()) {
          if (rec.name === r.name) Object.assign(rec.diagnostics, { refitErrorAverage: r.errorAverage, refitError: r.errorRefit, refitLambda: r.lambda });
        }
      }
      timings.refit = (performance.now() - t) / 1000;
      // The Gram products ran inside the capture: book them under the refit.
      if (grams?.ready) {
        timings.refit += grams.seconds;
        if (process.env.OTFUSE_DEBUG) console.error(`refit grams ${grams.seconds.toFixed(1)} s`);
        timings.activations = Math.max(0, timings.activations - grams.seconds);
      }
    }

    let vanilla: OnnxModel | undefined;
    if (!heterogeneous && input.vanilla !== false) {
      // Plain average role by role (canonical values, so differently packed or laid-out exports still pair up).
      const sink = new ParamSink((name) => params[0].get(name).data.length, plans[0].file);
      for (const [role, ra] of roles[0]) {
        let acc: Float64Array | undefined;
        for (let k = 0; k < models.length; k++) {
          const v = readRole(params[k], roles[k].get(role)!);
          acc ??= new Float64Array(v.length);
          for (let i = 0; i < acc.length; i++) acc[i] += (alpha[k] / asum) * v[i];
        }
        writeRole(sink, params[0], ra, acc!);
      }
      vanilla = cloneForWeights(models[0]);
      for (const [name, v] of sink.finishInMemory()) vanilla.setInitializer(name, Float32Array.from(v));
    }
    return { fused, vanilla, plans, heterogeneous, maps, timings, activationBytes, refit, capture, mapStore, ...(keepCuts ? { cutMaps } : {}) };
  } finally {
    for (const a of aligned) a.release?.();
    await grams?.release();
  }
}

export async function fuseModels(request: FuseRequest, context: JobContext = {}): Promise<FuseResult> {
  const t0 = performance.now();
  const emit = (e: ProgressEvent) => context.onProgress?.(e);
  if (!request.models || request.models.length < 2) throw new OtfuseError('BAD_USAGE', 'fusion needs at least two models');
  let recipe = resolveRecipe(request.recipe ?? {});
  // Anchor first; the others keep their order.
  let files = request.models.map((f) => path.resolve(f));
  if (request.anchor) {
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
  const models = files.map((f) => loadModel(f, { lazyWeights: true }));
  timings.load = (performance.now() - t) / 1000;
  throwIfCancelled(context.signal);
  // Fine-tunes of one base need no alignment: say so (CLI, panel, run.json) and point at `merge` (issue 30).
  const sharedBase = detectSharedBase(models);
  if (sharedBase.shared) emit({ stage: 'sharedBase', message: sharedBase.message });

  const calib = request.data !== undefined ? openDataset(request.data) : undefined;
  const evalSet = request.skipEval ? undefined : request.evalData !== undefined ? openDataset(request.evalData) : calib;

  const name = recipe.name !== 'fusion' ? recipe.name : `${path.basename(files[1], '.onnx')}-into-${path.basename(files[0], '.onnx')}`;
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
  // Partial fusion: a K past the models' depth is a usage error before any work (decoder LMs: not built).
  if (decoders && (recipe.mergeLayers !== undefined || recipe.pareto))
    throw new OtfuseError('BAD_USAGE', 'partial fusion (--merge-layers, --pareto) is not built for decoder LMs', { file: files[0] });
  const plans = recipe.mergeLayers !== undefined || recipe.pareto ? models.map((m) => analyzeModel(m)) : undefined;
  if (plans) checkMergeLayers(recipe, plans[0]);
  // The run folder is claimed (a unique id, a writable folder) before the work, and built under a hidden name.
  const claim = claimRun(runsDir, name);
  const runDir = claim.dir;
  let record: RunRecord;
  try {
    // Auto-tune: pick the recipe on a held-out slice of the calibration data (never the evaluation data).
    const autotune =
      request.autotune && calib && !decoders
        ? await autotuneRecipe(models, calib, {
            fuse: fuseLoaded,
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
    // Decoder LMs (GPT-2 / Llama-family HF folders): their own symmetry-respecting alignment (worker/fusion/decoder).
    const result = decoders
      ? await fuseDecoderFolders(files, calib, { signal: context.signal, onProgress: context.onProgress, weights: recipe.weights })
      : await fuseLoaded({
          models,
          recipe,
          calib,
          provider: request.provider,
          signal: context.signal,
          onProgress: context.onProgress,
          vanilla: !!evalSet,
          plans,
        });
    Object.assign(timings, result.timings);
    throwIfCancelled(context.signal);
    const tp = performance.now();
    // Decoder LMs have no graph plans and no partial fusion (refused above): fused.onnx is the fused model.
    const partial: Awaited<ReturnType<typeof partialStage>> = decoders
      ? { model: result.fused }
      : await partialStage({ ...result, models, recipe, evalSet, evalLimit: request.evalLimit, provider: request.provider }, context);
    if (partial.record) timings.partial = (performance.now() - tp) / 1000;
    result.fused = partial.model;
    sharedBase.identityMaps = identityMaps(result.maps);
    record = await writeRunFolder({ request, context, claim, files, models, recipe, result, evalSet, timings, t0, autotune });
    record = { ...record, sharedBase, ...(partial.record ? { partial: partial.record } : {}) };
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
  }
  emit({ stage: 'done', message: runDir });
  return { runDir, record };
}
