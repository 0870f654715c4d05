// The one typed engine API. The CLI calls it in-process; the extension calls it through the worker process.
import path from 'node:path';
import { loadModel } from './onnx/model';
import { openDataset } from './data/dataset';
import { evaluateModel } from './runtime/evaluate';
import { resolveProvider, ProviderChoice, ProviderReport } from './runtime/providers';
import type {
  EvaluateRequest, EvaluateResult, FinetuneRequest, FinetuneResult, FuseRequest, FuseResult, InspectRequest, InspectResult, JobContext,
} from './types';
import { analyzeAlignment } from './graph/summary';
import { checkCompatibility, type CompatibilityReport } from './graph/compat';
import { fuseModels } from './fusion/run';
import { finetuneModel } from './train/finetune';
import { checkRequestNumbers } from './numbers';
import './hf'; // Hugging Face folders load wherever an .onnx model does
import { attachModelFolder } from './hf/data';
import { exportHf, importHfToFile, type HfExportRequest, type HfExportResult, type HfImportRequest, type HfImportResult } from './hf/export';

export * from './types';
export type { CompatibilityReport, ModelCheck } from './graph/compat';
export type { HfExportRequest, HfExportResult, HfImportRequest, HfImportResult } from './hf/export';

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
}

export const engine: EngineApi = {
  providers: (choice = 'auto') => resolveProvider(choice),

  async inspect(request) {
    const model = loadModel(request.model);
    const provider = await resolveProvider(request.provider ?? 'auto');
    const result: InspectResult = { summary: model.summary(), provider };
    if (request.alignment) result.alignment = analyzeAlignment(model);
    return result;
  },

  check: async (request) => checkCompatibility(request.models),

  async evaluate(request, context = {}) {
    checkRequestNumbers(request);
    const model = loadModel(request.model);
    const dataset = openDataset(attachModelFolder(request.data, [request.model]));
    context.onProgress?.({ stage: 'evaluate', message: `evaluating ${path.basename(request.model)}`, done: 0, total: Math.min(request.limit ?? dataset.size, dataset.size) });
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
    return fuseModels({
      ...request, data: attach(request.data), evalData: attach(request.evalData),
      ...(request.finetune ? { finetune: { ...request.finetune, data: attach(request.finetune.data)!, evalData: attach(request.finetune.evalData) } } : {}),
    }, context);
  },
  finetune: async (request, context = {}) => {
    checkRequestNumbers(request);
    return finetuneModel({
      ...request, data: attachModelFolder(request.data, [request.model]), evalData: attachModelFolder(request.evalData, [request.model]),
    }, context);
  },
  importHf: (request) => importHfToFile(request),
  exportHf: (request) => exportHf(request),
};
