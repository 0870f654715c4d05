// The honest protocol of a fusion run (FuseRequest.baselines): next to OT and OT + finetune, the parents' logit
// ensemble (the ceiling a single model tries to reach) and, when the run finetunes, the fused model, every parent
// and the vanilla average given the SAME finetune (same data, steps, learning rate, teachers), repeated over
// finetune seeds (mean ± sd). Baseline checkpoints go to a temporary folder and are removed; only their metrics go
// into run.json. No checkpoint is selected on the evaluation data (the last one is kept).
import { cleanStaleTempDirs, makeTempDir } from '../io/outputs';
import os from 'node:os';
import path from 'node:path';
import type { OnnxModel } from '../onnx/model';
import { loadModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import { evaluateModel } from '../runtime/evaluate';
import { evaluateEnsemble } from '../runtime/ensemble';
import { finetuneModel } from '../train/finetune';
import type { DataRef, FuseRequest, JobContext, ModelMetrics } from '../types';

export const ENSEMBLE_LABEL = 'ensemble (mean logits)';

export function meanSd(values: number[]): { mean: number; sd: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd = values.length < 2 ? 0 : Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1));
  return { mean, sd };
}

export async function baselineMetrics(
  fused: OnnxModel,
  models: OnnxModel[],
  vanilla: OnnxModel | undefined,
  evalSet: Dataset,
  request: FuseRequest,
  context: JobContext,
  /** The DataRef of the evaluation data for a row measured on `n` samples. */
  measuredOn: (n: number) => DataRef | undefined = () => undefined,
): Promise<ModelMetrics[]> {
  const out: ModelMetrics[] = [];
  const evalOpts = { limit: request.evalLimit, provider: request.provider, signal: context.signal, batchSize: 256 };
  context.onProgress?.({ stage: 'evaluate', message: "parents' logit ensemble" });
  const ens = await evaluateEnsemble(models, evalSet, evalOpts);
  out.push({
    label: ENSEMBLE_LABEL,
    role: 'ensemble',
    data: measuredOn(ens.samples),
    accuracy: ens.accuracy,
    loss: ens.loss,
    ...(ens.perplexity !== undefined ? { perplexity: ens.perplexity } : {}),
  });
  if (!request.finetune) return out;
  const seeds = Math.max(1, Math.floor(typeof request.baselines === 'object' ? (request.baselines.seeds ?? 1) : 1));
  // A marked, locked temp folder (worker/io/outputs.ts): one a killed run left is removed by the next run.
  cleanStaleTempDirs(os.tmpdir());
  const temp = makeTempDir(path.join(os.tmpdir(), 'otfuse-baselines'));
  const dir = temp.dir;
  try {
    const { data, evalData: _selection, ...options } = request.finetune;
    // The fused model's seeded row is the finetuned result itself; the others are its baselines.
    const starts: { label: string; role: 'finetuned' | 'baseline'; start: NonNullable<ModelMetrics['start']>; index?: number; model: OnnxModel }[] = [
      { label: 'ot+finetune', role: 'finetuned', start: 'fused', model: fused },
      ...models.map((m, k) => ({
        label: `${path.basename(m.file)}+finetune`,
        role: 'baseline' as const,
        start: k === 0 ? ('anchor' as const) : ('parent' as const),
        index: k,
        model: m,
      })),
      ...(vanilla ? [{ label: 'vanilla+finetune', role: 'baseline' as const, start: 'vanilla' as const, model: vanilla }] : []),
    ];
    const total = starts.length * seeds;
    for (let i = 0; i < starts.length; i++) {
      const s = starts[i];
      const file = path.join(dir, `start${i}.onnx`);
      s.model.save(file);
      const accs: number[] = [];
      let n = 0;
      const losses: number[] = [];
      for (let k = 0; k < seeds; k++) {
        const tuned = path.join(dir, `tuned${i}-${k}.onnx`);
        context.onProgress?.({ stage: 'baselines', message: `${s.label}, seed ${(options.seed ?? 0) + k}`, done: i * seeds + k, total });
        await finetuneModel(
          { ...options, seed: (options.seed ?? 0) + k, provider: options.provider ?? request.provider, model: file, data, output: tuned, keep: 'last' },
          { signal: context.signal },
        );
        const r = await evaluateModel(loadModel(tuned), evalSet, evalOpts);
        accs.push(r.accuracy);
        n = r.samples;
        losses.push(r.loss);
      }
      const a = meanSd(accs);
      out.push({
        label: seeds > 1 ? `${s.label} (${seeds} seeds)` : `${s.label} (baseline run)`,
        role: s.role,
        start: s.start,
        ...(s.index !== undefined ? { model: s.index } : {}),
        data: measuredOn(n),
        accuracy: a.mean,
        loss: meanSd(losses).mean,
        seeds: accs,
        sd: a.sd,
      });
    }
  } finally {
    temp.discard();
  }
  return out;
}
