// `otfuse fuse`: load → analyse graphs → capture activations → align each model onto the anchor → average →
// write the run folder (fused.onnx, maps.safetensors, run.json) atomically → evaluate parents, vanilla, OT.
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { OtfuseError, throwIfCancelled } from '../errors';
import { loadModel, OnnxModel } from '../onnx/model';
import { writeDirAtomic, writeFileAtomic } from '../onnx/atomic';
import { openDataset, type Dataset } from '../data/dataset';
import { evaluateModel } from '../runtime/evaluate';
import { finetuneModel } from '../train/finetune';
import { autotuneRecipe, AUTOTUNE_DEFAULT_BUDGET_S } from './autotune';
import { baselineMetrics } from './baselines';
import type { ProviderChoice, ProviderReport } from '../runtime/providers';
import { analyzeModel, type LinearRef, type ModelPlan } from '../graph/analyze';
export type { ParamRole } from './schedule';
import { ParamSink, biasRegion, readBias, readWeight, toStorage, weightRegion } from './slices';
import { compileSchedule, scheduleParams, solvedMapCount, type ParamRole } from './schedule';
import type { FuseRequest, FuseResult, JobContext, LayerMapInfo, ModelMetrics, RunRecord, ProgressEvent, FinetuneResult, DataArg } from '../types';
import { captureActivations, estimateActivationBytes, StagedActivations, type ActivationStore, type CaptureOptions } from './activations';
import { alignModel, type MapRecord, type Params } from './align';
import { CostEngine } from './cost';
import { releaseSinkhornSessions } from '../ot/sinkhorn-ort';
import { resolveRecipe, RECIPE_FIELDS, type ResolvedRecipe } from './recipe';
import { ALIGN_BY, REFITS, RESIDUAL_POLICIES } from './registry';
import { encodeSafetensors, type StTensor } from './safetensors';
import type { TMap } from './maps';
import { refitModel, type RefitLayerResult } from './refit';

export const OTFUSE_VERSION = '0.1.0';

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
  /** For tests: alter a solved map (model index, map name). */
  tamper?: (model: number, name: string, map: TMap) => TMap;
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
}

function paramsOf(model: OnnxModel): Params {
  const cache = new Map<string, { dims: number[]; data: Float32Array }>();
  return {
    get(name) {
      let v = cache.get(name);
      if (!v) { const i = model.getInitializer(name); v = { dims: i.dims, data: i.data }; cache.set(name, v); }
      return v;
    },
  };
}

/** Parameters by role (position in the alignment schedule), so models exported with different names or packings pair up. */
export function planParams(plan: ModelPlan): ParamRole[] {
  return scheduleParams(compileSchedule(plan), plan);
}

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
    if (p.layers !== a.layers) throw new OtfuseError('MISMATCH', `${p.layers} transformer blocks but the anchor ${a.file} has ${a.layers}: depths must match`, { file: p.file, node: p.blocks[Math.min(p.layers, a.layers) - 1]?.mlpAddNode });
    if (p.heads !== a.heads) throw new OtfuseError('MISMATCH', `${p.heads} attention heads but the anchor ${a.file} has ${a.heads}: head counts must match`, { file: p.file, node: p.blocks[0].attn.scoresNode });
    if ((p.tokens ?? -1) !== (a.tokens ?? -1)) throw new OtfuseError('MISMATCH', `${p.tokens} tokens but the anchor has ${a.tokens}`, { file: p.file, node: p.embedding.kind === 'patch' ? p.embedding.pos?.node : undefined });
    if (p.head.classes !== a.head.classes) throw new OtfuseError('MISMATCH', `${p.head.classes} classes but the anchor has ${a.head.classes}`, { file: p.file, node: p.head.classifier.node });
    if (p.blocks[0].norm !== a.blocks[0].norm) throw new OtfuseError('MISMATCH', `${p.blocks[0].norm}-LN blocks but the anchor has ${a.blocks[0].norm}-LN`, { file: p.file });
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
  t = performance.now();
  const captureOptions = (k: number): CaptureOptions => {
    const e = plans[k].embedding;
    return {
      samples: recipe.samples, batchSize: recipe.batchSize, tokenFilter: recipe.tokenFilter, standardize: recipe.standardize,
      provider: input.provider, signal: input.signal, grid: e.kind === 'patch' ? e.patch.grid : undefined, hasCls: e.kind === 'patch' ? !!e.cls : true,
    };
  };
  // Staged capture (one block's activations at a time) when all at once would be large.
  const staged = needActs && (recipe.capture === 'staged' || (recipe.capture === 'auto' && plans.some((p) => estimateActivationBytes(p, recipe.samples) > STAGED_ABOVE_BYTES)));
  if (needActs) {
    if (!input.calib) {
      const why = ALIGN_BY[recipe.alignBy].needsActivations ? 'alignment by activations' : RESIDUAL_POLICIES[recipe.residualPolicy].needsActivations ? `residual policy '${recipe.residualPolicy}'` : `refit '${recipe.refit}'`;
      throw new OtfuseError('BAD_USAGE', `${why} needs calibration data (--data)`);
    }
    for (let k = 0; k < models.length; k++) {
      throwIfCancelled(input.signal);
      if (staged) { acts[k] = new StagedActivations(models[k], plans[k], input.calib, captureOptions(k)); continue; }
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
  const aligned: Map<string, Float64Array>[] = [new Map()];
  const inputMaps: Map<LinearRef, TMap | null>[] = [new Map()];
  const layerCount = solvedMapCount(compileSchedule(plans[0]), plans[0], recipe);
  const costs = await CostEngine.create(recipe.costEngine === 'ort');
  // OT solvers follow the execution provider: a GPU provider runs those with an ONNX Runtime path there.
  const otProvider = input.provider === 'cuda' || input.provider === 'webgpu' ? input.provider : recipe.otBackend === 'ort' ? 'cpu' : undefined;
  try {
    for (let k = 1; k < models.length; k++) {
      throwIfCancelled(input.signal);
      const records: MapRecord[] = [];
      const linearMaps = new Map<LinearRef, TMap | null>();
      inputMaps.push(linearMaps);
      let done = 0;
      aligned.push(await alignModel({
        anchor: { plan: plans[0], params: params[0], acts: acts[0] },
        other: { plan: plans[k], params: params[k], acts: acts[k] },
        recipe,
        costs,
        onMap: (r) => {
          records.push(r);
          if (r.kind !== 'residual') emit({ stage: 'align', layer: r.name, message: `model ${k}`, done: ++done, total: layerCount, metrics: { cost: r.diagnostics.cost, entropy: r.diagnostics.entropy } });
        },
        tamper: input.tamper ? (name, map) => input.tamper!(k, name, map) : undefined,
        onLinear: (la, mapIn) => linearMaps.set(la, mapIn),
        otProvider,
        prepare: staged ? async (stage) => {
          throwIfCancelled(input.signal);
          emit({ stage: 'activations', message: `stage ${stage} (model ${k})` });
          for (const i of [0, k]) await (acts[i] as StagedActivations).prepare(stage);
        } : undefined,
      }));
      maps.push(records);
    }
  } finally {
    await costs.release();
    if (otProvider) await releaseSinkhornSessions();
  }
  timings.align = (performance.now() - t) / 1000;
  if (staged) activationBytes = acts.reduce((s, a) => s + ((a as StagedActivations | undefined)?.peakBytes ?? 0), 0);

  // Weighted average into a clone of the anchor.
  t = performance.now();
  const alpha = recipe.weights ?? models.map(() => 1 / models.length);
  if (alpha.length !== models.length) throw new OtfuseError('BAD_USAGE', `recipe.weights has ${alpha.length} entries for ${models.length} models`);
  const asum = alpha.reduce((a, b) => a + b, 0);
  const fused = models[0].clone();
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
      mode: recipe.refit, ridge: recipe.refitRidge, models, plans, fused, aligned, alpha: alpha.map((a) => a / asum), inputMaps,
      calib: input.calib!, samples: recipe.samples, batchSize: recipe.batchSize, provider: input.provider, signal: input.signal,
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
  }

  let vanilla: OnnxModel | undefined;
  if (!heterogeneous) {
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
    vanilla = models[0].clone();
    for (const [name, v] of sink.finish()) vanilla.setInitializer(name, Float32Array.from(v));
  }
  return { fused, vanilla, plans, heterogeneous, maps, timings, activationBytes, refit };
}

function stamp(d = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function versions(): Record<string, string> {
  const v: Record<string, string> = { otfuse: OTFUSE_VERSION, node: process.version };
  const ortVersions = (ort.env as unknown as { versions?: Record<string, string> }).versions;
  if (ortVersions?.common) v.onnxruntime = ortVersions.common;
  return v;
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
  if (recipe.weights && recipe.weights.length !== files.length) throw new OtfuseError('BAD_USAGE', `recipe.weights has ${recipe.weights.length} entries for ${files.length} models`);

  const timings: Record<string, number> = {};
  let t = performance.now();
  emit({ stage: 'load', total: files.length });
  const models = files.map((f) => loadModel(f));
  timings.load = (performance.now() - t) / 1000;
  throwIfCancelled(context.signal);

  const calib = request.data !== undefined ? openDataset(request.data) : undefined;
  const evalSet = request.skipEval ? undefined : request.evalData !== undefined ? openDataset(request.evalData) : calib;

  const name = (recipe.name !== 'fusion' ? recipe.name : `${path.basename(files[1], '.onnx')}-into-${path.basename(files[0], '.onnx')}`).replace(/[^\w.-]+/g, '_');
  const runsDir = path.resolve(request.runsDir ?? path.join('.otfuse', 'runs'));
  let id = `${stamp()}-${name}`;
  for (let i = 2; fs.existsSync(path.join(runsDir, id)); i++) id = `${stamp()}-${name}-${i}`;
  const runDir = path.join(runsDir, id);

  // Auto-tune (quality helper's hook): pick the recipe on a held-out slice of the calibration data.
  const autotune = request.autotune && calib ? await autotuneRecipe(models, calib, {
    base: request.recipe, provider: request.provider, signal: context.signal, onProgress: context.onProgress,
    budgetSeconds: typeof request.autotune === 'object' ? request.autotune.budgetSeconds ?? AUTOTUNE_DEFAULT_BUDGET_S : AUTOTUNE_DEFAULT_BUDGET_S,
  }) : undefined;
  if (autotune) { recipe = resolveRecipe(autotune.chosen); timings.autotune = autotune.seconds; }
  const result = await fuseLoaded({ models, recipe, calib, provider: request.provider, signal: context.signal, onProgress: context.onProgress });
  Object.assign(timings, result.timings);
  throwIfCancelled(context.signal);

  const record: RunRecord = await writeDirAtomic(runDir, async (tmp) => {
    t = performance.now();
    emit({ stage: 'write', message: 'fused model and maps' });
    const fusedPath = path.join(tmp, 'fused.onnx');
    result.fused.save(fusedPath);
    const tensors: Record<string, StTensor> = {};
    const layers: LayerMapInfo[] = [];
    for (let k = 1; k < result.maps.length; k++) {
      for (const r of result.maps[k]) {
        const key = `m${k}/${r.name}`;
        const data = new Float32Array(r.map.plan.length);
        for (let i = 0; i < data.length; i++) data[i] = r.map.plan[i] * r.map.n;
        tensors[key] = { shape: [r.map.n, r.map.m], data };
        layers.push({ name: r.name, kind: r.kind, rows: r.map.n, cols: r.map.m, model: k, tensor: key, diagnostics: r.diagnostics });
      }
    }
    writeFileAtomic(path.join(tmp, 'maps.safetensors'), encodeSafetensors(tensors, { format: 'otfuse-maps', scaling: 'n*P: rows sum to 1 (other model rows, anchor columns)' }));
    timings.write = (performance.now() - t) / 1000;

    const metrics: ModelMetrics[] = [];
    let provider: ProviderReport | undefined;
    t = performance.now();
    if (evalSet) {
      const targets: { label: string; file?: string; model: OnnxModel }[] = [
        ...models.map((m, k) => ({ label: `${path.basename(m.file)}${k === 0 ? ' (anchor)' : ''}`, file: m.file, model: m })),
        ...(result.vanilla ? [{ label: 'vanilla', model: result.vanilla }] : []),
        { label: 'ot', file: request.output ? path.resolve(request.output) : path.join(runDir, 'fused.onnx'), model: result.fused },
      ];
      for (let i = 0; i < targets.length; i++) {
        throwIfCancelled(context.signal);
        emit({ stage: 'evaluate', message: targets[i].label, done: i, total: targets.length });
        const r = await evaluateModel(targets[i].model, evalSet, { limit: request.evalLimit, provider: request.provider, signal: context.signal, batchSize: 256 });
        provider = r.provider;
        metrics.push({ label: targets[i].label, file: targets[i].file, accuracy: r.accuracy, loss: r.loss });
        emit({ stage: 'evaluate', message: targets[i].label, done: i + 1, total: targets.length, metrics: { accuracy: r.accuracy, loss: r.loss } });
      }
    }
    timings.evaluate = (performance.now() - t) / 1000;

    // Optional finetune of the fused model, as one more stage of the same run (its checkpoint lives in the folder).
    let finetune: FinetuneResult | undefined;
    if (request.finetune) {
      t = performance.now();
      const tuned = path.join(tmp, 'finetuned.onnx');
      const { data: trainData, evalData: ftEval, ...options } = request.finetune;
      finetune = await finetuneModel({ ...options, provider: options.provider ?? request.provider, model: fusedPath, data: trainData, evalData: ftEval ?? request.evalData ?? request.data, output: tuned }, context);
      finetune = { ...finetune, output: path.join(runDir, 'finetuned.onnx') };
      timings.finetune = (performance.now() - t) / 1000;
      if (evalSet) {
        const r = await evaluateModel(loadModel(tuned), evalSet, { limit: request.evalLimit, provider: request.provider, signal: context.signal, batchSize: 256 });
        metrics.push({ label: 'ot+finetune', file: finetune.output, accuracy: r.accuracy, loss: r.loss });
      }
    }
    if (request.baselines && evalSet) metrics.push(...await baselineMetrics(result.fused, models, result.vanilla, evalSet, request, context));
    timings.total = (performance.now() - t0) / 1000;
    const rec: RunRecord = {
      id, name, status: 'done', createdAt: new Date().toISOString(), recipe: { ...request.recipe, ...publicRecipe(recipe) },
      models: files, anchor: files[0], fusedModel: request.output ? path.resolve(request.output) : path.join(runDir, 'fused.onnx'),
      versions: versions(), provider, timings, metrics, layers, mapsFile: 'maps.safetensors',
      ...(finetune ? { finetune } : {}),
      ...(autotune ? { autotune } : {}),
      ...(result.refit ? { refit: result.refit } : {}),
      // Absolute paths, so re-evaluating or finetuning the run later works from any working directory.
      ...(request.data !== undefined ? { data: absoluteData(request.data) } : {}),
      ...(evalSet ? { evalData: absoluteData((request.evalData ?? request.data)!) } : {}),
    };
    writeFileAtomic(path.join(tmp, 'run.json'), JSON.stringify(rec, null, 1));
    throwIfCancelled(context.signal);
    // The requested output goes last so a failure before it leaves neither the folder nor the file.
    if (request.output) result.fused.save(path.resolve(request.output));
    return rec;
  });
  emit({ stage: 'done', message: runDir });
  return { runDir, record };
}

/** The recipe as run.json records it: every public field (RECIPE_FIELDS), resolved. */
function publicRecipe(r: ResolvedRecipe): RunRecord['recipe'] {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(RECIPE_FIELDS)) if (k !== '$schema' && (r as unknown as Record<string, unknown>)[k] !== undefined) out[k] = (r as unknown as Record<string, unknown>)[k];
  return out as RunRecord['recipe'];
}

function absoluteData(arg: DataArg): DataArg {
  if (typeof arg === 'string') return path.resolve(arg);
  return { ...arg, path: path.resolve(arg.path), ...(arg.labels ? { labels: path.resolve(arg.labels) } : {}) };
}
