// The finetune loop: one ONNX training-step graph (forward + cross-entropy + backward + clipping + AdamW)
// run by ONNX Runtime; parameters and Adam moments live in three flat tensors that each step returns and
// the next step takes as inputs (nothing is re-serialised between steps). Checkpoints are ordinary
// inference models written atomically.
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { OtfuseError, throwIfCancelled } from '../errors';
import { OnnxModel, loadModel } from '../onnx/model';
import { Batch, Dataset, IGNORE_LABEL, openDataset, specFromArg, batches } from '../data/dataset';
import { resolveProvider, ProviderReport } from '../runtime/providers';
import { scoreLogits } from '../runtime/evaluate';
import { bindDataset, checkFinite } from '../runtime/runner';
import { createOrtSession } from '../runtime/session';
import type { FinetuneRequest, FinetuneResult, JobContext, ProgressEvent } from '../types';
import {
  ParamLayout,
  STEP_OUTPUTS,
  TrainingGraph,
  buildEvalGraph,
  buildTrainingGraph,
  detachWeights,
  flattenParams,
  gradOutput,
  modelWithParams,
} from './graphs';
import { adamwStep } from './adamw';
import { reinitializeParameters, seededRandom } from './init';
import { preflight, refuseNonFiniteWeights } from '../preflight';
import { dataInputs, modelInputs } from '../io/outputs';
import { Teachers } from './teachers';
import { checkStepMemory, sequenceProbeBytes } from './memory';
import { collectGarbage, PreviousParams } from './previous';

/**
 * The default warmup: 5 % of the steps, at most 100, but at least min(4, a quarter of the steps). Short finetunes
 * (one epoch of 2k samples at batch 128 = 16 steps) had none: the first steps at the full learning rate move a fused
 * model's large, cancelling refit weights far (bench/quality/noniid.md: non-IID pair fused + KD 79.7 → see there).
 */
export function defaultWarmupSteps(totalSteps: number): number {
  return Math.min(100, Math.max(Math.floor(totalSteps * 0.05), Math.min(4, Math.floor(totalSteps / 4))));
}

export { learningRate, paramFeeds, shuffled } from './schedule';
import { learningRate, paramFeeds, shuffled } from './schedule';

// The defaults come from the option registry (worker/train/options.ts), which also holds the domains: requests are
// checked against them on entry to the engine (worker/numbers.ts checkRequestNumbers), not here.
import { FINETUNE_DEFAULTS } from './options';
import { trunkStage } from './trunkdistill';
import { checkLabelRange, classCountOf } from '../data/labels';
export { FINETUNE_DEFAULTS };

interface Sessions {
  step: ort.InferenceSession;
  evaluate?: ort.InferenceSession;
  provider: ProviderReport;
}

/**
 * Above this many parameters the training sessions run without ONNX Runtime's CPU memory arena: the arena keeps its
 * high-water mark and grows by doubling (ViT-B/16 at batch 8: 11.2 GB peak with it, 8.0 GB without, same speed),
 * while small models' many small allocations are 35 % slower without it (the 48-wide ViT: 5,400 → 3,400 img/s).
 */
const NO_ARENA_ABOVE_PARAMS = 16_000_000;

async function createSession(
  model: OnnxModel,
  provider: ProviderReport,
  threads: number | undefined,
  what: string,
  params: number,
): Promise<ort.InferenceSession> {
  // Training graphs of small models are many small ops: past a few threads ONNX Runtime's scheduling
  // costs more than it gains (measured on a 16-core machine: 4 threads beat 16), so the default is capped. The
  // training session is the one session of a step that runs back to back with little JavaScript between its calls:
  // it keeps ORT's spinning pool (the bundled 48-wide ViT's 2-epoch finetune: 3.1 s wall spinning, 3.6 s not).
  const settings = {
    providers: [provider.used],
    threads: threads || Math.min(4, os.availableParallelism()),
    memArena: params <= NO_ARENA_ABOVE_PARAMS,
    spinning: true,
  };
  try {
    return await createOrtSession(model.toBytes(), settings);
  } catch (err) {
    throw new OtfuseError('INTERNAL', `ONNX Runtime cannot load the generated ${what} graph: ${(err as Error).message.split('\n')[0]}`, { file: model.file });
  }
}

/** Tokens per sample when the data are token ids ([batch, tokens] integers), for messages. */
function sequenceLengthOf(feeds: Record<string, ort.Tensor>): number | undefined {
  const ids = Object.values(feeds).find((t) => (t.type === 'int64' || t.type === 'int32') && t.dims.length === 2);
  return ids ? ids.dims[1] : undefined;
}

function dataFeeds(batch: Batch, binding: Record<string, string>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [input, array] of Object.entries(binding)) {
    const f = batch.feeds[array];
    feeds[input] = new ort.Tensor(f.type, f.data, f.dims);
  }
  return feeds;
}

/** Accuracy and mean cross-entropy of the current flat parameters on a dataset. */
async function evaluateParams(
  session: ort.InferenceSession,
  params: Record<string, ort.Tensor>,
  dataset: Dataset,
  binding: Record<string, string>,
  limit: number,
  batchSize: number,
  signal?: AbortSignal,
): Promise<{ accuracy: number; loss: number }> {
  let correct = 0;
  let lossSum = 0;
  let done = 0;
  const output = session.outputNames[0];
  for (const batch of batches(dataset, batchSize, Math.min(limit, dataset.size))) {
    throwIfCancelled(signal);
    const result = await session.run({ ...dataFeeds(batch, binding), ...params }, [output]);
    const score = scoreLogits(result[output].data as Float32Array, batch.labels);
    correct += score.correct;
    lossSum += score.lossSum;
    done += score.scored; // masked-LM data: the labelled positions only
  }
  return { accuracy: done ? correct / done : 0, loss: done ? lossSum / done : 0 };
}

/** The finetune's hyperparameters: the request's values, else the registry's defaults (FINETUNE_OPTIONS). */
interface Settings {
  batchSize: number;
  baseLr: number;
  weightDecay: number;
  clipNorm: number;
  labelSmoothing: number;
  seed: number;
  maxSteps?: number;
  epochs: number;
}

function settingsOf(request: FinetuneRequest): Settings {
  const maxSteps = request.maxSteps;
  return {
    batchSize: request.batchSize ?? FINETUNE_DEFAULTS.batchSize,
    baseLr: request.lr ?? FINETUNE_DEFAULTS.lr,
    weightDecay: request.weightDecay ?? FINETUNE_DEFAULTS.weightDecay,
    clipNorm: request.clipNorm ?? FINETUNE_DEFAULTS.clipNorm,
    labelSmoothing: request.labelSmoothing ?? FINETUNE_DEFAULTS.labelSmoothing,
    seed: request.seed ?? FINETUNE_DEFAULTS.seed,
    maxSteps,
    epochs: request.epochs ?? (maxSteps !== undefined ? Infinity : FINETUNE_DEFAULTS.epochs),
  };
}

/** The model and data, checked, and the step schedule. */
interface Prepared {
  model: OnnxModel;
  train: Dataset;
  evalSet?: Dataset;
  classes?: number;
  stepsPerEpoch: number;
  totalSteps: number;
  warmupSteps: number;
}

function prepare(request: FinetuneRequest, s: Settings, progress: (e: ProgressEvent) => void): Prepared {
  // Before any work: the output is writable and is not the model being trained.
  preflight({
    inputs: [
      ...modelInputs(request.model),
      ...dataInputs(request.data, 'training data'),
      ...dataInputs(request.evalData, 'evaluation data'),
      ...(request.teachers ?? []).flatMap((t) => modelInputs(t, 'teacher')),
    ],
    output: request.output,
  });
  progress({ stage: 'finetune', message: 'loading model and data' });
  let model = loadModel(request.model);
  refuseNonFiniteWeights(model);
  if (request.reinitialize) model = reinitializeParameters(model, s.seed);
  const train = openDataset(specFromArg(request.data));
  const evalSet = request.evalData ? openDataset(specFromArg(request.evalData)) : undefined;
  if (train.size === 0) throw new OtfuseError('BAD_DATA', 'the training set is empty', { file: train.source });
  const classes = classCountOf(model);
  checkLabelRange(train, classes);
  if (evalSet) checkLabelRange(evalSet, classes);

  const stepsPerEpoch = Math.ceil(train.size / s.batchSize);
  const totalSteps = Math.min(s.maxSteps ?? Infinity, Number.isFinite(s.epochs) ? Math.ceil(s.epochs * stepsPerEpoch) : Infinity);
  if (!Number.isFinite(totalSteps)) throw new OtfuseError('BAD_USAGE', 'give --epochs or --max-steps');
  const warmupSteps = request.warmupSteps ?? defaultWarmupSteps(totalSteps);
  return { model, train, evalSet, classes, stepsPerEpoch, totalSteps, warmupSteps };
}

/** The training-step graph's sessions, the input bindings and the teachers. */
interface Opened {
  layout: ParamLayout;
  sessions: Sessions;
  teachers?: Teachers;
  binding: Record<string, string>;
  evalBinding?: Record<string, string>;
  distill?: { temperature: number; alpha: number };
  maskedLabels: boolean;
}

async function openTraining(request: FinetuneRequest, s: Settings, p: Prepared, progress: (e: ProgressEvent) => void): Promise<Opened> {
  const { model, train, evalSet } = p;
  progress({ stage: 'finetune', message: 'building the training graph' });
  const probe = train.take([0, 1, 2].map((i) => i % train.size));
  const summary = model.summary();
  const binding = bindDataset(summary, train, model.file);
  const teacherFiles = request.teachers ?? [];
  const distill = teacherFiles.length
    ? { temperature: request.kdTemp ?? FINETUNE_DEFAULTS.kdTemp, alpha: request.kdAlpha ?? FINETUNE_DEFAULTS.kdAlpha }
    : undefined;
  const maskedLabels = !!train.labelsPerSample;
  if (evalSet && !!evalSet.labelsPerSample !== maskedLabels)
    throw new OtfuseError(
      'BAD_DATA',
      `the evaluation set has ${evalSet.labelsPerSample ? 'masked-LM token labels' : 'one label per sample'} but the training set ${maskedLabels ? 'masked-LM token labels' : 'one label per sample'}`,
      { file: evalSet.source },
    );
  const probeFeeds = dataFeeds(probe, binding);
  const sequenceLength = sequenceLengthOf(probeFeeds);
  const memory = {
    probeRows: probe.indices.length,
    batch: Math.min(s.batchSize, train.size),
    sequenceLength,
    limitBytes: request.memoryLimit !== undefined ? request.memoryLimit * 1024 ** 3 : undefined,
    file: model.file,
  };
  // Long sequences are judged from three short probes first: the full probe holds every intermediate of its rows.
  const early = sequenceLength !== undefined ? await sequenceProbeBytes(model, probeFeeds, sequenceLength) : undefined;
  if (early !== undefined) checkStepMemory({ ...memory, probeBytes: early, params: summary.parameterCount });
  const graph: TrainingGraph = await buildTrainingGraph(model, { labelSmoothing: s.labelSmoothing, distill, maskedLabels }, { probeFeeds });
  const layout: ParamLayout = graph.layout;
  checkStepMemory({ ...memory, probeBytes: graph.probeBytes, params: layout.total });
  const evalBinding = evalSet ? bindDataset(summary, evalSet, model.file) : undefined;
  const provider = await resolveProvider(request.provider ?? 'auto');
  const stepSession = await createSession(graph.model, provider, request.threads, 'training-step', layout.total);
  let evaluate: ort.InferenceSession | undefined;
  try {
    evaluate = evalSet ? await createSession(buildEvalGraph(model, layout), provider, request.threads, 'evaluation', layout.total) : undefined;
  } catch (err) {
    await stepSession.release();
    throw err;
  }
  let teachers: Teachers | undefined;
  if (distill) {
    progress({ stage: 'finetune', message: `loading ${teacherFiles.length} teacher model${teacherFiles.length > 1 ? 's' : ''}` });
    try {
      teachers = await Teachers.open(teacherFiles, train, p.classes, distill.temperature, {
        provider: request.provider,
        threads: request.threads,
        student: request.model,
      });
    } catch (err) {
      await stepSession.release();
      await evaluate?.release();
      throw err;
    }
  }
  return { layout, sessions: { step: stepSession, evaluate, provider }, teachers, binding, evalBinding, distill, maskedLabels };
}

/**
 * The training state and its loop. The parameters and both Adam moments are flat float32 vectors updated in place on
 * the host (adamw.ts); the previous step's parameters (the "last good" ones if the loss turns NaN) are a copy, spooled
 * to a temp file for large models (previous.ts). The gradient
 * is the step's output as returned: onnxruntime-node hands back a fresh copy of an output even when a preallocated
 * tensor is given for it (it fills both), so preallocating would only keep one more parameter-sized buffer alive.
 */
class Trainer {
  readonly params: Float32Array;
  readonly paramIn: Record<string, ort.Tensor>;
  private readonly fetches: string[];
  private readonly previous: PreviousParams;
  private readonly adamM: Float32Array;
  private readonly adamV: Float32Array;
  private readonly keep: 'best' | 'last';
  private readonly paramLimit: number;
  readonly result: FinetuneResult;
  peakRss = process.memoryUsage().rss;
  private written: { step: number; epoch: number } | undefined;
  step = 0;
  trainSeconds = 0;
  samples = 0;
  private firstLoss: number | undefined;
  private logLoss = 0;
  private logCount = 0;
  private lastLog = performance.now();
  private bestAccuracy = -Infinity;
  // The current epoch's sums.
  private epochLoss = 0;
  private epochCorrect = 0;
  private epochSamples = 0;

  constructor(
    private readonly request: FinetuneRequest,
    private readonly s: Settings,
    private readonly p: Prepared,
    private readonly o: Opened,
    private readonly progress: (e: ProgressEvent) => void,
    private readonly signal: AbortSignal | undefined,
  ) {
    const { model } = p;
    const { layout } = o;
    this.params = flattenParams(model, layout);
    detachWeights(model, layout, this.params);
    this.paramIn = paramFeeds(layout, this.params);
    this.fetches = [...STEP_OUTPUTS, ...layout.slots.map((sl) => gradOutput(sl.name))];
    this.previous = new PreviousParams(layout.total);
    this.adamM = new Float32Array(layout.total);
    this.adamV = new Float32Array(layout.total);
    this.keep = request.keep ?? (p.evalSet ? 'best' : 'last');
    this.result = { output: request.output, steps: 0, epochs: 0, seconds: 0, samplesPerSecond: 0, history: [], evals: [], train: [] };
    if (o.distill) this.result.distill = { teachers: request.teachers ?? [], ...o.distill };
    // "Good" parameters: all finite and not exploded (max |w| within 1000× the starting scale, at least 1e4).
    this.paramLimit = Math.max(1e4, 1e3 * maxAbs(this.params));
  }

  private healthy(flat: Float32Array): boolean {
    return maxAbs(flat) <= this.paramLimit;
  }

  private kept(): string | undefined {
    const w = this.written;
    return w ? `the checkpoint from epoch ${w.epoch} (step ${w.step}) at ${this.request.output} is kept` : undefined;
  }

  private diverged(why: string, at: number): OtfuseError {
    const kept = this.kept() ?? `nothing was written to ${this.request.output}`;
    return new OtfuseError('NUMERIC', `training diverged: ${why} (step ${at}); stopped, ${kept}. Try a lower --lr or a --clip-norm.`, {
      file: this.request.model,
    });
  }

  private save(flat: Float32Array, step: number, epoch: number): void {
    if (!this.healthy(flat)) throw this.diverged(`the parameters exploded (max |w| ${maxAbs(flat).toPrecision(3)}) by step ${step}`, step);
    if (this.previous.spooled) collectGarbage(); // the last step's outputs, before the checkpoint's bytes
    modelWithParams(this.p.model, this.o.layout, flat).save(this.request.output);
    this.written = { step, epoch };
    this.previous.drop(); // the checkpoint now stands for the last good parameters
  }

  release(): void {
    this.previous.release();
  }

  private async evaluate(): Promise<{ accuracy: number; loss: number }> {
    const evalLimit = this.request.evalLimit ?? Infinity;
    return evaluateParams(this.o.sessions.evaluate!, this.paramIn, this.p.evalSet!, this.o.evalBinding!, evalLimit, 256, this.signal);
  }

  /** Evaluates before the first step (request.evalBefore). */
  async evaluateBefore(): Promise<void> {
    const initial = await this.evaluate();
    this.result.initial = initial;
    this.progress({
      stage: 'finetune',
      message: `before: accuracy ${(initial.accuracy * 100).toFixed(2)} %`,
      metrics: { accuracy: initial.accuracy, evalLoss: initial.loss },
    });
  }

  /** Every epoch until the step budget is spent. */
  async run(): Promise<void> {
    const { train } = this.p;
    const rand = seededRandom(this.s.seed + 1);
    for (let epoch = 1; this.step < this.p.totalSteps; epoch++) {
      const order = shuffled(train.size, rand);
      this.epochLoss = 0;
      this.epochCorrect = 0;
      this.epochSamples = 0;
      for (let start = 0; start < train.size && this.step < this.p.totalSteps; start += this.s.batchSize) {
        throwIfCancelled(this.signal);
        const batch = train.take(order.subarray(start, Math.min(start + this.s.batchSize, train.size)));
        await this.trainStep(batch, epoch, start);
      }
      await this.endEpoch(epoch);
    }
  }

  /** One optimiser step on `batch`: the step graph, the divergence check, the AdamW update, the progress log. */
  private async trainStep(batch: Batch, epoch: number, start: number): Promise<void> {
    const { train, totalSteps } = this.p;
    const { layout, teachers } = this.o;
    // NaN/Inf in the training inputs is an input error, not a divergence.
    checkFinite(batch, train.source);
    const n = batch.labels.length;
    // large models: the last step's outputs (a parameter-sized gradient) are freed before this step allocates its own
    if (this.previous.spooled) collectGarbage();
    const step = ++this.step;
    const lr = learningRate(step, totalSteps, this.s.baseLr, this.p.warmupSteps);
    const t0 = performance.now();
    const out = await this.o.sessions.step.run(
      {
        ...dataFeeds(batch, this.o.binding),
        labels: new ort.Tensor(
          'int64',
          BigInt64Array.from(batch.labels, (y) => BigInt(y)),
          [n],
        ),
        ...(teachers ? { teacher_probs: await teachers.probs(batch) } : {}),
        ...this.paramIn,
      },
      this.fetches,
    );
    this.trainSeconds += (performance.now() - t0) / 1000;
    const tUpdate = performance.now();
    const loss = (out.loss.data as Float32Array)[0];
    this.firstLoss ??= loss;
    if (!Number.isFinite(loss) || loss > Math.max(1e3, 100 * (this.firstLoss ?? loss))) this.lossDiverged(loss, step, epoch, lr);
    // The parameters this loss was computed with become the last good ones; then the update, in place.
    this.previous.keep(this.params);
    // each parameter's slice from its own gradient output; clipping by the global norm
    const gradNorm = (out.grad_norm.data as Float32Array)[0];
    for (const s of layout.slots) {
      const slice = (x: Float32Array) => x.subarray(s.offset, s.offset + s.size);
      adamwStep(slice(this.params), slice(this.adamM), slice(this.adamV), out[gradOutput(s.name)].data as Float32Array, gradNorm, {
        lr,
        step,
        decayed: s.decay ? s.size : 0,
        weightDecay: this.s.weightDecay,
        clipNorm: this.s.clipNorm,
      });
    }
    this.trainSeconds += (performance.now() - tUpdate) / 1000;
    this.samples += n;
    // Masked-LM data: loss and accuracy are means over the labelled positions.
    const scored = this.o.maskedLabels ? batch.labels.reduce((c, y) => c + (y === IGNORE_LABEL ? 0 : 1), 0) : n;
    this.epochSamples += scored;
    this.epochLoss += loss * scored;
    this.epochCorrect += (out.correct.data as Float32Array)[0];
    this.logLoss += loss;
    this.logCount++;
    const now = performance.now();
    if (step % 10 === 0 || now - this.lastLog > 500 || step === totalSteps || start + this.s.batchSize >= train.size) {
      const meanLoss = this.logLoss / this.logCount;
      this.result.history.push({ step, loss: meanLoss, lr });
      this.peakRss = Math.max(this.peakRss, process.memoryUsage().rss);
      this.progress({
        stage: 'finetune',
        done: step,
        total: totalSteps,
        message: `epoch ${epoch}, step ${step}/${totalSteps}`,
        metrics: { loss: meanLoss, lr, samplesPerSecond: this.samples / this.trainSeconds, epoch, gradNorm: (out.grad_norm.data as Float32Array)[0] },
      });
      this.logLoss = 0;
      this.logCount = 0;
      this.lastLog = now;
    }
  }

  /** The loss turned non-finite or exploded: keep the last good parameters where possible, and stop. */
  private lossDiverged(loss: number, step: number, epoch: number, lr: number): never {
    // The loss of this step was computed with `params`: the parameters before them are the last good ones.
    let kept = this.kept();
    const previous = kept === undefined && step > 1 ? this.previous.read() : undefined;
    if (kept === undefined && step > 1 && previous && this.healthy(previous)) {
      this.save(previous, step - 2, epoch);
      kept = `the last good parameters (after step ${step - 2}) were written to ${this.request.output}`;
    } else if (kept === undefined && step > 1) kept = 'no checkpoint was written (the last parameters before it had already exploded)';
    else kept ??= 'no checkpoint was written (the loss is not finite at the very first step: check the data and the model)';
    throw new OtfuseError(
      'NUMERIC',
      `training diverged: the loss became ${loss} at step ${step} (epoch ${epoch}, lr ${lr.toPrecision(3)}); stopped, ${kept}. Try a lower --lr or a --clip-norm.`,
      { file: this.request.model },
    );
  }

  /** The epoch's training numbers, its evaluation and the checkpoint it keeps. */
  private async endEpoch(epoch: number): Promise<void> {
    const { result } = this;
    result.train!.push({ epoch, accuracy: this.epochCorrect / Math.max(1, this.epochSamples), loss: this.epochLoss / Math.max(1, this.epochSamples) });
    result.steps = this.step;
    result.epochs = Math.round((this.step / this.p.stepsPerEpoch) * 1000) / 1000;
    if (this.p.evalSet) {
      this.progress({ stage: 'finetune', message: `epoch ${epoch}: evaluating` });
      const e = await this.evaluate();
      result.evals.push({ epoch, ...e });
      this.progress({
        stage: 'finetune',
        done: this.step,
        total: this.p.totalSteps,
        message: `epoch ${epoch}: accuracy ${(e.accuracy * 100).toFixed(2)} %`,
        metrics: { accuracy: e.accuracy, evalLoss: e.loss, epoch },
      });
      if (e.accuracy > this.bestAccuracy) {
        this.bestAccuracy = e.accuracy;
        result.best = { epoch, accuracy: e.accuracy };
        if (this.keep === 'best') this.save(this.params, this.step, epoch);
      }
    }
    if (this.keep === 'last') this.save(this.params, this.step, epoch);
    this.peakRss = Math.max(this.peakRss, process.memoryUsage().rss);
  }
}

export async function finetuneModel(request: FinetuneRequest, context: JobContext): Promise<FinetuneResult> {
  const started = performance.now();
  const progress = context.onProgress ?? (() => undefined);
  const s = settingsOf(request);
  const p = prepare(request, s, progress);
  // A partial model's trunk is first trained to serve every branch (trunkdistill.ts), then the steps below.
  const trunk = await trunkStage(request, p.model, p.train, progress, context.signal);
  if (trunk) p.model = trunk.model;
  const o = await openTraining(request, s, p, progress);
  let trainer: Trainer | undefined;
  try {
    trainer = new Trainer(request, s, p, o, progress, context.signal);
    if (p.evalSet && request.evalBefore) await trainer.evaluateBefore();
    await trainer.run();
    const { result } = trainer;
    result.seconds = (performance.now() - started) / 1000;
    result.samplesPerSecond = trainer.trainSeconds > 0 ? trainer.samples / trainer.trainSeconds : 0;
    result.peakRssMiB = Math.round(trainer.peakRss / 2 ** 20);
    if (trunk) result.trunkDistill = trunk.result;
    progress({ stage: 'finetune', done: result.steps, total: p.totalSteps, message: `done: ${result.steps} steps, checkpoint ${request.output}` });
    return result;
  } finally {
    trainer?.release();
    await o.sessions.step.release();
    await o.sessions.evaluate?.release();
    await o.teachers?.release();
  }
}

function maxAbs(data: Float32Array): number {
  let m = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (!(a <= m)) m = a; // NaN propagates as NaN > any limit check below
    if (Number.isNaN(a)) return Infinity;
  }
  return m;
}
