// All logits of a model over (a prefix of) a dataset, for comparing models sample by sample.
import { OnnxModel } from '../onnx/model';
import { Dataset, batches } from '../data/dataset';
import { ModelRunner, SessionOptions } from './runner';

export async function computeLogits(
  model: OnnxModel,
  dataset: Dataset,
  options: SessionOptions & { limit?: number; batchSize?: number } = {},
): Promise<{ logits: Float32Array; classes: number }> {
  const runner = await ModelRunner.create(model, options);
  try {
    const binding = runner.bind(dataset, { checkLabels: false });
    const total = Math.min(options.limit ?? dataset.size, dataset.size);
    const output = runner.outputNames[0];
    const parts: Float32Array[] = [];
    for (const batch of batches(dataset, options.batchSize ?? 256, total)) {
      const result = await runner.run(batch, binding, [output]);
      parts.push(Float32Array.from(result[output].data as Float32Array));
    }
    const logits = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let offset = 0;
    for (const p of parts) {
      logits.set(p, offset);
      offset += p.length;
    }
    return { logits, classes: total ? logits.length / total : 0 };
  } finally {
    await runner.release();
  }
}
