// The one typed engine API. The CLI calls it in-process; the extension calls it through the worker process.
import path from 'node:path';
import { loadModel } from './onnx/model';
import { openDataset } from './data/dataset';
import { evaluateModel } from './runtime/evaluate';
import { openForModel } from './data/causal';
import { resolveProvider, ProviderChoice, ProviderReport } from './runtime/providers';
import type {
  EvaluateRequest,
  EvaluateResult,
  FinetuneRequest,
  FinetuneResult,
  FinetuneRunRequest,
  FinetuneRunResult,
  FuseRequest,
  FuseResult,
  InspectRequest,
  InspectResult,
  JobContext,
  ReevaluateRunRequest,
  ReevaluateRunResult,
  DataDescription,
  MergeRequest,
  MergeResult,
  SharedBaseReport,
} from './types';
import { analyzeAlignment } from './fusion/summary';
import { checkCompatibility, type CompatibilityReport } from './graph/compat';
import { checkDecoderCompatibility } from './fusion/decoder/compat';
import { isDecoderFolder } from './fusion/decoder/run';
import { fuseModels } from './jobs/run';
import { finetuneModel } from './train/finetune';
import { checkRequestNumbers } from './numbers';
import { sizeOf } from './io/read';
import './hf'; // Hugging Face folders load wherever an .onnx model does
import { attachModelFolder } from './hf/data';
import { exportHf, importHfToFile, type HfExportRequest, type HfExportResult, type HfImportRequest, type HfImportResult } from './hf/export';
import { cardFromRun } from './jobs/card';
import { finetuneRun, reevaluateRun } from './runs/actions';
import { mergeModels } from './merge/run';
import { describeMergeMethods, type MergeMethodDescription } from './merge/registry';
import { detectSharedBase } from './merge/sharedBase';
import { refuseTrainingOnEvaluation } from './runs/provenance';

export * from './types';
export type { CompatibilityReport, ModelCheck } from './graph/compat';
export type { HfExportRequest, HfExportResult, HfImportRequest, HfImportResult } from './hf/export';
export type { MergeMethodDescription } from './merge/registry';

export interface EngineApi {
  providers(choice?: ProviderChoice): Promise<ProviderReport>;
  inspect(request: InspectRequest): Promise<InspectResult>;
  /** Graph analysis only (no session, no data): can these models be fused? Cheap; call before any prompt. */
  check(request: { models: string[] }): Promise<CompatibilityReport>;
  evaluate(request: EvaluateRequest, context?: JobContext): Promise<EvaluateResult>;
  fuse(request: FuseRequest, context?: JobContext): Promise<FuseResult>;
  finetune(request: FinetuneRequest, context?: JobContext): Promise<FinetuneResult>;
  /** Hugging Face folder → .onnx file. */
  importHf(request: HfImportRequest): Promise<HfImportResult>;
  /** ONNX model → Hugging Face folder in the layout of `like`. */
  exportHf(request: HfExportRequest): Promise<HfExportResult>;
  /** Describes data files (sample count, arrays and shapes) for pickers; unreadable or huge files get an error. */
  describeData(files: string[]): Promise<DataDescription[]>;
  /** Finetunes a run's fused model into the run folder and records it in run.json. */
  finetuneRun(request: FinetuneRunRequest, context?: JobContext): Promise<FinetuneRunResult>;
  /** Evaluates a run's models again (run.json updated when measured on the run's own evaluation data). */
  reevaluateRun(request: ReevaluateRunRequest, context?: JobContext): Promise<ReevaluateRunResult>;
  /** Same-base merge of fine-tunes (task arithmetic, TIES, DARE, SLERP, linear) into a run folder. */
  merge(request: MergeRequest, context?: JobContext): Promise<MergeResult>;
  /** The merge methods with their parameters, domains and defaults (for forms). */
  mergeMethods(): Promise<MergeMethodDescription[]>;
  /** Do these models share a base (fine-tunes of one checkpoint)? One pass over the weights, no session. */
  sharedBase(request: { models: string[] }): Promise<SharedBaseReport>;
}

/** describeData reads at most this much per file (pickers must stay quick). */
const DESCRIBE_MAX_BYTES = 256 * 2 ** 20;

export const engine: EngineApi = {
  providers: (choice = 'auto') => resolveProvider(choice),

  async inspect(request) {
    const model = loadModel(request.model);
    const result: InspectResult = { summary: model.summary() };
    if (!request.noSession) result.provider = await resolveProvider(request.provider ?? 'auto');
    if (request.alignment) result.alignment = analyzeAlignment(model);
    return result;
  },

  // Decoder LM folders are fused by worker/fusion/decoder (not the ONNX graph analysis): their own check.
  check: async (request) => (isDecoderFolder(request.models[0] ?? '') ? checkDecoderCompatibility(request.models) : checkCompatibility(request.models)),

  async evaluate(request, context = {}) {
    checkRequestNumbers(request);
    const model = loadModel(request.model);
    const spec = attachModelFolder(request.data, [request.model]);
    const architecture = model.proto.metadataProps?.find((p) => p.key === 'otfuse.hf.architecture')?.value ?? undefined;
    // Causal LMs: next-token scoring (labels = input_ids shifted; an .npz of input_ids alone), worker/data/causal.ts.
    const dataset = openForModel(() => openDataset(spec), typeof spec === 'string' ? spec : spec.path, architecture);
    context.onProgress?.({
      stage: 'evaluate',
      message: `evaluating ${path.basename(request.model)}`,
      done: 0,
      total: Math.min(request.limit ?? dataset.size, dataset.size),
    });
    const result = await evaluateModel(model, dataset, {
      provider: request.provider,
      batchSize: request.batchSize,
      limit: request.limit,
      signal: context.signal,
      onProgress: (done, total) => context.onProgress?.({ stage: 'evaluate', done, total }),
    });
    return { model: request.model, ...result };
  },

  // Numbers are checked on entry (the extension calls here without the CLI's flag checks).
  fuse: async (request, context = {}) => {
    checkRequestNumbers(request);
    // Text/image data takes the tokenizer/preprocessor of a Hugging Face model folder among the models.
    const models = request.anchor ? [request.anchor, ...request.models] : request.models;
    const attach = <T extends FuseRequest['data']>(d: T) => attachModelFolder(d, models);
    // Never train on what the run measures on: its evaluation data, or the calibration data when that is what it
    // is evaluated on (no separate evaluation data).
    if (request.finetune) {
      refuseTrainingOnEvaluation(request.finetune.data, [
        { data: request.evalData, what: 'evaluation data' },
        { data: request.finetune.evalData, what: "finetune's evaluation data" },
        { data: request.evalData === undefined ? request.data : undefined, what: 'calibration data (also the evaluation data: no separate evaluation data)' },
      ]);
    }
    return fuseModels(
      {
        ...request,
        data: attach(request.data),
        evalData: attach(request.evalData),
        ...(request.finetune ? { finetune: { ...request.finetune, data: attach(request.finetune.data)!, evalData: attach(request.finetune.evalData) } } : {}),
      },
      context,
    );
  },
  finetune: async (request, context = {}) => {
    checkRequestNumbers(request);
    refuseTrainingOnEvaluation(request.data, [{ data: request.evalData, what: 'evaluation data' }]);
    return finetuneModel(
      {
        ...request,
        data: attachModelFolder(request.data, [request.model]),
        evalData: attachModelFolder(request.evalData, [request.model]),
      },
      context,
    );
  },
  importHf: (request) => importHfToFile(request),
  exportHf: (request) => exportHf(request, cardFromRun),
  async describeData(files) {
    return files.map((file): DataDescription => {
      try {
        if (!file.endsWith('.json') && (sizeOf(file) ?? 0) > DESCRIBE_MAX_BYTES) return { path: file, error: 'larger than 256 MiB: not inspected' };
        const d = openDataset(file);
        return { path: file, size: d.size, arrays: d.arrays.map((a) => ({ name: a.name, type: a.type, sampleShape: a.sampleShape })) };
      } catch (err) {
        return { path: file, error: err instanceof Error ? err.message : String(err) };
      }
    });
  },
  finetuneRun: async (request, context = {}) => {
    checkRequestNumbers(request);
    return finetuneRun(request, context);
  },
  reevaluateRun: (request, context = {}) => reevaluateRun(request, context),
  merge: (request, context = {}) => {
    checkRequestNumbers(request);
    return mergeModels(request, context);
  },
  mergeMethods: async () => describeMergeMethods(),
  sharedBase: async (request) => detectSharedBase(request.models.map((m) => loadModel(m, { lazyWeights: true }))),
};
