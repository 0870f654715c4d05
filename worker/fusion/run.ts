// `otfuse fuse`: load → analyse graphs → capture activations → align each model onto the anchor → average →
// write the run folder (fused.onnx, maps.safetensors, run.json) atomically → evaluate parents, vanilla, OT.
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { OtfuseError, throwIfCancelled } from '../errors';
import { loadModel, OnnxModel } from '../onnx/model';
import { writeDirAtomic, writeFileAtomic } from '../onnx/atomic';
import { saveModelAuto } from '../onnx/external';
import { openDataset, type Dataset } from '../data/dataset';
import { evaluateModel } from '../runtime/evaluate';
import { finetuneModel } from '../train/finetune';
import type { ProviderChoice, ProviderReport } from '../runtime/providers';
import { analyzeModel, type ModelPlan } from '../graph/analyze';
import type { FuseRequest, FuseResult, JobContext, LayerMapInfo, ModelMetrics, RunRecord, ProgressEvent, FinetuneResult, DataArg } from '../types';
import { captureActivations, estimateActivationBytes, StagedActivations, type ActivationStore, type CaptureOptions, type CaptureStats } from './activations';
import { alignModel, type MapRecord, type Params } from './align';
import { CostEngine } from './cost';
import { configureLinalg } from './linalg';
import { cloneForWeights, paramView } from './params';
import { MapStore } from './mapstore';
import { resolveRecipe, type ResolvedRecipe } from './recipe';
import type { TMap } from './maps';

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
  /** Build the plain-average baseline too (default true; fuseModels skips it when nothing is evaluated). */
  vanilla?: boolean;
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
  /** What activation capture did (run.json's `capture`). */
  capture?: RunRecord['capture'];
  /** The maps in their stored form (large ones spooled to a temp file; maps[k][i].map.plan is then empty). */
  mapStore: MapStore;
}

function paramsOf(model: OnnxModel): Params {
  return paramView(model); // zero-copy float32 views where possible, a small LRU otherwise (params.ts)
}

/** Parameters by role (position in the plan), so models exported with different names still pair up. */
export function planParams(plan: ModelPlan): [string, string][] {
  const out: [string, string][] = [];
  const add = (role: string, name?: string) => { if (name) out.push([role, name]); };
  const e = plan.embedding;
  if (e.kind === 'patch') { add('embed.cls', e.cls?.name); add('embed.pos', e.pos?.name); add('embed.patch.w', e.patch.weight); add('embed.patch.b', e.patch.bias); }
  else { for (const t of e.tables) add(`embed.table.${t.by}`, t.name); add('embed.ln.s', e.ln?.scale); add('embed.ln.b', e.ln?.bias); }
  for (const b of plan.blocks) {
    const p = `blocks.${b.index}`;
    add(`${p}.ln1.s`, b.ln1?.scale); add(`${p}.ln1.b`, b.ln1?.bias); add(`${p}.ln2.s`, b.ln2?.scale); add(`${p}.ln2.b`, b.ln2?.bias);
    for (const [k, l] of [['q', b.attn.q], ['k', b.attn.k], ['v', b.attn.v], ['o', b.attn.o], ['fc1', b.fc1], ['fc2', b.fc2]] as const) { add(`${p}.${k}.w`, l.weight); add(`${p}.${k}.b`, l.bias); }
  }
  const h = plan.head;
  add('head.ln.s', h.finalNorm?.scale); add('head.ln.b', h.finalNorm?.bias);
  add('head.pooler.w', h.pooler?.weight); add('head.pooler.b', h.pooler?.bias);
  add('head.cls.w', h.classifier.weight); add('head.cls.b', h.classifier.bias);
  return out;
}

/** How many OT maps one model's alignment solves (the total of the per-layer progress events). */
function solvedMapCount(plan: ModelPlan, recipe: ResolvedRecipe): number {
  const e = plan.embedding;
  const embed = e.kind === 'patch' ? 1 + (e.cls ? 1 : 0) + (e.pos ? 1 : 0) : 1;
  const attention = recipe.headAware ? 4 : recipe.qk === 'separate' ? 4 : 3; // (+ heads) q/k or qk, v, o
  return embed + plan.layers * (attention + 2) + (plan.head.pooler ? 1 : 0);
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
  const plans = models.map((m) => analyzeModel(m));
  checkCompatible(plans);
  timings.analyze = (performance.now() - t) / 1000;
  const roles = plans.map((p) => new Map(planParams(p)));
  const heterogeneous = models.slice(1).some((m, k) => {
    for (const [role, name] of roles[0]) {
      const other = roles[k + 1].get(role);
      if (!other || m.getInitializer(other).dims.join() !== models[0].getInitializer(name).dims.join()) return true;
    }
    return false;
  });

  // Activations (also needed by weight-based alignment when a weighted residual policy reads them).
  const needActs = recipe.alignBy === 'acts' || recipe.residualPolicy.startsWith('weighted');
  const acts: (ActivationStore | undefined)[] = models.map(() => undefined);
  let activationBytes = 0;
  t = performance.now();
  const captureOptions = (k: number): CaptureOptions => {
    const e = plans[k].embedding;
    return {
      samples: recipe.samples, batchSize: recipe.batchSize, tokenFilter: recipe.tokenFilter, standardize: recipe.standardize,
      tokenBudget: recipe.tokenBudget, tokenSeed: recipe.tokenSeed,
      provider: input.provider, signal: input.signal, grid: e.kind === 'patch' ? e.patch.grid : undefined, hasCls: e.kind === 'patch' ? !!e.cls : true,
    };
  };
  // Staged capture (one block's activations at a time) when all at once would be large.
  const staged = needActs && (recipe.capture === 'staged' || (recipe.capture === 'auto' && plans.some((p) => estimateActivationBytes(p, recipe.samples, recipe.tokenBudget) > STAGED_ABOVE_BYTES)));
  if (needActs) {
    if (!input.calib) throw new OtfuseError('BAD_USAGE', `alignment by ${recipe.alignBy === 'acts' ? 'activations' : `residual policy '${recipe.residualPolicy}'`} needs calibration data (--data)`);
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
  const mapStore = new MapStore(recipe.mapsDtype);
  const aligned: Map<string, Float32Array>[] = [new Map()];
  const layerCount = solvedMapCount(plans[0], recipe);
  const costs = await CostEngine.create(recipe.costEngine === 'ort', input.provider);
  configureLinalg({ provider: input.provider ?? 'cpu' });
  try {
    for (let k = 1; k < models.length; k++) {
      throwIfCancelled(input.signal);
      const records: MapRecord[] = [];
      let done = 0;
      aligned.push(await alignModel({
        anchor: { plan: plans[0], params: paramsOf(models[0]), acts: acts[0] },
        other: { plan: plans[k], params: paramsOf(models[k]), acts: acts[k] },
        recipe,
        costs,
        onMap: (r) => {
          records.push(mapStore.add(k, r));
          if (r.kind !== 'residual') emit({ stage: 'align', layer: r.name, message: `model ${k}`, done: ++done, total: layerCount, metrics: { cost: r.diagnostics.cost, entropy: r.diagnostics.entropy } });
        },
        tamper: input.tamper ? (name, map) => input.tamper!(k, name, map) : undefined,
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
  }
  timings.align = (performance.now() - t) / 1000;
  if (staged) activationBytes = acts.reduce((s, a) => s + ((a as StagedActivations | undefined)?.peakBytes ?? 0), 0);
  const stats = acts.map((a) => (a as { stats?: CaptureStats } | undefined)?.stats).filter((s): s is CaptureStats => !!s);
  let capture: RunRecord['capture'];
  if (stats.length) {
    const seconds = stats.reduce((s, x) => s + x.seconds, 0);
    // Staged capture runs inside the alignment loop: book its time under activations, not align.
    if (staged) { timings.activations = seconds; timings.align = Math.max(0, timings.align - seconds); }
    capture = {
      mode: staged ? 'staged' : 'all', passes: stats.reduce((s, x) => s + x.passes, 0), seconds, cpuSeconds: stats.reduce((s, x) => s + x.cpuSeconds, 0), tokenBudget: recipe.tokenBudget, tokenSeed: recipe.tokenSeed,
      tokens: stats[0].tokens, peakActivationBytes: Math.max(...stats.map((x) => x.peakBytes)), peakCacheBytes: Math.max(...stats.map((x) => x.peakCacheBytes)),
    };
  }

  // Weighted average into a clone of the anchor.
  t = performance.now();
  const alpha = recipe.weights ?? models.map(() => 1 / models.length);
  if (alpha.length !== models.length) throw new OtfuseError('BAD_USAGE', `recipe.weights has ${alpha.length} entries for ${models.length} models`);
  const asum = alpha.reduce((a, b) => a + b, 0);
  const fused = cloneForWeights(models[0]);
  const anchorParams = paramsOf(models[0]);
  for (const [, name] of roles[0]) {
    const base = anchorParams.get(name).data;
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

  let vanilla: OnnxModel | undefined;
  if (!heterogeneous && input.vanilla !== false) {
    vanilla = cloneForWeights(models[0]);
    for (const [role, name] of roles[0]) {
      const acc = new Float64Array(anchorParams.get(name).data.length);
      for (let k = 0; k < models.length; k++) {
        const d = models[k].getInitializer(roles[k].get(role)!).data;
        for (let i = 0; i < acc.length; i++) acc[i] += (alpha[k] / asum) * d[i];
      }
      vanilla.setInitializer(name, Float32Array.from(acc));
    }
  }
  return { fused, vanilla, plans, heterogeneous, maps, timings, activationBytes, capture, mapStore };
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
  const recipe = resolveRecipe(request.recipe ?? {});
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

  const result = await fuseLoaded({ models, recipe, calib, provider: request.provider, signal: context.signal, onProgress: context.onProgress, vanilla: !!evalSet });
  Object.assign(timings, result.timings);
  throwIfCancelled(context.signal);

  const record: RunRecord = await writeDirAtomic(runDir, async (tmp) => {
    t = performance.now();
    emit({ stage: 'write', message: 'fused model and maps' });
    const fusedPath = path.join(tmp, 'fused.onnx');
    saveModelAuto(result.fused, fusedPath); // over 2 GB: weights in fused.onnx.data next to it
    const layers: LayerMapInfo[] = [];
    for (let k = 1; k < result.maps.length; k++) {
      for (const r of result.maps[k]) layers.push({ name: r.name, kind: r.kind, rows: r.map.n, cols: r.map.m, model: k, tensor: `m${k}/${r.name}`, diagnostics: r.diagnostics });
    }
    // Streamed from the map store (float32, or float16 with recipe.mapsDtype 'F16'), never built in memory.
    try {
      result.mapStore.write(path.join(tmp, 'maps.safetensors'), { format: 'otfuse-maps', scaling: 'n*P: rows sum to 1 (other model rows, anchor columns)' });
    } finally {
      result.mapStore.release();
    }
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
    timings.total = (performance.now() - t0) / 1000;
    const rec: RunRecord = {
      id, name, status: 'done', createdAt: new Date().toISOString(), recipe: { ...request.recipe, ...publicRecipe(recipe) },
      models: files, anchor: files[0], fusedModel: request.output ? path.resolve(request.output) : path.join(runDir, 'fused.onnx'),
      versions: versions(), provider, timings, metrics, layers, mapsFile: 'maps.safetensors',
      ...(finetune ? { finetune } : {}),
      ...(result.capture ? { capture: result.capture } : {}),
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      // Absolute paths, so re-evaluating or finetuning the run later works from any working directory.
      ...(request.data !== undefined ? { data: absoluteData(request.data) } : {}),
      ...(evalSet ? { evalData: absoluteData((request.evalData ?? request.data)!) } : {}),
    };
    writeFileAtomic(path.join(tmp, 'run.json'), JSON.stringify(rec, null, 1));
    throwIfCancelled(context.signal);
    // The requested output goes last so a failure before it leaves neither the folder nor the file.
    if (request.output) saveModelAuto(result.fused, path.resolve(request.output));
    return rec;
  });
  emit({ stage: 'done', message: runDir });
  return { runDir, record };
}

function publicRecipe(r: ResolvedRecipe): RunRecord['recipe'] {
  return {
    name: r.name, alignBy: r.alignBy, solver: r.solver, reg: r.reg, groundMetric: r.groundMetric, costNorm: r.costNorm,
    residualPolicy: r.residualPolicy, qk: r.qk, samples: r.samples, tokenFilter: r.tokenFilter, tokenBudget: r.tokenBudget, tokenSeed: r.tokenSeed, standardize: r.standardize, mapsDtype: r.mapsDtype,
    weights: r.weights, preset: r.preset, headAware: r.headAware,
  };
}

function absoluteData(arg: DataArg): DataArg {
  if (typeof arg === 'string') return path.resolve(arg);
  return { ...arg, path: path.resolve(arg.path), ...(arg.labels ? { labels: path.resolve(arg.labels) } : {}) };
}
