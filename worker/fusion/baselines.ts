// The honest protocol of a fusion run (FuseRequest.baselines): next to OT and OT + finetune, the parents' logit
// ensemble (the ceiling a single model tries to reach) and, when the run finetunes, every parent and the vanilla
// average given the SAME finetune (same data, steps, learning rate, seed, teachers). Baseline checkpoints are
// written to a temporary folder and removed; only their metrics go into run.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { OnnxModel } from '../onnx/model';
import { loadModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import { evaluateModel } from '../runtime/evaluate';
import { evaluateEnsemble } from '../runtime/ensemble';
import { finetuneModel } from '../train/finetune';
import type { FuseRequest, JobContext, ModelMetrics } from '../types';

export const ENSEMBLE_LABEL = 'ensemble (mean logits)';

export async function baselineMetrics(models: OnnxModel[], vanilla: OnnxModel | undefined, evalSet: Dataset, request: FuseRequest, context: JobContext): Promise<ModelMetrics[]> {
  const out: ModelMetrics[] = [];
  const evalOpts = { limit: request.evalLimit, provider: request.provider, signal: context.signal, batchSize: 256 };
  context.onProgress?.({ stage: 'evaluate', message: 'parents\' logit ensemble' });
  const ens = await evaluateEnsemble(models, evalSet, evalOpts);
  out.push({ label: ENSEMBLE_LABEL, accuracy: ens.accuracy, loss: ens.loss });
  if (!request.finetune) return out;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-baselines-'));
  try {
    const { data, evalData: _selection, ...options } = request.finetune;
    const starts: { label: string; model: OnnxModel }[] = [
      ...models.map((m) => ({ label: `${path.basename(m.file)}+finetune`, model: m })),
      ...(vanilla ? [{ label: 'vanilla+finetune', model: vanilla }] : []),
    ];
    for (let i = 0; i < starts.length; i++) {
      const s = starts[i];
      const file = path.join(dir, `start${i}.onnx`);
      s.model.save(file);
      const tuned = path.join(dir, `tuned${i}.onnx`);
      context.onProgress?.({ stage: 'finetune', message: `baseline: ${s.label}` });
      // No evaluation set: the baseline keeps its last checkpoint, so nothing is selected on the evaluation data.
      await finetuneModel({ ...options, provider: options.provider ?? request.provider, model: file, data, output: tuned, keep: 'last' }, { signal: context.signal });
      const r = await evaluateModel(loadModel(tuned), evalSet, evalOpts);
      out.push({ label: s.label, accuracy: r.accuracy, loss: r.loss });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
