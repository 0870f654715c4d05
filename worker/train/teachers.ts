// Teachers for distillation finetuning: ONNX Runtime sessions of the teacher models, run on each training batch
// in the same worker; their softened probabilities (softmax(z/T)) are averaged into one [batch, classes] tensor
// that the training-step graph takes as `teacher_probs`. Only the current batch's outputs are ever held.
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { OtfuseError } from '../errors';
import { loadModel } from '../onnx/model';
import { refuseNonFiniteWeights } from '../preflight';
import type { Batch, Dataset } from '../data/dataset';
import { InputBinding, ModelRunner } from '../runtime/runner';
import type { ProviderChoice } from '../runtime/providers';

/** Mean over models of softmax(logits/T), row by row; `rows` × `classes`, row-major; accumulates into `out`. */
export function addSoftened(out: Float32Array, logits: Float32Array, classes: number, temperature: number, weight: number): void {
  const rows = logits.length / classes;
  for (let i = 0; i < rows; i++) {
    const o = i * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[o + c] / temperature);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[o + c] / temperature - max);
    for (let c = 0; c < classes; c++) out[o + c] += (weight * Math.exp(logits[o + c] / temperature - max)) / sum;
  }
}

export class Teachers {
  private constructor(
    private readonly runners: { runner: ModelRunner; binding: InputBinding; output: string }[],
    readonly classes: number,
    readonly temperature: number,
    readonly files: string[],
  ) {}

  static async open(
    files: string[],
    dataset: Dataset,
    classes: number | undefined,
    temperature: number,
    options: { provider?: ProviderChoice; threads?: number; student: string },
  ): Promise<Teachers> {
    if (files.length === 0) throw new OtfuseError('BAD_USAGE', 'distillation needs at least one --teacher');
    const runners: { runner: ModelRunner; binding: InputBinding; output: string }[] = [];
    try {
      for (const file of files) {
        const model = loadModel(file);
        refuseNonFiniteWeights(model); // a NaN teacher would turn every distillation target into NaN
        const shape = model.summary().outputs[0]?.shape ?? [];
        const c = shape[shape.length - 1];
        if (classes !== undefined && typeof c === 'number' && c !== classes) {
          throw new OtfuseError(
            'MISMATCH',
            `teacher ${path.basename(file)} has ${c} classes but the model being finetuned (${path.basename(options.student)}) has ${classes}`,
            { file },
          );
        }
        // One thread each by default: teachers run between training steps, and idle-spinning thread pools of extra
        // sessions would compete with the training session's (measured: 3× slower steps on a 2-core machine).
        const runner = await ModelRunner.create(model, { provider: options.provider, threads: options.threads || 1 });
        runners.push({ runner, binding: runner.bind(dataset), output: runner.outputNames[0] });
      }
    } catch (err) {
      for (const r of runners) await r.runner.release();
      throw err;
    }
    return new Teachers(runners, classes ?? 0, temperature, files);
  }

  /** The teachers' mean softened probabilities on one batch, as the `teacher_probs` feed. */
  async probs(batch: Batch): Promise<ort.Tensor> {
    const n = batch.labels.length;
    let out: Float32Array | undefined;
    let classes = this.classes;
    for (const t of this.runners) {
      const result = await t.runner.run(batch, t.binding, [t.output]);
      const logits = result[t.output].data as Float32Array;
      if (!classes) classes = logits.length / n;
      if (logits.length !== n * classes)
        throw new OtfuseError('MISMATCH', `teacher output has ${logits.length / n} values per sample, expected ${classes}`, { file: t.runner.file });
      out ??= new Float32Array(n * classes);
      addSoftened(out, logits, classes, this.temperature, 1 / this.runners.length);
    }
    return new ort.Tensor('float32', out!, [n, classes]);
  }

  async release(): Promise<void> {
    for (const r of this.runners) await r.runner.release();
  }
}
