// Checks that can fail a run must run before the run's work: outputs writable and not an input model, every
// dataset's labels inside the model's classes. A late failure (after fusion or training) loses the work.
import { type Dataset } from './data/dataset';
import { checkLabelRange, classCountOf } from './data/labels';
import { OtfuseError } from './errors';
import { checkOutputWritable, refuseOutputOverInputs, type InputRef } from './io/outputs';
import { isFloatTensor, type OnnxModel } from './onnx/model';

/** Refuses a model with a NaN or ±Inf weight, naming the file and the initializer: fusing or training it would
 * write NaN into every output (and autotune would score garbage). Reads each float initializer once. */
export function refuseNonFiniteWeights(model: OnnxModel): void {
  for (const t of model.graph.initializer ?? []) {
    if (!isFloatTensor(t) || !t.name) continue;
    const data = model.getInitializer(t.name).data;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v - v !== 0) {
        throw new OtfuseError('BAD_MODEL', `initializer '${t.name}' holds ${v} at element ${i}: the weights must be finite; nothing was written`, {
          file: model.file,
        });
      }
    }
  }
}

export interface PreflightInput {
  /** Every file and folder the command reads (models, HF folders, teachers, datasets, tokenizers, …). */
  inputs: InputRef[];
  output?: string;
  runsDir?: string;
  /** The model whose classes the datasets' labels must fit. */
  model?: OnnxModel;
  /** Models whose weights must all be finite (the parents of a fusion). */
  finite?: OnnxModel[];
  labelled?: (Dataset | undefined)[];
}

export function preflight(input: PreflightInput): void {
  if (input.output) {
    // A model may be saved with its weights in `<output>.data` beside it: that path must be no input either.
    refuseOutputOverInputs([{ path: input.output }, { path: `${input.output}.data` }], input.inputs);
    checkOutputWritable(input.output, 'output model');
  }
  if (input.runsDir) checkOutputWritable(input.runsDir, 'runs folder', true);
  for (const m of input.finite ?? []) refuseNonFiniteWeights(m);
  if (input.model) {
    const classes = classCountOf(input.model);
    for (const d of input.labelled ?? []) if (d) checkLabelRange(d, classes);
  }
}
