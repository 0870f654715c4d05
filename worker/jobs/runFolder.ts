// Writes a fusion's run folder (inside the hidden folder claimed by worker/runs/store): the maps, the evaluation
// of every parent, vanilla and OT, the fused model with its lineage, an optional finetune stage, and run.json.
import path from 'node:path';
import { ortVersions as ortVersionNumbers } from '../runtime/session';
import { throwIfCancelled, toErrorInfo } from '../errors';
import { loadModel, type OnnxModel } from '../onnx/model';
import { saveModelAuto } from '../onnx/external';
import fs from 'node:fs';
import type { Dataset } from '../data/dataset';
import { evaluateModel } from '../runtime/evaluate';
import { finetuneModel } from '../train/finetune';
import type { ProviderReport } from '../runtime/providers';
import type {
  AutotuneRecord,
  DataArg,
  DataRef,
  FinetuneResult,
  FuseRequest,
  JobContext,
  LayerMapInfo,
  MetricRole,
  ModelMetrics,
  ProgressEvent,
  RunRecord,
} from '../types';
import { MAPS_FILE, writeRecord, type RunClaim } from '../runs/store';
import { sha256File, stampLineage } from '../runs/lineage';
import { dataRef, finetuneProvenance, sameData } from '../runs/provenance';
import { RUN_SCHEMA_VERSION } from '../runs/schema';
import type { MapRecord } from '../fusion/align';
import { RECIPE_FIELDS, type ResolvedRecipe } from '../fusion/recipe';
import { baselineMetrics } from './baselines';
import type { RefitLayerResult } from '../fusion/refit';
import type { MapStore } from '../fusion/mapstore';

export const OTFUSE_VERSION = '0.1.0';

export interface RunFolderInput {
  request: FuseRequest;
  context: JobContext;
  claim: RunClaim;
  /** Model files, anchor first. */
  files: string[];
  models: OnnxModel[];
  recipe: ResolvedRecipe;
  result: { fused: OnnxModel; vanilla?: OnnxModel; maps: MapRecord[][]; refit?: RefitLayerResult[]; capture?: RunRecord['capture']; mapStore: MapStore };
  evalSet?: Dataset;
  timings: Record<string, number>;
  t0: number;
  /** The auto-tune sweep that chose the recipe, when there was one. */
  autotune?: AutotuneRecord;
}

export function versions(): Record<string, string> {
  const v: Record<string, string> = { otfuse: OTFUSE_VERSION, node: process.version };
  const ortVersions = ortVersionNumbers();
  if (ortVersions?.common) v.onnxruntime = ortVersions.common;
  return v;
}

export async function writeRunFolder(input: RunFolderInput): Promise<RunRecord> {
  const { request, context, claim, files, models, recipe, result, evalSet, timings } = input;
  const { id, dir: runDir, tmp } = claim;
  const emit = (e: ProgressEvent) => context.onProgress?.(e);
  let t = performance.now();
  emit({ stage: 'write', message: 'fused model and maps' });
  const fusedPath = path.join(tmp, 'fused.onnx');
  const layers: LayerMapInfo[] = [];
  for (let k = 1; k < result.maps.length; k++) {
    for (const r of result.maps[k])
      layers.push({ name: r.name, kind: r.kind, rows: r.map.n, cols: r.map.m, model: k, tensor: `m${k}/${r.name}`, diagnostics: r.diagnostics });
  }
  // Streamed from the map store (float32, or float16 with recipe.mapsDtype 'F16'), never built in memory.
  try {
    result.mapStore.write(path.join(tmp, MAPS_FILE), { format: 'otfuse-maps', scaling: 'n*P: rows sum to 1 (other model rows, anchor columns)' });
  } finally {
    result.mapStore.release();
  }
  timings.write = (performance.now() - t) / 1000;

  t = performance.now();
  const fusedFinal = request.output ? path.resolve(request.output) : path.join(runDir, 'fused.onnx');
  const measuredOn = measuredOnFor(evalSet ? (request.evalData ?? request.data) : undefined, runDir);
  const { metrics, provider } = await evaluateRows(input, fusedFinal, measuredOn);
  timings.evaluate = (performance.now() - t) / 1000;

  // The fused model says what it is (parents + sha256, anchor, recipe, version, accuracies); written after the
  // evaluation so that the accuracies are in it.
  // No separate evaluation data, or the calibration data again: the numbers are not a held-out result.
  // The same file or the same content counts as the calibration data.
  const evalIsCalibration =
    evalSet !== undefined && (request.evalData === undefined || (request.data !== undefined && sameData(request.evalData, request.data) !== undefined));
  const parents = files.map((file) => ({ file, sha256: sha256File(file) }));
  const evalLabel = dataLabel(evalSet && (request.evalData ?? request.data));
  stampLineage(result.fused, {
    version: OTFUSE_VERSION,
    kind: 'fused',
    parents,
    anchor: files[0],
    recipe: publicRecipe(recipe),
    run: id,
    metrics,
    evalData: evalLabel && `${evalLabel}${evalIsCalibration ? ' (calibration data)' : ''}`,
  });
  saveModelAuto(result.fused, fusedPath); // over 2 GB: weights in fused.onnx.data next to it

  // Optional finetune of the fused model, as one more stage of the same run (its checkpoint lives in the folder).
  let finetune: FinetuneResult | undefined;
  const warnings: string[] = [];
  const unconverged = result.maps
    .flat()
    .filter((r) => r.diagnostics.converged === 0)
    .map((r) => r.name);
  if (unconverged.length) {
    warnings.push(
      `the OT solver stopped at its iteration cap without converging for ${unconverged.length} map(s) (${unconverged.slice(0, 3).join(', ')}${unconverged.length > 3 ? ', …' : ''}); the maps are approximate: raise --reg or use --solver emd`,
    );
  }
  if (request.finetune) {
    t = performance.now();
    finetune = await finetuneStage(input, fusedPath, metrics, warnings, measuredOn);
    timings.finetune = (performance.now() - t) / 1000;
  }
  if (request.baselines && evalSet) metrics.push(...(await baselineMetrics(result.fused, models, result.vanilla, evalSet, request, context, measuredOn)));
  timings.total = (performance.now() - input.t0) / 1000;
  const record: RunRecord = {
    id,
    name: claim.name,
    status: 'done',
    createdAt: new Date().toISOString(),
    recipe: { ...request.recipe, ...publicRecipe(recipe) },
    models: files,
    anchor: files[0],
    fusedModel: fusedFinal,
    versions: versions(),
    provider,
    timings,
    metrics,
    layers,
    mapsFile: MAPS_FILE,
    parents: parents.map((p) => ({ file: p.file, sha256: p.sha256 })),
    ...(finetune ? { finetune, finetunes: [finetune] } : {}),
    schemaVersion: RUN_SCHEMA_VERSION,
    ...(evalSet?.maxLength !== undefined ? { maxLength: evalSet.maxLength } : {}),
    ...(result.refit ? { refit: result.refit } : {}),
    ...(result.capture ? { capture: result.capture } : {}),
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    ...(warnings.length ? { warnings } : {}),
    ...(input.autotune ? { autotune: input.autotune } : {}),
    // Absolute paths, so re-evaluating or finetuning the run later works from any working directory.
    ...(request.data !== undefined ? { data: absoluteData(request.data) } : {}),
    ...(evalSet ? { evalData: absoluteData((request.evalData ?? request.data)!) } : {}),
    ...(evalIsCalibration ? { evalIsCalibration: true } : {}),
  };
  writeRecord(tmp, record);
  throwIfCancelled(context.signal);
  // The requested output goes last so a failure before it leaves neither the folder nor the file.
  if (request.output) saveModelAuto(result.fused, path.resolve(request.output));
  return record;
}

/** The recipe as run.json records it: every public field (RECIPE_FIELDS), resolved. */
export function publicRecipe(r: ResolvedRecipe): RunRecord['recipe'] {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(RECIPE_FIELDS))
    if (k !== '$schema' && (r as unknown as Record<string, unknown>)[k] !== undefined) out[k] = (r as unknown as Record<string, unknown>)[k];
  return out as RunRecord['recipe'];
}

export function absoluteData(arg: DataArg): DataArg {
  if (typeof arg === 'string') return path.resolve(arg);
  return { ...arg, path: path.resolve(arg.path), ...(arg.labels ? { labels: path.resolve(arg.labels) } : {}) };
}

function dataLabel(arg: DataArg | undefined): string | undefined {
  if (arg === undefined) return undefined;
  return path.basename(typeof arg === 'string' ? arg : arg.path);
}

/** The DataRef of the evaluation data for a row measured on `n` samples (hashed once per N). */
export function measuredOnFor(evalArg: DataArg | undefined, runDir: string): (n: number) => DataRef | undefined {
  let ref: DataRef | undefined;
  return (n) => {
    if (!evalArg) return undefined;
    ref = ref?.n === n ? ref : dataRef(evalArg, n, runDir);
    return ref;
  };
}

/** Evaluates every parent, vanilla and the fused model; each row says what it measured (role) and on which data. */
async function evaluateRows(
  input: RunFolderInput,
  fusedFinal: string,
  measuredOn: (n: number) => DataRef | undefined,
): Promise<{ metrics: ModelMetrics[]; provider?: ProviderReport }> {
  const { request, context, models, result, evalSet } = input;
  const metrics: ModelMetrics[] = [];
  let provider: ProviderReport | undefined;
  if (!evalSet) return { metrics };
  const targets: { label: string; role: MetricRole; model?: number; file?: string; onnx: OnnxModel }[] = [
    ...models.map((m, k) => ({
      label: `${path.basename(m.file)}${k === 0 ? ' (anchor)' : ''}`,
      role: (k === 0 ? 'anchor' : 'parent') as MetricRole,
      model: k,
      file: m.file,
      onnx: m,
    })),
    ...(result.vanilla ? [{ label: 'vanilla', role: 'vanilla' as MetricRole, onnx: result.vanilla }] : []),
    { label: 'ot', role: 'fused', file: fusedFinal, onnx: result.fused },
  ];
  for (let i = 0; i < targets.length; i++) {
    throwIfCancelled(context.signal);
    context.onProgress?.({ stage: 'evaluate', message: targets[i].label, done: i, total: targets.length });
    const r = await evaluateModel(targets[i].onnx, evalSet, {
      limit: request.evalLimit,
      provider: request.provider,
      signal: context.signal,
      batchSize: 256,
    });
    provider = r.provider;
    const { label, role, model, file } = targets[i];
    metrics.push({
      label,
      role,
      ...(model !== undefined ? { model } : {}),
      data: measuredOn(r.samples),
      file,
      accuracy: r.accuracy,
      loss: r.loss,
      ...(r.perplexity !== undefined ? { perplexity: r.perplexity } : {}),
    });
    context.onProgress?.({ stage: 'evaluate', message: label, done: i + 1, total: targets.length, metrics: { accuracy: r.accuracy, loss: r.loss } });
  }
  return { metrics, provider };
}

/** The optional finetune of the fused model, as one more stage of the run (its checkpoint lives in the folder):
 * appends its row to `metrics` and its failure or calibration-data evaluation to `warnings`. */
async function finetuneStage(
  input: RunFolderInput,
  fusedPath: string,
  metrics: ModelMetrics[],
  warnings: string[],
  measuredOn: (n: number) => DataRef | undefined,
): Promise<FinetuneResult | undefined> {
  const { request, context, claim, evalSet } = input;
  if (!request.finetune) return undefined;
  const runDir = claim.dir;
  let finetune: FinetuneResult | undefined;
  const tuned = path.join(claim.tmp, 'finetuned.onnx');
  const { data: trainData, evalData: ftEval, ...options } = request.finetune;
  try {
    finetune = await finetuneModel(
      {
        ...options,
        provider: options.provider ?? request.provider,
        model: fusedPath,
        data: trainData,
        evalData: ftEval ?? request.evalData ?? request.data,
        output: tuned,
      },
      context,
    );
    finetune = { ...finetune, output: path.join(runDir, 'finetuned.onnx') };
  } catch (err) {
    // A failed finetune stage does not lose the fusion: the run keeps the fused model and says why.
    const info = toErrorInfo(err);
    if (info.code === 'CANCELLED') throw err;
    warnings.push(`finetune stage failed (${info.code}): ${info.message}`);
    context.onProgress?.({ stage: 'finetune', message: `failed: ${info.message}` });
    fs.rmSync(tuned, { force: true });
  }
  if (evalSet && finetune) {
    const r = await evaluateModel(loadModel(tuned), evalSet, {
      limit: request.evalLimit,
      provider: request.provider,
      signal: context.signal,
      batchSize: 256,
    });
    metrics.push({
      label: 'ot+finetune',
      role: 'finetuned',
      start: 'fused',
      data: measuredOn(r.samples),
      file: finetune.output,
      accuracy: r.accuracy,
      loss: r.loss,
    });
  }
  const ftMeasuredOn = ftEval ?? request.evalData ?? request.data;
  if (finetune && request.evalData === undefined && request.data !== undefined && ftMeasuredOn !== undefined && sameData(ftMeasuredOn, request.data))
    warnings.push('the finetune was evaluated on the calibration data (no evaluation data was given): its accuracies are not a held-out result');
  if (finetune) {
    finetune = {
      ...finetune,
      ...finetuneProvenance({ ...request.finetune, evalData: request.finetune.evalData ?? request.evalData ?? request.data }, runDir),
    };
    finetune.rows = metrics.filter((m) => m.role === 'finetuned');
  }
  return finetune;
}
