// Work on an existing run that ends in its run.json: finetune its fused model into the run (with the anchor
// finetuned the same way as a baseline) and evaluate its models again. The record is patched atomically here,
// so the extension and the CLI never write run.json themselves.
import fs from 'node:fs';
import path from 'node:path';
import { OtfuseError, throwIfCancelled } from '../errors';
import { loadModel } from '../onnx/model';
import { openDataset } from '../data/dataset';
import { evaluateModel } from '../runtime/evaluate';
import { finetuneModel } from '../train/finetune';
import type {
  FinetuneRequest,
  FinetuneResult,
  FinetuneRunRequest,
  FinetuneRunResult,
  JobContext,
  ModelMetrics,
  ReevaluateRunRequest,
  ReevaluateRunResult,
  RunRecord,
} from '../types';
import { patchRun, readRun, runPath } from './store';
import { sha256File, stampLineage } from './lineage';
import { dataRef, datasetSize, finetuneProvenance, refuseTrainingOnEvaluation, sameData } from './provenance';
import { rowKey, upsertRow } from './roles';
import { attachModelFolder } from '../hf/data';

export const FINETUNED_FILE = 'finetuned.onnx';
export const BASELINE_FILE = 'anchor-finetuned.onnx';
const FT_LABEL = 'ot+finetune';
const BASELINE_LABEL = 'anchor+finetune';

function openRun(runDir: string): RunRecord {
  const entry = readRun(runDir);
  if (!entry.record) throw new OtfuseError('BAD_DATA', `not a readable otfuse run: ${entry.error}`, { file: path.join(runDir, 'run.json') });
  return entry.record;
}

export async function finetuneRun(request: FinetuneRunRequest, context: JobContext = {}): Promise<FinetuneRunResult> {
  const runDir = path.resolve(request.runDir);
  const record = openRun(runDir);
  const model = runPath(runDir, record.fusedModel);
  if (!model || !fs.existsSync(model)) throw new OtfuseError('BAD_MODEL', "the run's fused model is missing", { file: model ?? runDir });
  const evalData = request.evalData ?? record.evalData ?? record.data;
  // A run fused without evaluation has no evaluation data: a finetune measured on the calibration data (by default,
  // or given as such: the same file or content) says so (evalIsCalibration) instead of showing it as a result.
  const onCalibration = evalData !== undefined && record.data !== undefined && sameData(evalData, record.data) !== undefined;
  const { runDir: _r, data: _d, evalData: _e, baseline, teachers, ...options } = request;
  // Text or image data takes the tokenizer / preprocessor of a Hugging Face folder among the run's models.
  const data = attachModelFolder(request.data, record.models);
  // Inputs are checked before the work: the data opens, it is not what the run is measured on, the run folder is
  // writable.
  datasetSize(data);
  const evalN = evalData !== undefined ? datasetSize(evalData) : 0;
  refuseTrainingOnEvaluation(data, [
    { data: evalData, what: onCalibration ? 'calibration data the finetune is evaluated on' : 'evaluation data' },
    { data: record.evalData, what: "run's evaluation data" },
  ]);
  try {
    fs.accessSync(runDir, fs.constants.W_OK);
  } catch {
    throw new OtfuseError('BAD_USAGE', 'the run folder is not writable', { file: runDir });
  }
  const base: Omit<FinetuneRequest, 'model' | 'output'> = { ...options, data, evalData, epochs: options.epochs ?? 1 };
  if (teachers?.length) (base as Record<string, unknown>).teachers = teachers; // used by engines that support distillation
  const output = path.join(runDir, FINETUNED_FILE);
  const finetune = await finetuneModel({ ...base, model, output }, context);
  throwIfCancelled(context.signal);
  const last =
    finetune.best && options.keep !== 'last' ? finetune.evals.find((e) => e.epoch === finetune.best!.epoch) : finetune.evals[finetune.evals.length - 1];
  const measured = evalData !== undefined ? dataRef(evalData, Math.min(options.evalLimit ?? Infinity, evalN), runDir) : undefined;
  const rows: ModelMetrics[] = [
    { label: FT_LABEL, role: 'finetuned', start: 'fused', ...(measured ? { data: measured } : {}), file: output, accuracy: last?.accuracy, loss: last?.loss },
  ];

  let baselineResult: FinetuneResult | undefined;
  if (baseline && fs.existsSync(record.anchor)) {
    context.onProgress?.({ stage: 'finetune', message: `baseline: ${path.basename(record.anchor)} finetuned the same way` });
    const baselineOut = path.join(runDir, BASELINE_FILE);
    baselineResult = await finetuneModel({ ...base, model: record.anchor, output: baselineOut }, context);
    throwIfCancelled(context.signal);
    const b =
      baselineResult.best && options.keep !== 'last'
        ? baselineResult.evals.find((e) => e.epoch === baselineResult!.best!.epoch)
        : baselineResult.evals[baselineResult.evals.length - 1];
    rows.push({
      label: BASELINE_LABEL,
      role: 'baseline',
      start: 'anchor',
      model: 0,
      ...(measured ? { data: measured } : {}),
      file: baselineOut,
      accuracy: b?.accuracy,
      loss: b?.loss,
    });
  }

  // Lineage of the finetuned checkpoint: the fused model it started from.
  try {
    const tuned = loadModel(output);
    stampLineage(tuned, {
      version: record.versions.otfuse ?? '',
      kind: 'finetuned',
      parents: [{ file: model, sha256: sha256File(model) }],
      anchor: record.anchor,
      recipe: record.recipe,
      run: record.id,
      metrics: rows,
      ...(measured ? { evalData: `${path.basename(measured.path)}${onCalibration ? ' (calibration data)' : ''}` } : {}),
    });
    tuned.save(output);
  } catch {
    /* a model the loader cannot re-read keeps no lineage; the run record still has it */
  }

  const sameEval = JSON.stringify(evalData) === JSON.stringify(record.evalData ?? record.data);
  const recorded: FinetuneResult = {
    ...finetune,
    ...finetuneProvenance({ ...base, teachers, evalData }, runDir),
    rows,
  };
  const next = patchRun(runDir, (r) => {
    // A second finetune appends to the history; `finetune` is the latest (its checkpoint is finetuned.onnx).
    r.finetunes = [...(r.finetunes ?? (r.finetune ? [r.finetune] : [])), recorded];
    r.finetune = recorded;
    if (baselineResult) r.baselineFinetune = baselineResult;
    else delete r.baselineFinetune;
    // The single-run anchor baseline is replaced (or dropped when this finetune has none); seeded protocol rows stay.
    let metrics = r.metrics.filter((m) => !(m.role === 'baseline' && m.start === 'anchor' && !m.seeds));
    // Rows are comparable only on the run's own evaluation data; elsewhere the finetune keeps its own evals.
    if (sameEval) for (const row of rows) metrics = upsertRow(metrics, row);
    r.metrics = metrics;
    if (onCalibration && sameEval) {
      r.evalData = record.data;
      r.evalIsCalibration = true;
    }
  });
  return { runDir, record: next, finetune: recorded, ...(baselineResult ? { baseline: baselineResult } : {}) };
}

export async function reevaluateRun(request: ReevaluateRunRequest, context: JobContext = {}): Promise<ReevaluateRunResult> {
  const runDir = path.resolve(request.runDir);
  const record = openRun(runDir);
  const runData = record.evalData ?? record.data;
  const data = request.data ?? runData;
  if (data === undefined) throw new OtfuseError('BAD_USAGE', 'the run has no evaluation data recorded: give data to evaluate on', { file: runDir });
  const dataset = openDataset(data);
  // The rows backed by a model file of this run (fused, finetuned, the anchor's finetune baseline), or the fused model.
  const ownModel = (m: ModelMetrics) => m.role === 'fused' || m.role === 'finetuned' || (m.role === 'baseline' && m.start === 'anchor');
  const targets: { row: ModelMetrics; file: string }[] = record.metrics
    .filter((m) => m.file && !m.seeds && ownModel(m) && fs.existsSync(runPath(runDir, m.file)!))
    .map((m) => ({ row: m, file: runPath(runDir, m.file)! }));
  if (!targets.length) targets.push({ row: { label: 'ot', role: 'fused', file: record.fusedModel }, file: runPath(runDir, record.fusedModel)! });
  const results: ReevaluateRunResult['results'] = [];
  for (let i = 0; i < targets.length; i++) {
    throwIfCancelled(context.signal);
    context.onProgress?.({ stage: 'evaluate', message: targets[i].row.label, done: i, total: targets.length });
    const r = await evaluateModel(loadModel(targets[i].file), dataset, {
      provider: request.provider,
      limit: request.limit,
      signal: context.signal,
      batchSize: 256,
    });
    results.push({ model: targets[i].file, label: targets[i].row.label, role: targets[i].row.role, ...r });
  }
  const updated = JSON.stringify(data) === JSON.stringify(runData);
  const next = updated
    ? patchRun(runDir, (r) => {
        const measured = dataRef(data, results[0]?.samples ?? 0, runDir);
        r.metrics = r.metrics.map((m) => {
          const k = targets.findIndex((t) => rowKey(t.row) === rowKey(m));
          return k >= 0 ? { ...m, data: measured, accuracy: results[k].accuracy, loss: results[k].loss } : m;
        });
        if (!r.metrics.some((m) => m.role === 'fused') && targets[0].row.role === 'fused')
          r.metrics.push({ ...targets[0].row, data: measured, accuracy: results[0].accuracy, loss: results[0].loss });
      })
    : record;
  return { runDir, record: next, results, updated };
}
