// Classifier evaluation: accuracy and mean cross-entropy over a dataset, streamed in batches. Masked-LM data
// (token labels [N, T], −100 ignored) with [batch, tokens, vocab] logits: masked-token accuracy and mean loss over
// the labelled positions instead.
import { OtfuseError, throwIfCancelled } from '../errors';
import { OnnxModel } from '../onnx/model';
import { Dataset, IGNORE_LABEL, batches } from '../data/dataset';
import { ModelRunner, SessionOptions, checkFinite } from './runner';
import { ProviderReport } from './providers';

export interface EvalResult {
  accuracy: number;
  loss: number;
  samples: number;
  /** Masked-LM data: the number of labelled (predicted) token positions accuracy and loss are averaged over. */
  maskedTokens?: number;
  /** Causal-LM data: e^loss, the perplexity of the predicted next tokens (lower is better). */
  perplexity?: number;
  seconds: number;
  provider: ProviderReport;
}

export interface EvalOptions extends SessionOptions {
  batchSize?: number;
  limit?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Receives the logits of each batch (e.g. to compare models). */
  onLogits?: (logits: Float32Array, start: number, classes: number) => void;
}

export async function evaluateModel(model: OnnxModel, dataset: Dataset, options: EvalOptions = {}): Promise<EvalResult> {
  const runner = await ModelRunner.create(model, options);
  try {
    return await evaluateWithRunner(runner, dataset, options);
  } finally {
    await runner.release();
  }
}

export async function evaluateWithRunner(runner: ModelRunner, dataset: Dataset, options: EvalOptions = {}): Promise<EvalResult> {
  const binding = runner.bind(dataset);
  const total = Math.min(options.limit ?? dataset.size, dataset.size);
  const t0 = performance.now();
  let correct = 0;
  let lossSum = 0;
  let done = 0;
  let scored = 0;
  const perSample = dataset.labelsPerSample;
  const output = runner.outputNames[0];
  for (const batch of batches(dataset, options.batchSize ?? 256, total)) {
    throwIfCancelled(options.signal);
    checkFinite(batch, dataset.source);
    const result = await runner.run(batch, binding, [output]);
    const logits = result[output].data as Float32Array;
    const classes = logits.length / batch.labels.length;
    const rows = perSample ? batch.labels.length / perSample : batch.labels.length;
    if (perSample) checkTokenLogits(result[output].dims, rows, perSample, runner.file);
    checkLogits(result[output].dims, classes, batch.labels, runner.file, dataset.source, !!perSample);
    options.onLogits?.(logits, done, classes);
    const score = scoreLogits(logits, batch.labels);
    correct += score.correct;
    lossSum += score.lossSum;
    scored += score.scored;
    done += rows;
    options.onProgress?.(done, total);
  }
  const seconds = (performance.now() - t0) / 1000;
  if (perSample)
    return {
      accuracy: scored ? correct / scored : 0,
      loss: scored ? lossSum / scored : 0,
      samples: done,
      maskedTokens: scored,
      ...(dataset.causal ? { perplexity: Math.exp(scored ? lossSum / scored : 0) } : {}),
      seconds,
      provider: runner.provider,
    };
  return { accuracy: done ? correct / done : 0, loss: done ? lossSum / done : 0, samples: done, seconds, provider: runner.provider };
}

/**
 * Correct predictions and summed cross-entropy of one batch of logits ([labels.length, classes], row-major);
 * rows labelled IGNORE_LABEL (masked-LM positions that are not predicted) are skipped; `scored` counts the rest.
 */
export function scoreLogits(logits: Float32Array, labels: Int32Array): { correct: number; lossSum: number; scored: number } {
  const classes = logits.length / labels.length;
  let correct = 0;
  let lossSum = 0;
  let scored = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === IGNORE_LABEL) continue;
    scored++;
    const row = logits.subarray(i * classes, (i + 1) * classes);
    let best = 0;
    let max = -Infinity;
    for (let c = 0; c < classes; c++)
      if (row[c] > max) {
        max = row[c];
        best = c;
      }
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(row[c] - max);
    lossSum += Math.log(sum) + max - row[labels[i]];
    if (best === labels[i]) correct++;
  }
  return { correct, lossSum, scored };
}

/** The first output must be [batch, classes] logits and every label a valid class (dynamic class dims included). */
function checkLogits(dims: readonly number[], classes: number, labels: Int32Array, model: string, data: string, tokens = false): void {
  if (!Number.isInteger(classes) || classes < 1 || (!tokens && Number(dims[0]) !== labels.length)) {
    throw new OtfuseError(
      'BAD_MODEL',
      `the first output has shape [${dims.join(', ')}] for a batch of ${labels.length}; a classifier's logits are [batch, classes]`,
      { file: model },
    );
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= classes || (labels[i] < 0 && !(tokens && labels[i] === IGNORE_LABEL)))
      throw new OtfuseError('BAD_DATA', `label ${labels[i]} is out of range: the model gives ${classes} class scores`, { file: data });
  }
}

/** Masked-LM data needs per-token logits [batch, tokens, vocab] for the [batch, tokens] labels. */
function checkTokenLogits(dims: readonly number[], rows: number, tokens: number, model: string): void {
  if (dims.length !== 3 || Number(dims[0]) !== rows || Number(dims[1]) !== tokens) {
    throw new OtfuseError(
      'BAD_MODEL',
      `the first output has shape [${dims.join(', ')}] but the data has masked-LM labels [${rows}, ${tokens}]: expected per-token logits [batch, tokens, vocabulary]`,
      { file: model },
    );
  }
}
