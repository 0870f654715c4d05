// Classifier evaluation: accuracy and mean cross-entropy over a dataset, streamed in batches.
import { OtfuseError, throwIfCancelled } from '../errors';
import { OnnxModel } from '../onnx/model';
import { Dataset, batches } from '../data/dataset';
import { ModelRunner, SessionOptions, checkFinite } from './session';
import { ProviderReport } from './providers';

export interface EvalResult {
  accuracy: number;
  loss: number;
  samples: number;
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
  const output = runner.outputNames[0];
  for (const batch of batches(dataset, options.batchSize ?? 256, total)) {
    throwIfCancelled(options.signal);
    checkFinite(batch, dataset.source);
    const result = await runner.run(batch, binding, [output]);
    const logits = result[output].data as Float32Array;
    const classes = logits.length / batch.labels.length;
    checkLogits(result[output].dims, classes, batch.labels, runner.file, dataset.source);
    options.onLogits?.(logits, done, classes);
    const score = scoreLogits(logits, batch.labels);
    correct += score.correct;
    lossSum += score.lossSum;
    done += batch.labels.length;
    options.onProgress?.(done, total);
  }
  return { accuracy: done ? correct / done : 0, loss: done ? lossSum / done : 0, samples: done, seconds: (performance.now() - t0) / 1000, provider: runner.provider };
}

/** Correct predictions and summed cross-entropy of one batch of logits ([labels.length, classes], row-major). */
export function scoreLogits(logits: Float32Array, labels: Int32Array): { correct: number; lossSum: number } {
  const classes = logits.length / labels.length;
  let correct = 0;
  let lossSum = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = logits.subarray(i * classes, (i + 1) * classes);
    let best = 0;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) if (row[c] > max) { max = row[c]; best = c; }
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(row[c] - max);
    lossSum += Math.log(sum) + max - row[labels[i]];
    if (best === labels[i]) correct++;
  }
  return { correct, lossSum };
}

/** The first output must be [batch, classes] logits and every label a valid class (dynamic class dims included). */
function checkLogits(dims: readonly number[], classes: number, labels: Int32Array, model: string, data: string): void {
  if (!Number.isInteger(classes) || classes < 1 || Number(dims[0]) !== labels.length) {
    throw new OtfuseError('BAD_MODEL', `the first output has shape [${dims.join(', ')}] for a batch of ${labels.length}; a classifier's logits are [batch, classes]`, { file: model });
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= classes) throw new OtfuseError('BAD_DATA', `label ${labels[i]} is out of range: the model gives ${classes} class scores`, { file: data });
  }
}
