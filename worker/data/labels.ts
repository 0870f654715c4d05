// Labels against a classifier: its class count, and every label inside [0, classes). One check for the preflight,
// the evaluation runner and the finetune.
import { IGNORE_LABEL, type Dataset } from './dataset';
import { OtfuseError } from '../errors';
import type { OnnxModel } from '../onnx/model';

/** The class count of a classifier: the last static dimension of its first output. */
export function classCountOf(model: OnnxModel): number | undefined {
  const shape = model.summary().outputs[0]?.shape ?? [];
  const last = shape[shape.length - 1];
  return typeof last === 'number' && last > 0 ? last : undefined;
}

/** Labels inside [0, classes). */
export function checkLabelRange(dataset: Dataset, classes: number | undefined): void {
  for (let i = 0; i < dataset.labels.length; i++) {
    const y = dataset.labels[i];
    if (dataset.labelsPerSample && y === IGNORE_LABEL) continue;
    if (y < 0 || (classes !== undefined && y >= classes)) {
      throw new OtfuseError('BAD_DATA', `label ${y} of sample ${i} is out of range (model has ${classes ?? '?'} classes)`, { file: dataset.source });
    }
  }
}
