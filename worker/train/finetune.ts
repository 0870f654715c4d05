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
import { checkFinite } from '../runtime/runner';
import { createOrtSession } from '../runtime/session';
import type { FinetuneRequest, FinetuneResult, JobContext } from '../types';
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

/** Warmup (linear from 0) then cosine decay to 0; `step` counts from 1. */
export function learningRate(step: number, totalSteps: number, baseLr: number, warmupSteps: number): number {
  if (warmupSteps > 0 && step <= warmupSteps) return (baseLr * step) / warmupSteps;
  const span = Math.max(1, totalSteps - warmupSteps);
  const progress = Math.min(1, (step - warmupSteps) / span);
  return baseLr * 0.5 * (1 + Math.cos(Math.PI * progress));
}

export function shuffled(count: number, rand: () => number): Int32Array {
  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

export const FINETUNE_DEFAULTS = { batchSize: 128, lr: 2e-4, weightDecay: 0.01, clipNorm: 1, labelSmoothing: 0, seed: 0, kdTemp: 2, kdAlpha: 0.5 };

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
  // costs more than it gains (measured on a 16-core machine: 4 threads beat 16), so the default is capped.
  const settings = { providers: [provider.used], threads: threads || Math.min(4, os.availableParallelism()), memArena: params <= NO_ARENA_ABOVE_PARAMS };
  try {
    return await createOrtSession(model.toBytes(), settings);
  } catch (err) {
    throw new OtfuseError('INTERNAL', `ONNX Runtime cannot load the generated ${what} graph: ${(err as Error).message.split('\n')[0]}`, { file: model.file });
  }
}

/** Which dataset array feeds each model input (same rule as evaluation: by name, else the only one, else 'x'). */
function bindInputs(inputs: string[], dataset: Dataset, file: string): Record<string, string> {
  const names = new Set(dataset.arrays.map((a) => a.name));
  const binding: Record<string, string> = {};
  for (const input of inputs) {
    if (names.has(input)) binding[input] = input;
    else if (inputs.length === 1 && dataset.arrays.length === 1) binding[input] = dataset.arrays[0].name;
    else if (inputs.length === 1 && names.has('x')) binding[input] = 'x';
    else
      throw new OtfuseError('BAD_DATA', `no array for model input '${input}' (dataset arrays: ${[...names].join(', ')}; model ${file})`, {
        file: dataset.source,
      });
  }
  return binding;
}

function dataFeeds(batch: Batch, binding: Record<string, string>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [input, array] of Object.entries(binding)) {
    const f = batch.feeds[array];
    feeds[input] = new ort.Tensor(f.type, f.data, f.dims);
  }
  return feeds;
}

function classCount(model: OnnxModel): number | undefined {
  const shape = model.summary().outputs[0]?.shape ?? [];
  const last = shape[shape.length - 1];
  return typeof last === 'number' && last > 0 ? last : undefined;
}

function checkLabels(dataset: Dataset, classes: number | undefined): void {
  for (let i = 0; i < dataset.labels.length; i++) {
    const y = dataset.labels[i];
    if (dataset.labelsPerSample && y === IGNORE_LABEL) continue;
    if (y < 0 || (classes !== undefined && y >= classes)) {
      throw new OtfuseError('BAD_DATA', `label ${y} of sample ${i} is out of range (model has ${classes ?? '?'} classes)`, { file: dataset.source });
    }
  }
}

/** The step and evaluation graphs' parameter inputs: views of the flat vector (updated in place, fed without a copy). */
export function paramFeeds(layout: ParamLayout, flat: Float32Array): Record<string, ort.Tensor> {
  return Object.fromEntries(layout.slots.map((s) => [s.name, new ort.Tensor('float32', flat.subarray(s.offset, s.offset + s.size), s.dims)]));
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

function positive(name: string, v: number | undefined, fallback: number, integer = false): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v)))
    throw new OtfuseError('BAD_USAGE', `--${name} must be a ${integer ? 'non-negative integer' : 'non-negative number'} (got ${v})`);
  return v;
}

export async function finetuneModel(request: FinetuneRequest, context: JobContext): Promise<FinetuneResult> {
  const started = performance.now();
  const progress = context.onProgress ?? (() => undefined);
  const signal = context.signal;
  const batchSize = positive('batch-size', request.batchSize, FINETUNE_DEFAULTS.batchSize, true);
  const baseLr = positive('lr', request.lr, FINETUNE_DEFAULTS.lr);
  const weightDecay = positive('weight-decay', request.weightDecay, FINETUNE_DEFAULTS.weightDecay);
  const clipNorm = positive('clip-norm', request.clipNorm, FINETUNE_DEFAULTS.clipNorm);
  const labelSmoothing = positive('label-smoothing', request.labelSmoothing, FINETUNE_DEFAULTS.labelSmoothing);
  const seed = positive('seed', request.seed, FINETUNE_DEFAULTS.seed, true);
  const maxSteps = request.maxSteps === undefined ? undefined : positive('max-steps', request.maxSteps, 0, true);
  const epochs = positive('epochs', request.epochs, maxSteps !== undefined ? Infinity : 1);
  if (batchSize < 1) throw new OtfuseError('BAD_USAGE', '--batch-size must be at least 1');
  if (labelSmoothing >= 1) throw new OtfuseError('BAD_USAGE', '--label-smoothing must be below 1');

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
  if (request.reinitialize) model = reinitializeParameters(model, seed);
  const train = openDataset(specFromArg(request.data));
  const evalSet = request.evalData ? openDataset(specFromArg(request.evalData)) : undefined;
  if (train.size === 0) throw new OtfuseError('BAD_DATA', 'the training set is empty', { file: train.source });
  const classes = classCount(model);
  checkLabels(train, classes);
  if (evalSet) checkLabels(evalSet, classes);

  const stepsPerEpoch = Math.ceil(train.size / batchSize);
  const totalSteps = Math.min(maxSteps ?? Infinity, Number.isFinite(epochs) ? Math.ceil(epochs * stepsPerEpoch) : Infinity);
  if (!Number.isFinite(totalSteps)) throw new OtfuseError('BAD_USAGE', 'give --epochs or --max-steps');
  const warmupSteps = request.warmupSteps !== undefined ? positive('warmup-steps', request.warmupSteps, 0, true) : Math.min(100, Math.floor(totalSteps * 0.05));

  progress({ stage: 'finetune', message: 'building the training graph' });
  const probe = train.take([0, 1, 2].map((i) => i % train.size));
  const inputs = model.summary().inputs.map((i) => i.name);
  const binding = bindInputs(inputs, train, model.file);
  const teacherFiles = request.teachers ?? [];
  const distill = teacherFiles.length
    ? { temperature: positive('kd-temp', request.kdTemp, FINETUNE_DEFAULTS.kdTemp), alpha: positive('kd-alpha', request.kdAlpha, FINETUNE_DEFAULTS.kdAlpha) }
    : undefined;
  const maskedLabels = !!train.labelsPerSample;
  if (evalSet && !!evalSet.labelsPerSample !== maskedLabels)
    throw new OtfuseError(
      'BAD_DATA',
      `the evaluation set has ${evalSet.labelsPerSample ? 'masked-LM token labels' : 'one label per sample'} but the training set ${maskedLabels ? 'masked-LM token labels' : 'one label per sample'}`,
      { file: evalSet.source },
    );
  const graph: TrainingGraph = await buildTrainingGraph(model, { labelSmoothing, distill, maskedLabels }, { probeFeeds: dataFeeds(probe, binding) });
  const layout: ParamLayout = graph.layout;
  const evalBinding = evalSet ? bindInputs(inputs, evalSet, model.file) : undefined;
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
      teachers = await Teachers.open(teacherFiles, train, classes, distill.temperature, {
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
  const sessions: Sessions = { step: stepSession, evaluate, provider };
  const evalLimit = request.evalLimit ?? Infinity;

  // State: the parameters, both Adam moments and the previous step's parameters (the "last good" ones if the loss
  // turns NaN) as flat float32 vectors updated in place on the host (adamw.ts). The gradient is the step's output as
  // returned: onnxruntime-node hands back a fresh copy of an output even when a preallocated tensor is given for it
  // (it fills both), so preallocating would only keep one more parameter-sized buffer alive.
  const params = flattenParams(model, layout);
  detachWeights(model, layout, params);
  const paramIn = paramFeeds(layout, params);
  const fetches = [...STEP_OUTPUTS, ...layout.slots.map((s) => gradOutput(s.name))];
  const previous = new Float32Array(layout.total);
  const adamM = new Float32Array(layout.total);
  const adamV = new Float32Array(layout.total);
  const keep = request.keep ?? (evalSet ? 'best' : 'last');
  const result: FinetuneResult = { output: request.output, steps: 0, epochs: 0, seconds: 0, samplesPerSecond: 0, history: [], evals: [], train: [] };
  if (distill) result.distill = { teachers: teacherFiles, ...distill };
  let peakRss = process.memoryUsage().rss;
  let written: { step: number; epoch: number } | undefined;
  const diverged = (why: string, at: number): OtfuseError => {
    const kept = written
      ? `the checkpoint from epoch ${written.epoch} (step ${written.step}) at ${request.output} is kept`
      : `nothing was written to ${request.output}`;
    return new OtfuseError('NUMERIC', `training diverged: ${why} (step ${at}); stopped, ${kept}. Try a lower --lr or a --clip-norm.`, { file: request.model });
  };
  // "Good" parameters: all finite and not exploded (max |w| within 1000× the starting scale, at least 1e4).
  const paramLimit = Math.max(1e4, 1e3 * maxAbs(params));
  const healthy = (flat: Float32Array) => maxAbs(flat) <= paramLimit;
  const save = (flat: Float32Array, step: number, epoch: number) => {
    if (!healthy(flat)) throw diverged(`the parameters exploded (max |w| ${maxAbs(flat).toPrecision(3)}) by step ${step}`, step);
    modelWithParams(model, layout, flat).save(request.output);
    written = { step, epoch };
  };

  try {
    if (evalSet && request.evalBefore) {
      result.initial = await evaluateParams(sessions.evaluate!, paramIn, evalSet, evalBinding!, evalLimit, 256, signal);
      progress({
        stage: 'finetune',
        message: `before: accuracy ${(result.initial.accuracy * 100).toFixed(2)} %`,
        metrics: { accuracy: result.initial.accuracy, evalLoss: result.initial.loss },
      });
    }
    const rand = seededRandom(seed + 1);
    let step = 0;
    let trainSeconds = 0;
    let samples = 0;
    let firstLoss: number | undefined;
    let logLoss = 0;
    let logCount = 0;
    let lastLog = performance.now();
    let bestAccuracy = -Infinity;
    for (let epoch = 1; step < totalSteps; epoch++) {
      const order = shuffled(train.size, rand);
      let epochLoss = 0;
      let epochCorrect = 0;
      let epochSamples = 0;
      for (let start = 0; start < train.size && step < totalSteps; start += batchSize) {
        throwIfCancelled(signal);
        const batch = train.take(order.subarray(start, Math.min(start + batchSize, train.size)));
        // NaN/Inf in the training inputs is an input error, not a divergence.
        checkFinite(batch, train.source);
        const n = batch.labels.length;
        step++;
        const lr = learningRate(step, totalSteps, baseLr, warmupSteps);
        const t0 = performance.now();
        const out = await sessions.step.run(
          {
            ...dataFeeds(batch, binding),
            labels: new ort.Tensor(
              'int64',
              BigInt64Array.from(batch.labels, (y) => BigInt(y)),
              [n],
            ),
            ...(teachers ? { teacher_probs: await teachers.probs(batch) } : {}),
            ...paramIn,
          },
          fetches,
        );
        trainSeconds += (performance.now() - t0) / 1000;
        const tUpdate = performance.now();
        const loss = (out.loss.data as Float32Array)[0];
        firstLoss ??= loss;
        if (!Number.isFinite(loss) || loss > Math.max(1e3, 100 * (firstLoss ?? loss))) {
          // The loss of this step was computed with `params`: the parameters before them are the last good ones.
          let kept: string;
          if (written) kept = `the checkpoint from epoch ${written.epoch} (step ${written.step}) at ${request.output} is kept`;
          else if (step > 1 && healthy(previous)) {
            save(previous, step - 2, epoch);
            kept = `the last good parameters (after step ${step - 2}) were written to ${request.output}`;
          } else if (step > 1) kept = 'no checkpoint was written (the last parameters before it had already exploded)';
          else kept = 'no checkpoint was written (the loss is not finite at the very first step: check the data and the model)';
          throw new OtfuseError(
            'NUMERIC',
            `training diverged: the loss became ${loss} at step ${step} (epoch ${epoch}, lr ${lr.toPrecision(3)}); stopped, ${kept}. Try a lower --lr or a --clip-norm.`,
            { file: request.model },
          );
        }
        // The parameters this loss was computed with become the last good ones; then the update, in place.
        previous.set(params);
        // each parameter's slice from its own gradient output; clipping by the global norm
        const gradNorm = (out.grad_norm.data as Float32Array)[0];
        for (const s of layout.slots) {
          const slice = (x: Float32Array) => x.subarray(s.offset, s.offset + s.size);
          adamwStep(slice(params), slice(adamM), slice(adamV), out[gradOutput(s.name)].data as Float32Array, gradNorm, {
            lr,
            step,
            decayed: s.decay ? s.size : 0,
            weightDecay,
            clipNorm,
          });
        }
        trainSeconds += (performance.now() - tUpdate) / 1000;
        samples += n;
        // Masked-LM data: loss and accuracy are means over the labelled positions.
        const scored = maskedLabels ? batch.labels.reduce((c, y) => c + (y === IGNORE_LABEL ? 0 : 1), 0) : n;
        epochSamples += scored;
        epochLoss += loss * scored;
        epochCorrect += (out.correct.data as Float32Array)[0];
        logLoss += loss;
        logCount++;
        const now = performance.now();
        if (step % 10 === 0 || now - lastLog > 500 || step === totalSteps || start + batchSize >= train.size) {
          const meanLoss = logLoss / logCount;
          result.history.push({ step, loss: meanLoss, lr });
          peakRss = Math.max(peakRss, process.memoryUsage().rss);
          progress({
            stage: 'finetune',
            done: step,
            total: totalSteps,
            message: `epoch ${epoch}, step ${step}/${totalSteps}`,
            metrics: { loss: meanLoss, lr, samplesPerSecond: samples / trainSeconds, epoch, gradNorm: (out.grad_norm.data as Float32Array)[0] },
          });
          logLoss = 0;
          logCount = 0;
          lastLog = now;
        }
      }
      result.train!.push({ epoch, accuracy: epochCorrect / Math.max(1, epochSamples), loss: epochLoss / Math.max(1, epochSamples) });
      result.steps = step;
      result.epochs = Math.round((step / stepsPerEpoch) * 1000) / 1000;
      if (evalSet) {
        progress({ stage: 'finetune', message: `epoch ${epoch}: evaluating` });
        const e = await evaluateParams(sessions.evaluate!, paramIn, evalSet, evalBinding!, evalLimit, 256, signal);
        result.evals.push({ epoch, ...e });
        progress({
          stage: 'finetune',
          done: step,
          total: totalSteps,
          message: `epoch ${epoch}: accuracy ${(e.accuracy * 100).toFixed(2)} %`,
          metrics: { accuracy: e.accuracy, evalLoss: e.loss, epoch },
        });
        if (e.accuracy > bestAccuracy) {
          bestAccuracy = e.accuracy;
          result.best = { epoch, accuracy: e.accuracy };
          if (keep === 'best') save(params, step, epoch);
        }
      }
      if (keep === 'last') save(params, step, epoch);
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }
    result.seconds = (performance.now() - started) / 1000;
    result.samplesPerSecond = trainSeconds > 0 ? samples / trainSeconds : 0;
    result.peakRssMiB = Math.round(peakRss / 2 ** 20);
    progress({ stage: 'finetune', done: result.steps, total: totalSteps, message: `done: ${result.steps} steps, checkpoint ${request.output}` });
    return result;
  } finally {
    await sessions.step.release();
    await sessions.evaluate?.release();
    await teachers?.release();
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
