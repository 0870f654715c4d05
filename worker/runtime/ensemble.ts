// The parents' logit ensemble: every model runs on the same batch and their logits are averaged (uniform or
// weighted) before scoring — the ceiling a single fused model tries to reach. Streamed batch by batch.
import path from 'node:path';
import { OtfuseError, throwIfCancelled } from '../errors';
import { OnnxModel, loadModel } from '../onnx/model';
import { Dataset, batches } from '../data/dataset';
import { InputBinding, ModelRunner, SessionOptions, checkFinite } from './runner';
import { scoreLogits } from './evaluate';
import type { ProviderReport } from './providers';

export interface EnsembleOptions extends SessionOptions {
  batchSize?: number;
  limit?: number;
  /** Weight per model (default uniform); normalised to sum 1. */
  weights?: number[];
  signal?: AbortSignal;
}

export interface EnsembleResult {
  models: string[];
  accuracy: number;
  loss: number;
  /** Causal-LM data: e^loss over the predicted next tokens of the mean logits (lower is better). */
  perplexity?: number;
  samples: number;
  seconds: number;
  provider: ProviderReport;
}

/** Accuracy and cross-entropy of the average of the models' logits. */
export async function evaluateEnsemble(models: (string | OnnxModel)[], dataset: Dataset, options: EnsembleOptions = {}): Promise<EnsembleResult> {
  if (models.length === 0) throw new OtfuseError('BAD_USAGE', 'an ensemble needs at least one model');
  const weights = options.weights ?? models.map(() => 1);
  if (weights.length !== models.length) throw new OtfuseError('BAD_USAGE', `${weights.length} ensemble weights for ${models.length} models`);
  const wsum = weights.reduce((a, b) => a + b, 0);
  if (!(wsum > 0)) throw new OtfuseError('BAD_USAGE', 'ensemble weights must not sum to 0');
  const runners: { runner: ModelRunner; binding: InputBinding; output: string }[] = [];
  try {
    for (const m of models) {
      const model = typeof m === 'string' ? loadModel(m) : m;
      const runner = await ModelRunner.create(model, options);
      runners.push({ runner, binding: runner.bind(dataset, { checkLabels: true }), output: runner.outputNames[0] });
    }
    const total = Math.min(options.limit ?? dataset.size, dataset.size);
    const t0 = performance.now();
    let correct = 0;
    let lossSum = 0;
    let done = 0;
    let scored = 0;
    let classes = 0;
    for (const batch of batches(dataset, options.batchSize ?? 256, total)) {
      throwIfCancelled(options.signal);
      checkFinite(batch, dataset.source);
      let mean: Float32Array | undefined;
      for (let k = 0; k < runners.length; k++) {
        const { runner, binding, output } = runners[k];
        const logits = (await runner.run(batch, binding, [output]))[output].data as Float32Array;
        const c = logits.length / batch.labels.length;
        if (!classes) classes = c;
        if (c !== classes)
          throw new OtfuseError(
            'MISMATCH',
            `${path.basename(runner.file)} has ${c} outputs per sample but ${path.basename(runners[0].runner.file)} has ${classes}`,
            { file: runner.file },
          );
        mean ??= new Float32Array(logits.length);
        const w = weights[k] / wsum;
        for (let i = 0; i < logits.length; i++) mean[i] += w * logits[i];
      }
      const score = scoreLogits(mean!, batch.labels);
      correct += score.correct;
      lossSum += score.lossSum;
      scored += score.scored; // masked-LM data: labelled positions only
      done += dataset.labelsPerSample ? batch.labels.length / dataset.labelsPerSample : batch.labels.length;
    }
    return {
      models: runners.map((r) => r.runner.file),
      accuracy: scored ? correct / scored : 0,
      loss: scored ? lossSum / scored : 0,
      ...(dataset.causal ? { perplexity: Math.exp(scored ? lossSum / scored : 0) } : {}),
      samples: done,
      seconds: (performance.now() - t0) / 1000,
      provider: runners[0].runner.provider,
    };
  } finally {
    for (const r of runners) await r.runner.release();
  }
}
