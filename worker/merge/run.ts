// `otfuse merge`: same-base merging of fine-tunes (task arithmetic, TIES, DARE, SLERP, linear) into a run folder
// like `fuse` writes (merged.onnx with its lineage, run.json) and, when asked, evaluation rows for every fine-tune,
// the base, the merged model and the fine-tunes' logit ensemble. Everything refusable is refused before any work.
import path from 'node:path';
import { OtfuseError, throwIfCancelled } from '../errors';
import { loadModel, type OnnxModel } from '../onnx/model';
import { saveModelAuto } from '../onnx/external';
import { openDataset, type Dataset } from '../data/dataset';
import { preflight } from '../preflight';
import { evaluateModel } from '../runtime/evaluate';
import { evaluateEnsemble } from '../runtime/ensemble';
import { createRun, writeRecord } from '../runs/store';
import { accuraciesOf, LINEAGE_PREFIX, sha256File, stampLineage } from '../runs/lineage';
import { absoluteData, measuredOnFor, OTFUSE_VERSION, versions } from '../jobs/runFolder';
import { ENSEMBLE_LABEL } from '../jobs/baselines';
import { hfModelSource } from '../hf';
import { exportHf } from '../hf/export';
import { attachModelFolder } from '../hf/data';
import { checkReplaceableDir, dataInputs, modelInputs, refuseOutputOverInputs, type InputRef } from '../io/outputs';
import type { DataRef, JobContext, MergeRecord, MergeRequest, MergeResult, ModelMetrics, ProviderReport, RunRecord } from '../types';
import { getMergeMethod } from './registry';
import { recordedParams, resolveMergeParams } from './params';
import { mergeLoaded } from './merge';

export const MERGED_FILE = 'merged.onnx';

/** Refuses what can be refused from the request alone (BAD_USAGE, exit 2). */
function checkRequest(request: MergeRequest): { files: string[]; base?: string; hfOut: boolean } {
  const method = getMergeMethod(request.method);
  const files = (request.models ?? []).map((f) => path.resolve(f));
  const base = request.base ? path.resolve(request.base) : undefined;
  if (files.length < Math.max(1, method.minModels))
    throw new OtfuseError(
      'BAD_USAGE',
      `merge method '${method.name}' needs at least ${method.minModels} model${method.minModels > 1 ? 's' : ''} (got ${files.length})`,
    );
  if (method.maxModels !== undefined && files.length > method.maxModels)
    throw new OtfuseError('BAD_USAGE', `merge method '${method.name}' merges exactly ${method.maxModels} models (got ${files.length})`);
  if (new Set(files).size !== files.length) throw new OtfuseError('BAD_USAGE', 'a model is listed twice');
  if (method.needsBase && !base)
    throw new OtfuseError('BAD_USAGE', `merge method '${method.name}' needs --base BASE (the model the others were fine-tuned from)`, { file: files[0] });
  if (base && files.includes(base)) throw new OtfuseError('BAD_USAGE', 'the base is also listed as a model to merge', { file: base });
  const output = request.output ? path.resolve(request.output) : undefined;
  const hfOut = !!output && !output.endsWith('.onnx');
  if (hfOut) {
    const notHf = [...files, ...(base ? [base] : [])].find((f) => !hfModelSource.accepts(f));
    if (notHf)
      throw new OtfuseError(
        'BAD_USAGE',
        `-o ${output}: an output folder needs Hugging Face folders as inputs; this input is not one (write an .onnx file instead)`,
        { file: notHf },
      );
  }
  return { files, base, hfOut };
}

export async function mergeModels(request: MergeRequest, context: JobContext = {}): Promise<MergeResult> {
  const t0 = performance.now();
  const emit = context.onProgress ?? (() => {});
  const method = getMergeMethod(request.method);
  const { files, base: baseFile, hfOut } = checkRequest(request);
  const params = resolveMergeParams(method, request.params ?? {}, files.length);
  const timings: Record<string, number> = {};
  let t = performance.now();
  emit({ stage: 'load', total: files.length + (baseFile ? 1 : 0) });
  const models = files.map((f) => loadModel(f, { lazyWeights: true }));
  const base = baseFile ? loadModel(baseFile, { lazyWeights: true }) : undefined;
  timings.load = (performance.now() - t) / 1000;
  const template = base ?? models[0];
  const inputs = [...files, ...(baseFile ? [baseFile] : [])];
  const evalSet = request.evalData !== undefined ? openDataset(attachModelFolder(request.evalData, inputs)) : undefined;
  const output = request.output ? path.resolve(request.output) : undefined;
  const runsDir = path.resolve(request.runsDir ?? path.join('.otfuse', 'runs'));
  const inputRefs: InputRef[] = [
    ...files.flatMap((f) => modelInputs(f, 'fine-tuned model')),
    ...(baseFile ? modelInputs(baseFile, 'base model') : []),
    ...dataInputs(request.evalData, 'evaluation data'),
  ];
  const finite = [...models, ...(base ? [base] : [])]; // a NaN/Inf weight in a fine-tune or the base is refused now
  preflight({ inputs: inputRefs, output: hfOut ? undefined : output, runsDir, model: template, labelled: [evalSet], finite });
  if (hfOut && output) checkHfOutput(output, inputRefs, !!request.force);

  // The merge itself (in memory): a name or shape mismatch is refused here, before a run folder exists.
  t = performance.now();
  const result = mergeLoaded({ models, base, method, params, signal: context.signal, onProgress: emit });
  timings.merge = (performance.now() - t) / 1000;
  throwIfCancelled(context.signal);

  const name = `${method.name}-${path.basename(files[0]).replace(/\.onnx$/, '')}${baseFile ? `-on-${path.basename(baseFile).replace(/\.onnx$/, '')}` : ''}`;
  return createRun(runsDir, name, async (claim) => {
    t = performance.now();
    const measuredOn = measuredOnFor(evalSet ? request.evalData : undefined, claim.dir);
    const metrics = evalSet
      ? await evaluateRows(models, base, result.merged, method.name, evalSet, request, context, measuredOn)
      : { rows: [], provider: undefined };
    timings.evaluate = (performance.now() - t) / 1000;
    const mergeRecord: MergeRecord = {
      method: method.name,
      params: recordedParams(method, params),
      ...(baseFile ? { base: baseFile } : {}),
      formula: method.formula,
      tensors: result.tensors,
      constants: result.constants,
      ...(method.name === 'slerp' ? { colinear: result.colinear } : {}),
      ...(hfOut && output ? { hfOutput: output } : {}),
    };
    const parents = files.map((file) => ({ file, sha256: sha256File(file) }));
    stampLineage(result.merged, {
      version: OTFUSE_VERSION,
      kind: 'merged',
      parents: baseFile ? [...parents, { file: baseFile, sha256: sha256File(baseFile) }] : parents,
      anchor: template.file,
      run: claim.id,
      accuracies: accuraciesOf(metrics.rows),
    });
    // The merge's own lineage: method, resolved parameters (the seed included), base.
    result.merged.proto.metadataProps = [
      ...(result.merged.proto.metadataProps ?? []),
      { key: `${LINEAGE_PREFIX}merge`, value: JSON.stringify({ method: method.name, params: mergeRecord.params, base: baseFile }) },
    ];
    t = performance.now();
    const inRun = path.join(claim.tmp, MERGED_FILE);
    saveModelAuto(result.merged, inRun);
    const finalModel = output && !hfOut ? output : path.join(claim.dir, MERGED_FILE);
    timings.total = (performance.now() - t0) / 1000;
    const record: RunRecord = {
      id: claim.id,
      name: claim.name,
      status: 'done',
      createdAt: new Date().toISOString(),
      recipe: {},
      models: files,
      anchor: template.file,
      fusedModel: finalModel,
      versions: versions(),
      provider: metrics.provider,
      timings,
      metrics: metrics.rows,
      layers: [],
      parents,
      merge: mergeRecord,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      ...(evalSet ? { evalData: absoluteData(request.evalData!) } : {}),
    };
    writeRecord(claim.tmp, record);
    throwIfCancelled(context.signal);
    // The requested output goes last, inside the claim: a failure leaves neither the run nor the output.
    if (output && !hfOut) saveModelAuto(result.merged, output);
    if (output && hfOut)
      await exportHf({
        model: inRun,
        like: template.file,
        output,
        force: request.force,
        // No `parents`: the card would title it an OT fusion; the recipe line says it is a merge.
        card: {
          recipe: { merge: method.name, ...mergeRecord.params, base: baseFile },
          metrics: metrics.rows.map((m) => ({ ...m, data: m.data && { name: path.basename(m.data.path), n: m.data.n, sha256: m.data.sha256 } })),
          run: claim.dir,
        },
      });
    timings.write = (performance.now() - t) / 1000;
    emit({ stage: 'done', message: claim.dir });
    return { runDir: claim.dir, record, output: output ?? path.join(claim.dir, MERGED_FILE) };
  });
}

function checkHfOutput(output: string, inputs: InputRef[], force: boolean): void {
  refuseOutputOverInputs([{ path: output, folder: true }], inputs);
  checkReplaceableDir(output, force, 'hf-export');
}

/** Each fine-tune, the base, the merged model and the fine-tunes' logit ensemble, on the same data. */
async function evaluateRows(
  models: OnnxModel[],
  base: OnnxModel | undefined,
  merged: OnnxModel,
  methodName: string,
  evalSet: Dataset,
  request: MergeRequest,
  context: JobContext,
  measuredOn: (n: number) => DataRef | undefined,
): Promise<{ rows: ModelMetrics[]; provider?: ProviderReport }> {
  const opts = { limit: request.evalLimit, provider: request.provider, signal: context.signal, batchSize: 256 };
  const targets: { label: string; role: ModelMetrics['role']; index?: number; file?: string; model: OnnxModel }[] = [
    ...models.map((m, k) => ({ label: path.basename(m.file), role: 'parent' as const, index: k, file: m.file, model: m })),
    ...(base ? [{ label: `${path.basename(base.file)} (base)`, role: 'base' as const, file: base.file, model: base }] : []),
    { label: `merged (${methodName})`, role: 'merged', model: merged },
  ];
  const rows: ModelMetrics[] = [];
  let provider: ProviderReport | undefined;
  const total = targets.length + 1;
  for (let i = 0; i < targets.length; i++) {
    throwIfCancelled(context.signal);
    context.onProgress?.({ stage: 'evaluate', message: targets[i].label, done: i, total });
    const r = await evaluateModel(targets[i].model, evalSet, opts);
    provider = r.provider;
    const { label, role, index, file } = targets[i];
    rows.push({
      label,
      role,
      ...(index !== undefined ? { model: index } : {}),
      ...(file ? { file } : {}),
      data: measuredOn(r.samples),
      accuracy: r.accuracy,
      loss: r.loss,
    });
  }
  context.onProgress?.({ stage: 'evaluate', message: ENSEMBLE_LABEL, done: targets.length, total });
  const ens = await evaluateEnsemble(models, evalSet, opts);
  rows.push({ label: ENSEMBLE_LABEL, role: 'ensemble', data: measuredOn(ens.samples), accuracy: ens.accuracy, loss: ens.loss });
  return { rows, provider };
}
