// A model's ONNX Runtime session (created by session.ts) with the chosen provider: input binding against a
// dataset (names, shapes, element types, label range), batched runs, ORT's errors as OtfuseErrors naming the node.
import type * as Ort from 'onnxruntime-node';
import { OtfuseError } from '../errors';
import { OnnxModel, ModelSummary } from '../onnx/model';
import { Batch, Dataset, FeedTensor } from '../data/dataset';
import { ProviderChoice, ProviderReport, resolveProvider } from './providers';
import { createOrtSession, ortRuntime } from './session';
import { checkLabelRange } from '../data/labels';

export interface SessionOptions {
  provider?: ProviderChoice;
  /** Intra-op threads (0 = ONNX Runtime's default). */
  threads?: number;
}

/** Which dataset array feeds which model input. */
export type InputBinding = Record<string, string>;

/**
 * Which dataset array feeds each model input (by name; else the only array for a one-input model; else 'x'), with the
 * samples' shapes and element types checked against the model's inputs. Evaluation, teachers and the finetune all bind
 * through here, so a wrongly shaped dataset is named (not the model) whichever command meets it.
 */
export function bindDataset(summary: ModelSummary, dataset: Dataset, file: string): InputBinding {
  const binding: InputBinding = {};
  if (summary.inputs.length === 0) {
    throw new OtfuseError('BAD_MODEL', 'the model has no inputs, so its output does not depend on the data; there is nothing to evaluate', { file });
  }
  const byName = new Map(dataset.arrays.map((a) => [a.name, a]));
  for (const input of summary.inputs) {
    let array = byName.get(input.name);
    if (!array && summary.inputs.length === 1 && dataset.arrays.length === 1) array = dataset.arrays[0];
    if (!array && summary.inputs.length === 1) array = byName.get('x');
    if (!array) {
      throw new OtfuseError(
        'BAD_DATA',
        `no array for model input '${input.name}' (dataset arrays: ${dataset.arrays.map((a) => a.name).join(', ')}; model ${file})`,
        {
          file: dataset.source,
        },
      );
    }
    const wanted = input.shape.slice(1);
    const mismatch = wanted.length !== array.sampleShape.length || wanted.some((d, i) => typeof d === 'number' && d > 0 && d !== array!.sampleShape[i]);
    if (mismatch) {
      throw new OtfuseError(
        'BAD_DATA',
        `array '${array.name}' has samples of shape [${array.sampleShape}] but model input '${input.name}' of ${file} expects [${input.shape.join(', ')}]`,
        { file: dataset.source },
      );
    }
    const wantsInt = input.type === 'INT64' || input.type === 'INT32';
    if (wantsInt !== (array.type === 'int64')) {
      throw new OtfuseError('BAD_DATA', `array '${array.name}' is ${array.type} but model input '${input.name}' is ${input.type}`, { file: dataset.source });
    }
    binding[input.name] = array.name;
  }
  return binding;
}

export class ModelRunner {
  private constructor(
    readonly session: Ort.InferenceSession,
    readonly summary: ModelSummary,
    readonly provider: ProviderReport,
    readonly file: string,
  ) {}

  static async create(model: OnnxModel, options: SessionOptions = {}): Promise<ModelRunner> {
    const provider = await resolveProvider(options.provider ?? 'auto');
    let session: Ort.InferenceSession;
    try {
      session = await createOrtSession(model.toBytes(), { providers: [provider.used], threads: options.threads });
    } catch (err) {
      throw new OtfuseError('BAD_MODEL', `ONNX Runtime cannot load the model: ${firstLine(err)}`, { file: model.file, node: nodeInMessage(err) });
    }
    return new ModelRunner(session, model.summary(), provider, model.file);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Maps the model's inputs to the dataset's arrays and checks shapes, element types and label range. */
  bind(dataset: Dataset, options: { checkLabels?: boolean } = {}): InputBinding {
    const binding = bindDataset(this.summary, dataset, this.file);
    if (options.checkLabels !== false) checkLabelRange(dataset, this.classCount());
    return binding;
  }

  /** Number of classes: the last static dimension of the first output, if known. */
  classCount(): number | undefined {
    const shape = this.summary.outputs[0]?.shape ?? [];
    const last = shape[shape.length - 1];
    return typeof last === 'number' && last > 0 ? last : undefined;
  }

  async run(batch: Batch, binding: InputBinding, fetches?: string[]): Promise<Record<string, Ort.Tensor>> {
    const feeds: Record<string, Ort.Tensor> = {};
    for (const [input, arrayName] of Object.entries(binding)) feeds[input] = toOrtTensor(batch.feeds[arrayName]);
    try {
      return fetches ? await this.session.run(feeds, fetches) : await this.session.run(feeds);
    } catch (err) {
      throw new OtfuseError('INTERNAL', `ONNX Runtime failed: ${firstLine(err)}`, { file: this.file, node: nodeInMessage(err) });
    }
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export function toOrtTensor(feed: FeedTensor): Ort.Tensor {
  return new (ortRuntime().Tensor)(feed.type, feed.data, feed.dims);
}

/** Rejects NaN/Inf in float inputs, naming the sample. */
export function checkFinite(batch: Batch, source: string): void {
  for (const [name, feed] of Object.entries(batch.feeds)) {
    if (feed.type !== 'float32') continue;
    const data = feed.data as Float32Array;
    const row = data.length / Math.max(1, feed.dims[0]);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        const sample = batch.indices[Math.floor(i / row)];
        throw new OtfuseError('BAD_DATA', `array '${name}' has a non-finite value (${data[i]}) in sample ${sample}`, { file: source });
      }
    }
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n').filter(Boolean).slice(0, 2).join(' ').slice(0, 400);
}

/** The graph node an ONNX Runtime message is about: "… MatMul node. Name:'/blocks.0/MatMul' …", "Node (name) Op
 * (…)", "node name: x". "Node input 'x' is not a graph input" names a tensor, not a node: undefined then. */
export function nodeInMessage(err: unknown): string | undefined {
  const text = err instanceof Error ? err.message : String(err);
  const m =
    /Name:\s*'([^']+)'/.exec(text) ??
    /[Nn]ode \(([^)]+)\)/.exec(text) ??
    /[Nn]ode name[:\s]+'?([^'\s,]+)'?/.exec(text) ??
    /(?:^|\s)[Nn]ode:\s*'?([^'\s,]+)'?/.exec(text);
  return m?.[1] || undefined;
}
