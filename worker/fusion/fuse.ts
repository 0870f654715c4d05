// The fusion on loaded models, no files written: analyse the graphs → capture activations → align each model onto
// the anchor → weighted average → optional refit (and the plain average beside it). The job around it — load,
// claim and write the run folder, auto-tune, evaluate — is worker/jobs/run.ts.
import path from 'node:path';
import { OtfuseError, throwIfCancelled } from '../errors';
import type { OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import type { ProviderChoice } from '../runtime/providers';
import { analyzeModel, type LinearRef, type ModelPlan } from '../graph/analyze';
import { ParamSink, biasRegion, readBias, readWeight, toStorage, weightRegion, type ParamValues } from './slices';
import { compileSchedule, planParams, solvedMapCount, type ParamRole } from './schedule';
import type { RunRecord, ProgressEvent } from '../types';
import { captureSampleCount } from './calibinputs';
import { captureActivations, estimateActivationBytes, StagedActivations, type ActivationStore, type CaptureOptions, type CaptureStats } from './activations';
import { alignModel, type MapRecord, type Params } from './align';
import { CostEngine } from './cost';
import { releaseSinkhornSessions } from '../ot/sinkhorn-ort';
import { parentWeights, type ResolvedRecipe } from './recipe';
import { ALIGN_BY, REFITS, RESIDUAL_POLICIES } from './registry';
import { configureLinalg } from './linalg';
import { cloneForWeights, paramView } from '../onnx/params';
import { MapStore } from './mapstore';
import type { TMap } from './maps';
import { refitModel, refitLevels, type RefitLayerResult } from './refit';
import { CaptureGrams } from './refitgrams';
import { refitSampleWeights } from './refitmix';
import { CaptureShare, type CostCache } from './share';

export type { ParamRole } from './schedule';

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
  /** Captures and tapped Grams shared with other fusions of the same models and samples (share.ts). */
  share?: CaptureShare;
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

/** Each model's parameters by role, and whether any role's shape differs from the anchor's (other widths). */
function pairRoles(models: OnnxModel[], plans: ModelPlan[]): { params: Params[]; roles: Map<string, ParamRole>[]; heterogeneous: boolean } {
  const params = models.map((m) => paramsOf(m));
  const roles = plans.map((p) => new Map(planParams(p).map((r) => [r.role, r])));
  const heterogeneous = models.slice(1).some((_, j) => {
    for (const [role, ra] of roles[0]) {
      const rb = roles[j + 1].get(role);
      if (!rb || roleShape(params[j + 1], rb) !== roleShape(params[0], ra)) return true;
    }
    return false;
  });
  return { params, roles, heterogeneous };
}

/** The calibration activations of every model: all at once, or staged (one block's at a time, prepared by the
 * alignment) when all at once would be large. */
async function captureAll(
  input: LoadedFusionInput,
  plans: ModelPlan[],
  grams: CaptureGrams | undefined,
  emit: (e: ProgressEvent) => void,
): Promise<{ acts: (ActivationStore | undefined)[]; staged: boolean; activationBytes: number }> {
  const { models, recipe } = input;
  const needActs = ALIGN_BY[recipe.alignBy].needsActivations || RESIDUAL_POLICIES[recipe.residualPolicy].needsActivations;
  const acts: (ActivationStore | undefined)[] = models.map(() => undefined);
  let activationBytes = 0;
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
  return { acts, staged, activationBytes };
}

interface Captured {
  acts: (ActivationStore | undefined)[];
  staged: boolean;
  grams?: CaptureGrams;
  /** Costs already computed from these activations by another fusion (a shared capture's, share.ts). */
  costs?: CostCache;
}

/** Aligns every other model onto the anchor: their maps (records and stored form), each linear layer's input map
 * (for the refit), and the aligned values pushed onto `aligned` (spooled to temp files). */
async function alignAll(
  input: LoadedFusionInput,
  plans: ModelPlan[],
  params: Params[],
  { acts, staged, grams, costs: costCache }: Captured,
  aligned: ParamValues[],
  emit: (e: ProgressEvent) => void,
): Promise<{ maps: MapRecord[][]; mapStore: MapStore; inputMaps: Map<LinearRef, TMap | null>[]; cutMaps?: (TMap | null)[][] }> {
  const { models, recipe } = input;
  const maps: MapRecord[][] = [[]];
  const mapStore = new MapStore(recipe.mapsDtype);
  const inputMaps: Map<LinearRef, TMap | null>[] = [new Map()];
  // Partial fusion reads each model's input map of every block's Q (the stream map at the cut).
  const keepCuts = recipe.pareto || (recipe.mergeLayers !== undefined && recipe.mergeLayers < plans[0].layers);
  const cutBlock = new Map(plans[0].blocks.map((b, i) => [b.attn.q, i]));
  const cutMaps: (TMap | null)[][] = models.map(() => []);
  const layerCount = solvedMapCount(compileSchedule(plans[0]), plans[0], recipe);
  const costs = (await CostEngine.create(recipe.costEngine === 'ort', input.provider)).useCache(costCache);
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
  return { maps, mapStore, inputMaps, ...(keepCuts ? { cutMaps } : {}) };
}

/** run.json's `capture`; a staged capture ran inside the alignment loop, so its time moves from align to activations. */
function captureRecord(acts: (ActivationStore | undefined)[], staged: boolean, recipe: ResolvedRecipe, timings: Record<string, number>): RunRecord['capture'] {
  const stats = acts.map((a) => (a as { stats?: CaptureStats } | undefined)?.stats).filter((s): s is CaptureStats => !!s);
  if (!stats.length) return undefined;
  const seconds = stats.reduce((s, x) => s + x.seconds, 0);
  // Staged capture runs inside the alignment loop: book its time under activations, not align.
  if (staged) {
    timings.activations = seconds;
    timings.align = Math.max(0, timings.align - seconds);
  }
  return {
    mode: staged ? 'staged' : 'all',
    passes: stats.reduce((s, x) => s + x.passes, 0),
    seconds,
    cpuSeconds: stats.reduce((s, x) => s + x.cpuSeconds, 0),
    samples: stats[0].samples,
    tokenBudget: recipe.tokenBudget,
    tokenSeed: recipe.tokenSeed,
    tokens: stats[0].tokens,
    peakActivationBytes: Math.max(...stats.map((x) => x.peakBytes)),
    peakCacheBytes: Math.max(...stats.map((x) => x.peakCacheBytes)),
  };
}

/** Weighted average of the aligned values into a clone of the anchor. */
function weightedAverage(
  models: OnnxModel[],
  params: Params[],
  roles: Map<string, ParamRole>[],
  aligned: ParamValues[],
  alpha: number[],
  asum: number,
): OnnxModel {
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
  return fused;
}

/** The optional closed-form refit of every aligned linear layer (refit.ts); its per-layer diagnostics go with the
 * layer's maps. */
async function refitStage(
  mode: Exclude<ResolvedRecipe['refit'], 'none'>,
  input: LoadedFusionInput,
  plans: ModelPlan[],
  fused: OnnxModel,
  aligned: ParamValues[],
  weights: number[],
  inputMaps: Map<LinearRef, TMap | null>[],
  maps: MapRecord[][],
  grams: CaptureGrams | undefined,
  fresh: boolean,
  timings: Record<string, number>,
  emit: (e: ProgressEvent) => void,
): Promise<RefitLayerResult[]> {
  const { models, recipe } = input;
  const t = performance.now();
  const mixOf = { mix: recipe.refitMix, models, alpha: weights, calib: input.calib!, samples: recipe.samples, provider: input.provider, signal: input.signal };
  const sampleWeights = await refitSampleWeights(mixOf);
  const refit = await refitModel({
    sampleWeights,
    grams: grams?.ready ? grams : undefined,
    resolveMap: grams ? (m) => grams.resolveMap(m) : undefined,
    mode,
    ridge: recipe.refitRidge,
    models,
    plans,
    fused,
    aligned,
    alpha: weights,
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
  // The Gram products ran inside the capture: book them under the refit (not again when shared).
  if (grams?.ready && fresh) {
    timings.refit += grams.seconds;
    if (process.env.OTFUSE_DEBUG) console.error(`refit grams ${grams.seconds.toFixed(1)} s`);
    timings.activations = Math.max(0, timings.activations - grams.seconds);
  }
  return refit;
}

/** The plain average, role by role (canonical values, so differently packed or laid-out exports still pair up). */
function plainAverage(models: OnnxModel[], params: Params[], roles: Map<string, ParamRole>[], plans: ModelPlan[], alpha: number[], asum: number): OnnxModel {
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
  const vanilla = cloneForWeights(models[0]);
  for (const [name, v] of sink.finishInMemory()) vanilla.setInitializer(name, Float32Array.from(v));
  return vanilla;
}

/** The fusion itself on loaded models (no files written). */
export async function fuseLoaded(given: LoadedFusionInput): Promise<LoadedFusionResult> {
  const { models } = given;
  const timings: Record<string, number> = {};
  const emit = (e: ProgressEvent) => given.onProgress?.(e);
  let t = performance.now();
  const plans = given.plans ?? models.map((m) => analyzeModel(m));
  checkCompatible(plans);
  const { params, roles, heterogeneous } = pairRoles(models, plans);

  // Activations (also needed by weight-based alignment when a weighted residual policy reads them).
  const needActs = ALIGN_BY[given.recipe.alignBy].needsActivations || RESIDUAL_POLICIES[given.recipe.residualPolicy].needsActivations;
  // Captures, Grams and the refit's own passes run the samples the token budget can use (the same for every model).
  const input = needActs && given.calib ? await withPassedSamples(given, plans) : given;
  const { recipe } = input;
  timings.analyze = (performance.now() - t) / 1000;
  if (REFITS[recipe.refit].needsActivations && !input.calib) throw new OtfuseError('BAD_USAGE', `refit '${recipe.refit}' needs calibration data (--data)`);
  // regmean's Grams come out of the capture's own forward pass (taps), not a second pass of the refit.
  const wantGrams = needActs && recipe.refit === 'regmean' && recipe.refitMix === 'uniform' && !!input.calib && !input.refitOwnPass;
  // A capture (and its Grams) another fusion of the same models and samples made: reused, read only.
  const shareKey = input.share && needActs && input.calib ? CaptureShare.key(models, input.calib, captureKey(input)) : undefined;
  const shared = shareKey ? input.share!.get(shareKey, wantGrams) : undefined;
  if (shareKey && !shared) await input.share!.clear();
  const grams = shared
    ? wantGrams
      ? shared.grams
      : undefined
    : wantGrams
      ? new CaptureGrams(models, refitLevels(plans).flat(), {
          samples: recipe.samples,
          datasetSize: input.calib!.size,
          tokenBudget: recipe.tokenBudget,
          tokenSeed: recipe.tokenSeed,
        })
      : undefined;
  let owned = !shared; // whether this fusion releases the captures and Grams (not when a share holds them)
  // Aligned values of each model (spooled to temp files by the alignment; released below).
  const aligned: ParamValues[] = [new Map()];
  try {
    t = performance.now();
    const captured = shared ? { acts: [...shared.acts], staged: false, activationBytes: shared.activationBytes } : await captureAll(input, plans, grams, emit);
    const { acts, staged } = captured;
    let activationBytes = captured.activationBytes;
    if (shareKey && !shared && !staged) owned = !input.share!.offer(shareKey, { acts: [...acts], activationBytes, grams });
    timings.activations = (performance.now() - t) / 1000;
    // The share's activations come with the costs other fusions computed from them (and keep this one's).
    const costs = shareKey && !owned ? input.share!.costsFor(shareKey) : undefined;

    // Align every other model onto the anchor.
    t = performance.now();
    const { maps, mapStore, inputMaps, cutMaps } = await alignAll(input, plans, params, { acts, staged, grams, costs }, aligned, emit);
    // Stages the alignment did not need still feed the refit's Grams.
    if (grams && staged) for (const a of acts) await (a as StagedActivations).finishTaps();
    timings.align = (performance.now() - t) / 1000;
    if (staged) activationBytes = acts.reduce((s, a) => s + ((a as StagedActivations | undefined)?.peakBytes ?? 0), 0);
    const capture = captureRecord(acts, staged, recipe, timings);

    // Activations are no longer needed (the refit reads its Grams from the spool or runs its own passes): their
    // buffers go before the fused model is built (ViT-B: ~0.8 GB of captured matrices and cached streams).
    for (let k = 0; k < acts.length; k++) {
      if (owned) acts[k]?.release?.();
      acts[k] = undefined;
    }

    // Weighted average into a clone of the anchor.
    t = performance.now();
    const alpha = parentWeights(recipe, models.length);
    if (alpha.length !== models.length) throw new OtfuseError('BAD_USAGE', `recipe.weights has ${alpha.length} entries for ${models.length} models`);
    const asum = alpha.reduce((a, b) => a + b, 0);
    const fused = weightedAverage(models, params, roles, aligned, alpha, asum);
    timings.average = (performance.now() - t) / 1000;

    // Optional closed-form refit of every aligned linear layer from calibration activations (refit.ts).
    const weights = alpha.map((a) => a / asum);
    const refit =
      recipe.refit !== 'none'
        ? await refitStage(recipe.refit, input, plans, fused, aligned, weights, inputMaps, maps, grams, !shared, timings, emit)
        : undefined;
    // The vanilla baseline is the paper's plain average: at the user's `weights` when given, else uniform (an
    // anchorWeight, e.g. the auto-tune's, weighs the fusion, not the baseline it is read against).
    const plain = parentWeights({ weights: recipe.weights }, models.length);
    const vanilla =
      !heterogeneous && input.vanilla !== false
        ? plainAverage(
            models,
            params,
            roles,
            plans,
            plain,
            plain.reduce((a, b) => a + b, 0),
          )
        : undefined;
    return { fused, vanilla, plans, heterogeneous, maps, timings, activationBytes, refit, capture, mapStore, ...(cutMaps ? { cutMaps } : {}) };
  } finally {
    for (const a of aligned) a.release?.();
    if (owned) await grams?.release();
  }
}

/** The input with recipe.samples lowered to what a capture passes (calibinputs.ts): the most any model needs. */
async function withPassedSamples(input: LoadedFusionInput, plans: ModelPlan[]): Promise<LoadedFusionInput> {
  const { recipe } = input;
  const counts = await Promise.all(
    input.models.map((m, k) =>
      captureSampleCount(m, plans[k], input.calib!, {
        samples: recipe.samples,
        batchSize: recipe.batchSize,
        tokenFilter: recipe.tokenFilter,
        tokenBudget: recipe.tokenBudget,
      }),
    ),
  );
  const samples = Math.max(...counts);
  return samples < recipe.samples ? { ...input, recipe: { ...recipe, samples } } : input;
}

/** What determines a capture besides the models and the data file (share.ts's key). */
function captureKey(input: LoadedFusionInput): Record<string, unknown> {
  const { recipe } = input;
  return {
    samples: Math.min(recipe.samples, input.calib!.size),
    batchSize: recipe.batchSize,
    tokenFilter: recipe.tokenFilter,
    standardize: recipe.standardize,
    tokenBudget: recipe.tokenBudget,
    tokenSeed: recipe.tokenSeed,
    provider: input.provider ?? 'default',
    absMeans: RESIDUAL_POLICIES[recipe.residualPolicy].needsActivations,
  };
}
